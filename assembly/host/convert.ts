// 16-bit float <-> f32 conversions over pointers into linear memory, SIMD where it pays.
// Element order is the safetensors byte order (little-endian); n = element count. The caller
// (src/wasm/host.ts) checks bounds: release builds strip asserts.
//   bf16 -> f32 : exact (bits << 16).
//   f16  -> f32 : exact, subnormals, +-0, inf and NaN (payload kept).
//   f32  -> bf16: round to nearest, ties to even; NaN stays a (quiet) NaN.
//   f32  -> f16 : round to nearest, ties to even, overflow to inf, f16 subnormals; NaN -> 0x7e00.

/** dst f32 [n] <- src bf16 [n]. */
export function bf16ToF32(src: usize, dst: usize, n: usize): void {
  let i: usize = 0;
  const zero = i16x8.splat(0);
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (i << 1));
    // Interleave a zero below each half: the half becomes the high 16 bits of a u32 lane.
    v128.store(dst + (i << 2), v128.shuffle<u16>(zero, h, 0, 8, 1, 9, 2, 10, 3, 11));
    v128.store(dst + (i << 2) + 16, v128.shuffle<u16>(zero, h, 4, 12, 5, 13, 6, 14, 7, 15));
  }
  for (; i < n; i++) store<u32>(dst + (i << 2), <u32>load<u16>(src + (i << 1)) << 16);
}

@inline function halfToFloatBits(h: u32): u32 {
  const sign = (h & 0x8000) << 16;
  const em = h & 0x7fff;
  let o = em << 13;
  const e = o & 0x0f800000;
  if (e == 0x0f800000) return sign | (o + 0x70000000); // inf / NaN: exponent 31 -> 255
  if (e == 0) {
    // Subnormal or zero: value = m * 2^-24, computed exactly in f32 (1.m x 2^-14 minus 2^-14).
    return sign | reinterpret<u32>(reinterpret<f32>(o + 0x38800000) - reinterpret<f32>(<u32>0x38800000));
  }
  return sign | (o + 0x38000000); // rebias 15 -> 127
}

/** dst f32 [n] <- src f16 [n]. */
export function f16ToF32(src: usize, dst: usize, n: usize): void {
  let i: usize = 0;
  const mEm = i32x4.splat(0x7fff);
  const mExp = i32x4.splat(0x0f800000);
  const rebias = i32x4.splat(0x38000000);
  const magic = i32x4.splat(0x38800000);
  for (; i + 4 <= n; i += 4) {
    const h = i32x4.extend_low_i16x8_u(v128.load64_zero(src + (i << 1)));
    const sign = i32x4.shl(v128.xor(h, v128.and(h, mEm)), 16);
    const o = i32x4.shl(v128.and(h, mEm), 13);
    const e = v128.and(o, mExp);
    let r = i32x4.add(o, rebias);
    // inf/NaN: add another 112 << 23 so exponent 31 maps to 255.
    r = i32x4.add(r, v128.and(i32x4.eq(e, mExp), rebias));
    const sub = f32x4.sub(i32x4.add(o, magic), magic);
    r = v128.bitselect(sub, r, i32x4.eq(e, i32x4.splat(0)));
    v128.store(dst + (i << 2), v128.or(r, sign));
  }
  for (; i < n; i++) store<u32>(dst + (i << 2), halfToFloatBits(<u32>load<u16>(src + (i << 1))));
}

/** dst bf16 [n] <- src f32 [n], round to nearest even. */
export function f32ToBf16(src: usize, dst: usize, n: usize): void {
  let i: usize = 0;
  const one = i32x4.splat(1);
  const bias = i32x4.splat(0x7fff);
  const absMask = i32x4.splat(0x7fffffff);
  const inf = i32x4.splat(0x7f800000);
  const quiet = i32x4.splat(0x00400000);
  for (; i + 8 <= n; i += 8) {
    const a = v128.load(src + (i << 2));
    const b = v128.load(src + (i << 2) + 16);
    v128.store(dst + (i << 1), i16x8.narrow_i32x4_u(roundBf16(a, one, bias, absMask, inf, quiet), roundBf16(b, one, bias, absMask, inf, quiet)));
  }
  for (; i < n; i++) store<u16>(dst + (i << 1), <u16>bf16Bits(load<u32>(src + (i << 2))));
}

@inline function roundBf16(x: v128, one: v128, bias: v128, absMask: v128, inf: v128, quiet: v128): v128 {
  const lsb = v128.and(i32x4.shr_u(x, 16), one);
  const rounded = i32x4.shr_u(i32x4.add(x, i32x4.add(bias, lsb)), 16);
  const nan = i32x4.gt_u(v128.and(x, absMask), inf);
  const qnan = i32x4.shr_u(v128.or(x, quiet), 16);
  return v128.bitselect(qnan, rounded, nan);
}

@inline function bf16Bits(x: u32): u32 {
  if ((x & 0x7fffffff) > 0x7f800000) return (x | 0x00400000) >> 16;
  return (x + 0x7fff + ((x >> 16) & 1)) >> 16;
}

@inline function f16Bits(x: u32): u32 {
  const sign = (x >> 16) & 0x8000;
  let ax = x & 0x7fffffff;
  if (ax >= 0x47800000) return sign | (ax > 0x7f800000 ? 0x7e00 : 0x7c00); // >= 65536, inf, NaN
  if (ax < 0x38800000) {
    // Result is an f16 subnormal (or rounds up to the smallest normal): adding 0.5 lines the f16
    // subnormal grid up with f32's last mantissa bits, and the f32 add rounds to nearest even.
    const f = reinterpret<f32>(ax) + reinterpret<f32>(<u32>0x3f000000);
    return sign | (reinterpret<u32>(f) - 0x3f000000);
  }
  const odd = (ax >> 13) & 1;
  ax += 0xc8000fff; // rebias 127 -> 15 ((15 - 127) << 23, mod 2^32) and add half-ulp - 1
  ax += odd;
  return sign | (ax >> 13);
}

/** dst f16 [n] <- src f32 [n], round to nearest even. Scalar: only used for opt-in f32 -> f16. */
export function f32ToF16(src: usize, dst: usize, n: usize): void {
  for (let i: usize = 0; i < n; i++) store<u16>(dst + (i << 1), <u16>f16Bits(load<u32>(src + (i << 2))));
}
