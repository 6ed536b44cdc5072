// Wasm conv1d (ring state) and recurrent selective scan against the float64 references of
// test/reference/ssm.ts, on odd channel counts, head dims and state sizes, strided inputs laid out
// as the mixer lays them out, continuation in pieces, and every thread configuration of CONFIG_GROUPS
// (bit-identical across them).
//
// Tolerances:
//  - conv1d: 1e-5 absolute on outputs of size ~1 (inputs N(0,1), weights N(0, 0.5^2)): a K <= 8 term
//    f32 dot plus bias and one exp (ours within 3 ulp), so a few ulps (as test/gpu/conv1d.test.ts).
//    The ring rows are copies of inputs and must match exactly; the ring's spare row starts as
//    garbage, so reading it would show in the outputs.
//  - scan: max |got - ref| / max |ref| <= 2e-5 for y, 5e-5 for the final state, the bounds and
//    reasoning of test/gpu/scan.test.ts: per token two f32 roundings of the state and an N-term dot
//    for y; exp(dt A) < 1 keeps old errors from growing; the state also carries exp/log error over
//    its ~1/(dt |A|) token memory. Running in pieces reloads the f32 state unchanged, so pieces and
//    the whole sequence must agree bit for bit.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convStateBytes } from '../../src/backends/backend.ts';
import { InputError, UnsupportedError } from '../../src/errors.ts';
import type { WasmKernels } from '../../src/backends/wasm/kernels.ts';
import { conv1dRef, makeScanInputs, scanInputsRef, type ScanInputs, type ScanShape } from '../reference/ssm.ts';
import { acrossConfigs, assertSameBits, closeAll, kernels, randomArray } from './helpers.ts';

const CONV_TOL = 1e-5;

interface ConvCase { C: number; K: number; pieces: number[]; pos0: number }

async function convCase(c: ConvCase, seed: number): Promise<void> {
  const T = c.pieces.reduce((s, v) => s + v, 0);
  const { C, K } = c;
  const lead = 13, width = lead + C + 7;
  const zx = randomArray(T * width, seed);
  const weight = randomArray(C * K, seed + 1, 0.5);
  const bias = randomArray(C, seed + 2, 0.5);
  const state0 = randomArray((K - 1) * C, seed + 3);
  const slot = (pos: number) => ((pos % K) + K) % K;
  const ring0 = randomArray(K * C, seed + 4, 100);
  for (let i = 0; i < K - 1; i++) ring0.set(state0.subarray(i * C, (i + 1) * C), slot(c.pos0 - (K - 1) + i) * C);
  await acrossConfigs(`conv1d C=${C} K=${K}`, (k) => {
    const bIn = k.upload('test:zx', zx), bW = k.upload('test:w', weight), bB = k.upload('test:b', bias);
    const bS = k.upload('test:state', ring0);
    assert.ok(bS.size >= convStateBytes(C, K));
    const outs = new Float32Array(T * C + K * C);
    let refState: Float64Array | Float32Array = state0;
    let t0 = 0;
    for (const len of c.pieces) {
      const out = k.heap.alloc('test:out', 4 * len * C);
      const pos0 = c.pos0 + t0;
      k.conv1d({ T: len, channels: C, kernelSize: K, input: { buffer: bIn, offset: lead + t0 * width, rowStride: width },
        weight: bW, bias: bB, convState: bS, pos0, out });
      const got = k.readF32(out, 0, len * C);
      k.heap.free(out);
      outs.set(got, t0 * C);
      const ref = conv1dRef({ T: len, channels: C, kernelSize: K, input: { data: zx, offset: lead + t0 * width, rowStride: width },
        weight, bias, convState: refState });
      let err = 0;
      for (let i = 0; i < ref.out.length; i++) err = Math.max(err, Math.abs(got[i] - ref.out[i]) || (Number.isNaN(got[i]) ? Infinity : 0));
      assert.ok(err <= CONV_TOL, `piece at t0=${t0} len=${len}: max abs err ${err}`);
      const ring = k.readF32(bS, 0, K * C);
      const end = pos0 + len;
      for (let i = 0; i < ref.state.length; i++) {
        const row = Math.floor(i / C), ch = i % C;
        const g = ring[slot(end - (K - 1) + row) * C + ch];
        if (g !== Math.fround(ref.state[i])) assert.unreachable(`state row ${row} ch ${ch}: ${g} vs ${ref.state[i]}`);
      }
      // The ring's K-th row (position end - K) is the input there, or untouched when that position precedes the block.
      for (let ch = 0; ch < C; ch++) {
        const p = end - K;
        const g = ring[slot(p) * C + ch];
        const want = p >= pos0 ? zx[lead + (t0 + p - pos0) * width + ch] : undefined;
        if (want !== undefined && g !== want) assert.unreachable(`spare row ch ${ch}: ${g} vs ${want}`);
      }
      refState = ref.state;
      t0 += len;
    }
    outs.set(k.readF32(bS, 0, K * C), T * C);
    for (const b of [bIn, bW, bB, bS]) k.heap.free(b);
    return outs;
  }, () => {});
}

