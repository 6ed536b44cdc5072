// Block quantization for the weight loader: f32 rows -> device layout (docs/weight-formats.md),
// GGUF blocks -> device layout, and device layout -> f32. Formats (codes shared with
// src/wasm/host.ts): 0 q8_0, 1 q4_0, 2 q5_0, 3 q4_k, 4 q6_k.
//
// The quantizers produce the same bytes as ggml's reference quantizers (and src/quant/reference.ts,
// their TypeScript port, which is the test oracle): every C float operation is one f32 operation
// here, in the same order, with ggml's nearest_int trick and x86's float -> int8 conversion (low
// byte of a truncation, 0 for NaN/out of range). SIMD never reorders a floating-point sum:
//   - q8_0 / q4_0 / q5_0 vectorize across the 32 values of a block (no sums involved);
//   - q4_k / q6_k run ggml's scale searches with one sub-block per SIMD lane (a super-block's 8 or
//     16 sub-blocks at once), so each lane performs exactly the scalar sequence of operations, and
//     branches become lane masks (v128.bitselect); see the q4_k section for what else is done.
// A block holding a NaN or an infinity is written as an all-zero block and counted in the return
// value (the caller decides whether that is an error); finite inputs of any magnitude are exact.
//
// Pointers: src/dst are byte addresses in linear memory, any alignment (v128 loads and stores are
// unaligned-safe). Section pointers are the starts of a part's sections; rowOffset / blockOffset
// say where in them the first output block goes (block index = rowOffset * K / QK). The caller
// (src/wasm/host.ts) checks every bound: release builds strip asserts.

const Q8_0: i32 = 0;
const Q4_0: i32 = 1;
const Q5_0: i32 = 2;
const Q4_K: i32 = 3;
const Q6_K: i32 = 4;

// ---------------------------------------------------------------------------------------------
// Scalar helpers

/** ggml's nearest_int: the low 23 mantissa bits of f + 1.5 * 2^23, minus 2^22. */
@inline function nearestInt(f: f32): i32 {
  return (reinterpret<i32>(f + <f32>12582912.0) & 0x007fffff) - 0x00400000;
}

@inline function nearestIntX4(v: v128): v128 {
  const t = f32x4.add(v, f32x4.splat(12582912.0));
  return i32x4.sub(v128.and(t, i32x4.splat(0x007fffff)), i32x4.splat(0x00400000));
}

/** f32 -> binary16 bits, round to nearest even; overflow -> inf; NaN -> sign | 0x7e00. */
function toHalf(v: f32): u32 {
  const x = reinterpret<u32>(v);
  const sign = (x >> 16) & 0x8000;
  const exp = <i32>((x >> 23) & 0xff);
  const mant = x & 0x7fffff;
  if (exp == 0xff) return sign | (mant != 0 ? 0x7e00 : 0x7c00);
  const e = exp - 112;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    const shift = 14 - e;
    if (shift > 24) return sign;
    const m = mant | 0x800000;
    let q = m >> <u32>shift;
    const rem = m & ((<u32>1 << <u32>shift) - 1);
    const half = <u32>1 << <u32>(shift - 1);
    if (rem > half || (rem == half && (q & 1) != 0)) q++;
    return sign | q;
  }
  let q = (<u32>e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (q & 1) != 0)) q++;
  return sign | q;
}

/** binary16 bits -> f32, exact. */
@inline function fromHalf(h: u32): f32 {
  const s = (h & 0x8000) << 16;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e == 0) return reinterpret<f32>(s | reinterpret<u32>(<f32>m * reinterpret<f32>(<u32>0x33800000))); // m * 2^-24
  if (e == 31) return reinterpret<f32>(s | 0x7f800000 | (m << 13));
  return reinterpret<f32>(s | ((e + 112) << 23) | (m << 13));
}

/** x86 cvttss2si per lane, reduced to what callers use (the low byte): 0 for NaN / |v| >= 2^31. */
@inline function truncX86X4(v: v128): v128 {
  const ok = f32x4.lt(f32x4.abs(v), f32x4.splat(2147483648.0));
  return v128.and(i32x4.trunc_sat_f32x4_s(v), ok);
}

/** C roundf (half away from zero) per lane, exact. */
@inline function roundAwayX4(v: v128): v128 {
  const t = f32x4.trunc(v);
  const frac = f32x4.abs(f32x4.sub(v, t));
  const one = v128.or(f32x4.splat(1.0), v128.and(v, i32x4.splat(0x80000000)));
  return f32x4.add(t, v128.and(one, f32x4.ge(frac, f32x4.splat(0.5))));
}

