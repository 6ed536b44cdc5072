// RMSNorm (plain and the Zamba2 concat form) and the gated grouped RMSNorm against the float64
// references in test/reference/layers.ts, on random inputs with odd widths and row counts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray } from '../helpers/gpu.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import { InputError } from '../../src/errors.ts';
import { rmsNorm, gatedRmsNorm } from '../../src/backends/webgpu/kernels/norm.ts';
import { rmsNormRef, gatedRmsNormRef } from '../reference/layers.ts';

/**
 * Elementwise |got - ref| <= rel * |ref| + abs. Each output is x * inv * w: two f32 roundings plus
 * the error of inv (a sum of squares in f32 over <= 8192 terms, reduced as short fma chains and a
 * tree, then inverseSqrt with <= 2 ulp), so a few 1e-7 relative per element; 2e-6 leaves room.
 * The gated norm adds silu(z) through exp (WGSL allows 3 + 2|x| ulp), hence 1e-5 there.
 */
function expectClose(got: Float32Array, ref: Float64Array, rel: number, abs: number, what: string): void {
  assert.is(got.length, ref.length);
  let worst = 0, at = -1;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(got[i] - ref[i]) / (rel * Math.abs(ref[i]) + abs);
    if (!(e <= worst)) { worst = e; at = i; }
  }
  assert.ok(worst <= 1, `${what}: element ${at} got ${got[at]} want ${ref[at]} (error ${worst.toFixed(2)}x tolerance)`);
}

/** Awaits `f` and checks it rejects with an error matching `want` (a class or a message pattern). */
async function rejects(f: () => Promise<unknown>, want: RegExp | (new (...a: never[]) => Error)): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (want instanceof RegExp) assert.match((e as Error).message, want);
    else assert.instance(e, want);
    assert.instance(e, InputError);
    return;
  }
  assert.unreachable('expected a rejection');
}

function weights(n: number, seed: number): Float32Array {
  const w = randomArray(n, seed, 0.2);
  for (let i = 0; i < n; i++) w[i] += 1;
  return w;
}

const plainCases: [number, number, boolean, number][] = [
  // T, H, concat x2, input scale
  [1, 50, false, 1],
  [5, 333, false, 1],
  [5, 333, true, 1],
  [37, 257, true, 3],
  [3, 2048, true, 1], // Zamba2-1.2B shared block input: width 2H = 4096
  [130, 64, false, 1],
  [4, 1000, false, 1e-3], // mean(x^2) ~ 1e-6 is comparable to eps = 1e-5: eps must be added inside the sqrt
];

for (const [T, H, concat, scale] of plainCases) {
  test(`rmsNorm T=${T} H=${H}${concat ? ' concat(x, x2) W=2H' : ''} scale=${scale}`, async () => {
    const ctx = await testGpu();
    const W = concat ? 2 * H : H;
    const eps = 1e-5;
    const x = randomArray(T * H, 11 + T * H, scale);
    const x2 = concat ? randomArray(T * H, 13 + T * H, scale * 0.5) : undefined;
    const w = weights(W, 17 + W);
    const bx = ctx.upload('t:x', x), bx2 = x2 ? ctx.upload('t:x2', x2) : undefined, bw = ctx.upload('t:w', w);
    const bo = ctx.alloc.create('t:out', T * W * 4, STORAGE_RW);
    await rmsNorm(ctx, { x: bx, x2: bx2, weight: bw, out: bo, T, H, eps });
    const got = await ctx.readF32(bo, 0, T * W);
    expectClose(got, rmsNormRef(x, w, T, H, eps, x2), 2e-6, 1e-30, 'rmsNorm');
    for (const b of [bx, bx2, bw, bo]) if (b) ctx.alloc.destroy(b);
  });
}