const convCases: ConvCase[] = [
  { C: 1, K: 4, pieces: [1, 1, 1, 1, 1], pos0: 0 },
  { C: 5, K: 4, pieces: [7], pos0: 9 },
  { C: 13, K: 4, pieces: [3, 1, 1, 6], pos0: 10 },
  { C: 67, K: 4, pieces: [33], pos0: 0 },
  { C: 6, K: 2, pieces: [1, 4, 2], pos0: 5 },
  { C: 9, K: 3, pieces: [2, 2], pos0: 1000 },
  { C: 19, K: 5, pieces: [4, 1, 8], pos0: 3 },
  { C: 8, K: 8, pieces: [3, 9], pos0: 12 },
];
convCases.forEach((c, i) => {
  test(`conv1d C=${c.C} K=${c.K} pieces=${c.pieces.join('+')} pos0=${c.pos0}`, () => convCase(c, 500 + 17 * i));
});

test('conv1d: unsupported kernel sizes and short buffers are typed errors', async () => {
  const k = await kernels({ threads: 1 });
  const inp = k.upload('test:in', new Float32Array(64)), w = k.upload('test:w', new Float32Array(64));
  const b = k.upload('test:b', new Float32Array(8)), s = k.heap.alloc('test:s', 4 * 4 * 8), out = k.heap.alloc('test:o', 4 * 16);
  const base = { channels: 8, input: { buffer: inp, offset: 0, rowStride: 8 }, weight: w, bias: b, convState: s, pos0: 0, out };
  assert.throws(() => k.conv1d({ ...base, T: 2, kernelSize: 9 }), (e: unknown) => e instanceof UnsupportedError);
  assert.throws(() => k.conv1d({ ...base, T: 3, kernelSize: 4 }), (e: unknown) => e instanceof InputError && /out/.test((e as Error).message));
  assert.throws(() => k.conv1d({ ...base, T: 2, kernelSize: 4, out: s }), (e: unknown) => e instanceof InputError);
  for (const x of [inp, w, b, s, out]) k.heap.free(x);
});

// ---- scan ----

const TOL = 2e-5;
const TOL_STATE = 5e-5;

function relErr(got: Float32Array, want: Float64Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= d)) d = e;
    m = Math.max(m, Math.abs(want[i]));
  }
  return d / Math.max(m, 1e-30);
}

/** Scans the inputs in pieces (continuing the state); returns y [T, NH P] then the final state. */
function runScan(k: WasmKernels, inp: ScanInputs, dtMin: number, dtMax: number, pieces: number[]): Float32Array {
  const { T, NH, P, N, G } = inp.shape;
  const xbc = k.upload('test:xbc', inp.xbc), zx = k.upload('test:zx', inp.zxbcdt);
  const dtBias = k.upload('test:dtBias', inp.dtBias), aLog = k.upload('test:aLog', inp.aLog), D = k.upload('test:D', inp.D);
  const state = k.upload('test:state', inp.state0);
  const res = new Float32Array(T * NH * P + NH * P * N);
  let t0 = 0;
  for (const len of pieces) {
    const y = k.heap.alloc('test:y', 4 * len * NH * P);
    const at = (v: { offset: number; rowStride: number }, buffer: typeof xbc) => ({ buffer, offset: v.offset + t0 * v.rowStride, rowStride: v.rowStride });
    k.ssmScan({ T: len, nHeads: NH, headDim: P, dState: N, nGroups: G, x: at(inp.x, xbc), B: at(inp.B, xbc), C: at(inp.C, xbc),
      dt: at(inp.dt, zx), dtBias, aLog, D, state, y, dtMin, dtMax });
    res.set(k.readF32(y, 0, len * NH * P), t0 * NH * P);
    k.heap.free(y);
    t0 += len;
  }
  res.set(k.readF32(state, 0, NH * P * N), T * NH * P);
  for (const b of [xbc, zx, dtBias, aLog, D, state]) k.heap.free(b);
  return res;
}

interface ScanCase { shape: ScanShape; dtMin: number; dtMax: number; pieces?: number[]; zeroState?: boolean }