/** Low bytes of four i32x4 vectors, in order, as 16 bytes. */
@inline function lowBytes(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = v128.shuffle<u8>(a, b, 0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
  const cd = v128.shuffle<u8>(c, d, 0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
  return v128.shuffle<u8>(ab, cd, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
}

/** Largest |x| bit pattern over n floats (n a multiple of 4); >= 0x7f800000 means a NaN or inf. */
@inline function maxAbsBits(x: usize, n: i32): u32 {
  const absMask = i32x4.splat(0x7fffffff);
  let m = i32x4.splat(0);
  for (let i = 0; i < n; i += 4) m = i32x4.max_u(m, v128.and(v128.load(x + (<usize>i << 2)), absMask));
  const a = max<u32>(<u32>i32x4.extract_lane(m, 0), <u32>i32x4.extract_lane(m, 1));
  const b = max<u32>(<u32>i32x4.extract_lane(m, 2), <u32>i32x4.extract_lane(m, 3));
  return max<u32>(a, b);
}

// ---------------------------------------------------------------------------------------------
// q8_0 / q4_0 / q5_0: 32 values per block, vectorized across the block

function q8Block(x: usize, qs: usize, d: usize): bool {
  const amaxBits = maxAbsBits(x, 32);
  if (amaxBits >= 0x7f800000) {
    v128.store(qs, i32x4.splat(0));
    v128.store(qs + 16, i32x4.splat(0));
    store<u16>(d, 0);
    return true;
  }
  const amax = reinterpret<f32>(amaxBits);
  const dd: f32 = amax / <f32>127.0;
  const id: f32 = dd != 0 ? <f32>1.0 / dd : 0;
  store<u16>(d, <u16>toHalf(dd));
  const vid = f32x4.splat(id);
  for (let h = 0; h < 2; h++) {
    const p = x + <usize>(h << 6);
    const q0 = truncX86X4(roundAwayX4(f32x4.mul(v128.load(p), vid)));
    const q1 = truncX86X4(roundAwayX4(f32x4.mul(v128.load(p + 16), vid)));
    const q2 = truncX86X4(roundAwayX4(f32x4.mul(v128.load(p + 32), vid)));
    const q3 = truncX86X4(roundAwayX4(f32x4.mul(v128.load(p + 48), vid)));
    v128.store(qs + <usize>(h << 4), lowBytes(q0, q1, q2, q3));
  }
  return false;
}

/** ggml's signed max: the first value of largest magnitude (0 when all are zero). */
@inline function signedMax32(x: usize, amaxBits: u32): f32 {
  if (amaxBits == 0) return 0;
  for (let j = 0; j < 32; j++) {
    const v = load<u32>(x + (<usize>j << 2));
    if ((v & 0x7fffffff) == amaxBits) return reinterpret<f32>(v);
  }
  return 0; // unreachable
}

/** Nibble-or-5-bit codes of 4 values: min(top, int8(trunc(x * id + bias))) & 0xff, as ggml computes. */
@inline function smallCodes(v: v128, vid: v128, bias: v128, top: v128): v128 {
  let q = truncX86X4(f32x4.add(f32x4.mul(v, vid), bias));
  q = i32x4.shr_s(i32x4.shl(q, 24), 24);
  return v128.and(i32x4.min_s(q, top), i32x4.splat(0xff));
}

function q4or5Block(x: usize, qs: usize, qh: usize, d: usize, five: bool): bool {
  const amaxBits = maxAbsBits(x, 32);
  if (amaxBits >= 0x7f800000) {
    v128.store(qs, i32x4.splat(0));
    if (five) store<u32>(qh, 0);
    store<u16>(d, 0);
    return true;
  }
  const mx = signedMax32(x, amaxBits);
  const dd: f32 = mx / (five ? <f32>-16.0 : <f32>-8.0);
  const id: f32 = dd != 0 ? <f32>1.0 / dd : 0;
  store<u16>(d, <u16>toHalf(dd));
  const vid = f32x4.splat(id);
  const bias = f32x4.splat(five ? 16.5 : 8.5);
  const top = i32x4.splat(five ? 31 : 15);
  const lo0 = smallCodes(v128.load(x), vid, bias, top);
  const lo1 = smallCodes(v128.load(x + 16), vid, bias, top);
  const lo2 = smallCodes(v128.load(x + 32), vid, bias, top);
  const lo3 = smallCodes(v128.load(x + 48), vid, bias, top);
  const hi0 = smallCodes(v128.load(x + 64), vid, bias, top);
  const hi1 = smallCodes(v128.load(x + 80), vid, bias, top);
  const hi2 = smallCodes(v128.load(x + 96), vid, bias, top);
  const hi3 = smallCodes(v128.load(x + 112), vid, bias, top);
  const lo = lowBytes(lo0, lo1, lo2, lo3);
  const hi = lowBytes(hi0, hi1, hi2, hi3);
  const nib = i8x16.splat(0x0f);
  if (five) {
    // bit 4 of each code -> bit 7 of its byte -> one bitmask bit per value.
    const bitsLo = <u32>i8x16.bitmask(i8x16.shl(lo, 3));
    const bitsHi = <u32>i8x16.bitmask(i8x16.shl(hi, 3));
    store<u32>(qh, bitsLo | (bitsHi << 16));
    v128.store(qs, v128.or(v128.and(lo, nib), i8x16.shl(v128.and(hi, nib), 4)));
  } else {
    v128.store(qs, v128.or(lo, i8x16.shl(hi, 4)));
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// q4_k / q6_k: ggml's scale searches with one sub-block per SIMD lane, so each lane performs
// exactly the scalar sequence of f32 operations (the sums are accumulated in value order) and
// branches become lane masks. What makes them fast without changing a bit:
//   - a whole super-block in one loop (q4_k: its 8 sub-blocks as two vectors; q6_k: 16 as two
//     pairs of vectors): a lane's sums are one serial chain of adds, so independent vectors in the
//     same loop are what keeps the adders busy (q4_k's candidates also depend on each other
//     through the running min);
//   - rounding: for |t| < 2^22, t + 1.5 * 2^23 rounds t to an integer (half to even) exactly as
//     ggml's nearest_int, so clamp(nearest_int(t)) = clamp(t + M) - M, all in f32: the value the
//     sums need, with no int round trip (4 instructions instead of 6, never -0). q6_k's t is
//     bounded by ~33 in every lane whose result is used; q4_k checks a per-candidate bound
//     (|iscale| * max |x - min|, from the sub-block's extremes) and takes the exact integer path
//     for a candidate that fails it;
//   - per-value invariants computed once (q6_k's weights x*x and x*x*x; the same f32 operations);
//   - no copy of the candidate L on every improvement: the winning (iscale, min) is kept and L
//     recomputed, with the exact formula, only where the final pass keeps the search's L
//     (sub-blocks whose quantized scale is 0).

const KX = memory.data(1024, 16);  // x transposed: q4_k [32 values][2 vectors], q6_k [16][4]; lane k of vector v = sub-block 4v + k
const KW = memory.data(1024, 16);  // weights, same layout
const KWX = memory.data(1024, 16); // q6_k: weight * x
const KL = memory.data(1024, 16);  // q4_k: the candidate's L (f32)
const LNAT = memory.data(256, 16); // final L in value order (u8)
const SCALES = memory.data(64, 16); // per sub-block scale (f32)
const MINS = memory.data(64, 16);   // q4_k: per sub-block -min (f32)
const KEEP_IS = memory.data(64, 16); // per sub-block: the iscale that produced the search's L
const KEEP_MN = memory.data(64, 16); // q4_k: the min it was used with
const KEEP_Z = memory.data(64, 16);  // per sub-block: all ones where the search's L is all zeros (flat / tiny)

const T_LIMIT: f32 = 2097152.0; // 2^21: well inside the |t| < 2^22 where nearest_int rounds

/**
 * Transposes n values (a multiple of 4) of 4 sub-blocks that start `stride` floats apart at x:
 * vector i (value i of each, lane k = sub-block k) goes to dst + i * step.
 */
function transposeTo(x: usize, stride: i32, n: i32, dst: usize, step: usize): void {
  const s = <usize>stride << 2;
  for (let i = 0; i < n; i += 4) {
    const p = x + (<usize>i << 2);
    const a = v128.load(p), b = v128.load(p + s), c = v128.load(p + 2 * s), e = v128.load(p + 3 * s);
    const ab0 = v128.shuffle<u32>(a, b, 0, 4, 1, 5);
    const ab1 = v128.shuffle<u32>(a, b, 2, 6, 3, 7);
    const ce0 = v128.shuffle<u32>(c, e, 0, 4, 1, 5);
    const ce1 = v128.shuffle<u32>(c, e, 2, 6, 3, 7);
    const o = dst + <usize>i * step;
    v128.store(o, v128.shuffle<u64>(ab0, ce0, 0, 2));
    v128.store(o + step, v128.shuffle<u64>(ab0, ce0, 1, 3));
    v128.store(o + 2 * step, v128.shuffle<u64>(ab1, ce1, 0, 2));
    v128.store(o + 3 * step, v128.shuffle<u64>(ab1, ce1, 1, 3));
  }
}

@inline function sel(a: v128, b: v128, m: v128): v128 { return v128.bitselect(a, b, m); }

/** q4_k's L, exactly as ggml: clamp(nearest_int(iscale * (x - mn)), 0, 15), as i32 lanes. */
@inline function l4Exact(iscale: v128, x: v128, mn: v128): v128 {
  const l = nearestIntX4(f32x4.mul(iscale, f32x4.sub(x, mn)));
  return i32x4.max_s(i32x4.splat(0), i32x4.min_s(i32x4.splat(15), l));
}

/** q4_k's L as f32 where |iscale * (x - mn)| < 2^22 (then equal to l4Exact's); M = 1.5 * 2^23. */
@inline function l4Fast(iscale: v128, x: v128, mn: v128): v128 {
  const M = f32x4.splat(12582912.0);
  const r = f32x4.add(f32x4.mul(iscale, f32x4.sub(x, mn)), M);
  return f32x4.sub(f32x4.pmin(f32x4.splat(12582927.0), f32x4.pmax(M, r)), M);
}

/**
 * make_qkx2_quants(32, 15, x, weights, rmin -1, rdelta 0.1f, nstep 20) for the 8 sub-blocks of a
 * super-block (KX, KW filled, 2 vectors per value). Writes SCALES, MINS (as -min), KEEP_*.
 */
function qkx2Superblock(): void {
  const zero = f32x4.splat(0);
  let xa = v128.load(KX), xb = v128.load(KX, 16);
  let loA = xa, hiA = xa, loB = xb, hiB = xb;
  let swA = v128.load(KW), swB = v128.load(KW, 16);
  let sxA = f32x4.mul(swA, xa), sxB = f32x4.mul(swB, xb);
  for (let i = 1; i < 32; i++) {
    const p = KX + (<usize>i << 5), q = KW + (<usize>i << 5);
    xa = v128.load(p); xb = v128.load(p, 16);
    loA = sel(xa, loA, f32x4.lt(xa, loA)); hiA = sel(xa, hiA, f32x4.gt(xa, hiA));
    loB = sel(xb, loB, f32x4.lt(xb, loB)); hiB = sel(xb, hiB, f32x4.gt(xb, hiB));
    const wa = v128.load(q), wb = v128.load(q, 16);
    swA = f32x4.add(swA, wa); sxA = f32x4.add(sxA, f32x4.mul(wa, xa));
    swB = f32x4.add(swB, wb); sxB = f32x4.add(sxB, f32x4.mul(wb, xb));
  }
  let mnA = sel(zero, loA, f32x4.gt(loA, zero)), mnB = sel(zero, loB, f32x4.gt(loB, zero));
  const flatA = f32x4.eq(hiA, mnA), flatB = f32x4.eq(hiB, mnB); // all equal: L = 0, scale 0, the_min = -min
  const mn0A = mnA, mn0B = mnB;
  let isA = f32x4.div(f32x4.splat(15.0), f32x4.sub(hiA, mnA)), isB = f32x4.div(f32x4.splat(15.0), f32x4.sub(hiB, mnB));
  let scA = f32x4.div(f32x4.splat(1.0), isA), scB = f32x4.div(f32x4.splat(1.0), isB);
  let keepIsA = isA, keepIsB = isB, keepMnA = mnA, keepMnB = mnB;
  let bestA = zero, bestB = zero;
  for (let i = 0; i < 32; i++) {
    const p = KX + (<usize>i << 5), q = KW + (<usize>i << 5);
    xa = v128.load(p); xb = v128.load(p, 16);
    const da = f32x4.sub(f32x4.add(f32x4.mul(scA, f32x4.convert_i32x4_s(l4Exact(isA, xa, mnA))), mnA), xa);
    const db = f32x4.sub(f32x4.add(f32x4.mul(scB, f32x4.convert_i32x4_s(l4Exact(isB, xb, mnB))), mnB), xb);
    bestA = f32x4.add(bestA, f32x4.mul(v128.load(q), f32x4.mul(da, da)));
    bestB = f32x4.add(bestB, f32x4.mul(v128.load(q, 16), f32x4.mul(db, db)));
  }
  for (let is = 0; is <= 20; is++) {
    const num = f32x4.splat((<f32>-1.0 + <f32>0.1 * <f32>is) + <f32>15.0);
    const rA = f32x4.sub(hiA, mnA), rB = f32x4.sub(hiB, mnB);
    isA = f32x4.div(num, rA);
    isB = f32x4.div(num, rB);
    // |iscale * (x - mn)| <= |iscale| * max(|hi - mn|, |lo - mn|) (f32 rounding is monotonic).
    const okA = v128.or(flatA, f32x4.lt(f32x4.mul(f32x4.abs(isA), f32x4.pmax(f32x4.abs(rA), f32x4.abs(f32x4.sub(loA, mnA)))), f32x4.splat(T_LIMIT)));
    const okB = v128.or(flatB, f32x4.lt(f32x4.mul(f32x4.abs(isB), f32x4.pmax(f32x4.abs(rB), f32x4.abs(f32x4.sub(loB, mnB)))), f32x4.splat(T_LIMIT)));
    let slA = zero, sl2A = zero, sxlA = zero, slB = zero, sl2B = zero, sxlB = zero;
    if (i32x4.all_true(v128.and(okA, okB))) {
      for (let i = 0; i < 32; i++) {
        const p = KX + (<usize>i << 5), q = KW + (<usize>i << 5), r = KL + (<usize>i << 5);
        const xa = v128.load(p), xb = v128.load(p, 16);
        const la = l4Fast(isA, xa, mnA), lb = l4Fast(isB, xb, mnB);
        v128.store(r, la); v128.store(r, lb, 16);
        const wla = f32x4.mul(v128.load(q), la), wlb = f32x4.mul(v128.load(q, 16), lb);
        slA = f32x4.add(slA, wla); sl2A = f32x4.add(sl2A, f32x4.mul(wla, la)); sxlA = f32x4.add(sxlA, f32x4.mul(wla, xa));
        slB = f32x4.add(slB, wlb); sl2B = f32x4.add(sl2B, f32x4.mul(wlb, lb)); sxlB = f32x4.add(sxlB, f32x4.mul(wlb, xb));
      }
    } else {
      for (let i = 0; i < 32; i++) {
        const p = KX + (<usize>i << 5), q = KW + (<usize>i << 5), r = KL + (<usize>i << 5);
        const xa = v128.load(p), xb = v128.load(p, 16);
        const la = f32x4.convert_i32x4_s(l4Exact(isA, xa, mnA)), lb = f32x4.convert_i32x4_s(l4Exact(isB, xb, mnB));
        v128.store(r, la); v128.store(r, lb, 16);
        const wla = f32x4.mul(v128.load(q), la), wlb = f32x4.mul(v128.load(q, 16), lb);
        slA = f32x4.add(slA, wla); sl2A = f32x4.add(sl2A, f32x4.mul(wla, la)); sxlA = f32x4.add(sxlA, f32x4.mul(wla, xa));
        slB = f32x4.add(slB, wlb); sl2B = f32x4.add(sl2B, f32x4.mul(wlb, lb)); sxlB = f32x4.add(sxlB, f32x4.mul(wlb, xb));
      }
    }
    const DA = f32x4.sub(f32x4.mul(swA, sl2A), f32x4.mul(slA, slA)), DB = f32x4.sub(f32x4.mul(swB, sl2B), f32x4.mul(slB, slB));
    const dposA = f32x4.gt(DA, zero), dposB = f32x4.gt(DB, zero);
    if (!v128.any_true(v128.or(dposA, dposB))) continue;
    let tsA = f32x4.div(f32x4.sub(f32x4.mul(swA, sxlA), f32x4.mul(sxA, slA)), DA);
    let tsB = f32x4.div(f32x4.sub(f32x4.mul(swB, sxlB), f32x4.mul(sxB, slB)), DB);
    let tmA = f32x4.div(f32x4.sub(f32x4.mul(sl2A, sxA), f32x4.mul(slA, sxlA)), DA);
    let tmB = f32x4.div(f32x4.sub(f32x4.mul(sl2B, sxB), f32x4.mul(slB, sxlB)), DB);
    const mposA = f32x4.gt(tmA, zero), mposB = f32x4.gt(tmB, zero);
    tmA = sel(zero, tmA, mposA); tsA = sel(f32x4.div(sxlA, sl2A), tsA, mposA);
    tmB = sel(zero, tmB, mposB); tsB = sel(f32x4.div(sxlB, sl2B), tsB, mposB);
    let curA = zero, curB = zero;
    for (let i = 0; i < 32; i++) {
      const p = KX + (<usize>i << 5), q = KW + (<usize>i << 5), r = KL + (<usize>i << 5);
      const da = f32x4.sub(f32x4.add(f32x4.mul(tsA, v128.load(r)), tmA), v128.load(p));
      const db = f32x4.sub(f32x4.add(f32x4.mul(tsB, v128.load(r, 16)), tmB), v128.load(p, 16));
      curA = f32x4.add(curA, f32x4.mul(v128.load(q), f32x4.mul(da, da)));
      curB = f32x4.add(curB, f32x4.mul(v128.load(q, 16), f32x4.mul(db, db)));
    }
    const betA = v128.and(dposA, f32x4.lt(curA, bestA)), betB = v128.and(dposB, f32x4.lt(curB, bestB));
    if (!v128.any_true(v128.or(betA, betB))) continue;
    bestA = sel(curA, bestA, betA); scA = sel(tsA, scA, betA);
    keepIsA = sel(isA, keepIsA, betA); keepMnA = sel(mnA, keepMnA, betA); mnA = sel(tmA, mnA, betA);
    bestB = sel(curB, bestB, betB); scB = sel(tsB, scB, betB);
    keepIsB = sel(isB, keepIsB, betB); keepMnB = sel(mnB, keepMnB, betB); mnB = sel(tmB, mnB, betB);
  }
  v128.store(SCALES, sel(zero, scA, flatA)); v128.store(SCALES, sel(zero, scB, flatB), 16);
  v128.store(MINS, f32x4.neg(sel(mn0A, mnA, flatA))); v128.store(MINS, f32x4.neg(sel(mn0B, mnB, flatB)), 16);
  v128.store(KEEP_IS, keepIsA); v128.store(KEEP_IS, keepIsB, 16);
  v128.store(KEEP_MN, keepMnA); v128.store(KEEP_MN, keepMnB, 16);
  v128.store(KEEP_Z, flatA); v128.store(KEEP_Z, flatB, 16);
}

/** The 6-bit scale (lo 8 bits) and min (next 8) of sub-block j from the 12 packed bytes at s. */
@inline function scaleMinK4(j: i32, s: usize): u32 {
  if (j < 4) return (<u32>load<u8>(s + j) & 63) | ((<u32>load<u8>(s + j + 4) & 63) << 8);
  const sc = (<u32>load<u8>(s + j + 4) & 0xf) | ((<u32>load<u8>(s + j - 4) >> 6) << 4);
  const m = (<u32>load<u8>(s + j + 4) >> 4) | ((<u32>load<u8>(s + j) >> 6) << 4);
  return sc | (m << 8);
}

/** quantize_row_q4_K_ref for one super-block at x into the 144-byte block at y. */
function q4kBlock(x: usize, y: usize): bool {
  if (maxAbsBits(x, 256) >= 0x7f800000) {
    for (let i = 0; i < 144; i += 16) v128.store(y + i, i32x4.splat(0));
    return true;
  }
  transposeTo(x, 32, 32, KX, 32);
  transposeTo(x + 512, 32, 32, KX + 16, 32);
  // weights = av_x + |x|, av_x = sqrt(sum x^2 / 32) per sub-block
  let s2A = f32x4.splat(0), s2B = f32x4.splat(0);
  for (let l = 0; l < 32; l++) {
    const p = KX + (<usize>l << 5);
    const xa = v128.load(p), xb = v128.load(p, 16);
    s2A = f32x4.add(s2A, f32x4.mul(xa, xa));
    s2B = f32x4.add(s2B, f32x4.mul(xb, xb));
  }
  const avA = f32x4.sqrt(f32x4.div(s2A, f32x4.splat(32.0))), avB = f32x4.sqrt(f32x4.div(s2B, f32x4.splat(32.0)));
  for (let l = 0; l < 32; l++) {
    const p = KX + (<usize>l << 5), q = KW + (<usize>l << 5);
    v128.store(q, f32x4.add(avA, f32x4.abs(v128.load(p))));
    v128.store(q, f32x4.add(avB, f32x4.abs(v128.load(p, 16))), 16);
  }
  qkx2Superblock();
  let maxScale: f32 = 0, maxMin: f32 = 0;
  for (let j = 0; j < 8; j++) {
    const s = load<f32>(SCALES + (<usize>j << 2)), m = load<f32>(MINS + (<usize>j << 2));
    if (s > maxScale) maxScale = s;
    if (m > maxMin) maxMin = m;
  }
  const invScale: f32 = maxScale > 0 ? <f32>63.0 / maxScale : 0;
  const invMin: f32 = maxMin > 0 ? <f32>63.0 / maxMin : 0;
  const sc = y + 4;
  for (let j = 0; j < 8; j++) {
    const ls = min<u32>(63, <u32>nearestInt(invScale * load<f32>(SCALES + (<usize>j << 2))) & 0xff);
    const lm = min<u32>(63, <u32>nearestInt(invMin * load<f32>(MINS + (<usize>j << 2))) & 0xff);
    if (j < 4) {
      store<u8>(sc + j, <u8>ls);
      store<u8>(sc + j + 4, <u8>lm);
    } else {
      store<u8>(sc + j + 4, <u8>((ls & 0xf) | ((lm & 0xf) << 4)));
      store<u8>(sc + j - 4, <u8>(<u32>load<u8>(sc + j - 4) | ((ls >> 4) << 6)));
      store<u8>(sc + j, <u8>(<u32>load<u8>(sc + j) | ((lm >> 4) << 6)));
    }
  }
  const dBits = toHalf(maxScale / <f32>63.0), dminBits = toHalf(maxMin / <f32>63.0);
  store<u16>(y, <u16>dBits);
  store<u16>(y + 2, <u16>dminBits);
  const dAll = fromHalf(dBits), dminAll = fromHalf(dminBits);
  const z = i32x4.splat(0), t = i32x4.splat(15);
  for (let j = 0; j < 8; j++) {
    const smk = scaleMinK4(j, sc);
    const d: f32 = dAll * <f32>(smk & 0xff);
    const p = x + (<usize>(32 * j) << 2);
    const o = LNAT + <usize>(32 * j);
    if (d == 0) {
      // L keeps the search's values: recomputed from the winning (iscale, min), or zeros.
      if (load<i32>(KEEP_Z + (<usize>j << 2)) != 0) {
        v128.store(o, z);
        v128.store(o + 16, z);
        continue;
      }
      const vis = f32x4.splat(load<f32>(KEEP_IS + (<usize>j << 2))), vmn = f32x4.splat(load<f32>(KEEP_MN + (<usize>j << 2)));
      for (let i = 0; i < 32; i += 16) {
        const q = p + (<usize>i << 2);
        v128.store(o + <usize>i, lowBytes(l4Exact(vis, v128.load(q), vmn), l4Exact(vis, v128.load(q + 16), vmn),
          l4Exact(vis, v128.load(q + 32), vmn), l4Exact(vis, v128.load(q + 48), vmn)));
      }
      continue;
    }
    const vdm = f32x4.splat(dminAll * <f32>(smk >> 8));
    const vd = f32x4.splat(d);
    for (let i = 0; i < 32; i += 16) {
      const q = p + (<usize>i << 2);
      const l0 = nearestIntX4(f32x4.div(f32x4.add(v128.load(q), vdm), vd));
      const l1 = nearestIntX4(f32x4.div(f32x4.add(v128.load(q + 16), vdm), vd));
      const l2 = nearestIntX4(f32x4.div(f32x4.add(v128.load(q + 32), vdm), vd));
      const l3 = nearestIntX4(f32x4.div(f32x4.add(v128.load(q + 48), vdm), vd));
      v128.store(o + <usize>i, lowBytes(
        i32x4.max_s(z, i32x4.min_s(t, l0)), i32x4.max_s(z, i32x4.min_s(t, l1)),
        i32x4.max_s(z, i32x4.min_s(t, l2)), i32x4.max_s(z, i32x4.min_s(t, l3))));
    }
  }
  for (let j = 0; j < 4; j++) {
    const a = LNAT + <usize>(64 * j);
    const q = y + 16 + <usize>(32 * j);
    v128.store(q, v128.or(v128.load(a), i8x16.shl(v128.load(a + 32), 4)));
    v128.store(q + 16, v128.or(v128.load(a + 16), i8x16.shl(v128.load(a + 48), 4)));
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// q6_k: make_qx_quants(16, 32, x, L, rmse_type 1, no weights).

/** q6_k's L (before the +32) as f32 lanes; equal to ggml's clamp(nearest_int(iscale * x), -32, 31) for |iscale * x| < 2^22. */
@inline function l6Fast(iscale: v128, x: v128): v128 {
  const M = f32x4.splat(12582912.0);
  const r = f32x4.add(f32x4.mul(iscale, x), M);
  return f32x4.sub(f32x4.pmin(f32x4.splat(12582943.0), f32x4.pmax(f32x4.splat(12582880.0), r)), M);
}

/** q6_k's stored L (value + 32), exactly as ggml. */
@inline function l6Exact(iscale: v128, x: v128): v128 {
  const l = i32x4.max_s(i32x4.splat(-32), i32x4.min_s(i32x4.splat(31), nearestIntX4(f32x4.mul(iscale, x))));
  return i32x4.add(l, i32x4.splat(32));
}

/**
 * make_qx_quants for the 8 sub-blocks of vectors g0, g0 + 1 (KX, KW = x^2, KWX = x^3 filled, 4
 * vectors per value). Writes SCALES, KEEP_IS and KEEP_Z of sub-blocks 4 g0 .. 4 g0 + 7.
 * The search's |iscale * x| is at most ~33 (|x| <= amax, |iscale| ~ 33 / amax) except in lanes
 * with amax < 1e-15, whose results are discarded: the fast rounding is always exact here.
 */
function qxPair(g0: i32): void {
  const o = <usize>(g0 << 4);
  const zero = f32x4.splat(0);
  let amA = zero, mxA = zero, amB = zero, mxB = zero;
  for (let i = 0; i < 16; i++) {
    const p = KX + o + (<usize>i << 6);
    const xa = v128.load(p), xb = v128.load(p, 16);
    const aa = f32x4.abs(xa), ab = f32x4.abs(xb);
    const ma = f32x4.gt(aa, amA), mb = f32x4.gt(ab, amB);
    amA = sel(aa, amA, ma); mxA = sel(xa, mxA, ma);
    amB = sel(ab, amB, mb); mxB = sel(xb, mxB, mb);
  }
  const tinyA = f32x4.lt(amA, f32x4.splat(<f32>1e-15)), tinyB = f32x4.lt(amB, f32x4.splat(<f32>1e-15));
  let isA = f32x4.div(f32x4.splat(-32.0), mxA), isB = f32x4.div(f32x4.splat(-32.0), mxB);
  let slxA = zero, sl2A = zero, slxB = zero, sl2B = zero;
  for (let i = 0; i < 16; i++) {
    const p = KX + o + (<usize>i << 6), q = KW + o + (<usize>i << 6), r = KWX + o + (<usize>i << 6);
    const la = l6Fast(isA, v128.load(p)), lb = l6Fast(isB, v128.load(p, 16));
    slxA = f32x4.add(slxA, f32x4.mul(v128.load(r), la)); sl2A = f32x4.add(sl2A, f32x4.mul(f32x4.mul(v128.load(q), la), la));
    slxB = f32x4.add(slxB, f32x4.mul(v128.load(r, 16), lb)); sl2B = f32x4.add(sl2B, f32x4.mul(f32x4.mul(v128.load(q, 16), lb), lb));
  }
  let scA = sel(f32x4.div(slxA, sl2A), zero, f32x4.ne(sl2A, zero)), scB = sel(f32x4.div(slxB, sl2B), zero, f32x4.ne(sl2B, zero));
  let bestA = f32x4.mul(scA, slxA), bestB = f32x4.mul(scB, slxB);
  let keepA = isA, keepB = isB;
  for (let is = -9; is <= 9; is++) {
    if (is == 0) continue;
    const num = f32x4.splat(-(<f32>32.0 + <f32>0.1 * <f32>is));
    isA = f32x4.div(num, mxA);
    isB = f32x4.div(num, mxB);
    slxA = zero; sl2A = zero; slxB = zero; sl2B = zero;
    for (let i = 0; i < 16; i++) {
      const p = KX + o + (<usize>i << 6), q = KW + o + (<usize>i << 6), r = KWX + o + (<usize>i << 6);
      const la = l6Fast(isA, v128.load(p)), lb = l6Fast(isB, v128.load(p, 16));
      slxA = f32x4.add(slxA, f32x4.mul(v128.load(r), la)); sl2A = f32x4.add(sl2A, f32x4.mul(f32x4.mul(v128.load(q), la), la));
      slxB = f32x4.add(slxB, f32x4.mul(v128.load(r, 16), lb)); sl2B = f32x4.add(sl2B, f32x4.mul(f32x4.mul(v128.load(q, 16), lb), lb));
    }
    const betA = v128.and(f32x4.gt(sl2A, zero), f32x4.gt(f32x4.mul(slxA, slxA), f32x4.mul(bestA, sl2A)));
    const betB = v128.and(f32x4.gt(sl2B, zero), f32x4.gt(f32x4.mul(slxB, slxB), f32x4.mul(bestB, sl2B)));
    if (!v128.any_true(v128.or(betA, betB))) continue;
    scA = sel(f32x4.div(slxA, sl2A), scA, betA); bestA = sel(f32x4.mul(scA, slxA), bestA, betA); keepA = sel(isA, keepA, betA);
    scB = sel(f32x4.div(slxB, sl2B), scB, betB); bestB = sel(f32x4.mul(scB, slxB), bestB, betB); keepB = sel(isB, keepB, betB);
  }
  const at = <usize>(g0 << 4);
  v128.store(SCALES + at, sel(zero, scA, tinyA)); v128.store(SCALES + at, sel(zero, scB, tinyB), 16);
  v128.store(KEEP_IS + at, keepA); v128.store(KEEP_IS + at, keepB, 16);
  v128.store(KEEP_Z + at, tinyA); v128.store(KEEP_Z + at, tinyB, 16);
}

/** quantize_row_q6_K_ref for one super-block at x: 208 bytes (ql, qh, scales) at y, f16 d at d. */
function q6kBlock(x: usize, y: usize, d: usize): bool {
  if (maxAbsBits(x, 256) >= 0x7f800000) {
    for (let i = 0; i < 208; i += 16) v128.store(y + i, i32x4.splat(0));
    store<u16>(d, 0);
    return true;
  }
  for (let g = 0; g < 4; g++) transposeTo(x + (<usize>(g * 64) << 2), 16, 16, KX + (<usize>g << 4), 64);
  for (let i = 0; i < 64; i++) {
    const p = <usize>(i << 4);
    const xv = v128.load(KX + p);
    const w = f32x4.mul(xv, xv);
    v128.store(KW + p, w);
    v128.store(KWX + p, f32x4.mul(w, xv));
  }
  qxPair(0);
  qxPair(2);
  let maxScale: f32 = 0, maxAbsScale: f32 = 0;
  for (let ib = 0; ib < 16; ib++) {
    const s = load<f32>(SCALES + (<usize>ib << 2));
    const a = abs<f32>(s);
    if (a > maxAbsScale) { maxAbsScale = a; maxScale = s; }
  }
  if (maxAbsScale < <f32>1e-15) {
    for (let i = 0; i < 208; i += 16) v128.store(y + i, i32x4.splat(0));
    store<u16>(d, 0);
    return false;
  }
  const iscale: f32 = <f32>-128.0 / maxScale;
  const dBits = toHalf(<f32>1.0 / iscale);
  store<u16>(d, <u16>dBits);
  const sc = y + 192;
  for (let ib = 0; ib < 16; ib++) store<i8>(sc + ib, <i8>min<i32>(127, nearestInt(iscale * load<f32>(SCALES + (<usize>ib << 2)))));
  const dAll = fromHalf(dBits);
  const lo = i32x4.splat(-32), hi = i32x4.splat(31), off = i32x4.splat(32);
  for (let j = 0; j < 16; j++) {
    const dj: f32 = dAll * <f32>load<i8>(sc + j);
    const p = x + (<usize>(16 * j) << 2);
    const o = LNAT + <usize>(16 * j);
    if (dj == 0) {
      // L keeps the search's values: recomputed from the winning iscale, or zeros.
      if (load<i32>(KEEP_Z + (<usize>j << 2)) != 0) { v128.store(o, i32x4.splat(0)); continue; }
      const vis = f32x4.splat(load<f32>(KEEP_IS + (<usize>j << 2)));
      v128.store(o, lowBytes(l6Exact(vis, v128.load(p)), l6Exact(vis, v128.load(p + 16)), l6Exact(vis, v128.load(p + 32)), l6Exact(vis, v128.load(p + 48))));
      continue;
    }
    const vd = f32x4.splat(dj);
    const l0 = i32x4.add(i32x4.max_s(lo, i32x4.min_s(hi, nearestIntX4(f32x4.div(v128.load(p), vd)))), off);
    const l1 = i32x4.add(i32x4.max_s(lo, i32x4.min_s(hi, nearestIntX4(f32x4.div(v128.load(p + 16), vd)))), off);
    const l2 = i32x4.add(i32x4.max_s(lo, i32x4.min_s(hi, nearestIntX4(f32x4.div(v128.load(p + 32), vd)))), off);
    const l3 = i32x4.add(i32x4.max_s(lo, i32x4.min_s(hi, nearestIntX4(f32x4.div(v128.load(p + 48), vd)))), off);
    v128.store(o, lowBytes(l0, l1, l2, l3));
  }
  const nib = i8x16.splat(0x0f), two = i8x16.splat(0x03);
  for (let h = 0; h < 2; h++) {
    const L = LNAT + <usize>(128 * h);
    const ql = y + <usize>(64 * h), qh = y + 128 + <usize>(32 * h);
    for (let l = 0; l < 32; l += 16) {
      const a = v128.load(L + l), b = v128.load(L + 32 + l), c = v128.load(L + 64 + l), e = v128.load(L + 96 + l);
      v128.store(ql + l, v128.or(v128.and(a, nib), i8x16.shl(v128.and(c, nib), 4)));
      v128.store(ql + 32 + l, v128.or(v128.and(b, nib), i8x16.shl(v128.and(e, nib), 4)));
      const ha = v128.and(i8x16.shr_u(a, 4), two), hb = v128.and(i8x16.shr_u(b, 4), two);
      const hc = v128.and(i8x16.shr_u(c, 4), two), he = v128.and(i8x16.shr_u(e, 4), two);
      v128.store(qh + l, v128.or(v128.or(ha, i8x16.shl(hb, 2)), v128.or(i8x16.shl(hc, 4), i8x16.shl(he, 6))));
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Exports

@inline function qkOf(fmt: i32): i32 { return fmt == Q4_K || fmt == Q6_K ? 256 : 32; }

/**
 * Quantizes `rows` rows of K f32 values at src into the device sections (qs, qh: q5_0 only,
 * d: all but q4_k) starting at block rowOffset * K / QK. Returns the number of blocks that held a
 * NaN or an infinity (written as zero blocks).
 */
export function quantizeRows(fmt: i32, src: usize, rows: i32, K: i32, qs: usize, qh: usize, d: usize, rowOffset: i32): i32 {
  const qk = qkOf(fmt);
  const nb = rows * (K / qk);
  const b0 = rowOffset * (K / qk);
  let bad = 0;
  for (let i = 0; i < nb; i++) {
    const x = src + (<usize>(i * qk) << 2);
    const b = <usize>(b0 + i);
    let nonFinite: bool;
    if (fmt == Q8_0) nonFinite = q8Block(x, qs + (b << 5), d + (b << 1));
    else if (fmt == Q4_0) nonFinite = q4or5Block(x, qs + (b << 4), 0, d + (b << 1), false);
    else if (fmt == Q5_0) nonFinite = q4or5Block(x, qs + (b << 4), qh + (b << 2), d + (b << 1), true);
    else if (fmt == Q4_K) nonFinite = q4kBlock(x, qs + b * 144);
    else nonFinite = q6kBlock(x, qs + b * 208, d + (b << 1));
    if (nonFinite) bad++;
  }
  return bad;
}

/** Copies nb GGUF blocks at src (any alignment) into the device sections starting at block blockOffset. */
export function repackBlocks(fmt: i32, src: usize, nb: i32, qs: usize, qh: usize, d: usize, blockOffset: i32): void {
  for (let i = 0; i < nb; i++) {
    const b = <usize>(blockOffset + i);
    if (fmt == Q8_0) {
      const p = src + <usize>i * 34;
      store<u16>(d + (b << 1), load<u16>(p));
      v128.store(qs + (b << 5), v128.load(p + 2));
      v128.store(qs + (b << 5) + 16, v128.load(p + 18));
    } else if (fmt == Q4_0) {
      const p = src + <usize>i * 18;
      store<u16>(d + (b << 1), load<u16>(p));
      v128.store(qs + (b << 4), v128.load(p + 2));
    } else if (fmt == Q5_0) {
      const p = src + <usize>i * 22;
      store<u16>(d + (b << 1), load<u16>(p));
      store<u32>(qh + (b << 2), load<u32>(p + 2));
      v128.store(qs + (b << 4), v128.load(p + 6));
    } else if (fmt == Q4_K) {
      memory.copy(qs + b * 144, src + <usize>i * 144, 144);
    } else {
      const p = src + <usize>i * 210;
      memory.copy(qs + b * 208, p, 208);
      store<u16>(d + (b << 1), load<u16>(p + 208));
    }
  }
}

/** f32 values of device blocks [firstBlock, firstBlock + nb) into dst (nb * QK floats). */
export function dequantizeBlocks(fmt: i32, qs: usize, qh: usize, d: usize, firstBlock: i32, nb: i32, dst: usize): void {
  for (let i = 0; i < nb; i++) {
    const b = <usize>(firstBlock + i);
    if (fmt == Q8_0) {
      const vd = f32x4.splat(fromHalf(load<u16>(d + (b << 1))));
      const y = dst + (<usize>i << 7);
      for (let h = 0; h < 2; h++) {
        const q = v128.load(qs + (b << 5) + <usize>(h << 4));
        const w0 = i16x8.extend_low_i8x16_s(q), w1 = i16x8.extend_high_i8x16_s(q);
        const o = y + <usize>(h << 6);
        v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w0)), vd));
        v128.store(o + 16, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w0)), vd));
        v128.store(o + 32, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w1)), vd));
        v128.store(o + 48, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w1)), vd));
      }
    } else if (fmt == Q4_0 || fmt == Q5_0) {
      const vd = f32x4.splat(fromHalf(load<u16>(d + (b << 1))));
      const q = v128.load(qs + (b << 4));
      let lo = v128.and(q, i8x16.splat(0x0f));
      let hi = i8x16.shr_u(q, 4);
      let bias = i8x16.splat(8);
      if (fmt == Q5_0) {
        // bit j of qh -> bit 4 of value j: spread the 32 bits over 32 byte lanes.
        const h = load<u32>(qh + (b << 2));
        const sel16 = v128(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
        const hlo = v128.shuffle<u8>(i32x4.splat(h), i32x4.splat(0), 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        const hhi = v128.shuffle<u8>(i32x4.splat(h), i32x4.splat(0), 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        lo = v128.or(lo, v128.and(i8x16.eq(v128.and(hlo, sel16), sel16), i8x16.splat(16)));
        hi = v128.or(hi, v128.and(i8x16.eq(v128.and(hhi, sel16), sel16), i8x16.splat(16)));
        bias = i8x16.splat(16);
      }
      lo = i8x16.sub(lo, bias);
      hi = i8x16.sub(hi, bias);
      const y = dst + (<usize>i << 7);
      for (let h = 0; h < 2; h++) {
        const v = h == 0 ? lo : hi;
        const w0 = i16x8.extend_low_i8x16_s(v), w1 = i16x8.extend_high_i8x16_s(v);
        const o = y + <usize>(h << 6);
        v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w0)), vd));
        v128.store(o + 16, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w0)), vd));
        v128.store(o + 32, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w1)), vd));
        v128.store(o + 48, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w1)), vd));
      }
    } else if (fmt == Q4_K) {
      const blk = qs + b * 144;
      const dAll = fromHalf(load<u16>(blk)), dminAll = fromHalf(load<u16>(blk + 2));
      const y = dst + (<usize>i << 10);
      for (let j = 0; j < 8; j++) {
        const smk = scaleMinK4(j, blk + 4);
        const vd = f32x4.splat(dAll * <f32>(smk & 0xff));
        const vm = f32x4.splat(dminAll * <f32>(smk >> 8));
        const src = blk + 16 + <usize>(32 * (j >> 1));
        for (let h = 0; h < 2; h++) {
          let q = v128.load(src + <usize>(h << 4));
          q = (j & 1) != 0 ? i8x16.shr_u(q, 4) : v128.and(q, i8x16.splat(0x0f));
          const w0 = i16x8.extend_low_i8x16_u(q), w1 = i16x8.extend_high_i8x16_u(q);
          const o = y + <usize>((32 * j + 16 * h) << 2);
          v128.store(o, f32x4.sub(f32x4.mul(vd, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(w0))), vm));
          v128.store(o + 16, f32x4.sub(f32x4.mul(vd, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_u(w0))), vm));
          v128.store(o + 32, f32x4.sub(f32x4.mul(vd, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(w1))), vm));
          v128.store(o + 48, f32x4.sub(f32x4.mul(vd, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_u(w1))), vm));
        }
      }
    } else {
      const blk = qs + b * 208;
      const dAll = fromHalf(load<u16>(d + (b << 1)));
      const y = dst + (<usize>i << 10);
      const nib = i8x16.splat(0x0f), two = i8x16.splat(0x03), bias = i8x16.splat(32);
      for (let h = 0; h < 2; h++) {
        const ql = blk + <usize>(64 * h), qh = blk + 128 + <usize>(32 * h), sc = blk + 192 + <usize>(8 * h);
        for (let l = 0; l < 32; l += 16) {
          const a = v128.load(ql + l), c = v128.load(ql + 32 + l), hb = v128.load(qh + l);
          // Values l.., l+32.., l+64.., l+96.. of this half: low nibbles from a/c, two high bits from hb.
          const q0 = i8x16.sub(v128.or(v128.and(a, nib), i8x16.shl(v128.and(hb, two), 4)), bias);
          const q1 = i8x16.sub(v128.or(v128.and(c, nib), i8x16.shl(v128.and(i8x16.shr_u(hb, 2), two), 4)), bias);
          const q2 = i8x16.sub(v128.or(i8x16.shr_u(a, 4), i8x16.shl(v128.and(i8x16.shr_u(hb, 4), two), 4)), bias);
          const q3 = i8x16.sub(v128.or(i8x16.shr_u(c, 4), i8x16.shl(i8x16.shr_u(hb, 6), 4)), bias);
          const is = l >> 4;
          for (let k = 0; k < 4; k++) {
            const q = k == 0 ? q0 : k == 1 ? q1 : k == 2 ? q2 : q3;
            const vd = f32x4.splat(dAll * <f32>load<i8>(sc + <usize>(is + 2 * k)));
            const w0 = i16x8.extend_low_i8x16_s(q), w1 = i16x8.extend_high_i8x16_s(q);
            const o = y + (<usize>(128 * h + 32 * k + l) << 2);
            v128.store(o, f32x4.mul(vd, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w0))));
            v128.store(o + 16, f32x4.mul(vd, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w0))));
            v128.store(o + 32, f32x4.mul(vd, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w1))));
            v128.store(o + 48, f32x4.mul(vd, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w1))));
          }
        }
      }
    }
  }
}
