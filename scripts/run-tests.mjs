// Runs the uvu suites and ends with the line CI reads: `N passed, N failed`.
// Host-only tests run once; GPU tests run once per software adapter present (lavapipe with
// shader-f16, SwiftShader without), or once on the machine's real GPU.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const swiftshaderIcd = '/usr/lib/chromium/vk_swiftshader_icd.json';
const only = process.argv.slice(2); // optional: suite names to run

function runSuite(name, dir, env = {}, nodeArgs = [], pattern = '\\.test\\.ts$') {
  return new Promise((resolve) => {
    if (!existsSync(`${root}/${dir}`) || readdirSync(`${root}/${dir}`).filter((f) => f.endsWith('.test.ts')).length === 0) {
      resolve({ name, total: 0, passed: 0, skipped: 0, failed: 0, code: 0 });
      return;
    }
    console.log(`\n=== ${name} (${dir}) ===`);
    const child = spawn(process.execPath, [...nodeArgs, '--import', './scripts/register.mjs', 'node_modules/uvu/bin.js', dir, pattern],
      { cwd: root, env: { ...process.env, FORCE_COLOR: '0', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.on('close', (code) => {
      const num = (label) => Number((out.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? 0);
      const total = num('Total'), passed = num('Passed'), skipped = num('Skipped');
      let failed = total - passed - skipped;
      // A suite that crashed before printing totals still counts as a failure.
      if (code !== 0 && failed === 0) failed = 1;
      resolve({ name, total, passed, skipped, failed, code });
    });
  });
}

// Each GPU suite runs twice per adapter: as the adapter is (its own tuning and raised limits), and
// in the GPU lane (MSL_GPU_LANE=1: real-GPU kernel choices on WebGPU's default limits), which
// leaves out a few files (LANE_TESTS below).
const LANE = { MSL_GPU_LANE: '1' };
// The Wasm kernels run once (no GPU). Node 20 validates relaxed SIMD only behind a flag; passing it
// lets the suite test the relaxed-SIMD build too (Node 22+ has it on by default).
const relaxedFlag = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-wasm-relaxed-simd'] : [];
const WASM_MODEL_TESTS = '^(model|model-quant|model-f16kv|batch|batcher|session-state|loader|loader-quant|loader-quant-pool|loader-fixtures|loader-upload)\\.test\\.ts$';
// What the GPU lanes leave out. Both: the quantizers' quality on the trained model (a property of
// the quantizers, not of a kernel variant). SwiftShader's lane (the real-GPU kernels with 16-bit
// weights read as packed u32, no shader-f16) also leaves out the scheduling and snapshot suites
// and the trained model's checks: their kernel variants are those of the fixture-model tests it
// runs (every config variant and dtype against the f64 reference), and the GPU variants' workgroup
// barriers cost milliseconds per dispatch on that CPU emulation (the trained model's 32000-row head
// alone takes ~3 s a token). They run on lavapipe in both lanes, on SwiftShader with its own
// tuning, and on the Wasm backend (batching and snapshots).
const notIn = (files) => `^(?!(${files.join('|')})\\.test\\.ts$).*\\.test\\.ts$`;
const LANE_TESTS = notIn(['default-model-quant']);
const SWIFTSHADER_LANE_TESTS = notIn(['default-model-quant', 'default-model', 'batch', 'batcher', 'session-state']);
const suites = [
  { name: 'unit', dir: 'test/unit' },
  { name: 'wasm', dir: 'test/wasm', nodeArgs: relaxedFlag },
  // The model-level suite (whole models vs the f64 reference, loader, sessions, batching) on the
  // Wasm CPU backend: the third adapter. Kernel tests and WebGPU-only files stay in the gpu suites.
  { name: 'wasm:models', dir: 'test/gpu', env: { MSL_BACKEND: 'wasm' }, pattern: WASM_MODEL_TESTS },
  { name: 'gpu:default-adapter', dir: 'test/gpu' },
  { name: 'gpu:default-adapter:gpu-lane', dir: 'test/gpu', env: LANE, pattern: LANE_TESTS },
  // The HTTP server through the openai client, on the default model (once per adapter).
  { name: 'server:default-adapter', dir: 'test/server' },
];
if (existsSync(swiftshaderIcd) && !process.env.MSL_SKIP_SWIFTSHADER) {
  const ss = { VK_ICD_FILENAMES: swiftshaderIcd, MSL_EXPECT_ADAPTER: 'swiftshader' };
  suites.push({ name: 'gpu:swiftshader', dir: 'test/gpu', env: ss });
  suites.push({ name: 'gpu:swiftshader:gpu-lane', dir: 'test/gpu', env: { ...ss, ...LANE }, pattern: SWIFTSHADER_LANE_TESTS });
  suites.push({ name: 'server:swiftshader', dir: 'test/server', env: ss });
}
suites.push({ name: 'e2e', dir: 'test/e2e' });
// Deno and Bun (installed on demand into .cache/runtimes, not dependencies) against Node's ids.
suites.push({ name: 'runtimes', dir: 'test/runtimes' });

const results = [];
for (const s of suites) {
  if (only.length && !only.some((o) => s.name.startsWith(o))) continue;
  results.push(await runSuite(s.name, s.dir, s.env, s.nodeArgs, s.pattern));
}
let passed = 0, failed = 0, skipped = 0;
console.log('\n=== summary ===');
for (const r of results) {
  console.log(`${r.name}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
  passed += r.passed; failed += r.failed; skipped += r.skipped;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
