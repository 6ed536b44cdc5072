// The fused decode step (shaders/ssm_decode_step.wgsl: conv1d + SiLU + conv-ring update + scan + D
// in one dispatch) against the float64 references of its two halves in test/reference/ssm.ts
// (conv1dRef, then ssmScanRef on the conv output), on one token of a zxbcdt-like row at a position
// where the ring wraps.
//
// Tolerances as in scan.test.ts (y 2e-5, state 5e-5 relative to the largest value); the reference
// scan reads the f64 conv output rounded to f32, as the kernel holds it in registers. Ring rows are copies of inputs and must match exactly; the ring's
// spare row starts as garbage, so reading it would show in y.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray } from '../helpers/gpu.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import { headParams, ssmDecodeStep, type ScanReduction } from '../../src/backends/webgpu/kernels/scan.ts';
import { convStateBytes } from '../../src/backends/backend.ts';
import { InputError } from '../../src/errors.ts';
import { conv1dRef, ssmScanRef } from '../reference/ssm.ts';

interface Case { NH: number; P: number; N: number; G: number; K: number; pos: number; dtMin: number; dtMax: number }

const CASES: Case[] = [
  { NH: 3, P: 64, N: 128, G: 1, K: 4, pos: 9, dtMin: 1e-3, dtMax: Infinity },   // Zamba2-like head
  { NH: 5, P: 37, N: 16, G: 1, K: 4, pos: 2, dtMin: 0, dtMax: Infinity },       // odd P; history before the sequence start
  { NH: 6, P: 19, N: 20, G: 2, K: 3, pos: 41, dtMin: 0.01, dtMax: 0.05 },       // G = 2, odd N, both clamps
  { NH: 8, P: 8, N: 256, G: 8, K: 8, pos: 100, dtMin: 1e-4, dtMax: Infinity },  // largest d_state, long kernel
];

function relErr(got: Float32Array, want: Float64Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= d)) d = e;
    m = Math.max(m, Math.abs(want[i]));
  }
  return d / Math.max(m, 1e-30);
}

/**
 * B sequences, each at its own position, with states at scattered slots of shared state buffers
 * (as the state pool lays them out, with gaps), zx rows of stride inProjDim + 5.
 */
