// The Wasm backend (src/backends/wasm/backend.ts) as the op interface: buffer semantics the WebGPU
// backend has too (4-byte sizes, exact accounting per label, views that are windows, free twice is
// harmless, typed range errors, destroy reports leaks), the fused-residual RMSNorm kernel against
// the f64 reference, batched convScan = each sequence on its own, RoPE by a positions table =
// per-sequence RoPE, compileOnly running nothing, and whole models whose logits are bit-identical
// on 1 thread, 2 threads and 3 simulated threads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WasmBackend } from '../../src/backends/wasm/backend.ts';
import { ropeInvFreq, type Backend, type Buf } from '../../src/backends/backend.ts';
import { InputError, MambaScanError } from '../../src/errors.ts';
import { loadModel } from '../../src/api.ts';
import { makeFixture, randomIds, type FixtureOptions } from '../fixtures/index.ts';
import { refForward } from '../reference/index.ts';
import { rmsNormRef } from '../reference/layers.ts';
import { randomArray } from './helpers.ts';

async function rejects(p: Promise<unknown>, cls: new (...a: never[]) => Error, re?: RegExp): Promise<void> {
  try { await p; } catch (e) {
    assert.instance(e, cls, String((e as Error).message));
    if (re) assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected ${cls.name}`);
}

function upload(be: Backend, label: string, data: Float32Array | Uint32Array): Buf {
  const b = be.alloc(label, data.byteLength);
  be.write(b, 0, data);
  return b;
}

test('buffers: 4-byte sizes, exact accounting by label, views, idempotent free, typed range errors, leaks', async () => {
  const be = await WasmBackend.create({ threads: 2 });
  try {
    assert.match(be.name, /^wasm-simd(-relaxed)? [12] threads?/);
    assert.is(be.kind, 'wasm');
    const a = be.alloc('weights:a', 10), b = be.alloc('scratch:b', 3), c = be.alloc('kv.0', 64);
    assert.is(a.size, 12);
    assert.is(b.size, 4);
    assert.equal(be.memoryStats(), { liveBytes: 80, peakBytes: 80, byLabel: { weights: 12, scratch: 4, kv: 64 }, liveBuffers: 3 });
    const zero = await be.readU32(c, 0, 16);
    assert.ok(zero.every((v) => v === 0), 'zero-filled');
    be.write(c, 4, Uint32Array.of(7, 8, 9));
    const v = be.view(c, 16, 32);
    assert.is(v.size, 32);
    assert.equal(be.viewOf(v), { buffer: c, byteOffset: 16 });
    const vv = be.view(v, 16, 16);
    assert.equal(be.viewOf(vv), { buffer: c, byteOffset: 32 }, 'a view of a view is a window of the root');
    be.write(v, 0, Uint32Array.of(1, 2));
    assert.equal([...await be.readU32(c, 1, 5)], [7, 8, 9, 1, 2]);
    assert.throws(() => be.view(c, 4, 16), (e: Error) => e instanceof InputError, 'offsets are multiples of 16');
    assert.throws(() => be.view(c, 48, 32), (e: Error) => e instanceof InputError, 'window past the end');
    assert.equal(be.memoryStats().liveBuffers, 3, 'views are not counted');
    be.copy(c, 4, c, 40, 12);
    assert.equal([...await be.readU32(c, 10, 3)], [7, 8, 9]);
    assert.throws(() => be.copy(c, 0, c, 8, 16), (e: Error) => e instanceof InputError, 'overlapping copy');
    be.clear(c, 40, 8);
    assert.equal([...await be.readU32(c, 10, 3)], [0, 0, 9]);
    assert.throws(() => be.write(b, 4, Uint32Array.of(1)), (e: Error) => e instanceof InputError);
    await rejects(be.read(a, 8, 8), InputError);
    be.free(v); // a view: nothing
    assert.ok(be.isLive(c) && be.isLive(v));
    be.free(c);
    be.free(c); // twice: harmless
    assert.not.ok(be.isLive(v), 'a view dies with its buffer');
    await rejects(be.read(c, 0, 4), InputError, /freed/);
    await rejects(be.add({ a, b: a, out: c, n: 1 }), InputError);
    assert.equal(be.memoryStats(), { liveBytes: 16, peakBytes: 80, byLabel: { weights: 12, scratch: 4 }, liveBuffers: 2 });
    be.resetPeak();
    assert.is(be.memoryStats().peakBytes, 16);
    const leaks = await be.destroy();
    assert.equal(leaks.map((l) => l.label).sort(), ['scratch:b', 'weights:a']);
    assert.throws(() => be.alloc("x", 4), (e: Error) => e instanceof MambaScanError);
    assert.equal(await be.destroy(), [], 'destroy twice');
  } finally {
    await be.destroy();
  }
});

test('a memory cap: OutOfMemoryError past it, nothing allocated', async () => {
  const be = await WasmBackend.create({ threads: 1, maxMemoryBytes: 1 << 20 });
  try {
    assert.is(be.limits.maxBufferBytes, 1 << 20);
    const a = be.alloc('weights:a', 600_000);
    assert.throws(() => be.alloc('weights:b', 600_000), (e: Error) => e.name === 'OutOfMemoryError');
    assert.is(be.memoryStats().liveBuffers, 1);
    be.free(a);
  } finally {
    await be.destroy();
  }
});

test('rmsNorm with add: RMSNorm(x + add) · w within 2e-6 of the f64 reference, 1 = 2 = 3 simulated threads, bit for bit', async () => {
  const outs: Float32Array[] = [];
  for (const cfg of [{ threads: 1 }, { threads: 2 }, { simulateThreads: 3 }]) {
    const be = await WasmBackend.create({ ...cfg, parallelMinWork: 0 });
    try {
      const T = 7, H = 37;
      const x = randomArray(T * H, 1), add = randomArray(T * H, 2), w = randomArray(H, 3);
      const bx = upload(be, 'x', x), ba = upload(be, 'a', add), bw = upload(be, 'w', w), out = be.alloc('out', 4 * T * H);
      await be.rmsNorm({ x: bx, add: ba, weight: bw, out, T, H, eps: 1e-5 } as Parameters<Backend['rmsNorm']>[0]);
      const got = await be.readF32(out, 0, T * H);
      const sum = Float32Array.from(x, (v, i) => Math.fround(v + add[i]));
      const ref = rmsNormRef(sum, w, T, H, 1e-5);
      let err = 0;
      for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(got[i] - ref[i]));
      assert.ok(err < 2e-6, `max error ${err}`);
      outs.push(got);
      await rejects(be.rmsNorm({ x: bx, add: ba, x2: ba, weight: bw, out, T, H, eps: 1e-5 } as Parameters<Backend['rmsNorm']>[0]), InputError);
    } finally {
      await be.destroy();
    }
  }
  assert.equal([...outs[1]], [...outs[0]]);
  assert.equal([...outs[2]], [...outs[0]]);
});

test('convScan over several sequences (states as pool views) = each sequence alone; RoPE by positions = RoPE per sequence', async () => {
  const be = await WasmBackend.create({ threads: 2, parallelMinWork: 0 });
  try {
    const NH = 4, P = 8, N = 16, G = 2, K = 4, di = NH * P, GN = G * N, C = di + 2 * GN, W = C + NH + 5;
    const lens = [3, 1, 5];
    const rows = lens.reduce((a, b) => a + b, 0);
    const zx = upload(be, 'zx', randomArray(rows * W, 4));
    const convW = upload(be, 'cw', randomArray(C * K, 5)), convB = upload(be, 'cb', randomArray(C, 6));
    const dtBias = upload(be, 'dtb', randomArray(NH, 7, 0.3)), aLog = upload(be, 'al', randomArray(NH, 8, 0.5)), D = upload(be, 'D', randomArray(NH, 9));
    const convBytes = 4 * K * C, ssmBytes = 4 * NH * P * N;
    const initRing = randomArray(lens.length * convBytes / 4, 10), initState = randomArray(lens.length * ssmBytes / 4, 11, 0.1);
    const run = async (together: boolean) => {
      const ring = upload(be, 'ring', initRing), state = upload(be, 'state', initState);
      const y = be.alloc('y', 4 * rows * di), xbc = be.alloc('xbc', 4 * rows * C);
      const seqs = lens.map((T, i) => ({
        rowStart: lens.slice(0, i).reduce((a, b) => a + b, 0), T, pos0: 5 + 2 * i,
        convState: be.view(ring, i * convBytes, convBytes), ssmState: be.view(state, i * ssmBytes, ssmBytes),
      }));
      const common = { xBC: { buffer: zx, offset: 2, rowStride: W }, dt: { buffer: zx, offset: 2 + C, rowStride: W }, convDim: C, kernelSize: K,
        convWeight: convW, convBias: convB, xbc, nHeads: NH, headDim: P, dState: N, nGroups: G, dtBias, aLog, D, y, dtMin: 0.001, dtMax: Infinity };
      if (together) await be.convScan({ ...common, seqs });
      else for (const q of seqs) await be.convScan({ ...common, seqs: [q] });
      const out = [await be.readF32(y, 0, rows * di), await be.readF32(ring, 0, initRing.length), await be.readF32(state, 0, initState.length)];
      for (const b of [ring, state, y, xbc]) be.free(b);
      return out;
    };
    const c0 = be.counters().submits;
    const a = await run(true);
    assert.is(be.counters().submits - c0, 2, 'all sequences: one conv job and one scan job');
    const b = await run(false);
    for (let i = 0; i < 3; i++) assert.equal([...a[i]], [...b[i]], ['y', 'conv rings', 'ssm states'][i]);

    // RoPE: rows of two sequences at their own positions through a table.
    const hd = 8, nH = 3, stride = nH * hd + 3;
    const inv = upload(be, 'inv', ropeInvFreq(hd, 10000));
    const x0 = randomArray(rows * stride, 12);
    const pos = Uint32Array.from([7, 8, 9, 0, 100, 101, 102, 103, 104]);
    const xa = upload(be, 'xa', x0), xb = upload(be, 'xb', x0), positions = upload(be, 'pos', pos);
    await be.rope({ x: xa, offset: 1, rowStride: stride, T: rows, nHeads: nH, headDim: hd, pos0: 0, invFreq: inv, positions });
    for (const [r0, T] of [[0, 3], [3, 1], [4, 5]]) {
      await be.rope({ x: xb, offset: 1 + r0 * stride, rowStride: stride, T, nHeads: nH, headDim: hd, pos0: pos[r0], invFreq: inv });
    }
    assert.equal([...await be.readF32(xa, 0, x0.length)], [...await be.readF32(xb, 0, x0.length)]);
    assert.not.equal([...await be.readF32(xa, 0, x0.length)], [...x0], 'rotated');

    // compileOnly: ops validated, nothing run.
    const before = await be.readF32(xa, 0, x0.length);
    const k0 = be.counters().dispatches;
    await be.compileOnly(() => be.rope({ x: xa, offset: 1, rowStride: stride, T: rows, nHeads: nH, headDim: hd, pos0: 0, invFreq: inv, positions }));
    assert.equal([...await be.readF32(xa, 0, x0.length)], [...before], 'compileOnly left the data alone');
    assert.is(be.counters().dispatches, k0);
    await rejects(be.compileOnly(() => be.rope({ x: xa, rowStride: stride, T: rows + 9, nHeads: nH, headDim: hd, pos0: 0, invFreq: inv })), InputError);
  } finally {
    await be.destroy();
  }
});

const MODELS: FixtureOptions[] = [
  { arch: 'zamba2', variant: 'hybrid-2blocks', dtype: 'bf16', seed: 31 },
  { arch: 'mamba2', variant: 'untied-g2', dtype: 'f16', seed: 32 },
];

test('whole models: logits bit-identical on 1 thread, 2 threads and 3 simulated threads (and within 1e-4 of the f64 reference); batched greedy ids too', async () => {
  for (const opts of MODELS) {
    const fx = makeFixture(opts);
    const results: { logits: Float32Array; ids: number[][] }[] = [];
    for (const cfg of [{ threads: 1 }, { threads: 2 }, { simulateThreads: 3 }]) {
      const be = await WasmBackend.create({ ...cfg, parallelMinWork: 0 });
      const model = await loadModel(new Map(fx.files), { backend: be, noTokenizer: true, kvDtype: 'f32', prefillChunk: 16 });
      try {
        const V = model.config.vocabSize;
        const ids = randomIds(29, V, opts.seed!);
        const { data } = await model.forward([ids]);
        const batch = await model.generate([randomIds(5, V, 1), randomIds(11, V, 2), [3]], { maxNewTokens: 6, eosTokenIds: [] });
        results.push({ logits: data, ids: batch });
        if (results.length === 1) {
          const ref = refForward(fx, ids).logits;
          let err = 0;
          for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(data[i] - ref[i]));
          assert.ok(err <= 1e-4, `${fx.name}: max |Δlogit| ${err}`);
        }
      } finally {
        await model.dispose();
        assert.equal(await be.destroy(), [], 'no leaks');
      }
    }
    for (const r of results.slice(1)) {
      assert.ok(r.logits.every((v, i) => Object.is(v, results[0].logits[i])), `${fx.name}: logits identical across thread counts`);
      assert.equal(r.ids, results[0].ids);
    }
  }
});

test.run();
