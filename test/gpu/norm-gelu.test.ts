// The exact-erf GELU gate (src/backends/webgpu/kernels/elementwise.ts) against the float64 reference, on random
// gates and on a dense sweep of the gate value across the whole range where erf is not 0/1.
// (Lives beside the norm tests: these are the pointwise pieces of the shared transformer block.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray } from '../helpers/gpu.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import { InputError } from '../../src/errors.ts';
import { geluGate } from '../../src/backends/webgpu/kernels/elementwise.ts';
import { geluGateRef, gelu64, erf64 } from '../reference/layers.ts';

/**
 * Tolerance: |got - ref| <= 2.5e-7 * |g * u| + 3e-7 * |ref|.
 * gelu(g) = g * Phi(g) with Phi = (1 + erf(g/sqrt2)) / 2: erf is within ~1e-7 absolute, 1 + erf is
 * rounded to f32 (half ulp of 2 = 1.2e-7), and g/sqrt2 is rounded (<= 1.4e-8 in Phi), so Phi itself
 * carries ~1.2e-7 absolute: times |g| (and |u|), the first term. The two products add a few f32
 * roundings of the result: the second term. The tanh approximation misses by up to 3e-4 |g|.
 */
function check(got: Float32Array, gu: Float32Array, T: number, F: number, what: string): number {
  const ref = geluGateRef(gu, T, F);
  let worst = 0, at = -1, maxPhiErr = 0;
  for (let t = 0; t < T; t++) {
    for (let f = 0; f < F; f++) {
      const i = t * F + f, g = gu[t * 2 * F + f], u = gu[t * 2 * F + F + f];
      const d = Math.abs(got[i] - ref[i]);
      const e = d / (2.5e-7 * Math.abs(g * u) + 3e-7 * Math.abs(ref[i]) + 1e-30);
      if (!(e <= worst)) { worst = e; at = i; }
      if (g !== 0 && u !== 0) maxPhiErr = Math.max(maxPhiErr, d / Math.abs(g * u));
    }
  }
  assert.ok(worst <= 1, `${what}: element ${at} got ${got[at]} want ${ref[at]} (${worst.toFixed(2)}x tolerance)`);
  return maxPhiErr;
}

test('reference erf64 matches known values (guards the reference itself)', () => {
  // Values from tables of erf (Abramowitz & Stegun 7.1, 15 digits).
  const table: [number, number][] = [[0.5, 0.520499877813047], [1, 0.842700792949715], [2, 0.995322265018953],
    [3, 0.999977909503001], [-1.5, -0.966105146475311]];
  for (const [x, v] of table) assert.ok(Math.abs(erf64(x) - v) < 1e-14, `erf(${x}) = ${erf64(x)}`);
  // 1 - Phi(-6) = 9.865876450377e-10 relative check of the erfc branch through gelu.
  assert.ok(Math.abs(gelu64(-6) / -6 - 9.865876450376946e-10) < 1e-22);
});

for (const [T, F, scale] of [[1, 1, 1], [5, 333, 3], [37, 130, 1], [2, 8192, 2]] as const) {
  test(`geluGate T=${T} F=${F} gate scale ${scale}`, async () => {
    const ctx = await testGpu();
    const gu = randomArray(T * 2 * F, 41 + T * F, scale);
    const bgu = ctx.upload('t:gu', gu);
    const bo = ctx.alloc.create('t:out', T * F * 4, STORAGE_RW);
    await geluGate(ctx, { gu: bgu, out: bo, T, F });
    check(await ctx.readF32(bo, 0, T * F), gu, T, F, 'geluGate');
    ctx.alloc.destroy(bgu); ctx.alloc.destroy(bo);
  });
}

test('geluGate: dense sweep of the gate over [-14, 14] with up = 1 (both erf branches, both tails)', async () => {
  const ctx = await testGpu();
  const F = 28001, T = 1;
  const gu = new Float32Array(2 * F);
  for (let f = 0; f < F; f++) { gu[f] = -14 + (28 * f) / (F - 1); gu[F + f] = 1; }
  const bgu = ctx.upload('t:gu', gu);
  const bo = ctx.alloc.create('t:out', F * 4, STORAGE_RW);
  await geluGate(ctx, { gu: bgu, out: bo, T, F });
  const got = await ctx.readF32(bo, 0, F);
  const phiErr = check(got, gu, T, F, 'gelu sweep');
  // gelu(-14) = -14 * Phi(-14) ~ -1e-43: the far negative tail is 0 or a denormal, never NaN.
  assert.ok(Number.isFinite(got[0]) && Math.abs(got[0]) < 1e-30, `gelu(-14) = ${got[0]}`);
  assert.is(got[F - 1], Math.fround(14), 'gelu(14) = 14 exactly in f32');
  assert.ok(phiErr < 2.5e-7, `max |Phi error| ${phiErr}`);
  ctx.alloc.destroy(bgu); ctx.alloc.destroy(bo);
});

test('geluGate rejects aliasing and short buffers with InputError', async () => {
  const ctx = await testGpu();
  const b = ctx.alloc.create('t:b', 4 * 10, STORAGE_RW);
  try {
    for (const args of [{ gu: b, out: b, T: 1, F: 5 }, { gu: b, out: ctx.alloc.create('t:o', 4, STORAGE_RW), T: 1, F: 5 }]) {
      let err: unknown;
      try { await geluGate(ctx, args); } catch (e) { err = e; }
      assert.instance(err, InputError);
      if (args.out !== b) ctx.alloc.destroy(args.out);
    }
  } finally {
    ctx.alloc.destroy(b);
  }
});

test.run();
