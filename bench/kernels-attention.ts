// The shared transformer block's small kernels and attention at Zamba2-1.2B shapes (docs/model.md
// §Real configurations: H 2048, 32 heads x hd 128, MLP F 8192): ms per call, GB/s of the bytes a
// call must move at least, and that as a fraction of a device copy's bandwidth measured in the
// same run (the "roofline" figure). One JSON line per result on stdout.
//
//   node --import ./scripts/register.mjs bench/kernels-attention.ts [--reps N] [--quick]
//
// Time is host wall time from recording the call to the queue finishing it (one call per submit,
// the best of N after a warm-up call that compiles the kernel), so on fast GPUs small kernels
// measure submit latency, not the kernel. Cases: RMSNorm of the 2H = 4096 concat input and of H,
// the mixer's gated norm (D 4096, one group), the GELU gate (F 8192), RoPE on q, attention prefill
// (T 256 from position 0, and a 64-token continuation after 960) and decode (T 1) at contexts of
// 1k and 4k with the default split-K kernel and, for comparison, the flash kernel at 1k.
// Runs in well under a minute on lavapipe.
import { STORAGE_RW } from '../src/backends/webgpu/flags.ts';
import { rmsNorm, gatedRmsNorm } from '../src/backends/webgpu/kernels/norm.ts';
import { geluGate } from '../src/backends/webgpu/kernels/elementwise.ts';
import { rope } from '../src/backends/webgpu/kernels/rope.ts';
import { attention, attentionScratchBytes, type AttentionAlgorithm } from '../src/backends/webgpu/kernels/attention.ts';
import { benchGpu, jsonLine, QUICK } from './common.ts';

const H = 2048, HEADS = 32, KV_HEADS = 32, HD = 128, F = 8192, DI = 4096;
const repsArg = process.argv.indexOf('--reps');
const REPS = repsArg >= 0 ? Number(process.argv[repsArg + 1]) : QUICK ? 1 : 3;

function fill(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = scale * (s / 2147483648 - 1);
  }
  return out;
}

const ctx = await benchGpu();

/** Best-of-`reps` wall times; `warm` (default: run itself) compiles the kernel first. */
async function time(run: () => Promise<void>, warm: () => Promise<void> = run, reps = REPS): Promise<number[]> {
  await warm();
  await ctx.sync();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await run();
    await ctx.sync();
    times.push(performance.now() - t0);
  }
  return times;
}

// Device copy bandwidth: read + write of a 64 MiB buffer.
const copyBytes = 64 * 2 ** 20;
const src = ctx.alloc.create('bench:copy_src', copyBytes, STORAGE_RW);
const dst = ctx.alloc.create('bench:copy_dst', copyBytes, STORAGE_RW);
const copyTimes = await time(async () => { ctx.copy(src, 0, dst, 0, copyBytes); });
const copyGBs = (2 * copyBytes) / (Math.min(...copyTimes) * 1e6);
jsonLine('device_copy', { adapter: ctx.adapter.name, bytes: copyBytes, ms: +Math.min(...copyTimes).toFixed(3), GBs: +copyGBs.toFixed(2) });
ctx.alloc.destroy(src); ctx.alloc.destroy(dst);

function report(kernel: string, shape: Record<string, unknown>, times: number[], bytes: number, flops?: number): void {
  const ms = Math.min(...times);
  const GBs = bytes / (ms * 1e6);
  jsonLine(`kernel_${kernel}`, {
    adapter: ctx.adapter.name, ...shape, reps: times.length, ms: +ms.toFixed(3), msAll: times.map((t) => +t.toFixed(3)),
    bytes, GBs: +GBs.toFixed(2), ofCopy: +(GBs / copyGBs).toFixed(3),
    ...(flops !== undefined ? { GFLOPs: +(flops / (ms * 1e6)).toFixed(2) } : {}),
  });
}

