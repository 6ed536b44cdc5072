// The matmul's input transforms (MatmulOp.input): y = f(x) · Wᵀ with f the RMSNorm before
// in_proj, the gated group norm before out_proj, or the GELU gate before the MLP's down
// projection. Checked against a float64 reference of f and the product on the exact (rounded or
// dequantized) weights: the fused GEMV prologue (shaders/gemv_q.wgsl XPRO / XGATE / XGELU, the
// real-GPU decode path) on every weight family with odd N, split parts, y offsets and
// accumulation, and the backend op on this lane's tuning (fused with GPU tuning, the standalone op
// then the matmul on software tuning and for prefill), with its dispatch count.
//
// Tolerance: each x̂_k carries a bound e_k (below) on top of the matmul's own summation bound
// (test/helpers/matmul-check.ts), so tol = (K + 2) u Σ|x̂_k w_k| + Σ |w_k| e_k, u = 2^-24.
//   norm:  (of x, or of x + add: one more rounding, inside the 6) the sum of squares of n values is within n·u relative; rstd = 1/sqrt(mean + eps) halves
//          that and adds a few roundings; (x · rstd) · w two more: e_k = (n/2 + 6) u |x̂_k|.
//   gated: the same over a group of n, plus silu(z) (exp, division: allow 16 u): (n/2 + 24) u |x̂_k|.
//   gelu:  the standalone kernel's bound (test/gpu/norm-gelu.test.ts): 2.5e-7 |g·up| + 3e-7 |x̂_k|.
// A wrong group, a missing weight or a stale rstd moves outputs by O(Σ|x̂ w|), far above this.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, testBackend, randomArray } from '../helpers/gpu.ts';
import { makeTensor } from '../helpers/tensors.ts';
import { makeQuantTensor } from '../helpers/quant-tensors.ts';
import { gelu64 } from '../reference/layers.ts';
import { isQuantDType } from '../../src/backends/tensor.ts';
import type { DType } from '../../src/backends/webgpu/tensor.ts';
import type { GpuContext } from '../../src/backends/webgpu/context.ts';
import { matmul } from '../../src/backends/webgpu/kernels/matmul.ts';
import type { GemvPrologue } from '../../src/backends/webgpu/kernels/matmul-quant.ts';
import type { MatmulInput } from '../../src/backends/backend.ts';
import { InputError } from '../../src/errors.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';

const U = 2 ** -24;

type Kind = 'norm' | 'gated' | 'gelu';
interface Case { kind: Kind; add?: boolean; dtype: DType; N: number; K: number; groups?: number; rowsPerPart?: number; yOffset?: number; accumulate?: boolean; zOffset?: number; xScale?: number }

const silu64 = (z: number) => z / (1 + Math.exp(-z));

/** f(x) in float64 and the per-element bound e_k of the f32 kernels. */
function transform64(c: Case, x: Float32Array, nw: Float32Array, z: Float32Array, a: Float32Array, eps: number): { xh: Float64Array; e: Float64Array } {
  const K = c.K;
  const xh = new Float64Array(K), e = new Float64Array(K);
  if (c.kind === 'gelu') {
    for (let k = 0; k < K; k++) {
      const g = x[k], up = x[K + k];
      xh[k] = gelu64(g) * up;
      e[k] = 2.5e-7 * Math.abs(g * up) + 3e-7 * Math.abs(xh[k]);
    }
    return { xh, e };
  }
  const groups = c.kind === 'gated' ? c.groups ?? 1 : 1, n = K / groups;
  const raw = new Float64Array(K);
  for (let k = 0; k < K; k++) raw[k] = c.kind === 'gated' ? x[k] * silu64(z[(c.zOffset ?? 0) + k]) : c.add ? x[k] + a[k] : x[k];
  for (let g = 0; g < groups; g++) {
    let ss = 0;
    for (let k = g * n; k < (g + 1) * n; k++) ss += raw[k] * raw[k];
    const rstd = 1 / Math.sqrt(ss / n + eps);
    for (let k = g * n; k < (g + 1) * n; k++) {
      xh[k] = raw[k] * rstd * nw[k];
      e[k] = (n / 2 + (c.kind === 'gated' ? 24 : 6)) * U * Math.abs(xh[k]);
    }
  }
  return { xh, e };
}

function weight(ctx: GpuContext, c: Case, seed: number) {
  const data = randomArray(c.N * c.K, seed, 1 / Math.sqrt(c.K));
  return isQuantDType(c.dtype)
    ? makeQuantTensor(ctx, 'w', [c.N, c.K], c.dtype, { data, rowsPerPart: c.rowsPerPart })
    : makeTensor(ctx, 'w', data, [c.N, c.K], c.dtype, { rowsPerPart: c.rowsPerPart });
}

