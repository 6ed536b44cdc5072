// Continuous batching (src/runtime/batcher.ts over Engine.runBatch) on random tiny checkpoints:
// generate() with rows of unequal lengths equals each row's single run (greedy and seeded
// sampling); sequences that join and leave mid-flight get their single-run tokens; a cancelled
// sequence frees its buffers and leaves the others alone; the memory budget holds; and the
// prefix cache restores the longest cached prefix, prefills only the rest, and changes nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { modelTarget } from '../helpers/gpu.ts';
import { makeFixture, randomIds, type FixtureOptions } from '../fixtures/index.ts';
import { loadModel, type MambaModel } from '../../src/api.ts';
import { AbortError, InputError, QueueFullError } from '../../src/errors.ts';

const ZAMBA: FixtureOptions = { arch: 'zamba2', variant: 'hybrid-1block', dtype: 'f32', seed: 61 };
const MAMBA: FixtureOptions = { arch: 'mamba2', variant: 'tied-g1', dtype: 'bf16', seed: 62 };

async function load(opts: FixtureOptions): Promise<MambaModel> {
  return loadModel(new Map(makeFixture(opts).files), { ...(await modelTarget()), noTokenizer: true, warmup: false, prefillChunk: 8, kvDtype: 'f32' });
}

/** Each row alone, through a fresh session (the reference the batch must equal). */
async function singles(model: MambaModel, rows: number[][], opts: Parameters<MambaModel['generate']>[1]): Promise<number[][]> {
  const out: number[][] = [];
  for (const r of rows) out.push(await model.generate(r, opts));
  return out;
}

for (const fx of [ZAMBA, MAMBA]) {
  test(`${fx.arch}: generate with rows of unequal lengths equals single runs (greedy and sampled)`, async () => {
    const model = await load(fx);
    try {
      const V = model.config.vocabSize;
      // 1 token, under a block, exactly two blocks, over several blocks.
      const rows = [1, 5, 16, 29].map((n, i) => randomIds(n, V, 10 + i));
      for (const o of [{ maxNewTokens: 6, eosTokenIds: [] }, { maxNewTokens: 6, eosTokenIds: [], doSample: true, temperature: 1.3, topK: 20, seed: 7 }]) {
        const seen: number[][] = rows.map(() => []);
        const batch = await model.generate(rows, { ...o, onToken: (id, row) => seen[row].push(id) });
        assert.equal(batch, await singles(model, rows, o), JSON.stringify(o));
        assert.equal(seen, batch.map((b, i) => b.slice(rows[i].length)), 'onToken per row');
      }
      // Pools and the workspace have grown to these shapes; another batch leaves nothing behind.
      const live = model.memoryStats().liveBytes;
      await model.generate(rows, { maxNewTokens: 3 });
      assert.is(model.memoryStats().liveBytes, live, 'no buffer left behind');
    } finally {
      await model.dispose();
    }
  });
}

test('sequences join and leave between steps; a cancelled one frees its buffers and spares the others', async () => {
  const model = await load(ZAMBA);
  try {
    const V = model.config.vocabSize;
    const prompts = [3, 20, 9, 14, 2].map((n, i) => randomIds(n, V, 30 + i));
    const o = { maxNewTokens: 8, eosTokenIds: [] as number[] };
    const want = await singles(model, prompts, o);
    await model.generate(prompts.slice(0, 3), o); // grows the pools to batch shapes once
    const base = model.memoryStats().liveBytes;
    const b = await model.createBatcher({ maxBatch: 3 });
    try {
      const abort = new AbortController();
      const h: ReturnType<typeof b.submit>[] = [];
      h.push(b.submit({ ...o, prompt: prompts[0] }), b.submit({ ...o, prompt: prompts[1] }));
      // The third joins after the first has tokens; the fourth is cancelled after two of its own.
      for await (const _ of h[0]) { if (h[0].tokens.length === 2) break; }
      h.push(b.submit({ ...o, prompt: prompts[2] }));
      h.push(b.submit({ ...o, prompt: prompts[3], signal: abort.signal, onToken: () => { if (h[3]?.tokens.length === 2) abort.abort(); } }));
      h.push(b.submit({ ...o, prompt: prompts[4] }));
      const results = await Promise.allSettled(h.map((x) => x.result));
      for (const i of [0, 1, 2, 4]) {
        assert.is(results[i].status, 'fulfilled', `sequence ${i}`);
        assert.equal([...prompts[i], ...h[i].tokens], want[i], `sequence ${i} equals its single run`);
      }
      assert.is(results[3].status, 'rejected');
      assert.instance((results[3] as PromiseRejectedResult).reason, AbortError);
      assert.is(h[3].stats.stoppedBy, 'abort');
      assert.ok(b.stats().peakBatch <= 3 && b.stats().peakBatch >= 2, `peak batch ${b.stats().peakBatch}`);
      assert.is(model.memoryStats().liveBytes, base, 'every sequence buffer freed');
    } finally {
      await b.close();
    }
  } finally {
    await model.dispose();
  }
});

