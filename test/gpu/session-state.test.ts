// Session snapshots (src/runtime/snapshot.ts; Session.saveState, MambaModel.restoreSession) and
// rollback of failed runs: save → restore → continue gives exactly the ids of one uninterrupted
// run; snapshots of another model, damaged or truncated ones are SnapshotErrors that allocate
// nothing; the size is constant in the sequence length except the KV rows; and a prefill aborted
// after some of its blocks leaves the session as it was before the call.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { modelTarget, testModelBackend } from '../helpers/gpu.ts';
import { makeFixture, randomIds, type FixtureOptions } from '../fixtures/index.ts';
import { loadModel, type MambaModel } from '../../src/api.ts';
import { AbortError, SnapshotError } from '../../src/errors.ts';

const ZAMBA: FixtureOptions = { arch: 'zamba2', variant: 'hybrid-1block', dtype: 'f32', seed: 51 };
const MAMBA: FixtureOptions = { arch: 'mamba2', variant: 'tied-g1', dtype: 'bf16', seed: 52 };

async function load(opts: FixtureOptions, extra: Parameters<typeof loadModel>[1] = {}): Promise<MambaModel> {
  return loadModel(new Map(makeFixture(opts).files), { ...(await modelTarget()), noTokenizer: true, warmup: false, prefillChunk: 8, kvDtype: 'f32', ...extra });
}

for (const opts of [ZAMBA, MAMBA]) {
  test(`snapshot ${opts.arch}: save → restore → continue equals one uninterrupted run`, async () => {
    const model = await load(opts);
    try {
      const V = model.config.vocabSize;
      const prompt = randomIds(19, V, 1), more = randomIds(5, V, 2);
      const whole = model.createSession();
      const w1 = await whole.generate(prompt, { maxNewTokens: 4, eosTokenIds: [] });
      const w2 = await whole.generate(more, { maxNewTokens: 6, eosTokenIds: [] });
      whole.dispose();

      const a = model.createSession();
      const a1 = await a.generate(prompt, { maxNewTokens: 4, eosTokenIds: [] });
      const bytes = await a.saveState();
      a.dispose();
      const b = await model.restoreSession(bytes);
      const b2 = await b.generate(more, { maxNewTokens: 6, eosTokenIds: [] });
      b.dispose();
      assert.equal(a1, w1);
      assert.equal(b2, w2, 'continuation after restore');
    } finally {
      await model.dispose();
    }
  });
}

test('snapshot: size is constant in sequence length except the KV rows', async () => {
  for (const opts of [ZAMBA, MAMBA]) {
    const model = await load(opts);
    try {
      const V = model.config.vocabSize;
      const sizes: number[] = [];
      for (const T of [10, 30]) {
        const s = model.createSession();
        await s.append(randomIds(T, V, T));
        sizes.push((await s.saveState()).byteLength);
        s.dispose();
      }
      const d = model.engine.runner.cacheDims();
      const kvPerToken = d.numKvSites * 2 * d.kvWidth * 4;
      // The header's JSON carries the position (two digits either way here).
      assert.is(sizes[1] - sizes[0], 20 * kvPerToken, `${opts.arch}: grows by the KV rows only`);
    } finally {
      await model.dispose();
    }
  }
});

test('snapshot: another model, damaged or truncated bytes are SnapshotErrors and allocate nothing', async () => {
  const ctx = await testModelBackend();
  const a = await load(ZAMBA);
  const other = await load({ ...ZAMBA, seed: 53 });   // same shapes, other weights
  const f16kv = await load(ZAMBA, { kvDtype: 'f16' }); // same model, other KV dtype
  try {
    const s = a.createSession();
    await s.append(randomIds(12, a.config.vocabSize, 3));
    const bytes = await s.saveState();
    s.dispose();
    const before = ctx.memoryStats().liveBytes;
    const bad = (label: string, m: MambaModel, b: Uint8Array, re: RegExp) => m.restoreSession(b).then(
      () => assert.unreachable(`${label}: restored`),
      (e) => { assert.instance(e, SnapshotError, `${label}: ${(e as Error).message}`); assert.match((e as Error).message, re, label); });
    await bad('other weights', other, bytes, /another model/);
    await bad('other KV dtype', f16kv, bytes, /KV cache/);
    const flipped = bytes.slice(); flipped[flipped.length >> 1] ^= 0x40;
    await bad('flipped byte', a, flipped, /checksum/);
    await bad('truncated', a, bytes.subarray(0, bytes.length - 7), /checksum|truncated|bytes/);
    await bad('empty', a, new Uint8Array(3), /truncated/);
    const magic = bytes.slice(); magic[0] = 0;
    await bad('bad magic', a, magic, /magic/);
    assert.is(ctx.memoryStats().liveBytes, before, 'nothing allocated by failed restores');
  } finally {
    await a.dispose(); await other.dispose(); await f16kv.dispose();
  }
});

/** A signal that reads as aborted from its n-th check on (the engine checks once per block). */
function abortAfterChecks(n: number): AbortSignal {
  let reads = 0;
  return { get aborted() { return ++reads > n; }, reason: undefined } as unknown as AbortSignal;
}

test('a prefill aborted after some of its blocks leaves the session exactly as it was', async () => {
  for (const opts of [ZAMBA, MAMBA]) {
    const model = await load(opts);
    try {
      const V = model.config.vocabSize;
      const start = randomIds(6, V, 4), long = randomIds(29, V, 5), next = randomIds(3, V, 6);
      const ref = model.createSession();
      await ref.append(start);
      const want = await ref.generate(next, { maxNewTokens: 5, eosTokenIds: [] });
      ref.dispose();

      const s = model.createSession();
      await s.append(start);
      // 29 tokens = 4 blocks of 8: the abort comes after two blocks have advanced the state.
      let err: unknown;
      try { await s.append(long, abortAfterChecks(3)); } catch (e) { err = e; }
      assert.instance(err, AbortError, `${opts.arch}: append aborted`);
      err = undefined;
      try { await s.generate(long, { maxNewTokens: 3, signal: abortAfterChecks(4), eosTokenIds: [] }); } catch (e) { err = e; }
      assert.instance(err, AbortError, `${opts.arch}: generate aborted`);
      assert.is(s.length, start.length, 'position unchanged');
      assert.equal(await s.generate(next, { maxNewTokens: 5, eosTokenIds: [] }), want, `${opts.arch}: continues as if nothing happened`);
      s.dispose();
    } finally {
      await model.dispose();
    }
  }
});

test.run();
