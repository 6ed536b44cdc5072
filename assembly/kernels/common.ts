// Helpers shared by the kernel families: the work split, fixed-order horizontal sums, exact f16
// decoding and the multiply-add used by the hot loops. Everything is @inline: no call overhead,
// no static data, no allocation.

/** Built with `--use RELAXED=1 --enable relaxed-simd` (build/kernels-relaxed.wasm). */
// @ts-ignore: RELAXED is a compile-time constant defined on the asc command line
@inline export const RELAXED_SIMD: bool = isDefined(RELAXED);

/**
 * a * b + c. Fused (relaxed_madd, one rounding on FMA hardware) in the relaxed build, two roundings
 * otherwise. Every thread runs the same build, so results stay independent of the thread count.
 */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** First unit of thread ti when `total` units are split into tc contiguous ranges. */
@inline export function splitLo(total: i32, ti: i32, tc: i32): i32 {
  return <i32>((<i64>total * <i64>ti) / <i64>tc);
}

/** Horizontal sum in a fixed order: (v0 + v2) + (v1 + v3). */
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** [hsum(a), hsum(b), hsum(c), hsum(d)], each lane in exactly the order hsum uses. */
@inline export function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  // [a0+a2, b0+b2, a1+a3, b1+b3]
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * Exact binary16 -> f32 for four lanes that each hold an f16 in their high half (h << 16, low half
 * zero, as an interleave with zero produces). Integer arithmetic only: subnormal halves are formed
 * as (2^-14 + m 2^-24) - 2^-14 in normal f32 (an f32 denormal operand would cost ~100 cycles in a
 * microcode assist on x86); inf and NaN keep their payload.
 */
@inline export function f16HiToF32(t: v128): v128 {
  const sign = v128.and(t, i32x4.splat(<i32>0x80000000));
  const o = v128.and(i32x4.shr_u(t, 3), i32x4.splat(0x0fffe000)); // exponent+mantissa << 13
  const e = v128.and(o, i32x4.splat(0x0f800000));
  const sub = i32x4.eq(e, i32x4.splat(0));
  const inf = i32x4.eq(e, i32x4.splat(0x0f800000));
  let bits = i32x4.add(o, i32x4.splat(0x38000000)); // rebias 15 -> 127
  bits = i32x4.add(bits, v128.and(sub, i32x4.splat(0x00800000)));
  bits = i32x4.add(bits, v128.and(inf, i32x4.splat(0x38000000))); // exponent 31 -> 255
  const f = f32x4.sub(bits, v128.and(sub, i32x4.splat(0x38800000))); // minus 2^-14 (subnormals only)
  return v128.or(f, sign);
}

/**
 * Lanes of q (eight halves) that are not normal numbers (zero, subnormal, inf or NaN): em + 0x400
 * as i16 is below 0x800 exactly for em < 0x400 or em >= 0x7c00, em = the half without its sign.
 * Where no lane is set, f16FastLo/Hi convert exactly with a shift, a mask and one multiply.
 */
@inline export function f16Special(q: v128): v128 {
  return i16x8.lt_s(i16x8.add(v128.and(q, i16x8.splat(0x7fff)), i16x8.splat(0x0400)), i16x8.splat(0x0800));
}

/** f16HiToF32 for normal halves only: sign | em << 13 (arithmetic shift keeps the sign) times 2^112. */
@inline export function f16FastHiToF32(t: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shr_s(t, 3), i32x4.splat(<i32>0x8fffe000)), f32x4.splat(reinterpret<f32>(<u32>0x77800000)));
}
@inline export function f16FastLo(q: v128): v128 { return f16FastHiToF32(bf16Lo(q)); }
@inline export function f16FastHi(q: v128): v128 { return f16FastHiToF32(bf16Hi(q)); }

/** Four f16 at p (8 bytes) -> f32x4, exact. */
@inline export function loadF16x4(p: usize): v128 {
  const h = v128.load64_zero(p);
  return f16HiToF32(v128.shuffle<u16>(i16x8.splat(0), h, 0, 8, 1, 9, 2, 10, 3, 11));
}

/** One f16 (the low 16 bits of h) -> f32, exact (scalar, for block scales). */
@inline export function f16ToF32(h: u32): f32 {
  const em = h & 0x7fff;
  // em << 13 is the f32 with the right mantissa and an exponent 112 too small; the multiply by
  // 2^112 is exact (for subnormal halves too, through a rare f32-denormal operand).
  let f = reinterpret<f32>(em << 13) * reinterpret<f32>(<u32>0x77800000);
  if (em >= 0x7c00) f = reinterpret<f32>((em << 13) | 0x7f800000);
  return reinterpret<f32>(reinterpret<u32>(f) | ((h & 0x8000) << 16));
}

/** Eight bf16 at p (16 bytes) -> two f32x4 (elements 0..3, 4..7), exact: bits << 16. */
@inline export function bf16Lo(q: v128): v128 { return v128.shuffle<u16>(i16x8.splat(0), q, 0, 8, 1, 9, 2, 10, 3, 11); }
@inline export function bf16Hi(q: v128): v128 { return v128.shuffle<u16>(i16x8.splat(0), q, 4, 12, 5, 13, 6, 14, 7, 15); }
/** Eight f16 held in q -> two f32x4, exact. */
@inline export function f16Lo(q: v128): v128 { return f16HiToF32(bf16Lo(q)); }
@inline export function f16Hi(q: v128): v128 { return f16HiToF32(bf16Hi(q)); }

/** Sixteen i8 -> four f32x4 (elements 0..3, 4..7, 8..11, 12..15), exact. */
@inline export function i8ToF32_0(q: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(q))); }
@inline export function i8ToF32_1(q: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_low_i8x16_s(q))); }
@inline export function i8ToF32_2(q: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_high_i8x16_s(q))); }
@inline export function i8ToF32_3(q: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(i16x8.extend_high_i8x16_s(q))); }

/** Sum over 16 x values at xp weighted by the 16 i8 in q (four products per vector, two chains). */
@inline export function dotI8x16(q: v128, xp: usize): v128 {
  const lo = i16x8.extend_low_i8x16_s(q);
  const hi = i16x8.extend_high_i8x16_s(q);
  let a = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), v128.load(xp));
  let b = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), v128.load(xp, 16));
  a = madd(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), v128.load(xp, 32), a);
  b = madd(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), v128.load(xp, 48), b);
  return f32x4.add(a, b);
}

/** Stores the 16 i8 of q as f32 at dst (64 bytes). */
@inline export function storeI8x16(q: v128, dst: usize): void {
  const lo = i16x8.extend_low_i8x16_s(q);
  const hi = i16x8.extend_high_i8x16_s(q);
  v128.store(dst, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)));
  v128.store(dst, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), 16);
  v128.store(dst, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), 32);
  v128.store(dst, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), 48);
}

@inline export function align16(v: usize): usize { return (v + 15) & ~(<usize>15); }
