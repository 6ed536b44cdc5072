// Causal GQA attention over an f16 KV cache (IEEE halves packed two per u32, element 2i in the
// low half, as shaders/kv_write.wgsl stores them), flash and split-K, against the float64
// two-pass reference (test/reference/layers.ts) on the f16-rounded K/V: the cache's storage
// rounding is part of the input, so the only error left is the kernels' f32 arithmetic. Odd T,
// head dims not multiples of 4 (element reads), GQA, continuation, long contexts (split-K + combine),
// rows past the valid range poisoned with f16 NaN; kv_write's f16 path round trip; typed errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray } from '../helpers/gpu.ts';
import { f16BitsToNumber, toF16Bits } from '../helpers/tensors.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import { InputError } from '../../src/errors.ts';
import { attention, type AttentionAlgorithm } from '../../src/backends/webgpu/kernels/attention.ts';
import { kvWrite } from '../../src/backends/webgpu/kernels/kv.ts';
import { attentionRef } from '../reference/layers.ts';

// T, pos0, nHeads, nKvHeads, headDim, q layout (see attention.test.ts)
const cases: [number, number, number, number, number, 'qkv' | 'packed'][] = [
  [1, 0, 3, 1, 8, 'qkv'],
  [1, 17, 3, 3, 12, 'packed'],
  [5, 17, 3, 1, 10, 'packed'],   // hd % 4 != 0: element reads of packed halves
  [37, 17, 3, 1, 128, 'qkv'],
  [37, 5, 2, 1, 6, 'packed'],
  [130, 17, 3, 1, 8, 'qkv'],
  [1, 700, 4, 2, 128, 'packed'], // split-K with 11 splits + combine
  [3, 5, 2, 1, 224, 'qkv'],
];

/** Same bound as attention.test.ts: outputs are convex combinations of O(1) values; f32 scores. */
const TOL = 1e-5;

/** f16-rounded copy (as f32) and the packed words of `v` [rows, width]. */
function toF16Cache(v: Float32Array): { rounded: Float32Array; words: Uint32Array } {
  const bits = toF16Bits(v);
  const rounded = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) rounded[i] = f16BitsToNumber(bits[i]);
  return { rounded, words: new Uint32Array(bits.buffer, 0, bits.length / 2) };
}

async function runCase(T: number, pos0: number, nHeads: number, nKv: number, hd: number, layout: 'qkv' | 'packed', algorithm: AttentionAlgorithm): Promise<number> {
  const ctx = await testGpu();
  const keys = pos0 + T, capacity = keys + 6, kvw = nKv * hd;
  const qOffset = layout === 'qkv' ? 5 : 0, qRowStride = layout === 'qkv' ? (nHeads + 2 * nKv) * hd + 3 : nHeads * hd;
  const q = randomArray(qOffset + T * qRowStride, 201 + T * hd + pos0, 1.5);
  const k = randomArray(capacity * kvw, 203 + keys * hd, 1);
  const v = randomArray(capacity * kvw, 207 + keys * hd, 1);
  for (let i = keys * kvw; i < capacity * kvw; i++) { k[i] = NaN; v[i] = NaN; }
  const kc = toF16Cache(k), vc = toF16Cache(v);
  const scale = 1 / Math.sqrt(hd / 2);
  const bq = ctx.upload('t:q', q), bk = ctx.upload('kv:k', kc.words), bv = ctx.upload('kv:v', vc.words);
  const bo = ctx.alloc.create('t:out', T * nHeads * hd * 4, STORAGE_RW);
  try {
    await attention(ctx, { q: bq, qOffset, qRowStride, kCache: bk, vCache: bv, kvDtype: 'f16', out: bo, T, pos0, nHeads, nKvHeads: nKv, headDim: hd, scale, algorithm });
    const got = await ctx.readF32(bo, 0, T * nHeads * hd);
    const ref = attentionRef(q, qOffset, qRowStride, kc.rounded, vc.rounded, T, pos0, nHeads, nKv, hd, scale);
    let worst = 0, at = -1;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(got[i] - ref[i]);
      if (!(d <= worst)) { worst = d; at = i; }
    }
    assert.ok(worst <= TOL, `${algorithm}: max error ${worst} at ${at}: got ${got[at]} want ${ref[at]}`);
    return worst;
  } finally {
    for (const b of [bq, bk, bv, bo]) ctx.alloc.destroy(b);
  }
}