for (const [T, H] of [[1, 50], [5, 333], [7, 2048]] as const) {
  test(`rmsNorm T=${T} H=${H} of x + add (the sum not stored) equals the f64 norm of the f32 sum`, async () => {
    const ctx = await testGpu();
    const eps = 1e-5;
    const x = randomArray(T * H, 31 + T * H), t = randomArray(T * H, 37 + T * H, 0.7);
    const sum = new Float32Array(T * H);
    for (let i = 0; i < sum.length; i++) sum[i] = x[i] + t[i]; // f32 sum, as the kernel forms it
    const w = weights(H, 41 + H);
    const bx = ctx.upload('t:x', x), bt = ctx.upload('t:t', t), bw = ctx.upload('t:w', w);
    const bo = ctx.alloc.create('t:out', T * H * 4, STORAGE_RW);
    await rmsNorm(ctx, { x: bx, add: bt, weight: bw, out: bo, T, H, eps });
    expectClose(await ctx.readF32(bo, 0, T * H), rmsNormRef(sum, w, T, H, eps), 2e-6, 1e-30, 'rmsNorm(x + add)');
    for (const b of [bx, bt, bw, bo]) ctx.alloc.destroy(b);
  });
}

const gatedCases: [number, number, number][] = [
  // T, D, groupSize
  [1, 50, 50],
  [5, 333, 111], // 3 groups of an odd width
  [37, 256, 32], // 8 groups
  [3, 4096, 4096], // Zamba2-1.2B d_inner, one group
  [2, 8192, 1024], // Codestral: 8 groups of 1024
];

for (const [T, D, groupSize] of gatedCases) {
  test(`gatedRmsNorm T=${T} D=${D} groupSize=${groupSize} (z strided in zxbcdt)`, async () => {
    const ctx = await testGpu();
    const eps = 1e-5;
    // z lives inside a wider zxbcdt-like buffer: offset 7, row stride D + 19.
    const zOffset = 7, zRowStride = D + 19;
    const y = randomArray(T * D, 23 + D, 1);
    const z = randomArray(zOffset + T * zRowStride, 29 + D, 2);
    const w = weights(D, 31 + D);
    const by = ctx.upload('t:y', y), bz = ctx.upload('t:z', z), bw = ctx.upload('t:w', w);
    const bo = ctx.alloc.create('t:out', T * D * 4, STORAGE_RW);
    await gatedRmsNorm(ctx, { y: by, z: { buffer: bz, offset: zOffset, rowStride: zRowStride }, weight: bw, out: bo, T, D, groupSize, eps });
    const got = await ctx.readF32(bo, 0, T * D);
    const ref = gatedRmsNormRef(y, z, zOffset, zRowStride, w, T, D, groupSize, eps);
    // abs floor: 1e-6 of the typical output magnitude (~1), for gates where silu(z) is nearly 0.
    expectClose(got, ref, 1e-5, 1e-6, 'gatedRmsNorm');
    for (const b of [by, bz, bw, bo]) ctx.alloc.destroy(b);
  });
}

test('norm launchers reject aliasing, ragged groups and short buffers with InputError', async () => {
  const ctx = await testGpu();
  const b = ctx.alloc.create('t:b', 4 * 64, STORAGE_RW);
  const w = ctx.alloc.create('t:w', 4 * 64, STORAGE_RW);
  const o = ctx.alloc.create('t:o', 4 * 64, STORAGE_RW);
  try {
    await rejects(() => rmsNorm(ctx, { x: b, weight: w, out: b, T: 1, H: 64, eps: 1e-5 }), InputError);
    await rejects(() => rmsNorm(ctx, { x: b, x2: b, weight: w, out: o, T: 1, H: 64, eps: 1e-5 }), /weight holds/);
    await rejects(() => rmsNorm(ctx, { x: b, weight: w, out: o, T: 2, H: 64, eps: 1e-5 }), /x holds/);
    await rejects(() => gatedRmsNorm(ctx, { y: b, z: { buffer: w, offset: 0, rowStride: 64 }, weight: w, out: o, T: 1, D: 64, groupSize: 48, eps: 1e-5 }), /multiple of groupSize/);
  } finally {
    for (const x of [b, w, o]) ctx.alloc.destroy(x);
  }
});

test.run();
