// Wasm causal GQA attention over a KV cache (f32 and f16 storage) against the float64 two-pass
// softmax of test/reference/layers.ts attentionRef, with the GPU test's shapes (odd head dims,
// strided q inside a qkv row, decode over a long context, GQA), continuation in pieces, and every
// thread configuration of CONFIG_GROUPS (bit-identical across them).
//
// Tolerance: |got - ref| <= 1e-5 absolute (as test/gpu/attention.test.ts): outputs are convex
// combinations of V rows (unit normal); scores are f32 dots of <= 224 terms (~1e-6 with |score|
// up to ~10), exp within 3 ulp, the online rescaling a few more roundings. For f16 caches the
// reference uses the f16-rounded K/V values the kernel reads, so storage rounding is no error.
// A masking or GQA mistake is O(0.1). Cache rows past the valid keys are NaN: reading one shows.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { f16BitsToNumber, f32ToF16Bits } from '../../src/quant/half.ts';
import { attentionRef } from '../reference/layers.ts';
import { acrossConfigs, closeAll, kernels, maxAbsErr, randomArray } from './helpers.ts';
import type { WasmKernels } from '../../src/backends/wasm/kernels.ts';

const TOL = 1e-5;

const cases: [number, number, number, number, number, 'qkv' | 'packed'][] = [
  [1, 0, 3, 1, 8, 'qkv'],
  [1, 17, 3, 3, 12, 'packed'],
  [5, 17, 3, 1, 12, 'qkv'],
  [5, 17, 3, 1, 10, 'packed'],   // hd % 4 != 0: scalar tails
  [37, 0, 3, 3, 8, 'packed'],
  [37, 17, 3, 1, 128, 'qkv'],
  [130, 17, 3, 1, 7, 'qkv'],
  [1, 700, 4, 2, 128, 'packed'], // decode over a longer context
  [3, 5, 2, 1, 224, 'qkv'],
  [2, 130, 6, 3, 160, 'packed'],
];

function cacheBytes(v: Float32Array, f16: boolean): { data: Float32Array | Uint16Array; values: Float32Array } {
  if (!f16) return { data: v, values: v };
  const bits = new Uint16Array(v.length + (v.length % 2));
  const values = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) { bits[i] = f32ToF16Bits(v[i]); values[i] = f16BitsToNumber(bits[i]); }
  return { data: bits, values };
}

for (const [T, pos0, nHeads, nKv, hd, layout] of cases) {
  for (const kvDtype of ['f32', 'f16'] as const) {
    test(`attention ${kvDtype} KV T=${T} pos0=${pos0} heads=${nHeads} kv=${nKv} hd=${hd} q ${layout}`, async () => {
      const keys = pos0 + T, capacity = keys + 7, kvw = nKv * hd;
      const qOffset = layout === 'qkv' ? 5 : 0, qRowStride = layout === 'qkv' ? (nHeads + 2 * nKv) * hd + 3 : nHeads * hd;
      const q = randomArray(qOffset + T * qRowStride, 101 + T * hd + pos0, 1.5);
      const kr = randomArray(capacity * kvw, 103 + keys * hd, 1), vr = randomArray(capacity * kvw, 107 + keys * hd, 1);
      for (let i = keys * kvw; i < capacity * kvw; i++) { kr[i] = NaN; vr[i] = NaN; }
      const K = cacheBytes(kr, kvDtype === 'f16'), V = cacheBytes(vr, kvDtype === 'f16');
      const scale = 1 / Math.sqrt(hd / 2);
      const ref = attentionRef(q, qOffset, qRowStride, K.values, V.values, T, pos0, nHeads, nKv, hd, scale);
      await acrossConfigs('attention', (k) => {
        const bq = k.upload('test:q', q), bk = k.upload('test:k', K.data), bv = k.upload('test:v', V.data);
        const out = k.heap.alloc('test:out', T * nHeads * hd * 4);
        k.attention({ q: bq, qOffset, qRowStride, kCache: bk, vCache: bv, kvDtype, out, T, pos0, nHeads, nKvHeads: nKv, headDim: hd, scale });
        const got = k.readF32(out, 0, T * nHeads * hd);
        for (const b of [bq, bk, bv, out]) k.heap.free(b);
        return got;
      }, (got) => {
        const { err, at } = maxAbsErr(got, ref);
        assert.ok(err <= TOL, `max error ${err} at ${at} (t=${Math.floor(at / (nHeads * hd))}): got ${got[at]} want ${ref[at]}`);
      });
    });
  }
}

test('attention: prefill in two calls equals one call bit for bit (each query is its own unit)', async () => {
  const k: WasmKernels = await kernels({ threads: 2 });
  const nHeads = 4, nKv = 2, hd = 12, T1 = 23, T2 = 14, T = T1 + T2, kvw = nKv * hd;
  const bq = k.upload('test:q', randomArray(T * nHeads * hd, 5, 1.5));
  const bk = k.upload('test:k', randomArray(T * kvw, 6)), bv = k.upload('test:v', randomArray(T * kvw, 7));
  const whole = k.heap.alloc('test:o1', T * nHeads * hd * 4), first = k.heap.alloc('test:o2', T1 * nHeads * hd * 4);
  const second = k.heap.alloc('test:o3', T2 * nHeads * hd * 4);
  const args = { q: bq, qRowStride: nHeads * hd, kCache: bk, vCache: bv, kvDtype: 'f32' as const, nHeads, nKvHeads: nKv, headDim: hd, scale: 0.3 };
  k.attention({ ...args, out: whole, T, pos0: 0 });
  k.attention({ ...args, out: first, T: T1, pos0: 0 });
  k.attention({ ...args, qOffset: T1 * nHeads * hd, out: second, T: T2, pos0: T1 });
  const a = k.readF32(whole, 0, T * nHeads * hd);
  const b = new Float32Array(T * nHeads * hd);
  b.set(k.readF32(first, 0, T1 * nHeads * hd));
  b.set(k.readF32(second, 0, T2 * nHeads * hd), T1 * nHeads * hd);
  assert.equal([...a], [...b]);
  for (const x of [bq, bk, bv, whole, first, second]) k.heap.free(x);
});

test('attention: bad shapes and aliasing are InputErrors', async () => {
  const k = await kernels({ threads: 1 });
  const b = k.upload('test:b', new Float32Array(64)), o = k.heap.alloc('test:o', 256);
  const base = { q: b, qRowStride: 8, kCache: b, vCache: b, kvDtype: 'f32' as const, out: o, T: 1, pos0: 0, nHeads: 3, nKvHeads: 1, headDim: 8, scale: 1 };
  k.attention(base);
  for (const [bad, re] of [[{ nKvHeads: 2 }, /multiple/], [{ pos0: 100 }, /needs/], [{ out: b }, /overlaps/], [{ scale: NaN }, /finite/]] as const) {
    assert.throws(() => k.attention({ ...base, ...bad }), re, JSON.stringify(Object.keys(bad)));
  }
  assert.throws(() => k.attention({ ...base, kvDtype: 'bf16' as 'f16' }), /not supported/);
  k.heap.free(b); k.heap.free(o);
});

test.after(closeAll);
test.run();
