// Causal depthwise conv1d + bias + SiLU with a rolling state (src/backends/webgpu/kernels/conv1d.ts) against the
// float64 reference in test/reference/ssm.ts. Input is a column slice of a wider zxbcdt-like buffer
// (offset di, row stride inProjDim), as the mixer passes it.
//
// Tolerance: 1e-5 absolute on outputs of size ~1 (inputs N(0,1), weights N(0, 0.5²)): each output is
// a K <= 8 term f32 dot plus bias and one exp, so the error is a few ulps (seen: ~1e-7). The state
// rows are copies of inputs and must match exactly. The GPU state is a ring of K rows (row a mod K
// = position a); the reference keeps the K-1 most recent rows oldest first, and the test maps one
// onto the other. The ring's spare row starts as garbage: reading it would show in the outputs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray } from '../helpers/gpu.ts';
import type { GpuContext } from '../../src/backends/webgpu/context.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import { UnsupportedError, InputError } from '../../src/errors.ts';
import { conv1d, convStateBytes } from '../../src/backends/webgpu/kernels/conv1d.ts';
import { conv1dRef } from '../reference/ssm.ts';

const TOL = 1e-5;

interface Case { C: number; K: number; pieces: number[] }

/** Runs the conv over T = sum(pieces) tokens in pieces, continuing the state; compares each piece. */
async function check(ctx: GpuContext, c: Case, seed: number): Promise<void> {
  const T = c.pieces.reduce((s, v) => s + v, 0);
  const { C, K } = c;
  const lead = 13, width = lead + C + 7; // odd column offset and row stride
  const zx = randomArray(T * width, seed);
  const weight = randomArray(C * K, seed + 1, 0.5);
  const bias = randomArray(C, seed + 2, 0.5);
  const state0 = randomArray((K - 1) * C, seed + 3);
  // Start mid-sequence (position pos0) so the ring rows wrap: logical row i is position pos0-(K-1)+i.
  const pos0 = 7 + (seed % 5);
  const slot = (pos: number) => ((pos % K) + K) % K;
  const ring = randomArray(K * C, seed + 4, 100); // the spare row keeps this garbage
  for (let i = 0; i < K - 1; i++) ring.set(state0.subarray(i * C, (i + 1) * C), slot(pos0 - (K - 1) + i) * C);
  const bIn = ctx.upload('t:zx', zx), bW = ctx.upload('t:w', weight), bB = ctx.upload('t:b', bias);
  const bS = ctx.alloc.create('t:state', convStateBytes(C, K), STORAGE_RW);
  ctx.write(bS, 0, ring);
  let refState: Float64Array | Float32Array = state0;
  let t0 = 0;
  try {
    for (const len of c.pieces) {
      const out = ctx.alloc.create('t:out', 4 * len * C, STORAGE_RW);
      await conv1d(ctx, {
        T: len, channels: C, kernelSize: K, input: { buffer: bIn, offset: lead + t0 * width, rowStride: width },
        weight: bW, bias: bB, convState: bS, out, pos0: pos0 + t0,
      });
      const got = await ctx.readF32(out);
      ctx.alloc.destroy(out);
      const ref = conv1dRef({ T: len, channels: C, kernelSize: K, input: { data: zx, offset: lead + t0 * width, rowStride: width },
        weight, bias, convState: refState });
      let err = 0;
      for (let i = 0; i < ref.out.length; i++) err = Math.max(err, Math.abs(got[i] - ref.out[i]) || (Number.isNaN(got[i]) ? Infinity : 0));
      assert.ok(err <= TOL, `piece at t0=${t0} len=${len}: max abs err ${err}`);
      const gotRing = await ctx.readF32(bS, 0, K * C);
      const end = pos0 + t0 + len;
      for (let i = 0; i < ref.state.length; i++) {
        const row = Math.floor(i / C), ch = i % C;
        const got = gotRing[slot(end - (K - 1) + row) * C + ch];
        if (got !== ref.state[i]) assert.unreachable(`state[${i}] after t0=${t0} len=${len}: ${got} != ${ref.state[i]}`);
      }
      refState = ref.state;
      t0 += len;
    }
  } finally {
    for (const b of [bIn, bW, bB, bS]) ctx.alloc.destroy(b);
  }
}

const CASES: Case[] = [
  { C: 4352, K: 4, pieces: [37] },              // Zamba2-1.2B conv_dim
  { C: 300, K: 4, pieces: [1, 1, 1, 1, 1] },    // decode steps (T < K-1 rolls the old state)
  { C: 257, K: 4, pieces: [2, 1, 300, 3] },     // prefill, continuation, T < K-1 and T > K-1 mixed
  { C: 33, K: 2, pieces: [5, 1, 4] },
  { C: 65, K: 8, pieces: [3, 9, 1, 6] },        // K-1 = 7 > several piece lengths
  { C: 1, K: 3, pieces: [1, 2, 1] },
];

for (const c of CASES) {
  test(`conv1d C${c.C} K${c.K} pieces ${c.pieces.join('+')} matches the f64 reference`, async () => {
    const ctx = await testGpu();
    await check(ctx, c, c.C * 31 + c.K);
  });
}

test('conv1d: convStateBytes and typed errors', async () => {
  const ctx = await testGpu();
  assert.is(convStateBytes(4352, 4), 4 * 4352 * 4);
  assert.throws(() => convStateBytes(10, 1), (e: unknown) => e instanceof UnsupportedError);
  assert.throws(() => convStateBytes(10, 9), (e: unknown) => e instanceof UnsupportedError);
  const b = ctx.alloc.create('t:b', 1024, STORAGE_RW);
  const o = ctx.alloc.create('t:o', 1024, STORAGE_RW);
  let err: unknown;
  try {
    await conv1d(ctx, { T: 0, channels: 4, kernelSize: 4, input: { buffer: b, offset: 0, rowStride: 4 }, weight: b, bias: b, convState: b, out: o, pos0: 0 });
  } catch (e) { err = e; }
  assert.instance(err, InputError);
  err = undefined;
  try {
    await conv1d(ctx, { T: 100, channels: 4, kernelSize: 4, input: { buffer: b, offset: 0, rowStride: 4 }, weight: b, bias: b, convState: b, out: o, pos0: 0 });
  } catch (e) { err = e; }
  assert.instance(err, InputError, 'input view past the end');
  ctx.alloc.destroy(b); ctx.alloc.destroy(o);
});

test.run();
