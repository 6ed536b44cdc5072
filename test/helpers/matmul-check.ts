// Shared checker for the matmul tests (test/gpu/matmul*.test.ts): runs one case on the GPU and
// compares every output against a float64 CPU reference, and checks that nothing outside the
// output rows/columns was written.
//
// Tolerance for matmul: each output is a sum of K products of values that are exact in f32
// (weights are compared against their rounded f16/bf16 values, or for block-quantized weights
// against their exact dequantized values, so storage rounding and quantization are not errors). Any f32 summation order is within (K + 1) * 2^-24 * sum_k |x_k w_k| of the exact sum
// (standard first-order bound), plus 2^-24 * |y0| for the accumulated term; we allow
// tol = (K + 2) * 2^-24 * (sum_k |x_k w_k| + |y0|). A dropped, doubled or misplaced term changes
// a result by about |x_k w_k|, i.e. ~1/K of that magnitude on average and far more at the worst
// entry, which is well above the bound for the K used here, so indexing bugs cannot hide in it.
import * as assert from 'uvu/assert';
import { randomArray } from './gpu.ts';
import { makeTensor } from './tensors.ts';
import { makeQuantTensor, randomBlocks } from './quant-tensors.ts';
import { isQuantDType } from '../../src/backends/tensor.ts';
import { FORMAT_INFO } from '../../src/quant/formats.ts';
import type { GpuContext } from '../../src/backends/webgpu/context.ts';
import type { DType } from '../../src/backends/webgpu/tensor.ts';
import { matmul, type GemvTuning, type MatmulPath } from '../../src/backends/webgpu/kernels/matmul.ts';

const U = 2 ** -24;

export interface MatmulCase {
  dtype: DType; M: number; N: number; K: number;
  xOffset?: number; xRowStride?: number; yOffset?: number; yRowStride?: number;
  accumulate?: boolean; rowsPerPart?: number; forcePacked?: boolean; path?: MatmulPath; gemv?: GemvTuning;
  /** Quantized weights from random raw blocks with extreme and zero scales (default: quantized normal data). */
  raw?: boolean;
}

export function label(c: MatmulCase): string {
  const extra = Object.entries(c).filter(([k]) => !['dtype', 'M', 'N', 'K'].includes(k))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? Object.values(v).join('/') : v}`);
  return `matmul ${c.dtype} M=${c.M} N=${c.N} K=${c.K}${extra.length ? ' ' + extra.join(' ') : ''}`;
}

let seed = 1;

export const DTYPES: DType[] = ['f32', 'f16', 'bf16'];

/** Runs one case; fails the current uvu test on any error above tolerance or stray write. */
export async function runMatmulCase(ctx: GpuContext, c: MatmulCase): Promise<void> {
  const { M, N, K } = c;
  const xOffset = c.xOffset ?? 0, xs = c.xRowStride ?? K, yOffset = c.yOffset ?? 0, ys = c.yRowStride ?? N;
  const xLen = xOffset + (M - 1) * xs + K + 3; // a few spare elements past the last row
  const yLen = yOffset + (M - 1) * ys + N + 5;
  const x = randomArray(xLen, seed++);
  const y0 = randomArray(yLen, seed++); // guard values everywhere; the kernel must keep what it does not own
  const wData = randomArray(N * K, seed++, 1 / Math.sqrt(K));
  const wt = !isQuantDType(c.dtype) ? makeTensor(ctx, 'w', wData, [N, K], c.dtype, { rowsPerPart: c.rowsPerPart })
    : makeQuantTensor(ctx, 'w', [N, K], c.dtype, c.raw
      ? { blocks: randomBlocks(c.dtype, (N * K) / FORMAT_INFO[c.dtype].qk, { scale: 1 / (16 * Math.sqrt(K)), extremeFraction: 0.1, zeroFraction: 0.05, seed: seed++ }), rowsPerPart: c.rowsPerPart }
      : { data: wData, rowsPerPart: c.rowsPerPart });
  if (c.rowsPerPart !== undefined && c.rowsPerPart < N) assert.ok(wt.tensor.parts.length > 1, 'tensor was split');
  const xb = ctx.upload('scratch:x', x);
  const yb = ctx.upload('scratch:y', y0);
  try {
    await matmul(ctx, {
      x: xb, xOffset: c.xOffset, xRowStride: c.xRowStride, M, w: wt.tensor, y: yb,
      yOffset: c.yOffset, yRowStride: c.yRowStride, accumulate: c.accumulate, forcePacked: c.forcePacked, path: c.path, gemv: c.gemv,
    });
    const got = await ctx.readF32(yb);
    const wv = wt.values;
    const owned = new Uint8Array(yLen);
    let worst = 0, worstAt = '';
    for (let m = 0; m < M; m++) {
      const xr = xOffset + m * xs;
      for (let n = 0; n < N; n++) {
        let s = 0, mag = 0;
        const wr = n * K;
        for (let k = 0; k < K; k++) {
          const p = x[xr + k] * wv[wr + k];
          s += p; mag += Math.abs(p);
        }
        const yi = yOffset + m * ys + n;
        owned[yi] = 1;
        if (c.accumulate) { s += y0[yi]; mag += Math.abs(y0[yi]); }
        const tol = (K + 2) * U * mag + 1e-30;
        const r = Math.abs(got[yi] - s) / tol;
        if (!(r <= worst)) { worst = r; worstAt = `m=${m} n=${n} got ${got[yi]} want ${s} tol ${tol}`; }
      }
    }
    if (process.env.MSL_TEST_ERRORS) console.log(`${label(c)}: worst error ${worst.toFixed(4)} x tolerance (${worstAt})`);
    assert.ok(worst <= 1, `${label(c)}: error ${worst.toFixed(2)} x tolerance at ${worstAt}`);
    for (let i = 0; i < yLen; i++) {
      if (!owned[i] && got[i] !== y0[i]) assert.unreachable(`${label(c)}: wrote y[${i}] outside its rows/columns`);
    }
  } finally {
    ctx.alloc.destroy(xb); ctx.alloc.destroy(yb); wt.dispose();
  }
}


/** Registers one uvu test per case (with per-case timings when MSL_TEST_TIMES is set). */
export function matmulTests(test: (name: string, fn: () => Promise<void>) => void, getCtx: () => Promise<GpuContext>, cases: MatmulCase[]): void {
  for (const c of cases) {
    test(label(c), async () => {
      const t0 = performance.now();
      await runMatmulCase(await getCtx(), c);
      if (process.env.MSL_TEST_TIMES) console.log(`${label(c)}: ${(performance.now() - t0).toFixed(0)} ms`);
    });
  }
}
