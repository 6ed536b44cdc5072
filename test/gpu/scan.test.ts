// Recurrent selective scan (src/backends/webgpu/kernels/scan.ts, shaders/ssm_scan.wgsl) against the float64
// recurrence in test/reference/ssm.ts, on random inputs with trained-model value ranges, laid out as
// the mixer lays them out (x/B/C column slices of xbc [T, convDim], dt a slice of zxbcdt).
//
// Tolerance: max |gpu - ref| / max |ref| <= 2e-5 for y, 5e-5 for the final state. Why: each token
// rounds the f32 state update twice and y is an N-term f32 dot product (N <= 256); the decay
// exp(dt*A) < 1 keeps old rounding errors from growing, so y stays within a small multiple of f32
// epsilon (6e-8) times sqrt(N) (seen ~2e-6). The state additionally carries the device's exp/log
// error (WGSL allows a few ulp, software adapters use polynomial approximations) compounded over
// its memory of ~1/(dt|A|) tokens, up to ~1000 at dt = 1e-3 (seen up to 1.3e-5 at T = 1000 in the
// chunked test). A wrong clamp, group mapping, stride or a dropped token gives errors >= 1e-3.
// Software adapters run the scan with a runtime column bound; the GPU lane of the suite
// (MSL_GPU_LANE=1, scripts/run-tests.mjs) runs every case on the unrolled form real GPUs get.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import type { GpuContext } from '../../src/backends/webgpu/context.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import { InputError, UnsupportedError } from '../../src/errors.ts';
import { ssmScan, scanScratchBytes, type ScanAlgorithm, type ScanReduction } from '../../src/backends/webgpu/kernels/scan.ts';
import { makeScanInputs, scanInputsRef, type ScanInputs, type ScanShape } from '../reference/ssm.ts';

const TOL = 2e-5;
const TOL_STATE = 5e-5;

function relErr(got: Float32Array, want: Float64Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= d)) d = e; // NaN-propagating max
    m = Math.max(m, Math.abs(want[i]));
  }
  return d / Math.max(m, 1e-30);
}

interface RunOpts { algorithm?: ScanAlgorithm; reduction?: ScanReduction; chunkSize?: number; dtMin: number; dtMax: number; pieces?: number[] }

/** Uploads the inputs, scans them (in pieces if given, continuing the state), reads y and the state back. */
async function runScan(ctx: GpuContext, inp: ScanInputs, o: RunOpts): Promise<{ y: Float32Array; state: Float32Array }> {
  const { T, NH, P, N, G } = inp.shape;
  const bufs = [
    ctx.upload('t:xbc', inp.xbc), ctx.upload('t:zxbcdt', inp.zxbcdt), ctx.upload('t:dtBias', inp.dtBias),
    ctx.upload('t:aLog', inp.aLog), ctx.upload('t:D', inp.D), ctx.upload('t:state', inp.state0),
  ];
  const [xbc, zx, dtBias, aLog, D, state] = bufs;
  const y = new Float32Array(T * NH * P);
  try {
    let t0 = 0;
    for (const len of o.pieces ?? [T]) {
      const yb = ctx.alloc.create('t:y', 4 * len * NH * P, STORAGE_RW);
      bufs.push(yb);
      const at = (v: { offset: number; rowStride: number }, buffer: GPUBuffer) =>
        ({ buffer, offset: v.offset + t0 * v.rowStride, rowStride: v.rowStride });
      await ssmScan(ctx, {
        T: len, nHeads: NH, headDim: P, dState: N, nGroups: G,
        x: at(inp.x, xbc), B: at(inp.B, xbc), C: at(inp.C, xbc), dt: at(inp.dt, zx),
        dtBias, aLog, D, state, y: yb, dtMin: o.dtMin, dtMax: o.dtMax,
        algorithm: o.algorithm, chunkSize: o.chunkSize, reduction: o.reduction,
      });
      y.set(await ctx.readF32(yb, 0, len * NH * P), t0 * NH * P);
      t0 += len;
    }
    if (t0 !== T) throw new Error(`pieces sum to ${t0}, not ${T}`);
    return { y, state: await ctx.readF32(state, 0, NH * P * N) };
  } finally {
    for (const b of bufs) ctx.alloc.destroy(b);
  }
}