test('memory budget and queue limit: requests wait for memory, a full queue refuses, too big is an InputError', async () => {
  const model = await load(ZAMBA);
  try {
    const V = model.config.vocabSize;
    const probe = await model.createBatcher();
    const one = probe.sequenceBytes(12 + 4);
    await probe.close();
    // Room for two sequences at a time.
    const b = await model.createBatcher({ maxBatch: 8, memoryBudget: 2 * one + 1, maxQueue: 3 });
    try {
      const o = { maxNewTokens: 4, eosTokenIds: [] as number[] };
      // The first is admitted at once (the loop starts on submit), the second will join at the next
      // step; three more wait for memory, which the queue allows; the sixth does not fit it.
      const h = [0, 1, 2, 3, 4].map((i) => b.submit({ ...o, prompt: randomIds(12, V, 40 + i) }));
      assert.is(b.queueDepth, 4);
      assert.is(b.queued, 3);
      assert.throws(() => b.submit({ ...o, prompt: randomIds(12, V, 50) }), (e: unknown) => e instanceof QueueFullError);
      assert.throws(() => b.submit({ maxNewTokens: 4000, prompt: randomIds(12, V, 51) }), (e: unknown) => e instanceof InputError && /memory budget/.test((e as Error).message));
      let maxReserved = 0;
      const timer = setInterval(() => { maxReserved = Math.max(maxReserved, b.reservedBytes); }, 1);
      await Promise.all(h.map((x) => x.result));
      clearInterval(timer);
      assert.ok(maxReserved <= 2 * one + 1, `reserved ${maxReserved}`);
      assert.ok(b.stats().peakBatch <= 2, `peak batch ${b.stats().peakBatch}`);
      assert.ok(h[4].stats.queueSeconds > h[0].stats.queueSeconds, 'the last waited for memory');
    } finally {
      await b.close();
    }
  } finally {
    await model.dispose();
  }
});

for (const fx of [ZAMBA, MAMBA]) {
  test(`${fx.arch}: prefix cache: a shared prefix and a repeated prompt restore, prefill the rest, and change nothing`, async () => {
    const model = await load(fx);
    try {
      const V = model.config.vocabSize;
      const system = randomIds(13, V, 70);
      const a = [...system, ...randomIds(6, V, 71)], c = [...system, ...randomIds(9, V, 72)];
      const o = { maxNewTokens: 5, eosTokenIds: [] as number[] };
      const want = await singles(model, [a, c], o);
      const cache = await model.createPrefixCache(1 << 24);
      const b = await model.createBatcher({ prefixCache: cache });
      try {
        const run = async (prompt: number[], savePrefixes?: number[]) => {
          const h = b.submit({ ...o, prompt, savePrefixes });
          const stats = await h.result;
          return { ids: [...prompt, ...h.tokens], stats };
        };
        const r1 = await run(a, [system.length]);
        assert.is(r1.stats.restoredTokens, 0);
        assert.is(r1.stats.prefilledTokens, a.length);
        assert.equal(r1.ids, want[0]);
        // Another prompt after the same system prompt: restored at the system boundary.
        const r2 = await run(c, [system.length]);
        assert.is(r2.stats.restoredTokens, system.length);
        assert.is(r2.stats.prefilledTokens, c.length - system.length);
        assert.equal(r2.ids, want[1], 'same tokens as without the cache');
        // The same prompt again: everything but its last token is restored.
        const r3 = await run(a);
        assert.is(r3.stats.restoredTokens, a.length - 1);
        assert.is(r3.stats.prefilledTokens, 1);
        assert.equal(r3.ids, want[0]);
        // A continued conversation: the previous prompt (minus its last token) is a prefix.
        const longer = [...r1.ids, ...randomIds(4, V, 73)];
        const r4 = await run(longer);
        assert.is(r4.stats.restoredTokens, a.length - 1);
        assert.equal(r4.ids, (await singles(model, [longer], o))[0]);
        const st = cache.stats();
        assert.is(st.hits, 3);
        assert.ok(st.entries >= 3 && st.bytes <= st.budgetBytes);
      } finally {
        await b.close();
      }
      // A budget that holds one snapshot: the older one is evicted.
      const small = await model.createPrefixCache(1);
      const s = model.createSession();
      await s.append(system);
      const snap = await s.saveState();
      s.dispose();
      const tiny = await model.createPrefixCache(snap.byteLength + 10);
      assert.ok(tiny.put(system, snap));
      assert.ok(tiny.put(system.slice(0, 5), snap));
      assert.is(tiny.stats().entries, 1);
      assert.is(tiny.stats().evictions, 1);
      assert.ok(tiny.lookup(a) === undefined || tiny.lookup(a)!.length === 5);
      assert.not.ok(small.put(system, snap), 'a snapshot over the budget is not kept');
    } finally {
      await model.dispose();
    }
  });
}

test.run();