function check(c: Case, got: Float32Array, y0: Float32Array, xh: Float64Array, e: Float64Array, wv: ArrayLike<number>, what: string): void {
  const { N, K } = c, yOff = c.yOffset ?? 0;
  let worst = 0, at = '';
  for (let n = 0; n < N; n++) {
    let s = 0, mag = 0, drift = 0;
    for (let k = 0; k < K; k++) {
      const w = wv[n * K + k];
      s += xh[k] * w; mag += Math.abs(xh[k] * w); drift += Math.abs(w) * e[k];
    }
    if (c.accumulate) { s += y0[yOff + n]; mag += Math.abs(y0[yOff + n]); }
    const tol = (K + 2) * U * mag + drift + 1e-30;
    const r = Math.abs(got[yOff + n] - s) / tol;
    if (!(r <= worst)) { worst = r; at = `n=${n} got ${got[yOff + n]} want ${s} tol ${tol}`; }
  }
  if (process.env.MSL_TEST_ERRORS) console.log(`${what}: worst error ${worst.toFixed(4)} x tolerance (${at})`);
  assert.ok(worst <= 1, `${what}: error ${worst.toFixed(2)} x tolerance at ${at}`);
  for (let i = 0; i < got.length; i++) {
    if ((i < yOff || i >= yOff + N) && got[i] !== y0[i]) assert.unreachable(`${what}: wrote y[${i}] outside its columns`);
  }
}

interface Inputs { x: Float32Array; nw: Float32Array; z: Float32Array; a: Float32Array; y0: Float32Array; eps: number }

function inputs(c: Case, seed: number): Inputs {
  const xw = c.kind === 'gelu' ? 2 * c.K : c.K;
  return {
    x: randomArray(xw, seed, c.xScale ?? 1),
    nw: randomArray(c.K, seed + 1, 0.5).map((v) => 1 + v),
    z: randomArray((c.zOffset ?? 0) + c.K + 3, seed + 2, 2),
    a: randomArray(c.K, seed + 4, 0.7),
    y0: randomArray((c.yOffset ?? 0) + c.N + 5, seed + 3),
    eps: 1e-5,
  };
}

const label = (c: Case) => `${c.kind}${c.add ? '+add' : ''} ${c.dtype} N=${c.N} K=${c.K}` + (c.groups ? ` groups=${c.groups}` : '')
  + (c.rowsPerPart ? ` rowsPerPart=${c.rowsPerPart}` : '') + (c.yOffset ? ` yOffset=${c.yOffset}` : '')
  + (c.accumulate ? ' accumulate' : '') + (c.zOffset ? ` zOffset=${c.zOffset}` : '') + (c.xScale ? ` xScale=${c.xScale}` : '');

// The fused prologue (kernel level: the launcher takes it whatever the device's tuning).
const FUSED: Case[] = [
  { kind: 'norm', dtype: 'bf16', N: 37, K: 96 },
  { kind: 'norm', dtype: 'q4_k', N: 45, K: 512, rowsPerPart: 20, accumulate: true },
  { kind: 'norm', dtype: 'q8_0', N: 70, K: 160, yOffset: 7, xScale: 300 },
  { kind: 'norm', add: true, dtype: 'bf16', N: 35, K: 224, accumulate: true },
  { kind: 'gated', dtype: 'q8_0', N: 33, K: 256, groups: 8, zOffset: 13, accumulate: true },
  { kind: 'gated', dtype: 'f16', N: 29, K: 192, groups: 1 },
  { kind: 'gated', dtype: 'q6_k', N: 41, K: 256, groups: 2, yOffset: 3 },
  { kind: 'gelu', dtype: 'f32', N: 31, K: 64 },
  { kind: 'gelu', dtype: 'q4_k', N: 43, K: 256, rowsPerPart: 16, accumulate: true },
];

let seed = 100;
for (const c of FUSED) {
  test(`fused prologue: ${label(c)}`, async () => {
    const ctx = await testGpu();
    const inp = inputs(c, seed += 10);
    const wt = weight(ctx, c, seed + 5);
    const bx = ctx.upload('t:x', inp.x), by = ctx.upload('t:y', inp.y0);
    const bnw = ctx.upload('t:nw', inp.nw), bz = ctx.upload('t:z', inp.z), ba = ctx.upload('t:a', inp.a);
    try {
      const prologue: GemvPrologue = c.kind === 'norm' ? (c.add ? { kind: 'norm-add', weight: bnw, eps: inp.eps, add: ba } : { kind: 'norm', weight: bnw, eps: inp.eps })
        : c.kind === 'gated' ? { kind: 'gated', weight: bnw, eps: inp.eps, z: { buffer: bz, offset: c.zOffset ?? 0 }, groupSize: c.K / (c.groups ?? 1) }
        : { kind: 'gelu' };
      await matmul(ctx, { x: bx, M: 1, w: wt.tensor, y: by, yOffset: c.yOffset, accumulate: c.accumulate, prologue });
      const { xh, e } = transform64(c, inp.x, inp.nw, inp.z, inp.a, inp.eps);
      check(c, await ctx.readF32(by), inp.y0, xh, e, wt.values, label(c));
    } finally {
      for (const b of [bx, by, bnw, bz, ba]) ctx.alloc.destroy(b);
      wt.dispose();
    }
  });
}

