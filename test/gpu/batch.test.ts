// Batched steps (Engine.runBatch): several sequences' tokens in one forward, prefill pieces of
// different lengths packed beside decode tokens, states in pool slots, KV caches per sequence.
// Results equal running each sequence alone: logits within 1e-5 relative to the logit scale (the
// matmuls see other row counts, so sums may be ordered differently; see model.test.ts) and greedy
// ids identical, over a prefill step and several decode steps; and the batched runs agree with the
// float64 reference to the usual 1e-4.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { modelTarget } from '../helpers/gpu.ts';
import { makeFixture, randomIds, type FixtureOptions } from '../fixtures/index.ts';
import { refForward } from '../reference/index.ts';
import { loadModel, type MambaModel } from '../../src/api.ts';
import type { BatchRequest } from '../../src/runtime/engine.ts';

const CASES: FixtureOptions[] = [
  { arch: 'zamba2', variant: 'hybrid-1block', dtype: 'f32', seed: 61 },
  { arch: 'zamba2', variant: 'hybrid-2blocks', dtype: 'bf16', seed: 62 },
  { arch: 'mamba2', variant: 'untied-g2', dtype: 'f32', seed: 63 },
];

function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, scale = 1;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i]) || (Number.isNaN(a[i]) ? Infinity : 0)); scale = Math.max(scale, Math.abs(b[i])); }
  return d / scale;
}

async function load(opts: FixtureOptions, prefillChunk: number): Promise<MambaModel> {
  return loadModel(new Map(makeFixture(opts).files), { ...(await modelTarget()), noTokenizer: true, warmup: false, prefillChunk, kvDtype: 'f32' });
}

for (const opts of CASES) {
  test(`runBatch ${opts.arch}/${opts.variant}: packed prefill then batched decode equal single-sequence runs`, async () => {
    const fx = makeFixture(opts);
    const model = await load(opts, 16);
    try {
      const V = model.config.vocabSize;
      const prompts = [3, 11, 1, 17, 6, 9].map((n, i) => randomIds(n, V, 100 + i));
      // Alone: logits of the last prompt row, then 6 greedy tokens.
      const alone: { logits: Float32Array; ids: number[] }[] = [];
      for (const p of prompts) {
        const s = model.createSession();
        const logits = (await model.engine.run(s.cache, p, 'last'))!;
        const ids: number[] = [];
        let next = logits.indexOf(Math.max(...logits));
        for (let k = 0; k < 6; k++) { ids.push(next); next = await model.engine.runArgmax(s.cache, [next]); }
        alone.push({ logits, ids });
        s.dispose();
      }
      // Together: one runBatch for all prompts (46 tokens in steps of 16 rows), then decode steps.
      const sessions = prompts.map(() => model.createSession());
      try {
        const first = await model.engine.runBatch(prompts.map((ids, i) => ({ cache: sessions[i].cache, ids, want: 'logits' } satisfies BatchRequest)));
        first.forEach((r, i) => assert.ok(relDiff(r.logits!, alone[i].logits) <= 1e-5, `prompt ${i}: logits ${relDiff(r.logits!, alone[i].logits)}`));
        // The reference agrees with the batched logits too.
        for (const i of [1, 3]) {
          const ref = refForward(fx, prompts[i]).logits;
          const last = ref.subarray((prompts[i].length - 1) * V);
          let d = 0;
          for (let v = 0; v < V; v++) d = Math.max(d, Math.abs(first[i].logits![v] - last[v]));
          assert.ok(d <= 1e-4, `prompt ${i} vs f64 reference: ${d}`);
        }
        const got = prompts.map(() => [] as number[]);
        let next = first.map((r) => r.logits!.indexOf(Math.max(...r.logits!)));
        for (let k = 0; k < 6; k++) {
          next.forEach((t, i) => got[i].push(t));
          // Sequences drop out and come back: sequence 2 skips step 3 (continuous batching).
          const active = sessions.map((_, i) => i).filter((i) => !(k === 3 && i === 2));
          const res = await model.engine.runBatch(active.map((i) => ({ cache: sessions[i].cache, ids: [next[i]], want: 'argmax' } satisfies BatchRequest)));
          const stepNext = [...next];
          active.forEach((i, j) => { stepNext[i] = res[j].token!; });
          if (k === 3) {
            // Sequence 2 catches up alone: its state must be where it would be without the others.
            stepNext[2] = (await model.engine.runBatch([{ cache: sessions[2].cache, ids: [next[2]], want: 'argmax' }]))[0].token!;
          }
          next = stepNext;
        }
        got.forEach((ids, i) => assert.equal(ids, alone[i].ids, `sequence ${i} greedy ids`));
      } finally {
        for (const s of sessions) s.dispose();
      }
    } finally {
      await model.dispose();
    }
  });
}

test('runBatch: typed errors for a repeated sequence, an empty request and an unknown want', async () => {
  const model = await load(CASES[0], 16);
  try {
    const s = model.createSession();
    const bad = async (reqs: BatchRequest[], re: RegExp) => {
      try { await model.engine.runBatch(reqs); assert.unreachable('ran'); } catch (e) { assert.match((e as Error).message, re); }
    };
    await bad([{ cache: s.cache, ids: [1], want: 'argmax' }, { cache: s.cache, ids: [2], want: 'argmax' }], /same sequence/);
    await bad([{ cache: s.cache, ids: [], want: 'argmax' }], /no tokens/);
    await bad([{ cache: s.cache, ids: [1], want: 'nope' as never }], /unknown want/);
    await bad([{ cache: s.cache, ids: [1e9], want: 'argmax' }], /outside the vocabulary/);
    assert.is(s.cache.position, 0, 'nothing ran');
    s.dispose();
  } finally {
    await model.dispose();
  }
});

test.run();
