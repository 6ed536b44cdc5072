// bench/kernels-matmul: the weight-reading kernels at Zamba2-1.2B shapes (docs/model.md §Real
// configurations: H 2048, di 4096, N 128, NH 64, G 1, MLP 8192, vocab 32000):
//   in_proj  2048 -> 8512  (z 4096 + xBC 4096 + 2*G*N 256 + dt NH 64)
//   out_proj 4096 -> 2048
//   gate_up  4096 -> 16384 (shared block MLP on concat(hidden, original) = 2H)
//   down     8192 -> 2048
//   lm_head  2048 -> 32000 (split into parts where it exceeds the storage binding limit)
// for every weight format (f32, f16, bf16, q8_0, q4_0, q5_0, q4_k, q6_k) and every GEMV kernel
// (M <= 8: shaders/gemv.wgsl 'gemv-split', shaders/gemv_q.wgsl 'gemv-lanes' and 'gemv-gpu'; the
// device's default marked *), in GB/s of the weight's own bytes plus x and y, side by side with
// the adapter's device-copy bandwidth (bench/roofline.ts) and its storage-load ceiling (a kernel
// that only streams the same bytes with 16-byte loads, one contiguous run per thread: no kernel
// that reads every weight byte through storage loads can beat it); M = 256 GEMMs in GFLOP/s;
// the embedding gather and argmax. One JSON line per figure.
//
//   node --import ./scripts/register.mjs bench/kernels-matmul.ts [--quick] [--rounds 3] [--m 1,256]
//        [--dtype bf16,q4_k] [--shapes in_proj,lm_head] [--paths gemv-lanes,gemv-split]
//        [--gemv WG,ROWS] [--gemm gemm-tiled|gemm-blocked] [--full]
//
// Timing: wall time of a batch of identical calls recorded into one submit, after a warm-up call
// (compiles); the batch is sized to ~50 ms (at least one call), best of 2 batches. The whole set
// (copy, load ceiling, every kernel) runs `rounds` times interleaved and each figure keeps its
// best round: on a shared machine the load of other processes comes and goes, and only figures
// measured under the same conditions can be divided. The process CPU time per call is reported
// too (on a software adapter the device is this process's threads, so CPU time is the kernel's
// work whatever else runs on the machine) with the bytes per CPU-second as a fraction of the load
// ceiling's. Weights are zero-filled device buffers in
// each format's device layout (values do not change the work), x is random. On CPU emulations
// the M = 256 GEMMs (minutes there) run for out_proj only unless --full.
import { STORAGE_RW } from '../src/backends/webgpu/flags.ts';
import type { GpuContext } from '../src/backends/webgpu/context.ts';
import type { KernelDef } from '../src/backends/webgpu/kernel.ts';
import type { DType, GpuTensor, TensorPart } from '../src/backends/webgpu/tensor.ts';
import { isQuantDType } from '../src/backends/tensor.ts';
import { deviceLayout } from '../src/quant/formats.ts';
import { GEMV_MAX_M, argmax, gemvMaxM, embedding, matmul, type GemvTuning, type MatmulPath } from '../src/backends/webgpu/kernels/matmul.ts';
import { QUICK, benchGpu, jsonLine, table } from './common.ts';
import { measureCopyBandwidth } from './roofline.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const SHAPES: [string, number, number][] = [ // name, N (out), K (in)
  ['in_proj', 8512, 2048], ['out_proj', 2048, 4096], ['gate_up', 16384, 4096], ['down', 2048, 8192], ['lm_head', 32000, 2048],
];
const ALL_DTYPES: DType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q5_0', 'q4_k', 'q6_k'];
const wantShapes = arg('shapes')?.split(',');
const Ms = (arg('m') ?? '1').split(',').map(Number);
const dtypes = (arg('dtype')?.split(',') ?? ALL_DTYPES) as DType[];
const wantPaths = arg('paths')?.split(',') as MatmulPath[] | undefined;
const rounds = Number(arg('rounds') ?? (QUICK ? 1 : 3));
const gemvArg = arg('gemv'); // "wg,rows" override, for tuning runs
const gemv: GemvTuning | undefined = gemvArg ? { wg: +gemvArg.split(',')[0], rows: +gemvArg.split(',')[1] } : undefined;
const FULL = process.argv.includes('--full');
const gemmPath = arg('gemm') as MatmulPath | undefined; // 'gemm-tiled' | 'gemm-blocked' override

