// Build: AssemblyScript -> Wasm (build/*.wasm), esbuild bundles for Node, browser and CLI with
// WGSL inlined as text and Wasm inlined as bytes, and .d.ts files for the public entries.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
process.chdir(root);
mkdirSync('build', { recursive: true });

// One Wasm module per host-side job, so a page that only tokenizes does not load the rest.
// The CPU kernels (assembly/kernels/README.md) come in three builds of the same source: threads
// over a shared memory, the same with relaxed-SIMD fused multiply-adds, and a plain-memory build
// for hosts without SharedArrayBuffer.
const wasmModules = [
  { entry: 'assembly/host/index.ts', out: 'build/host.wasm', target: 'release' },
  { entry: 'assembly/tokenizer/index.ts', out: 'build/tokenizer.wasm', target: 'release' },
  { entry: 'assembly/scheduler/index.ts', out: 'build/scheduler.wasm', target: 'release' },
  { entry: 'assembly/kernels/index.ts', out: 'build/kernels.wasm', target: 'kernels' },
  { entry: 'assembly/kernels/index.ts', out: 'build/kernels-relaxed.wasm', target: 'kernels-relaxed' },
  { entry: 'assembly/kernels/index.ts', out: 'build/kernels-st.wasm', target: 'kernels-st' },
];
for (const { entry, out, target } of wasmModules) {
  if (!existsSync(entry)) continue;
  execFileSync('node', ['node_modules/assemblyscript/bin/asc.js', entry, '--config', 'asconfig.json',
    '--target', target, '-o', out], { stdio: 'inherit' });
}

const common = {
  bundle: true,
  format: 'esm',
  // Explicit target: without it esbuild may emit Uint8Array.fromBase64, which Node 20 lacks.
  target: ['es2022', 'node20', 'chrome120'],
  loader: { '.wgsl': 'text', '.wasm': 'binary' },
  sourcemap: true,
  logLevel: 'warning',
};
const entries = [
  { in: 'src/index.node.ts', out: 'dist/node.js', platform: 'node', external: ['webgpu', '@huggingface/jinja'] },
  { in: 'src/index.browser.ts', out: 'dist/browser.js', platform: 'browser', external: ['node:*'] },
  { in: 'src/cli/main.ts', out: 'dist/cli.js', platform: 'node', external: ['webgpu', '@huggingface/jinja'],
    banner: { js: '#!/usr/bin/env node' } },
  { in: 'examples/browser/app.ts', out: 'examples/browser/dist/app.js', platform: 'browser', external: ['node:*'] },
];
for (const e of entries) {
  if (!existsSync(e.in)) continue;
  await build({ ...common, entryPoints: [e.in], outfile: e.out, platform: e.platform, external: e.external, banner: e.banner });
}

if (process.argv.includes('--types') || !process.argv.includes('--no-types')) {
  if (existsSync('tsconfig.build.json')) {
    execFileSync('node', ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  }
}
console.log('build: ok');
