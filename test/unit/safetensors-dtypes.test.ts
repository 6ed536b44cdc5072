// host.wasm dtype conversions against float64 references written here from the IEEE definitions:
// every f16 and bf16 bit pattern decoded exactly; f32 -> bf16/f16 round-to-nearest-even checked
// on random bit patterns (all classes) and on constructed ties (both parities, subnormals,
// overflow). Exact comparison: these conversions have one correct answer. Odd lengths exercise
// both the SIMD body and the scalar tail.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostWasm } from '../../src/wasm/host.ts';
import { rng } from '../helpers/gpu.ts';

/** IEEE binary value of a small float format (float64 result; inf/NaN as such). */
function decode(bits: number, expBits: number, manBits: number): number {
  const sign = bits >> (expBits + manBits) & 1 ? -1 : 1;
  const e = (bits >> manBits) & ((1 << expBits) - 1);
  const m = bits & ((1 << manBits) - 1);
  const bias = (1 << (expBits - 1)) - 1;
  if (e === (1 << expBits) - 1) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** (1 - bias - manBits);
  return sign * (1 + m / 2 ** manBits) * 2 ** (e - bias);
}
const decodeF16 = (h: number) => decode(h, 5, 10);
const decodeBf16 = (h: number) => decode(h, 8, 7);

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => { f32[0] = x; return u32[0]; };
const floatOf = (b: number) => { u32[0] = b >>> 0; return f32[0]; };

/** RNE of float64 x (exactly an f32) into a 16-bit format; reference by bracketing search. */
function roundRef(x: number, expBits: number, manBits: number): number {
  const signBit = 1 << (expBits + manBits);
  const infBits = ((1 << expBits) - 1) << manBits;
  if (Number.isNaN(x)) return -1; // checked separately
  const s = x < 0 || Object.is(x, -0) ? signBit : 0;
  const a = Math.abs(x);
  // The value just past the largest finite one, as if the exponent were unbounded (IEEE overflow rule).
  const val = (h: number) => (h === infBits ? 2 ** ((1 << (expBits - 1))) : decode(h, expBits, manBits));
  if (a === Infinity) return s | infBits;
  let lo = 0, hi = infBits; // find the largest h with val(h) <= a
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (val(mid) <= a) lo = mid; else hi = mid - 1;
  }
  if (lo === infBits) return s | infBits;
  const dl = a - val(lo), du = val(lo + 1) - a;
  const pick = dl < du ? lo : du < dl ? lo + 1 : (lo & 1 ? lo + 1 : lo);
  return s | pick;
}

test('f16 -> f32 and bf16 -> f32: every bit pattern, exact', async () => {
  const w = await hostWasm();
  const n = 65536 + 5;
  const src = new Uint16Array(n);
  for (let i = 0; i < n; i++) src[i] = i & 0xffff;
  for (const [kind, dec, conv] of [['f16', decodeF16, (s: Uint16Array) => w.f16ToF32(s)], ['bf16', decodeBf16, (s: Uint16Array) => w.bf16ToF32(s)]] as const) {
    const out = conv(src);
    const outBits = new Uint32Array(out.buffer);
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const want = dec(src[i]);
      if (Number.isNaN(want)) {
        // NaN keeps sign and payload (shifted into the top of the f32 mantissa).
        const h = src[i];
        const expect = kind === 'bf16' ? h << 16 : ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
        if (outBits[i] !== expect >>> 0) bad++;
      } else if (outBits[i] !== bitsOf(want)) {
        if (bad++ < 5) console.log(kind, src[i].toString(16), out[i], want);
      }
    }
    assert.is(bad, 0, `${kind}: mismatches`);
  }
});

function tieInputs(expBits: number, manBits: number): number[] {
  // Midpoints between neighbours (including subnormals and the max-finite/overflow midpoint).
  const out: number[] = [];
  const infBits = ((1 << expBits) - 1) << manBits;
  const r = rng(7);
  for (let k = 0; k < 3000; k++) {
    const h = Math.floor(r() * (infBits - 1));
    const a = decode(h, expBits, manBits);
    const b = h + 1 === infBits ? 2 ** (1 << (expBits - 1)) : decode(h + 1, expBits, manBits);
    const mid = (a + b) / 2;
    if (Math.fround(mid) === mid) out.push(mid, -mid, Math.fround(mid * (1 + 2 ** -23)), Math.fround(mid * (1 - 2 ** -23)));
  }
  return out;
}

test('f32 -> bf16 and f32 -> f16: round to nearest even, random bits and constructed ties', async () => {
  const w = await hostWasm();
  const r = rng(1234);
  for (const [kind, expBits, manBits] of [['bf16', 8, 7], ['f16', 5, 10]] as const) {
    const vals: number[] = [0, -0, 1, -1, Infinity, -Infinity, 65504, 65519.99, 65520, 65536, 1e-8, 5.960464477539063e-8,
      2.9802322387695312e-8, 2.98023224e-8, 6.103515625e-5, 3.4028234663852886e38, 1.401298464324817e-45, ...tieInputs(expBits, manBits)];
    for (let i = 0; i < 20000; i++) {
      // Random bit patterns (every class) and random values near the format's range.
      vals.push(floatOf(Math.floor(r() * 2 ** 32)));
      vals.push(Math.fround((r() - 0.5) * 2 ** (Math.floor(r() * 60) - 30)));
    }
    vals.push(floatOf(0x7fc00001), floatOf(0xff800001), floatOf(0x7f800001)); // NaNs
    const src = Float32Array.from(vals);
    const out = kind === 'bf16' ? w.f32ToBf16(src) : w.f32ToF16(src);
    let bad = 0;
    for (let i = 0; i < src.length; i++) {
      const x = src[i];
      if (Number.isNaN(x)) {
        const d = decode(out[i], expBits, manBits);
        if (!Number.isNaN(d)) bad++;
        continue;
      }
      const want = roundRef(x, expBits, manBits);
      if (out[i] !== want) { if (bad++ < 5) console.log(kind, x, out[i].toString(16), want.toString(16)); }
    }
    assert.is(bad, 0, `${kind}: mismatches among ${src.length}`);
  }
});

test('scratch regions: bounds are checked at the TypeScript boundary', async () => {
  const w = await hostWasm();
  const s = w.scratch(64, 64);
  try {
    assert.throws(() => w.toF32(s, 'bf16', 17), /exceeds scratch/); // 17 * 4 > 64
    w.input(s, 8).set([0x80, 0x3f, 0x00, 0x40, 0x00, 0x00, 0x00, 0xc0]); // bf16 1, 2, 0, -2
    assert.equal([...new Float32Array(w.toF32(s, 'bf16', 4).slice().buffer)], [1, 2, 0, -2]);
  } finally {
    w.freeScratch(s);
  }
});

test.run();