for (const [T, pos0, nHeads, nKv, hd, layout] of cases) {
  for (const algorithm of ['flash', 'splitk'] as const) {
    test(`attention f16 KV ${algorithm} T=${T} pos0=${pos0} heads=${nHeads} kv=${nKv} hd=${hd} q ${layout}`, async () => {
      const worst = await runCase(T, pos0, nHeads, nKv, hd, layout, algorithm);
      if (process.env.MSL_TEST_ERRORS) console.log(`attention f16 KV ${algorithm} T=${T} hd=${hd}: max error ${worst.toExponential(2)}`);
    });
  }
}

test('kvWrite f16 then attention: the cache holds the f16-rounded rows (round trip through both kernels)', async () => {
  const ctx = await testGpu();
  const T = 9, nHeads = 4, nKv = 2, hd = 12, kvw = nKv * hd;
  const src = randomArray(T * (2 * kvw + 3), 31); // k and v rows side by side, stride 2 * kvw + 3
  const kb = ctx.alloc.create('kv:k', T * kvw * 2, STORAGE_RW), vb = ctx.alloc.create('kv:v', T * kvw * 2, STORAGE_RW);
  const sb = ctx.upload('t:src', src);
  const q = randomArray(T * nHeads * hd, 32, 1.5);
  const bq = ctx.upload('t:q', q), bo = ctx.alloc.create('t:out', T * nHeads * hd * 4, STORAGE_RW);
  try {
    await kvWrite(ctx, { src: sb, srcRowStride: 2 * kvw + 3, T, width: kvw, dst: kb, dstRow: 0, dtype: 'f16' });
    await kvWrite(ctx, { src: sb, srcOffset: kvw, srcRowStride: 2 * kvw + 3, T, width: kvw, dst: vb, dstRow: 0, dtype: 'f16' });
    await attention(ctx, { q: bq, qRowStride: nHeads * hd, kCache: kb, vCache: vb, kvDtype: 'f16', out: bo, T, pos0: 0, nHeads, nKvHeads: nKv, headDim: hd, scale: 0.4 });
    const words = new Uint16Array(await ctx.read(kb));
    const kr = new Float32Array(T * kvw), vr = new Float32Array(T * kvw);
    const kf = new Float32Array(T * kvw), vf = new Float32Array(T * kvw);
    for (let t = 0; t < T; t++) for (let c = 0; c < kvw; c++) { kf[t * kvw + c] = src[t * (2 * kvw + 3) + c]; vf[t * kvw + c] = src[t * (2 * kvw + 3) + kvw + c]; }
    const kh = toF16Bits(kf), vh = toF16Bits(vf);
    for (let i = 0; i < T * kvw; i++) {
      assert.is(words[i], kh[i], `k element ${i}: f16 bits ${words[i]} want ${kh[i]}`);
      kr[i] = f16BitsToNumber(kh[i]); vr[i] = f16BitsToNumber(vh[i]);
    }
    const got = await ctx.readF32(bo);
    const ref = attentionRef(q, 0, nHeads * hd, kr, vr, T, 0, nHeads, nKv, hd, 0.4);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
    assert.ok(worst <= TOL, `max error ${worst}`);
  } finally {
    for (const b of [kb, vb, sb, bq, bo]) ctx.alloc.destroy(b);
  }
});

test('attention f16 KV: short caches, odd row width and unknown dtypes are InputErrors', async () => {
  const ctx = await testGpu();
  const b = ctx.upload('t:b', new Float32Array(64)), o = ctx.alloc.create('t:o', 1024, STORAGE_RW);
  const small = ctx.alloc.create('kv:small', 8 * 2 * 8 - 4, STORAGE_RW); // one f16 element short of 8 rows of 8
  const base = { q: b, qRowStride: 8, kCache: small, vCache: small, out: o, T: 1, pos0: 7, nHeads: 1, nKvHeads: 1, headDim: 8, scale: 1, kvDtype: 'f16' as const };
  try {
    for (const bad of [{}, { headDim: 7, qRowStride: 7, pos0: 0 }, { kvDtype: 'bf16' as unknown as 'f16', pos0: 0 }]) {
      let err: unknown;
      try { await attention(ctx, { ...base, ...bad }); } catch (e) { err = e; }
      assert.instance(err, InputError, JSON.stringify(bad));
    }
  } finally {
    for (const x of [b, o, small]) ctx.alloc.destroy(x);
  }
});

test.run();
