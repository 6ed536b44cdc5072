// One GpuContext per test process (acquiring devices is slow on software adapters).
// MSL_EXPECT_ADAPTER=swiftshader makes the suite fail loudly if the adapter is not the one the
// runner meant to test.
import { GpuContext } from '../../src/backends/webgpu/context.ts';
import { setGpuProvider } from '../../src/backends/webgpu/provider.ts';
import { nodeGpu } from '../../src/backends/webgpu/node-gpu.ts';
import { WebGpuBackend } from '../../src/backends/webgpu/backend.ts';

let ctx: Promise<GpuContext> | undefined;

export function testGpu(): Promise<GpuContext> {
  if (!ctx) {
    setGpuProvider(nodeGpu);
    // MSL_GPU_LANE=1: the runtime takes its real-GPU kernel decisions on this (software) adapter,
    // on a device with only WebGPU's default limits, as a phone or integrated GPU would give.
    const lane = process.env.MSL_GPU_LANE === '1';
    ctx = GpuContext.create(lane ? { tuning: 'gpu', limits: 'default' } : {}).then((c) => {
      const want = process.env.MSL_EXPECT_ADAPTER;
      if (want && c.adapter.name !== want) throw new Error(`expected adapter ${want}, got ${c.adapter.name}`);
      return c;
    });
  }
  return ctx;
}

/** Deterministic PRNG (mulberry32) for random test inputs: the fixture generator's. */
import { mulberry32 as rng } from '../fixtures/rng.ts';
export { rng };

export function randn(r: () => number): number {
  const u = Math.max(r(), 1e-12), v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = randn(r) * scale;
  return out;
}

/** max |a-b| / (atol + rtol*|b|) style check; returns the worst absolute and relative errors. */
export function maxErrors(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; rel: number; at: number } {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let abs = 0, rel = 0, at = -1;
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= abs)) { abs = d; at = i; }
  }
  rel = abs / Math.max(scale, 1e-30);
  return { abs, rel, at };
}

let backend: Promise<WebGpuBackend> | undefined;

/** The op-interface backend over the shared test context (not owning it: dispose keeps the device). */
export function testBackend(): Promise<WebGpuBackend> {
  backend ??= testGpu().then((c) => new WebGpuBackend(c, false));
  return backend;
}

// ---- the backend model-level tests run on (MSL_BACKEND) ----
// The model suite (whole models, loader, sessions, batching) runs on WebGPU by default and on the
// Wasm CPU backend with MSL_BACKEND=wasm (scripts/run-tests.mjs suite `wasm:models`; threads from
// MSL_WASM_THREADS, default 2, capped at the core count). Kernel tests stay WebGPU-only.
import type { Backend } from '../../src/backends/backend.ts';
import { WasmBackend } from '../../src/backends/wasm/backend.ts';

export const TEST_BACKEND: 'webgpu' | 'wasm' = process.env.MSL_BACKEND === 'wasm' ? 'wasm' : 'webgpu';

let wasmBackend: Promise<WasmBackend> | undefined;

/** One shared WasmBackend per test process (its workers exit with the process). */
export function testWasmBackend(): Promise<WasmBackend> {
  wasmBackend ??= WasmBackend.create({ threads: Number(process.env.MSL_WASM_THREADS ?? 2) });
  return wasmBackend;
}

/** The shared backend of this test process's lane: WebGPU over the test context, or Wasm. */
export function testModelBackend(): Promise<Backend> {
  return TEST_BACKEND === 'wasm' ? testWasmBackend() : testBackend();
}

/** loadModel options that put a model on the lane's backend (the shared context on WebGPU). */
export async function modelTarget(): Promise<{ device: GpuContext } | { backend: Backend }> {
  return TEST_BACKEND === 'wasm' ? { backend: await testWasmBackend() } : { device: await testGpu() };
}
