// Causal GQA attention over a KV cache (flash and split-K kernels) against the float64 two-pass
// reference in test/reference/layers.ts: odd T and head dims, GQA groups, continuation (pos0 > 0),
// q read from inside a wider qkv row, and cache rows past the valid range poisoned with NaN (a
// kernel that reads or weights a future row fails).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray } from '../helpers/gpu.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import { InputError } from '../../src/errors.ts';
import { attention, attentionScratchBytes, type AttentionAlgorithm } from '../../src/backends/webgpu/kernels/attention.ts';
import { attentionRef } from '../reference/layers.ts';

// T, pos0, nHeads, nKvHeads, headDim, q layout: 'qkv' = q inside a wider row at offset 5, stride
// + 3 (scalar reads), 'packed' = [T, nHeads * hd] (vec4 reads when hd % 4 == 0)
const cases: [number, number, number, number, number, 'qkv' | 'packed'][] = [
  [1, 0, 3, 1, 8, 'qkv'],
  [1, 17, 3, 3, 12, 'packed'],
  [5, 17, 3, 1, 12, 'qkv'],
  [5, 17, 3, 1, 10, 'packed'],   // hd not a multiple of 4: scalar reads even when packed
  [37, 0, 3, 3, 8, 'packed'],
  [37, 17, 3, 1, 128, 'qkv'],
  [37, 17, 3, 1, 128, 'packed'],
  [130, 17, 3, 1, 8, 'qkv'],
  [1, 700, 4, 2, 128, 'packed'], // decode over a longer context: split-K uses 11 splits + combine
  [3, 5, 2, 1, 224, 'qkv'],      // Zamba2-7B head dim: 224 flash threads, 4 dims per split-K thread
  [2, 130, 6, 3, 160, 'packed'],
];

/**
 * Tolerance: |got - ref| <= 1e-5 absolute. Outputs are convex combinations of V rows (unit normal,
 * |v| < ~5). Scores are f32 dot products of <= 224 terms (error ~1e-6 with |score| up to ~10 here),
 * which perturbs each softmax weight by that relative amount; exp adds a few ulp, the online
 * rescaling a few more roundings: a few 1e-6 at worst. A masking or GQA mistake is O(0.1).
 */
const TOL = 1e-5;

async function runCase(T: number, pos0: number, nHeads: number, nKv: number, hd: number, layout: 'qkv' | 'packed', algorithm: AttentionAlgorithm): Promise<void> {
  const ctx = await testGpu();
  const keys = pos0 + T, capacity = keys + 7, kvw = nKv * hd;
  const qOffset = layout === 'qkv' ? 5 : 0, qRowStride = layout === 'qkv' ? (nHeads + 2 * nKv) * hd + 3 : nHeads * hd;
  const q = randomArray(qOffset + T * qRowStride, 101 + T * hd + pos0, 1.5);
  const k = randomArray(capacity * kvw, 103 + keys * hd, 1);
  const v = randomArray(capacity * kvw, 107 + keys * hd, 1);
  for (let i = keys * kvw; i < capacity * kvw; i++) { k[i] = NaN; v[i] = NaN; }
  const scale = 1 / Math.sqrt(hd / 2);
  const bq = ctx.upload('t:q', q), bk = ctx.upload('kv:k', k), bv = ctx.upload('kv:v', v);
  const bo = ctx.alloc.create('t:out', T * nHeads * hd * 4, STORAGE_RW);
  await attention(ctx, { q: bq, qOffset, qRowStride, kCache: bk, vCache: bv, out: bo, T, pos0, nHeads, nKvHeads: nKv, headDim: hd, scale, algorithm });
  const got = await ctx.readF32(bo, 0, T * nHeads * hd);
  const ref = attentionRef(q, qOffset, qRowStride, k, v, T, pos0, nHeads, nKv, hd, scale);
  let worst = 0, at = -1;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i] - ref[i]);
    if (!(d <= worst)) { worst = d; at = i; }
  }
  assert.ok(worst <= TOL, `${algorithm}: max error ${worst} at ${at} (t=${Math.floor(at / (nHeads * hd))}): got ${got[at]} want ${ref[at]}`);
  for (const b of [bq, bk, bv, bo]) ctx.alloc.destroy(b);
}

