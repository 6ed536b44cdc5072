// The library in hosts other than a Node with a GPU: children run the built bundle (dist/node.js)
// (1) with no SharedArrayBuffer, no Atomics.wait and no worker_threads (the single-threaded build on
// plain memory, as edge runtimes run it) and (2) with backend 'auto' where no WebGPU adapter can be
// had (no Vulkan driver; the `webgpu` module missing): it falls back to Wasm quickly and says so.
// Greedy ids must equal those of the threaded Wasm backend in this process, logits agree to 1e-5.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { makeFixture } from '../fixtures/index.ts';
import { loadModel } from '../../src/api.ts';
import { WasmBackend } from '../../src/backends/wasm/backend.ts';

const root = new URL('../../', import.meta.url).pathname;
const child = join(root, 'test/wasm/hosts/child.mjs');
const built = existsSync(join(root, 'dist/node.js'));
const dir = mkdtempSync(join(tmpdir(), 'msl-hosts-'));
const fx = makeFixture({ arch: 'zamba2', variant: 'hybrid-1block', dtype: 'bf16', seed: 41 });
for (const [name, bytes] of fx.files) {
  mkdirSync(dirname(join(dir, name)), { recursive: true });
  writeFileSync(join(dir, name), bytes);
}
const PROMPT = [1, 7, 3, 9, 2];

interface ChildResult { backend: string; deviceName: string; ids: number[]; logits: number[]; loadMs: number; sab: string }

function run(flags: string[], env: Record<string, string> = {}): ChildResult {
  const r = spawnSync(process.execPath, [child, '--model', dir, '--prompt', JSON.stringify(PROMPT), ...flags], {
    cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...env },
  });
  assert.is(r.status, 0, `child ${flags.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
}

let expected: { ids: number[]; logits: Float32Array } | undefined;
async function threaded(): Promise<{ ids: number[]; logits: Float32Array }> {
  if (expected) return expected;
  const be = await WasmBackend.create({ threads: 2 });
  const model = await loadModel(new Map(fx.files), { backend: be, noTokenizer: true, kvDtype: 'f32', prefillChunk: 16 });
  try {
    const ids = await model.generate(PROMPT, { maxNewTokens: 8, eosTokenIds: [] });
    const { data } = await model.forward([PROMPT]);
    expected = { ids, logits: data.slice(0, 64) };
    return expected;
  } finally {
    await model.dispose();
    await be.destroy();
  }
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  assert.ok(m <= tol, `max |Δ| ${m} > ${tol}`);
  return m;
}

test('no SharedArrayBuffer, no workers: the single-threaded plain-memory build, same greedy ids', async () => {
  if (!built) { console.log('  skipped: dist/node.js is not built (node scripts/build.mjs)'); return; }
  const want = await threaded();
  const r = run(['--no-threads', '--backend', 'wasm']);
  assert.is(r.sab, 'undefined', 'the child really had no SharedArrayBuffer');
  assert.is(r.backend, 'wasm');
  assert.match(r.deviceName, /^wasm-simd 1 thread \(no shared memory\)$/);
  assert.equal(r.ids, want.ids);
  close(r.logits, want.logits, 1e-5);
});

test("backend 'auto' with no Vulkan driver and with no webgpu module: Wasm, quickly, and it says so", async () => {
  if (!built) { console.log('  skipped: dist/node.js is not built (node scripts/build.mjs)'); return; }
  const want = await threaded();
  for (const [label, flags, env] of [
    ['no Vulkan driver', [], { VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' }],
    ['no webgpu module', ['--no-webgpu-module'], {}],
    ['neither, no threads', ['--no-webgpu-module', '--no-threads'], {}],
  ] as const) {
    const r = run([...flags], env);
    assert.is(r.backend, 'wasm', `${label}: ${r.deviceName}`);
    assert.match(r.deviceName, /^wasm-simd/, label);
    assert.equal(r.ids, want.ids, label);
    close(r.logits, want.logits, 1e-5);
    assert.ok(r.loadMs < 20_000, `${label}: load with fallback took ${r.loadMs.toFixed(0)} ms`);
  }
});

test('npm start on a machine without a GPU driver: no system install, the Wasm backend, the same ids as the library', async () => {
  if (!existsSync(join(root, 'dist/cli.js'))) { console.log('  skipped: dist/cli.js is not built (node scripts/build.mjs)'); return; }
  const r = spawnSync(process.execPath, ['scripts/start.mjs', '--json', '--max-new-tokens', '6'], {
    cwd: root, encoding: 'utf8', timeout: 120_000,
    env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  assert.is(r.status, 0, r.stderr);
  assert.not.match(r.stderr, /setup-system|apt-get/, 'no system install step');
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { promptIds: number[]; ids: number[]; stats: { backend: string; adapter: string } };
  assert.is(out.stats.backend, 'wasm');
  assert.match(out.stats.adapter, /^wasm-simd/);
  const be = await WasmBackend.create({ threads: 1 });
  const model = await loadModel(new Map(await readDir(join(root, 'assets/default-model'))), { backend: be });
  try {
    // npm start's own options: greedy with its repetition penalty (scripts/start.mjs).
    const ids = await model.generate(out.promptIds, { maxNewTokens: 6, repetitionPenalty: 1.3 });
    assert.equal(out.ids, ids.slice(out.promptIds.length));
  } finally {
    await model.dispose();
    await be.destroy();
  }
});

async function readDir(d: string): Promise<[string, Uint8Array][]> {
  const { readdirSync, readFileSync } = await import('node:fs');
  return readdirSync(d).map((f) => [f, new Uint8Array(readFileSync(join(d, f)))]);
}

test('cleanup', () => { rmSync(dir, { recursive: true, force: true }); });

test.run();