const CASES: (ScanShape & { dtMin: number; dtMax: number })[] = [
  { T: 1, NH: 3, P: 64, N: 128, G: 1, dtMin: 0, dtMax: Infinity },        // decode step
  { T: 3, NH: 5, P: 37, N: 16, G: 1, dtMin: 1e-3, dtMax: Infinity },      // P not a multiple of the row block
  { T: 37, NH: 4, P: 64, N: 64, G: 2, dtMin: 0.01, dtMax: 0.05 },         // both clamps active (Mamba2 time_step_limit)
  { T: 300, NH: 8, P: 19, N: 256, G: 8, dtMin: 1e-3, dtMax: Infinity },
  { T: 129, NH: 6, P: 64, N: 128, G: 2, dtMin: 1e-4, dtMax: Infinity },   // Zamba2-like row, G = 2
  { T: 45, NH: 3, P: 8, N: 20, G: 1, dtMin: 0, dtMax: Infinity },         // N not a multiple of the lanes
];

// The default reduction ('subgroup' where the adapter has subgroups, else 'workgroup') runs every
// case; the other variants run a subset (each (variant, N) pair is a shader compile of ~2 s on a
// cold lavapipe cache). Names say which variant ran.
const REDUCTIONS: { reduction: ScanReduction; cases: number[] }[] = [
  { reduction: 'subgroup', cases: [0, 1, 2, 3, 4, 5] },
  { reduction: 'workgroup', cases: [1, 4, 5] },
  { reduction: 'none', cases: [1, 2] },
];

for (const { reduction, cases } of REDUCTIONS) {
  for (const ci of cases) {
    const c = CASES[ci];
    const label = `T${c.T} NH${c.NH} P${c.P} N${c.N} G${c.G} dt[${c.dtMin},${c.dtMax}]`;
    test(`recurrent scan (${reduction}) ${label} matches the f64 recurrence`, async () => {
      const ctx = await testGpu();
      // Without subgroups the 'subgroup' rows run the default (workgroup) path instead.
      const red = reduction === 'subgroup' && !ctx.features.subgroups ? 'workgroup' : reduction;
      const inp = makeScanInputs(c, c.T * 1000 + c.N);
      const ref = scanInputsRef(inp, c.dtMin, c.dtMax);
      const got = await runScan(ctx, inp, { dtMin: c.dtMin, dtMax: c.dtMax, reduction: red });
      const ey = relErr(got.y, ref.y), es = relErr(got.state, ref.state);
      assert.ok(ey <= TOL, `y rel err ${ey}`);
      assert.ok(es <= TOL_STATE, `state rel err ${es}`);
    });
  }
}

test('recurrent scan: contiguous separate buffers (not slices) and large dt (softplus passthrough > 20)', async () => {
  const ctx = await testGpu();
  const shape = { T: 23, NH: 4, P: 16, N: 64, G: 1 };
  const inp = makeScanInputs(shape, 77);
  // Heads 0 and 3 get dt + bias > 20 for every token: softplus must pass it through, and the
  // decay exp(dt*A) underflows to 0 so the state becomes dt*x⊗B of the last token alone.
  inp.dtBias[0] = 30; inp.dtBias[3] = 22;
  const { T, NH, P, N, G } = shape;
  const pick = (v: { data: Float32Array; offset: number; rowStride: number }, w: number) => {
    const out = new Float32Array(T * w);
    for (let t = 0; t < T; t++) for (let i = 0; i < w; i++) out[t * w + i] = v.data[v.offset + t * v.rowStride + i];
    return out;
  };
  const x = pick(inp.x, NH * P), B = pick(inp.B, G * N), C = pick(inp.C, G * N), dt = pick(inp.dt, NH);
  const ref = scanInputsRef(inp, 0, Infinity);
  const bx = ctx.upload('t:x', x), bB = ctx.upload('t:B', B), bC = ctx.upload('t:C', C), bdt = ctx.upload('t:dt', dt);
  const bias = ctx.upload('t:b', inp.dtBias), al = ctx.upload('t:a', inp.aLog), bD = ctx.upload('t:D', inp.D);
  const st = ctx.upload('t:s', inp.state0), y = ctx.alloc.create('t:y', 4 * T * NH * P, STORAGE_RW);
  await ssmScan(ctx, {
    T, nHeads: NH, headDim: P, dState: N, nGroups: G,
    x: { buffer: bx, offset: 0, rowStride: NH * P }, B: { buffer: bB, offset: 0, rowStride: N },
    C: { buffer: bC, offset: 0, rowStride: N }, dt: { buffer: bdt, offset: 0, rowStride: NH },
    dtBias: bias, aLog: al, D: bD, state: st, y, dtMin: 0, dtMax: Infinity,
  });
  const gy = await ctx.readF32(y), gs = await ctx.readF32(st);
  for (const b of [bx, bB, bC, bdt, bias, al, bD, st, y]) ctx.alloc.destroy(b);
  assert.ok(relErr(gy, ref.y) <= TOL, `y rel err ${relErr(gy, ref.y)}`);
  assert.ok(relErr(gs, ref.state) <= TOL_STATE, `state rel err ${relErr(gs, ref.state)}`);
});

