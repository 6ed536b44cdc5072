// IEEE binary16 and bfloat16 <-> number conversions for the quantization reference code and the
// GGUF reader/writer (small scalar work: block scales, metadata, test tensors). Bulk conversion of
// checkpoint data goes through host.wasm (src/wasm/host.ts). All roundings are to nearest, ties to
// even, the rule ggml's GGML_FP32_TO_FP16 (and F16C's _cvtss_sh(x, 0)) applies.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The f32 bit pattern of `v` (after rounding v to f32). */
export function f32Bits(v: number): number {
  f32[0] = v;
  return u32[0];
}

/** The f32 whose bit pattern is `bits`. */
export function bitsToF32(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

/**
 * binary16 bits of `v` rounded to f32 first (what C does with a float argument), then to nearest
 * even half: overflow -> inf, f16 subnormals kept, NaN -> 0x7e00 (ggml's canonical NaN).
 */
export function f32ToF16Bits(v: number): number {
  const x = f32Bits(v);
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: the value in units of 2^-24 is (1.m x 2^(exp-127)) / 2^-24 = m' >> (14 - e).
    const shift = 14 - e;
    if (shift > 24) return sign; // below half of the smallest subnormal (f32 subnormals too)
    const m = mant | 0x800000;
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1))) q++;
    return sign | q; // q may reach 0x400, the smallest normal: still the right bits
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1))) q++; // a carry into the exponent is right (up to inf)
  return sign | q;
}

/** The value of binary16 bits `h` (exact; NaN for NaN patterns). */
export function f16BitsToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** `v` rounded to f32, then to f16 and back: the value a ggml_half holds. */
export function roundToF16(v: number): number {
  return f16BitsToNumber(f32ToF16Bits(v));
}

/** bfloat16 bits of `v` (rounded to f32 first), to nearest even; NaN stays a quiet NaN. */
export function f32ToBf16Bits(v: number): number {
  const x = f32Bits(v);
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToNumber(h: number): number {
  return bitsToF32((h & 0xffff) << 16);
}