/** Bytes of `rows` rows of K values stored as `dtype` (the device layout for quantized formats). */
function partBytes(dtype: DType, rows: number, K: number): number {
  return isQuantDType(dtype) ? deviceLayout(dtype, rows, K).totalBytes : rows * K * (dtype === 'f32' ? 4 : 2);
}

/** A zero-filled weight [N, K] split into parts that fit the storage binding limit (even row starts). */
function makeWeight(ctx: GpuContext, name: string, N: number, K: number, dtype: DType): GpuTensor {
  let rowsPer = N;
  while (partBytes(dtype, rowsPer, K) > ctx.limits.maxStorageBufferBindingSize) rowsPer = Math.ceil(rowsPer / 2);
  if (rowsPer < N && rowsPer % 2 === 1) rowsPer--;
  const parts: TensorPart[] = [];
  let byteLength = 0;
  for (let r = 0; r < N; r += rowsPer) {
    const rows = Math.min(rowsPer, N - r);
    const bytes = partBytes(dtype, rows, K);
    parts.push({ buffer: ctx.alloc.create(`bench:${name}.${parts.length}`, bytes, STORAGE_RW), rowStart: r, rows });
    byteLength += bytes;
  }
  return { name, dtype, shape: [N, K], parts, byteLength };
}

function randomF32(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = s / 2147483648 - 1; }
  return out;
}

/**
 * Wall seconds per call of `call` (recorded `reps` times per submit), best of `trials`, and the
 * process CPU seconds per call of that batch. On a software adapter the "device" is this process's
 * threads, so CPU time measures a kernel's work even while other processes compete for the cores.
 */
async function timeCall(ctx: GpuContext, call: () => Promise<void>, trials = 2): Promise<{ wall: number; cpu: number }> {
  await call(); await ctx.sync(); // warm-up: compile
  let t0 = performance.now();
  let c0 = process.cpuUsage();
  await call(); await ctx.sync();
  const t1 = (performance.now() - t0) / 1000;
  const cpuOf = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1e6;
  let best = { wall: t1, cpu: cpuOf(process.cpuUsage(c0)) };
  const reps = QUICK ? 1 : Math.max(1, Math.min(200, Math.ceil(0.05 / Math.max(t1, 1e-6))));
  if (ctx.adapter.isSoftware && t1 > 0.05 && QUICK) return best;
  for (let t = 0; t < trials; t++) {
    t0 = performance.now();
    c0 = process.cpuUsage();
    for (let i = 0; i < reps; i++) await call();
    await ctx.sync();
    const wall = (performance.now() - t0) / 1000 / reps, cpu = cpuOf(process.cpuUsage(c0)) / reps;
    if (wall < best.wall) best = { wall, cpu: Math.min(best.cpu, cpu) };
    else best.cpu = Math.min(best.cpu, cpu);
  }
  return best;
}

// The storage-load ceiling: each thread XORs one contiguous run of 16-byte words (4 in flight per
// iteration) and writes one word. Bench-only WGSL: it computes nothing useful.
const STREAM: KernelDef = {
  name: 'bench_stream',
  source: `
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let base = gid.x * params.per;
  var s = vec4<u32>(0u);
  for (var i = 0u; i + 4u <= params.per; i += 4u) {
    s ^= w[base + i] ^ w[base + i + 1u] ^ w[base + i + 2u] ^ w[base + i + 3u];
  }
  out[gid.x] = s.x ^ s.y ^ s.z ^ s.w;
}`,
  bindings: ['w', 'out'],
  params: [['per', 'u32']],
  workgroupSize: () => [8, 1, 1],
};

const ctx = await benchGpu();
const adapter = ctx.adapter.name;
console.log(`adapter: ${adapter} (f16 ${ctx.features.shaderF16}, subgroups ${ctx.features.subgroups}, ${ctx.softwareTuning ? 'software' : 'GPU'} tuning)${QUICK ? ' [quick]' : ''}, ${rounds} round(s)`);