test('recurrent scan: T at once equals 3 uneven pieces continuing the state (and the f64 reference)', async () => {
  const ctx = await testGpu();
  const shape = { T: 97, NH: 5, P: 24, N: 128, G: 1 };
  const inp = makeScanInputs(shape, 5);
  const ref = scanInputsRef(inp, 1e-3, Infinity);
  const whole = await runScan(ctx, inp, { dtMin: 1e-3, dtMax: Infinity });
  const parts = await runScan(ctx, inp, { dtMin: 1e-3, dtMax: Infinity, pieces: [40, 1, 56] });
  const partsWg = await runScan(ctx, inp, { dtMin: 1e-3, dtMax: Infinity, pieces: [40, 1, 56], reduction: 'workgroup' });
  // The workgroup reduction sums in another order than the default: only the f32 bound applies.
  assert.ok(relErr(partsWg.y, Float64Array.from(whole.y)) <= TOL, 'y workgroup pieces vs whole');
  // Same kernel, same arithmetic order per token: splitting must not change a single rounding
  // beyond what reloading the f32 state does (nothing), so the bound is tight.
  assert.ok(relErr(parts.y, Float64Array.from(whole.y)) <= 1e-7, 'y pieces vs whole');
  assert.ok(relErr(parts.state, Float64Array.from(whole.state)) <= 1e-7, 'state pieces vs whole');
  assert.ok(relErr(parts.y, ref.y) <= TOL, 'y pieces vs ref');
  assert.ok(relErr(whole.state, ref.state) <= TOL_STATE, 'state vs ref');
});

test('recurrent scan: uses O(NH) scratch and releases it; bad arguments throw typed errors', async () => {
  const ctx = await testGpu();
  assert.is(scanScratchBytes({ T: 4096, nHeads: 64 }), 16 * 64);
  assert.is(scanScratchBytes({ T: 1, nHeads: 64 }), 16 * 64);
  const shape = { T: 5, NH: 2, P: 8, N: 16, G: 1 };
  const inp = makeScanInputs(shape, 9);
  const before = ctx.alloc.outstanding().length;
  await runScan(ctx, inp, { dtMin: 0, dtMax: Infinity });
  assert.is(ctx.alloc.outstanding().length, before, 'no buffer left behind');
  const b = ctx.alloc.create('t:any', 4096, STORAGE_RW);
  const v = { buffer: b, offset: 0, rowStride: 64 };
  const base = { T: 2, nHeads: 2, headDim: 8, dState: 16, nGroups: 1, x: v, dt: v, B: v, C: v,
    dtBias: b, aLog: b, D: b, state: ctx.alloc.create('t:st', 4096, STORAGE_RW), y: ctx.alloc.create('t:yy', 4096, STORAGE_RW),
    dtMin: 0, dtMax: Infinity };
  let err: unknown;
  try { await ssmScan(ctx, { ...base, nGroups: 3, nHeads: 4 }); } catch (e) { err = e; }
  assert.instance(err, InputError);
  err = undefined;
  try { await ssmScan(ctx, { ...base, dState: 512 }); } catch (e) { err = e; }
  assert.instance(err, UnsupportedError);
  err = undefined;
  try { await ssmScan(ctx, { ...base, T: 100 }); } catch (e) { err = e; }
  assert.instance(err, InputError, 'views past the end of the buffer');
  for (const x of [b, base.state, base.y]) ctx.alloc.destroy(x);
});

test.run();