async function check(c: Case, reduction: ScanReduction | undefined, seed: number, B = 1): Promise<void> {
  const ctx = await testGpu();
  const { NH, P, N, G, K } = c;
  const di = NH * P, C = di + 2 * G * N, zxStride = di + C + NH + 5;
  const convW = randomArray(C * K, seed + 1, 0.5), convB = randomArray(C, seed + 2, 0.5);
  const dtBias = new Float32Array(NH), aLog = new Float32Array(NH), D = randomArray(NH, seed + 5);
  for (let h = 0; h < NH; h++) { dtBias[h] = -3 + 0.5 * h; aLog[h] = Math.log(1 + 2 * h); }
  const slot = (a: number) => ((a % K) + K) % K;
  // Sequence b: slot 2b + 1 of 2B + 1 (unused slots hold garbage that must stay untouched).
  const ringElems = K * C, stateElems = NH * P * N, slots = 2 * B + 1;
  const zx = randomArray(B * zxStride, seed, 1);
  const rings = randomArray(slots * ringElems, seed + 4, 100);
  const states = randomArray(slots * stateElems, seed + 6, 0.5);
  const seqTable = new Uint32Array(4 * B);
  const hists: Float32Array[] = [], positions: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) zx[b * zxStride + di + C + h] *= 0.5; // raw dt ~ N(0, 0.5²)
    const pos = c.pos + 3 * b;
    positions.push(pos);
    const hist = randomArray((K - 1) * C, seed + 10 + b); // positions pos-K+1 .. pos-1, oldest first
    hists.push(hist);
    const base = (2 * b + 1) * ringElems;
    for (let i = 0; i < K - 1; i++) rings.set(hist.subarray(i * C, (i + 1) * C), base + slot(pos - (K - 1) + i) * C);
    seqTable.set([base, (2 * b + 1) * stateElems, pos, 0], 4 * b);
  }
  const bufs = [ctx.upload('t:zx', zx), ctx.upload('t:w', convW), ctx.upload('t:b', convB), ctx.upload('t:ring', rings),
    ctx.upload('t:dtBias', dtBias), ctx.upload('t:aLog', aLog), ctx.upload('t:D', D), ctx.upload('t:state', states),
    ctx.alloc.create('t:hp', 16 * NH, STORAGE_RW), ctx.alloc.create('t:y', 4 * B * di, STORAGE_RW), ctx.upload('t:seqs', seqTable)];
  const [bZx, bW, bB, bRing, bDtB, bAL, bD, bS, bHp, bY, bSeqs] = bufs;
  try {
    await headParams(ctx, bDtB, bAL, bD, NH, bHp);
    await ssmDecodeStep(ctx, {
      B, nHeads: NH, headDim: P, dState: N, nGroups: G, convDim: C, kernelSize: K, zx: bZx, xbcOffset: di, dtOffset: di + C, zxStride,
      convWeight: bW, convBias: bB, convState: bRing, hp: bHp, state: bS, y: bY, seqs: bSeqs, dtMin: c.dtMin, dtMax: c.dtMax, reduction,
    });
    const yAll = await ctx.readF32(bY, 0, B * di);
    const stateAll = await ctx.readF32(bS, 0, slots * stateElems);
    const ringAll = await ctx.readF32(bRing, 0, slots * ringElems);
    const label = `B${B} NH${NH} P${P} N${N} G${G} K${K} pos${c.pos} ${reduction ?? 'default'}`;
    for (let b = 0; b < B; b++) {
      const pos = positions[b];
      const row = zx.subarray(b * zxStride, (b + 1) * zxStride);
      const conv = conv1dRef({ T: 1, channels: C, kernelSize: K, input: { data: row, offset: di, rowStride: C }, weight: convW, bias: convB, convState: hists[b] });
      const state = Float64Array.from(states.subarray((2 * b + 1) * stateElems, (2 * b + 2) * stateElems));
      const c32 = Float32Array.from(conv.out); // the scan reads the conv output as f32, as the kernel holds it
      const yRef = ssmScanRef({
        T: 1, nHeads: NH, headDim: P, dState: N, nGroups: G,
        x: { data: c32, offset: 0, rowStride: C }, B: { data: c32, offset: di, rowStride: C }, C: { data: c32, offset: di + G * N, rowStride: C },
        dt: { data: row, offset: di + C, rowStride: zxStride }, dtBias, aLog, D, state, dtMin: c.dtMin, dtMax: c.dtMax,
      });
      const ey = relErr(yAll.subarray(b * di, (b + 1) * di), yRef);
      const es = relErr(stateAll.subarray((2 * b + 1) * stateElems, (2 * b + 2) * stateElems), state);
      assert.ok(ey <= 2e-5, `${label} seq ${b}: y rel err ${ey}`);
      assert.ok(es <= 5e-5, `${label} seq ${b}: state rel err ${es}`);
      // The ring after the step holds positions pos-K+2 .. pos (conv.state, oldest first); its
      // spare row (position pos-K+1) is left as it was.
      const base = (2 * b + 1) * ringElems;
      for (let i = 0; i < K - 1; i++) {
        for (let ch = 0; ch < C; ch++) {
          const got = ringAll[base + slot(pos - (K - 2) + i) * C + ch];
          if (got !== conv.state[i * C + ch]) assert.unreachable(`${label} seq ${b}: ring row of position ${pos - (K - 2) + i}, channel ${ch}: ${got} != ${conv.state[i * C + ch]}`);
        }
      }
    }
    // Slots no sequence owns are untouched.
    for (let q = 0; q < slots; q += 2) {
      for (let i = 0; i < stateElems; i++) if (stateAll[q * stateElems + i] !== states[q * stateElems + i]) assert.unreachable(`${label}: state slot ${q} written`);
      for (let i = 0; i < ringElems; i++) if (ringAll[q * ringElems + i] !== rings[q * ringElems + i]) assert.unreachable(`${label}: ring slot ${q} written`);
    }
  } finally {
    for (const b of bufs) ctx.alloc.destroy(b);
  }
}

for (const [i, c] of CASES.entries()) {
  test(`ssm_decode_step NH${c.NH} P${c.P} N${c.N} G${c.G} K${c.K} (default reduction) matches conv1d + scan in f64`, async () => {
    await check(c, undefined, 100 + i);
  });
}

for (const B of [3, 9]) {
  test(`ssm_decode_step: ${B} sequences in one dispatch, states in scattered pool slots, match the f64 reference each`, async () => {
    await check(CASES[B === 3 ? 2 : 1], undefined, 300 + B, B);
  });
}

// Other reductions on two shapes (each variant is a shader compile on a cold cache).
for (const reduction of ['workgroup', 'none'] as const) {
  for (const i of [0, 2]) {
    test(`ssm_decode_step NH${CASES[i].NH} P${CASES[i].P} N${CASES[i].N} reduction ${reduction} matches conv1d + scan in f64`, async () => {
      await check(CASES[i], reduction, 200 + i);
    });
  }
}

test('ssm_decode_step: typed errors for inconsistent shapes', async () => {
  const ctx = await testGpu();
  const b = ctx.alloc.create('t:b', 4096, STORAGE_RW), y = ctx.alloc.create('t:y', 4096, STORAGE_RW);
  const base = { B: 1, nHeads: 2, headDim: 4, dState: 4, nGroups: 1, convDim: 16, kernelSize: 4, zx: b, xbcOffset: 8, dtOffset: 24, zxStride: 32,
    convWeight: b, convBias: b, convState: b, hp: b, state: b, y, seqs: b, dtMin: 0, dtMax: Infinity };
  try {
    for (const bad of [{ convDim: 15 }, { nGroups: 3 }, { B: 0 }, { y: b }, { xbcOffset: 1020 }, { B: 200 }]) {
      let err: unknown;
      try { await ssmDecodeStep(ctx, { ...base, ...bad }); } catch (e) { err = e; }
      assert.instance(err, InputError, JSON.stringify(Object.keys(bad)));
    }
    assert.is(convStateBytes(16, 4), 4 * 4 * 16);
  } finally {
    ctx.alloc.destroy(b); ctx.alloc.destroy(y);
  }
});

test.run();