/** The GEMV kernels worth comparing for a dtype; the first is the device's default. */
function gemvPaths(dtype: DType): MatmulPath[] {
  const quant = isQuantDType(dtype);
  const def: MatmulPath = quant ? (ctx.softwareTuning ? 'gemv-lanes' : 'gemv-gpu') : (ctx.softwareTuning && dtype !== 'f32' ? 'gemv-lanes' : 'gemv-split');
  const all: MatmulPath[] = quant ? ['gemv-lanes', 'gemv-gpu'] : ['gemv-split', 'gemv-lanes', 'gemv-gpu'];
  const list = [def, ...all.filter((p) => p !== def)];
  return wantPaths ? list.filter((p) => wantPaths.includes(p)) : list;
}

interface Item {
  key: string;
  fields: Record<string, unknown>;
  bytes: number;
  flops: number;
  run: () => Promise<void>;
  best: number;
  cpu: number;
  row: (s: number) => (string | number)[];
}

const maxM = Math.max(...Ms);
const xBuf = ctx.upload('bench:x', randomF32(Math.max(maxM, 8) * 8192, 1));
const yBuf = ctx.alloc.create('bench:y', Math.max(maxM, 256) * 32000 * 4, STORAGE_RW);
const weights: GpuTensor[] = [];
const items: Item[] = [];
const streamOut = ctx.alloc.create('bench:stream', 4 * 65536, STORAGE_RW);
let copyBest = 0;
let streamBest = Infinity, streamCpu = Infinity;
const streamBytes = 64 * 2 ** 20;
const streamBuf = ctx.alloc.create('bench:stream-src', streamBytes, STORAGE_RW);

for (const dtype of dtypes) {
  for (const [name, N, K] of SHAPES) {
    if (wantShapes && !wantShapes.includes(name)) continue;
    const w = makeWeight(ctx, `${name}.${dtype}`, N, K, dtype);
    weights.push(w);
    for (const M of Ms) {
      if (M > GEMV_MAX_M && ctx.softwareTuning && !FULL && name !== 'out_proj') {
        jsonLine('kernels-matmul', { kernel: 'matmul', shape: name, adapter, dtype, M, N, K, skipped: 'CPU emulation: M > 8 only for out_proj unless --full' });
        continue;
      }
      // Above one GEMV block of rows: the device's GEMM beside the device's GEMV (blocks of 8 x
      // rows), the default first (gemvMaxM: the crossover on CPU emulations).
      const gemm: MatmulPath = gemmPath ?? (ctx.softwareTuning ? 'gemm-blocked' : 'gemm-tiled');
      const paths: MatmulPath[] = M <= GEMV_MAX_M ? gemvPaths(dtype)
        : M <= gemvMaxM(ctx) ? [gemvPaths(dtype)[0], gemm] : [gemm, gemvPaths(dtype)[0]];
      paths.forEach((path, pi) => {
        const bytes = w.byteLength + 4 * M * (K + N);
        items.push({
          key: `${name}|${dtype}|${M}|${path}`, bytes, flops: 2 * M * N * K, best: Infinity, cpu: Infinity,
          fields: { kernel: 'matmul', shape: name, dtype, M, N, K, path, default: pi === 0, parts: w.parts.length },
          run: () => matmul(ctx, { x: xBuf, M, w, y: yBuf, gemv, path }),
          row: (s) => [name, dtype, M, `${path}${pi === 0 ? '*' : ''}`, s * 1e6, bytes / s / 1e9, (2 * M * N * K) / s / 1e9],
        });
      });
    }
  }
}

