// bench/kernels-matmul: the weight-reading kernels at Zamba2-1.2B shapes (SPEC.md §Real
// configurations: H 2048, di 4096, N 128, NH 64, G 1, MLP 8192, vocab 32000):
//   in_proj  2048 -> 8512  (z 4096 + xBC 4096 + 2*G*N 256 + dt NH 64)
//   out_proj 4096 -> 2048
//   gate_up  4096 -> 16384 (shared block MLP on concat(hidden, original) = 2H)
//   down     8192 -> 2048
//   lm_head  2048 -> 32000 (split into parts where it exceeds the storage binding limit)
// for M = 1 (GEMV, decode: GB/s) and M = 256 (tiled GEMM, prefill: GFLOP/s), bf16 and f32 weights;
// plus embedding gather and argmax at decode shapes. Every figure is also divided by the device
// copy bandwidth measured in the same run (bench/roofline.ts), bytes counted as read + written.
//
//   node --import ./scripts/register.mjs bench/kernels-matmul.ts [--quick] [--m 1,256] [--dtype bf16,f32] [--shapes in_proj,lm_head]
//        [--gemv WG,ROWS] [--gemm gemm-tiled|gemm-blocked]
//
// Timing: wall time of a batch of identical calls recorded into one submit, after a warm-up call
// (compiles); the batch is sized to ~50 ms (at least one call), best of 2 batches; on CPU
// emulations a call slower than 50 ms is timed once. Weights are zero-filled device buffers (values
// do not change the work), x is random. On CPU emulations the M = 256 GEMMs (~90 GFLOP per dtype,
// minutes there) run for out_proj only, so the whole script stays near 2 minutes; --full runs all.
import { STORAGE_RW } from '../src/backends/webgpu/flags.ts';
import type { GpuContext } from '../src/backends/webgpu/context.ts';
import type { DType, GpuTensor, TensorPart } from '../src/backends/webgpu/tensor.ts';
import { GEMV_MAX_M, argmax, embedding, matmul, type GemvTuning, type MatmulPath } from '../src/backends/webgpu/kernels/matmul.ts';
import { QUICK, benchGpu, jsonLine, table } from './common.ts';
import { measureCopyBandwidth } from './roofline.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const SHAPES: [string, number, number][] = [ // name, N (out), K (in)
  ['in_proj', 8512, 2048], ['out_proj', 2048, 4096], ['gate_up', 16384, 4096], ['down', 2048, 8192], ['lm_head', 32000, 2048],
];
const wantShapes = arg('shapes')?.split(',');
const Ms = (arg('m') ?? '1,256').split(',').map(Number);
const dtypes = (arg('dtype') ?? 'bf16,f32').split(',') as DType[];
const gemvArg = arg('gemv'); // "wg,rows" override, for tuning runs
const gemv: GemvTuning | undefined = gemvArg ? { wg: +gemvArg.split(',')[0], rows: +gemvArg.split(',')[1] } : undefined;
const FULL = process.argv.includes('--full');
const gemmPath = arg('gemm') as MatmulPath | undefined; // 'gemm-tiled' | 'gemm-blocked' override

/** A zero-filled weight [N, K] split into parts that fit the storage binding limit (even row starts). */
function makeWeight(ctx: GpuContext, name: string, N: number, K: number, dtype: DType): GpuTensor {
  const eb = dtype === 'f32' ? 4 : 2;
  let rowsPer = Math.max(1, Math.floor(ctx.limits.maxStorageBufferBindingSize / (K * eb)));
  if (eb === 2 && K % 2 === 1 && rowsPer % 2 === 1 && rowsPer < N) rowsPer--;
  const parts: TensorPart[] = [];
  for (let r = 0; r < N; r += rowsPer) {
    const rows = Math.min(rowsPer, N - r);
    parts.push({ buffer: ctx.alloc.create(`bench:${name}.${parts.length}`, rows * K * eb, STORAGE_RW), rowStart: r, rows });
  }
  return { name, dtype, shape: [N, K], parts, byteLength: N * K * eb };
}

function randomF32(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = s / 2147483648 - 1; }
  return out;
}

/** Seconds per call of `call` (recorded `reps` times per submit), best of `trials`. */
async function timeCall(ctx: GpuContext, call: () => Promise<void>, trials = 2): Promise<number> {
  await call(); await ctx.sync(); // warm-up: compile
  let t0 = performance.now();
  await call(); await ctx.sync();
  const t1 = (performance.now() - t0) / 1000;
  const reps = QUICK ? 1 : Math.max(1, Math.min(200, Math.ceil(0.05 / Math.max(t1, 1e-6))));
  if (ctx.adapter.isSoftware && t1 > 0.05) return t1; // slow emulation: one call is a measurement
  let best = t1;
  for (let t = 0; t < trials; t++) {
    t0 = performance.now();
    for (let i = 0; i < reps; i++) await call();
    await ctx.sync();
    best = Math.min(best, (performance.now() - t0) / 1000 / reps);
  }
  return best;
}