const scanCases: ScanCase[] = [
  { shape: { T: 1, NH: 2, P: 4, N: 16, G: 1 }, dtMin: 0, dtMax: Infinity },
  { shape: { T: 7, NH: 3, P: 5, N: 13, G: 1 }, dtMin: 1e-3, dtMax: Infinity },
  { shape: { T: 33, NH: 4, P: 8, N: 32, G: 2 }, dtMin: 0, dtMax: 0.05 },
  { shape: { T: 5, NH: 6, P: 3, N: 7, G: 3 }, dtMin: 0, dtMax: Infinity, zeroState: true },
  { shape: { T: 9, NH: 1, P: 1, N: 1, G: 1 }, dtMin: 0, dtMax: Infinity },
  { shape: { T: 64, NH: 2, P: 64, N: 128, G: 1 }, dtMin: 0, dtMax: Infinity, pieces: [1, 30, 1, 1, 31] },
  { shape: { T: 12, NH: 8, P: 16, N: 64, G: 2 }, dtMin: 0.002, dtMax: 0.08, pieces: [5, 7] },
  { shape: { T: 300, NH: 2, P: 4, N: 20, G: 1 }, dtMin: 0, dtMax: Infinity },
];

scanCases.forEach((c, i) => {
  const { T, NH, P, N, G } = c.shape;
  test(`ssmScan T=${T} NH=${NH} P=${P} N=${N} G=${G} dt in [${c.dtMin}, ${c.dtMax}]${c.pieces ? ` pieces ${c.pieces.join('+')}` : ''}`, async () => {
    const inp = makeScanInputs(c.shape, 900 + i, { zeroState: c.zeroState });
    const ref = scanInputsRef(inp, c.dtMin, c.dtMax);
    await acrossConfigs('ssmScan', (k) => {
      const r = runScan(k, inp, c.dtMin, c.dtMax, c.pieces ?? [T]);
      if (!c.pieces) return r;
      // Pieces and the whole sequence side by side (same build), compared in the check.
      const both = new Float32Array(2 * r.length);
      both.set(r);
      both.set(runScan(k, inp, c.dtMin, c.dtMax, [T]), r.length);
      return both;
    }, (got) => {
      const n = T * NH * P + NH * P * N;
      const y = got.subarray(0, T * NH * P), s = got.subarray(T * NH * P, n);
      assert.ok(relErr(y, ref.y) <= TOL, `y rel err ${relErr(y, ref.y)}`);
      assert.ok(relErr(s, ref.state) <= TOL_STATE, `state rel err ${relErr(s, ref.state)}`);
      if (c.pieces) assertSameBits(got.subarray(0, n), got.subarray(n), 'pieces vs whole sequence');
    });
  });
});

test('ssmScan: the dt clamp is applied (dtMin above every softplus value forces dt = dtMin)', async () => {
  const shape = { T: 4, NH: 2, P: 3, N: 8, G: 1 };
  const inp = makeScanInputs(shape, 77);
  const ref = scanInputsRef(inp, 0.5, 0.5);
  const free = scanInputsRef(inp, 0, Infinity);
  const k = await kernels({ threads: 1 });
  const got = runScan(k, inp, 0.5, 0.5, [4]);
  assert.ok(relErr(got.subarray(0, 24), ref.y) <= TOL, 'clamped y');
  assert.ok(relErr(got.subarray(0, 24), free.y) > 1e-3, 'the clamp changes the result');
});

test('ssmScan: bad shapes, views and aliasing are InputErrors', async () => {
  const k = await kernels({ threads: 1 });
  const inp = makeScanInputs({ T: 2, NH: 2, P: 2, N: 4, G: 1 }, 3);
  const xbc = k.upload('test:xbc', inp.xbc), zx = k.upload('test:zx', inp.zxbcdt);
  const h = k.upload('test:h', new Float32Array(4)), st = k.heap.alloc('test:st', 64), y = k.heap.alloc('test:y', 64);
  const v = (o: { offset: number; rowStride: number }, buffer = xbc) => ({ buffer, offset: o.offset, rowStride: o.rowStride });
  const base = { T: 2, nHeads: 2, headDim: 2, dState: 4, nGroups: 1, x: v(inp.x), B: v(inp.B), C: v(inp.C), dt: v(inp.dt, zx),
    dtBias: h, aLog: h, D: h, state: st, y, dtMin: 0, dtMax: Infinity };
  k.ssmScan(base);
  assert.throws(() => k.ssmScan({ ...base, nGroups: 3 }), /multiple of nGroups/);
  assert.throws(() => k.ssmScan({ ...base, y: xbc }), /y overlaps/);
  assert.throws(() => k.ssmScan({ ...base, state: xbc }), /state overlaps x/);
  assert.throws(() => k.ssmScan({ ...base, T: 50 }), /needs/);
  assert.throws(() => k.ssmScan({ ...base, dtMin: 1, dtMax: 0.5 }), /dt clamp/);
  for (const b of [xbc, zx, h, st, y]) k.heap.free(b);
});

test.after(closeAll);
test.run();