// Embedding gather (prefill T = 256 and decode T = 1 from a [32000, 2048] table) in bf16 and
// the formats a table gets (q8_0, q6_k), and argmax over one row of 32000 logits.
const ids = ctx.upload('bench:ids', new Uint32Array(256).map((_, i) => (i * 7919) % 32000));
for (const dtype of ['bf16', 'q8_0', 'q6_k'] as DType[]) {
  if (!dtypes.includes(dtype)) continue;
  const table0 = makeWeight(ctx, `embed.${dtype}`, 32000, 2048, dtype);
  weights.push(table0);
  for (const T of [1, 256]) {
    const bytes = T * (partBytes(dtype, 1, 2048) + 2048 * 4 + 4);
    items.push({
      key: `embedding|${dtype}|${T}`, bytes, flops: 0, best: Infinity, cpu: Infinity,
      fields: { kernel: 'embedding', dtype, T, H: 2048 },
      run: () => embedding(ctx, { ids, T, table: table0, out: yBuf }),
      row: (s) => ['embedding', dtype, T, '-', s * 1e6, bytes / s / 1e9, 0],
    });
  }
}
const argOut = ctx.alloc.create('bench:argmax', 4, STORAGE_RW);
items.push({
  key: 'argmax', bytes: 32000 * 4, flops: 0, best: Infinity, cpu: Infinity, fields: { kernel: 'argmax', M: 1, V: 32000 },
  run: () => argmax(ctx, { logits: yBuf, M: 1, V: 32000, out: argOut }),
  row: (s) => ['argmax', 'f32', 1, '-', s * 1e6, (32000 * 4) / s / 1e9, 0],
});

const stream = await ctx.kernel(STREAM, {});
const streamThreads = 4096;
for (let r = 0; r < rounds; r++) {
  copyBest = Math.max(copyBest, await measureCopyBandwidth(ctx));
  const st = await timeCall(ctx, async () => {
    ctx.dispatch(stream, { w: streamBuf, out: streamOut }, { per: streamBytes / 16 / streamThreads }, [streamThreads / 8]);
  });
  streamBest = Math.min(streamBest, st.wall); streamCpu = Math.min(streamCpu, st.cpu);
  for (const it of items) {
    const t = await timeCall(ctx, it.run);
    it.best = Math.min(it.best, t.wall); it.cpu = Math.min(it.cpu, t.cpu);
  }
  console.log(`round ${r + 1}/${rounds} done`);
}
const loadGBs = streamBytes / streamBest / 1e9;
jsonLine('kernels-matmul', { kernel: 'copy', adapter, GBs: +copyBest.toFixed(2) });
jsonLine('kernels-matmul', { kernel: 'load-ceiling', adapter, GBs: +loadGBs.toFixed(2), ofCopy: +(loadGBs / copyBest).toFixed(3) });
const loadCpuGBs = streamBytes / streamCpu / 1e9;
const rows: (string | number)[][] = [['copy', '-', '-', '-', 0, copyBest, 0, 1, copyBest / loadGBs, 0, '-'],
  ['load ceiling', '-', '-', '-', streamBest * 1e6, loadGBs, 0, loadGBs / copyBest, 1, streamCpu * 1e3, 1]];
for (const it of items) {
  const GBs = it.bytes / it.best / 1e9;
  jsonLine('kernels-matmul', {
    ...it.fields, adapter, us: +(it.best * 1e6).toFixed(1), GBs: +GBs.toFixed(3),
    ...(it.flops ? { GFLOPs: +(it.flops / it.best / 1e9).toFixed(2) } : {}),
    ofCopy: +(GBs / copyBest).toFixed(3), ofLoadCeiling: +(GBs / loadGBs).toFixed(3),
    cpuMs: +(it.cpu * 1e3).toFixed(2), cpuOfLoadCeiling: +((it.bytes / it.cpu / 1e9) / loadCpuGBs).toFixed(3),
  });
  rows.push([...it.row(it.best), GBs / copyBest, GBs / loadGBs, it.cpu * 1e3, (it.bytes / it.cpu / 1e9) / loadCpuGBs]);
}
table(`weight-reading kernels on ${adapter}: device copy ${copyBest.toFixed(1)} GB/s, storage-load ceiling ${loadGBs.toFixed(1)} GB/s (best of ${rounds} interleaved rounds; * = the device's default kernel)`,
  ['kernel', 'dtype', 'M', 'path', 'us/call', 'GB/s', 'GFLOP/s', 'of copy', 'of load ceiling', 'cpu ms/call', 'cpu: of load ceiling'], rows);
for (const w of weights) for (const p of w.parts) ctx.alloc.destroy(p.buffer);
for (const b of [xBuf, yBuf, ids, argOut, streamOut, streamBuf]) ctx.alloc.destroy(b);
await ctx.destroy();