const Tp = 256;
{ // norms and the GELU gate
  const x = ctx.upload('bench:x', fill(Tp * H, 1)), orig = ctx.upload('bench:orig', fill(Tp * H, 2));
  const w2 = ctx.upload('bench:w2', fill(2 * H, 3)), out2 = ctx.alloc.create('bench:out2', Tp * 2 * H * 4, STORAGE_RW);
  for (const T of [Tp, 1]) {
    const t1 = await time(() => rmsNorm(ctx, { x, x2: orig, weight: w2, out: out2, T, H, eps: 1e-5 }));
    report('rmsnorm_concat', { T, H, W: 2 * H }, t1, (2 * T * 2 * H + 2 * H) * 4);
    const t2 = await time(() => rmsNorm(ctx, { x, weight: w2, out: out2, T, H, eps: 1e-5 }));
    report('rmsnorm', { T, H }, t2, (2 * T * H + H) * 4);
  }
  for (const b of [x, orig, w2, out2]) ctx.alloc.destroy(b);

  const y = ctx.upload('bench:y', fill(Tp * DI, 4)), zx = ctx.upload('bench:zx', fill(Tp * (2 * DI + 2 * 128 + 64), 5));
  const wd = ctx.upload('bench:wd', fill(DI, 6)), od = ctx.alloc.create('bench:od', Tp * DI * 4, STORAGE_RW);
  for (const T of [Tp, 1]) {
    const t = await time(() => gatedRmsNorm(ctx, { y, z: { buffer: zx, offset: 0, rowStride: 2 * DI + 2 * 128 + 64 }, weight: wd, out: od, T, D: DI, groupSize: DI, eps: 1e-5 }));
    report('gated_rmsnorm', { T, D: DI, groupSize: DI }, t, (3 * T * DI + DI) * 4);
  }
  for (const b of [y, zx, wd, od]) ctx.alloc.destroy(b);

  const gu = ctx.upload('bench:gu', fill(Tp * 2 * F, 7, 3)), og = ctx.alloc.create('bench:og', Tp * F * 4, STORAGE_RW);
  for (const T of [Tp, 1]) {
    const t = await time(() => geluGate(ctx, { gu, out: og, T, F }));
    report('gelu_gate', { T, F }, t, 3 * T * F * 4);
  }
  ctx.alloc.destroy(gu); ctx.alloc.destroy(og);
}

{ // RoPE and attention
  const maxCtx = 4096;
  const kvw = KV_HEADS * HD;
  const q = ctx.upload('bench:q', fill(Tp * HEADS * HD, 8));
  const k = ctx.upload('kv:k', fill(maxCtx * kvw, 9)), v = ctx.upload('kv:v', fill(maxCtx * kvw, 10));
  const out = ctx.alloc.create('bench:attn_out', Tp * HEADS * HD * 4, STORAGE_RW);
  for (const T of [Tp, 1]) {
    const t = await time(() => rope(ctx, { x: q, rowStride: HEADS * HD, T, nHeads: HEADS, headDim: HD, pos0: 100, theta: 10000 }));
    report('rope', { T, nHeads: HEADS, headDim: HD }, t, 2 * T * HEADS * HD * 4);
  }
  const scale = 1 / Math.sqrt(HD / 2);
  const cases: { T: number; pos0: number; algorithm?: AttentionAlgorithm }[] = [
    { T: Tp, pos0: 0 }, { T: 64, pos0: 960 },
    { T: 1, pos0: 1023 }, { T: 1, pos0: 4095 },
    { T: 1, pos0: 1023, algorithm: 'flash' },
  ];
  for (const c of cases) {
    const args = { q, qRowStride: HEADS * HD, kCache: k, vCache: v, out, T: c.T, pos0: c.pos0, nHeads: HEADS, nKvHeads: KV_HEADS, headDim: HD, scale, algorithm: c.algorithm };
    // Warm-up on a short context compiles the same variant; long cases run once (a minute budget).
    const warm = () => attention(ctx, { ...args, pos0: 0, T: c.T === 1 ? 1 : 16, algorithm: c.algorithm ?? (c.T < 16 ? 'splitk' : 'flash') });
    const t = await time(() => attention(ctx, args), warm, c.T > 1 || c.algorithm === 'flash' ? 1 : REPS);
    const keys = c.pos0 + c.T;
    let pairs = 0; // (query, key) pairs the causal mask keeps
    for (let i = 0; i < c.T; i++) pairs += c.pos0 + i + 1;
    // Least bytes: K and V rows once, q in, out written.
    const bytes = (2 * keys * kvw + 2 * c.T * HEADS * HD) * 4;
    report('attention', {
      T: c.T, pos0: c.pos0, context: keys, nHeads: HEADS, nKvHeads: KV_HEADS, headDim: HD,
      algorithm: c.algorithm ?? (c.T < 16 ? 'splitk' : 'flash'), scratchBytes: attentionScratchBytes(args),
    }, t, bytes, 4 * HD * HEADS * pairs);
  }
  for (const b of [q, k, v, out]) ctx.alloc.destroy(b);
}
ctx.alloc.trimPool();
await ctx.destroy();