// The backend op: fused on GPU tuning, two dispatches on software tuning, and always unfused for
// prefill rows (M > 1), each against the same reference.
const OP_CASES: (Case & { M: number })[] = [
  { kind: 'norm', dtype: 'q8_0', N: 53, K: 128, M: 1 },
  { kind: 'gated', dtype: 'bf16', N: 35, K: 128, groups: 4, M: 1, accumulate: true },
  { kind: 'gelu', dtype: 'q4_k', N: 19, K: 256, M: 1 },
  { kind: 'norm', add: true, dtype: 'q4_k', N: 21, K: 256, M: 1 },
  { kind: 'norm', dtype: 'q8_0', N: 53, K: 128, M: 3 },
  { kind: 'norm', add: true, dtype: 'bf16', N: 17, K: 64, M: 2 },
];
for (const c of OP_CASES) {
  test(`backend matmul input: ${label(c)} M=${c.M}`, async () => {
    const be = await testBackend();
    const ctx = be.ctx;
    const { M, K, N } = c;
    const rows = Array.from({ length: M }, (_, m) => inputs(c, 500 + 10 * m + K));
    const cat = (f: (i: Inputs) => Float32Array) => { const parts = rows.map(f); const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0)); let o = 0; for (const p of parts) { out.set(p, o); o += p.length; } return out; };
    const xw = c.kind === 'gelu' ? 2 * K : K;
    const wt = weight(ctx, c, 900 + K);
    // z rows of K at z.rowStride K; the norm weight shared by all rows (row 0's).
    const zAll = cat((i) => i.z.subarray(0, K)), aAll = cat((i) => i.a);
    const y0 = cat((i) => i.y0.subarray(0, N));
    const bx = ctx.upload('t:x', cat((i) => i.x)), by = ctx.upload('t:y', y0), bnw = ctx.upload('t:nw', rows[0].nw), bz = ctx.upload('t:z', zAll);
    const ba = ctx.upload('t:a', aAll);
    const scratch = ctx.alloc.create('t:scratch', 4 * M * K, STORAGE_RW);
    try {
      const input: MatmulInput = c.kind === 'norm' ? { kind: 'rmsNorm', weight: bnw, eps: 1e-5, scratch, add: c.add ? ba : undefined }
        : c.kind === 'gated' ? { kind: 'gatedRmsNorm', weight: bnw, eps: 1e-5, z: { buffer: bz, offset: 0, rowStride: M > 1 ? K : 0 }, groupSize: K / (c.groups ?? 1), scratch }
        : { kind: 'geluGate', scratch };
      const d0 = be.counters().dispatches;
      await be.matmul({ x: bx, M, w: wt.tensor, y: by, accumulate: c.accumulate, input });
      const dispatches = be.counters().dispatches - d0;
      const fused = M === 1 && !ctx.softwareTuning;
      assert.is(dispatches, fused ? 1 : 2, `dispatches (${fused ? 'fused' : 'standalone op + matmul'})`);
      const got = await ctx.readF32(by);
      for (let m = 0; m < M; m++) {
        const r = rows[m];
        const { xh, e } = transform64({ ...c, zOffset: 0 }, r.x.subarray(0, xw), rows[0].nw, zAll.subarray(m * K), aAll.subarray(m * K), 1e-5);
        check({ ...c, yOffset: 0 }, got.subarray(m * N, (m + 1) * N), y0.subarray(m * N, (m + 1) * N), xh, e, wt.values, `${label(c)} row ${m}`);
      }
    } finally {
      for (const b of [bx, by, bnw, bz, ba, scratch]) ctx.alloc.destroy(b);
      wt.dispose();
    }
  });
}

test('backend matmul input: x with an offset or a row stride is a typed error, nothing recorded', async () => {
  const be = await testBackend();
  const ctx = be.ctx;
  const c: Case = { kind: 'norm', dtype: 'q8_0', N: 8, K: 64 };
  const wt = weight(ctx, c, 7);
  const bx = ctx.upload('t:x', randomArray(2 * 64, 3)), by = ctx.upload('t:y', new Float32Array(8));
  const bnw = ctx.upload('t:nw', new Float32Array(64).fill(1));
  const scratch = ctx.alloc.create('t:scratch', 4 * 64, STORAGE_RW);
  try {
    const d0 = be.counters().dispatches;
    for (const extra of [{ xOffset: 64 }, { xRowStride: 64 }]) {
      try {
        await be.matmul({ x: bx, M: 1, w: wt.tensor, y: by, input: { kind: 'rmsNorm', weight: bnw, eps: 1e-5, scratch }, ...extra });
        assert.unreachable('accepted');
      } catch (err) {
        assert.instance(err, InputError);
      }
    }
    assert.is(be.counters().dispatches, d0);
  } finally {
    for (const b of [bx, by, bnw, scratch]) ctx.alloc.destroy(b);
    wt.dispose();
  }
});

test.run();