const ctx = await benchGpu();
const adapter = ctx.adapter.name;
console.log(`adapter: ${adapter} (f16 ${ctx.features.shaderF16}, subgroups ${ctx.features.subgroups})${QUICK ? ' [quick]' : ''}`);
const copyGBs = await measureCopyBandwidth(ctx);
jsonLine('kernels-matmul', { kernel: 'copy', adapter, GBs: +copyGBs.toFixed(2) });

const rows: (string | number)[][] = [];
const maxM = Math.max(...Ms);
const xBuf = ctx.upload('bench:x', randomF32(maxM * 8192, 1));
const yBuf = ctx.alloc.create('bench:y', maxM * 32000 * 4, STORAGE_RW);
for (const dtype of dtypes) {
  for (const [name, N, K] of SHAPES) {
    if (wantShapes && !wantShapes.includes(name)) continue;
    const w = makeWeight(ctx, name, N, K, dtype);
    for (const M of Ms) {
      if (M > GEMV_MAX_M && ctx.adapter.isSoftware && !FULL && name !== 'out_proj') {
        jsonLine('kernels-matmul', { kernel: 'matmul', shape: name, adapter, dtype, M, N, K, skipped: 'CPU emulation: M > 8 only for out_proj unless --full' });
        continue;
      }
      const path: MatmulPath = M <= GEMV_MAX_M ? 'gemv' : gemmPath ?? (ctx.adapter.isSoftware ? 'gemm-blocked' : 'gemm-tiled');
      const s = await timeCall(ctx, () => matmul(ctx, { x: xBuf, M, w, y: yBuf, gemv, path }));
      const bytes = w.byteLength + 4 * M * (K + N);
      const GBs = bytes / s / 1e9, GFLOPs = (2 * M * N * K) / s / 1e9;
      jsonLine('kernels-matmul', {
        kernel: 'matmul', shape: name, adapter, dtype, M, N, K, path, parts: w.parts.length,
        us: +(s * 1e6).toFixed(1), GBs: +GBs.toFixed(2), GFLOPs: +GFLOPs.toFixed(1), ofCopy: +(GBs / copyGBs).toFixed(3),
      });
      rows.push([name, dtype, M, path, s * 1e6, GBs, GFLOPs, GBs / copyGBs]);
    }
    for (const p of w.parts) ctx.alloc.destroy(p.buffer);
  }
}

// Embedding gather (prefill T = 256 and decode T = 1 from a bf16 [32000, 2048] table) and argmax
// over one row of 32000 logits.
{
  const table0 = makeWeight(ctx, 'embed', 32000, 2048, 'bf16');
  const ids = ctx.upload('bench:ids', new Uint32Array(256).map((_, i) => (i * 7919) % 32000));
  for (const T of [1, 256]) {
    const s = await timeCall(ctx, () => embedding(ctx, { ids, T, table: table0, out: yBuf }));
    const bytes = T * 2048 * (2 + 4) + T * 4;
    jsonLine('kernels-matmul', { kernel: 'embedding', adapter, dtype: 'bf16', T, H: 2048, us: +(s * 1e6).toFixed(1), GBs: +(bytes / s / 1e9).toFixed(3), ofCopy: +(bytes / s / 1e9 / copyGBs).toFixed(4) });
    rows.push(['embedding', 'bf16', T, '-', s * 1e6, bytes / s / 1e9, 0, bytes / s / 1e9 / copyGBs]);
  }
  const out = ctx.alloc.create('bench:argmax', 4, STORAGE_RW);
  const s = await timeCall(ctx, () => argmax(ctx, { logits: yBuf, M: 1, V: 32000, out }));
  const bytes = 32000 * 4;
  jsonLine('kernels-matmul', { kernel: 'argmax', adapter, M: 1, V: 32000, us: +(s * 1e6).toFixed(1), GBs: +(bytes / s / 1e9).toFixed(3), ofCopy: +(bytes / s / 1e9 / copyGBs).toFixed(4) });
  rows.push(['argmax', 'f32', 1, '-', s * 1e6, bytes / s / 1e9, 0, bytes / s / 1e9 / copyGBs]);
  for (const p of table0.parts) ctx.alloc.destroy(p.buffer);
  ctx.alloc.destroy(ids); ctx.alloc.destroy(out);
}
table(`matmul kernels on ${adapter} (device copy ${copyGBs.toFixed(1)} GB/s)`, ['kernel', 'dtype', 'M', 'path', 'us/call', 'GB/s', 'GFLOP/s', 'of copy'], rows);
ctx.alloc.destroy(xBuf); ctx.alloc.destroy(yBuf);
await ctx.destroy();