for (const [T, pos0, nHeads, nKv, hd, layout] of cases) {
  for (const algorithm of ['flash', 'splitk'] as const) {
    test(`attention ${algorithm} T=${T} pos0=${pos0} heads=${nHeads} kv=${nKv} hd=${hd} q ${layout}`, async () => {
      const t0 = performance.now();
      await runCase(T, pos0, nHeads, nKv, hd, layout, algorithm);
      if (process.env.MSL_TIMING) console.log(`${algorithm} T=${T} hd=${hd}: ${(performance.now() - t0).toFixed(0)} ms`);
    });
  }
}

test('attention: prefill in two calls equals one call (continuation through the cache)', async () => {
  const ctx = await testGpu();
  const nHeads = 4, nKv = 2, hd = 12, T1 = 23, T2 = 14, T = T1 + T2, kvw = nKv * hd;
  const q = randomArray(T * nHeads * hd, 5, 1.5);
  const bq = ctx.upload('t:q', q);
  const bk = ctx.upload('kv:k', randomArray(T * kvw, 6)), bv = ctx.upload('kv:v', randomArray(T * kvw, 7));
  const whole = ctx.alloc.create('t:o1', T * nHeads * hd * 4, STORAGE_RW);
  const pieces = ctx.alloc.create('t:o2', T * nHeads * hd * 4, STORAGE_RW);
  const args = { q: bq, qRowStride: nHeads * hd, kCache: bk, vCache: bv, nHeads, nKvHeads: nKv, headDim: hd, scale: 0.3 };
  await attention(ctx, { ...args, out: whole, T, pos0: 0 });
  const first = ctx.alloc.create('t:o3', T1 * nHeads * hd * 4, STORAGE_RW);
  await attention(ctx, { ...args, out: first, T: T1, pos0: 0 });
  ctx.copy(first, 0, pieces, 0, T1 * nHeads * hd * 4);
  const second = ctx.alloc.create('t:o4', T2 * nHeads * hd * 4, STORAGE_RW);
  await attention(ctx, { ...args, qOffset: T1 * nHeads * hd, out: second, T: T2, pos0: T1 });
  ctx.copy(second, 0, pieces, T1 * nHeads * hd * 4, T2 * nHeads * hd * 4);
  const a = await ctx.readF32(whole), b = await ctx.readF32(pieces);
  // Same kernel (flash), same key order per query: identical up to the tile grouping of queries.
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= 1e-6, `max difference ${worst}`);
  for (const x of [bq, bk, bv, whole, pieces, first, second]) ctx.alloc.destroy(x);
});

test('attentionScratchBytes: split-K partials only, O(T * nHeads * splits * hd)', () => {
  // 701 keys = 11 tiles of 64 use 11 splits, but the buffer is sized for the 64 splits 4 heads
  // can ever use, so it is the same at every context length (flat scratch).
  assert.is(attentionScratchBytes({ T: 1, pos0: 700, nHeads: 4, headDim: 128 }), 1 * 4 * 64 * 130 * 4);
  assert.is(attentionScratchBytes({ T: 1, pos0: 70000, nHeads: 4, headDim: 128 }), 1 * 4 * 64 * 130 * 4);
  // Zamba2-1.2B decode at 4k context: 32 heads, 8 splits of 512 keys.
  assert.is(attentionScratchBytes({ T: 1, pos0: 4095, nHeads: 32, headDim: 128 }), 32 * 8 * 130 * 4);
  assert.is(attentionScratchBytes({ T: 1, pos0: 40, nHeads: 32, headDim: 128 }), 0, 'one split writes out directly');
  assert.is(attentionScratchBytes({ T: 256, pos0: 0, nHeads: 32, headDim: 128 }), 0, 'flash needs no scratch');
});

test('attention: bad shapes are InputErrors', async () => {
  const ctx = await testGpu();
  const b = ctx.upload('t:b', new Float32Array(64)), o = ctx.alloc.create('t:o', 256, STORAGE_RW);
  const base = { q: b, qRowStride: 8, kCache: b, vCache: b, out: o, T: 1, pos0: 0, nHeads: 3, nKvHeads: 2, headDim: 8, scale: 1 };
  for (const bad of [{}, { nKvHeads: 3, pos0: 100 }, { nKvHeads: 1, out: b }]) {
    let err: unknown;
    try { await attention(ctx, { ...base, ...bad }); } catch (e) { err = e; }
    assert.instance(err, InputError, JSON.stringify(Object.keys(bad)));
  }
  ctx.alloc.destroy(b); ctx.alloc.destroy(o);
});

test.run();
