// Block quantization for the weight loader: f32 rows -> device layout (docs/weight-formats.md),
// GGUF blocks -> device layout, and device layout -> f32. Formats (codes shared with
// src/wasm/host.ts): 0 q8_0, 1 q4_0, 2 q5_0, 3 q4_k, 4 q6_k.
//
// The quantizers produce the same bytes as ggml's reference quantizers (and src/quant/reference.ts,
// their TypeScript port, which is the test oracle): every C float operation is one f32 operation
// here, in the same order, with ggml's nearest_int trick and x86's float -> int8 conversion (low
// byte of a truncation, 0 for NaN/out of range). SIMD never reorders a floating-point sum:
//   - q8_0 / q4_0 / q5_0 vectorize across the 32 values of a block (no sums involved);
//   - q4_k / q6_k run ggml's scale searches with one sub-block per SIMD lane (4 sub-blocks at
//     once), so each lane performs exactly the scalar sequence of operations, and branches become
//     lane masks (v128.bitselect).
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
// q4_k: make_qkx2_quants(32, 15, x, weights = av_x + |x|, rmin -1, rdelta 0.1f, nstep 20) for 4
// sub-blocks at once (lane k = sub-block j0 + k), then the super-block scale packing in scalar.

const XT = memory.data(32 * 16, 16);    // x, transposed: XT[i] = (x[s0 + i], x[s1 + i], x[s2 + i], x[s3 + i])
const WT = memory.data(32 * 16, 16);    // weights, same layout
const LT = memory.data(32 * 16, 16);    // best L per lane (i32)
const LAUX = memory.data(32 * 16, 16);  // candidate L per lane (i32)
const LNAT = memory.data(256, 16);      // L in value order for the whole super-block (u8)
const SCALES = memory.data(16 * 4, 16); // per sub-block scale (f32)
const MINS = memory.data(16 * 4, 16);   // per sub-block -min (f32)

@inline function vat(base: usize, i: i32): usize { return base + (<usize>i << 4); }

/** Transposes n values of 4 sub-blocks (stride `stride` floats) into XT. */
function transpose4(x: usize, stride: i32, n: i32): void {
  const s = <usize>stride << 2;
  for (let i = 0; i < n; i += 4) {
    const a = v128.load(x + (<usize>i << 2));
    const b = v128.load(x + s + (<usize>i << 2));
    const c = v128.load(x + 2 * s + (<usize>i << 2));
    const e = v128.load(x + 3 * s + (<usize>i << 2));
    const ab0 = v128.shuffle<u32>(a, b, 0, 4, 1, 5);
    const ab1 = v128.shuffle<u32>(a, b, 2, 6, 3, 7);
    const ce0 = v128.shuffle<u32>(c, e, 0, 4, 1, 5);
    const ce1 = v128.shuffle<u32>(c, e, 2, 6, 3, 7);
    v128.store(vat(XT, i), v128.shuffle<u64>(ab0, ce0, 0, 2));
    v128.store(vat(XT, i + 1), v128.shuffle<u64>(ab0, ce0, 1, 3));
    v128.store(vat(XT, i + 2), v128.shuffle<u64>(ab1, ce1, 0, 2));
    v128.store(vat(XT, i + 3), v128.shuffle<u64>(ab1, ce1, 1, 3));
  }
}

/** Writes lane k of LT[0..n) to LNAT[(j0 + k) * n + i]. */
function untransposeL(j0: i32, n: i32): void {
  for (let i = 0; i < n; i++) {
    const v = v128.load(vat(LT, i));
    store<u8>(LNAT + <usize>(j0 * n + i), <u8>i32x4.extract_lane(v, 0));
    store<u8>(LNAT + <usize>((j0 + 1) * n + i), <u8>i32x4.extract_lane(v, 1));
    store<u8>(LNAT + <usize>((j0 + 2) * n + i), <u8>i32x4.extract_lane(v, 2));
    store<u8>(LNAT + <usize>((j0 + 3) * n + i), <u8>i32x4.extract_lane(v, 3));
  }
}

@inline function sel(a: v128, b: v128, m: v128): v128 { return v128.bitselect(a, b, m); }

/** make_qkx2_quants for 4 sub-blocks of 32 (XT, WT filled); writes LT, SCALES/MINS[j0..j0+4). */
function qkx2x4(j0: i32): void {
  const zero = f32x4.splat(0);
  const izero = i32x4.splat(0);
  const nmaxI = i32x4.splat(15);
  let x0 = v128.load(vat(XT, 0));
  let mn = x0, mx = x0;
  let sumW = v128.load(vat(WT, 0));
  let sumX = f32x4.mul(sumW, x0);
  for (let i = 1; i < 32; i++) {
    const xi = v128.load(vat(XT, i));
    mn = sel(xi, mn, f32x4.lt(xi, mn));
    mx = sel(xi, mx, f32x4.gt(xi, mx));
    const w = v128.load(vat(WT, i));
    sumW = f32x4.add(sumW, w);
    sumX = f32x4.add(sumX, f32x4.mul(w, xi));
  }
  mn = sel(zero, mn, f32x4.gt(mn, zero));
  const flat = f32x4.eq(mx, mn);   // all values equal: L = 0, scale 0, the_min = -min
  const mnFlat = mn;
  let iscale = f32x4.div(f32x4.splat(15.0), f32x4.sub(mx, mn));
  let scale = f32x4.div(f32x4.splat(1.0), iscale);
  let best = zero;
  for (let i = 0; i < 32; i++) {
    const xi = v128.load(vat(XT, i));
    let l = nearestIntX4(f32x4.mul(iscale, f32x4.sub(xi, mn)));
    l = i32x4.max_s(izero, i32x4.min_s(nmaxI, l));
    v128.store(vat(LT, i), l);
    const diff = f32x4.sub(f32x4.add(f32x4.mul(scale, f32x4.convert_i32x4_s(l)), mn), xi);
    best = f32x4.add(best, f32x4.mul(v128.load(vat(WT, i)), f32x4.mul(diff, diff)));
  }
  for (let is = 0; is <= 20; is++) {
    const num: f32 = (<f32>-1.0 + <f32>0.1 * <f32>is) + <f32>15.0;
    iscale = f32x4.div(f32x4.splat(num), f32x4.sub(mx, mn));
    let sumL = zero, sumL2 = zero, sumXL = zero;
    for (let i = 0; i < 32; i++) {
      const xi = v128.load(vat(XT, i));
      let l = nearestIntX4(f32x4.mul(iscale, f32x4.sub(xi, mn)));
      l = i32x4.max_s(izero, i32x4.min_s(nmaxI, l));
      v128.store(vat(LAUX, i), l);
      const lf = f32x4.convert_i32x4_s(l);
      const wl = f32x4.mul(v128.load(vat(WT, i)), lf);
      sumL = f32x4.add(sumL, wl);
      sumL2 = f32x4.add(sumL2, f32x4.mul(wl, lf));
      sumXL = f32x4.add(sumXL, f32x4.mul(wl, xi));
    }
    const D = f32x4.sub(f32x4.mul(sumW, sumL2), f32x4.mul(sumL, sumL));
    const dpos = f32x4.gt(D, zero);
    if (!v128.any_true(dpos)) continue;
    let thisScale = f32x4.div(f32x4.sub(f32x4.mul(sumW, sumXL), f32x4.mul(sumX, sumL)), D);
    let thisMin = f32x4.div(f32x4.sub(f32x4.mul(sumL2, sumX), f32x4.mul(sumL, sumXL)), D);
    const mpos = f32x4.gt(thisMin, zero);
    thisMin = sel(zero, thisMin, mpos);
    thisScale = sel(f32x4.div(sumXL, sumL2), thisScale, mpos);
    let cur = zero;
    for (let i = 0; i < 32; i++) {
      const diff = f32x4.sub(f32x4.add(f32x4.mul(thisScale, f32x4.convert_i32x4_s(v128.load(vat(LAUX, i)))), thisMin), v128.load(vat(XT, i)));
      cur = f32x4.add(cur, f32x4.mul(v128.load(vat(WT, i)), f32x4.mul(diff, diff)));
    }
    const better = v128.and(dpos, f32x4.lt(cur, best));
    if (!v128.any_true(better)) continue;
    for (let i = 0; i < 32; i++) v128.store(vat(LT, i), sel(v128.load(vat(LAUX, i)), v128.load(vat(LT, i)), better));
    best = sel(cur, best, better);
    scale = sel(thisScale, scale, better);
    mn = sel(thisMin, mn, better);
  }
  scale = sel(zero, scale, flat);
  const theMin = f32x4.neg(sel(mnFlat, mn, flat));
  if (v128.any_true(flat)) for (let i = 0; i < 32; i++) v128.store(vat(LT, i), v128.andnot(v128.load(vat(LT, i)), flat));
  v128.store(SCALES + (<usize>j0 << 2), scale);
  v128.store(MINS + (<usize>j0 << 2), theMin);
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
  for (let g = 0; g < 2; g++) {
    const j0 = g * 4;
    transpose4(x + (<usize>(j0 * 32) << 2), 32, 32);
    let sumX2 = f32x4.splat(0);
    for (let l = 0; l < 32; l++) {
      const xl = v128.load(vat(XT, l));
      sumX2 = f32x4.add(sumX2, f32x4.mul(xl, xl));
    }
    const avX = f32x4.sqrt(f32x4.div(sumX2, f32x4.splat(32.0)));
    for (let l = 0; l < 32; l++) v128.store(vat(WT, l), f32x4.add(avX, f32x4.abs(v128.load(vat(XT, l)))));
    qkx2x4(j0);
    untransposeL(j0, 32);
  }
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
  for (let j = 0; j < 8; j++) {
    const smk = scaleMinK4(j, sc);
    const d: f32 = dAll * <f32>(smk & 0xff);
    if (d == 0) continue; // L keeps the search's values
    const vdm = f32x4.splat(dminAll * <f32>(smk >> 8));
    const vd = f32x4.splat(d);
    const p = x + (<usize>(32 * j) << 2);
    for (let i = 0; i < 32; i += 16) {
      const q = p + (<usize>i << 2);
      const l0 = nearestIntX4(f32x4.div(f32x4.add(v128.load(q), vdm), vd));
      const l1 = nearestIntX4(f32x4.div(f32x4.add(v128.load(q + 16), vdm), vd));
      const l2 = nearestIntX4(f32x4.div(f32x4.add(v128.load(q + 32), vdm), vd));
      const l3 = nearestIntX4(f32x4.div(f32x4.add(v128.load(q + 48), vdm), vd));
      const z = i32x4.splat(0), t = i32x4.splat(15);
      v128.store(LNAT + <usize>(32 * j + i), lowBytes(
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
// q6_k: make_qx_quants(16, 32, x, L, rmse_type 1, no weights) for 4 sub-blocks at once.

/** make_qx_quants for 4 sub-blocks of 16 (XT filled); writes LT (values 0..63) and SCALES[j0..j0+4). */
function qxx4(j0: i32): void {
  const zero = f32x4.splat(0);
  let amax = zero, mx = zero;
  for (let i = 0; i < 16; i++) {
    const xi = v128.load(vat(XT, i));
    const ax = f32x4.abs(xi);
    const m = f32x4.gt(ax, amax);
    amax = sel(ax, amax, m);
    mx = sel(xi, mx, m);
  }
  const tiny = f32x4.lt(amax, f32x4.splat(<f32>1e-15));
  const lo = i32x4.splat(-32), hi = i32x4.splat(31), off = i32x4.splat(32);
  let iscale = f32x4.div(f32x4.splat(-32.0), mx);
  let sumlx = zero, suml2 = zero;
  for (let i = 0; i < 16; i++) {
    const xi = v128.load(vat(XT, i));
    const l = i32x4.max_s(lo, i32x4.min_s(hi, nearestIntX4(f32x4.mul(iscale, xi))));
    v128.store(vat(LT, i), i32x4.add(l, off));
    const lf = f32x4.convert_i32x4_s(l);
    const w = f32x4.mul(xi, xi);
    sumlx = f32x4.add(sumlx, f32x4.mul(f32x4.mul(w, xi), lf));
    suml2 = f32x4.add(suml2, f32x4.mul(f32x4.mul(w, lf), lf));
  }
  let scale = sel(f32x4.div(sumlx, suml2), zero, f32x4.ne(suml2, zero));
  let best = f32x4.mul(scale, sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is == 0) continue;
    const num: f32 = -(<f32>32.0 + <f32>0.1 * <f32>is);
    iscale = f32x4.div(f32x4.splat(num), mx);
    sumlx = zero;
    suml2 = zero;
    for (let i = 0; i < 16; i++) {
      const xi = v128.load(vat(XT, i));
      const l = i32x4.max_s(lo, i32x4.min_s(hi, nearestIntX4(f32x4.mul(iscale, xi))));
      v128.store(vat(LAUX, i), l);
      const lf = f32x4.convert_i32x4_s(l);
      const w = f32x4.mul(xi, xi);
      sumlx = f32x4.add(sumlx, f32x4.mul(f32x4.mul(w, xi), lf));
      suml2 = f32x4.add(suml2, f32x4.mul(f32x4.mul(w, lf), lf));
    }
    const better = v128.and(f32x4.gt(suml2, zero), f32x4.gt(f32x4.mul(sumlx, sumlx), f32x4.mul(best, suml2)));
    if (!v128.any_true(better)) continue;
    for (let i = 0; i < 16; i++) {
      v128.store(vat(LT, i), sel(i32x4.add(v128.load(vat(LAUX, i)), off), v128.load(vat(LT, i)), better));
    }
    scale = sel(f32x4.div(sumlx, suml2), scale, better);
    best = sel(f32x4.mul(scale, sumlx), best, better);
  }
  scale = sel(zero, scale, tiny);
  if (v128.any_true(tiny)) for (let i = 0; i < 16; i++) v128.store(vat(LT, i), v128.andnot(v128.load(vat(LT, i)), tiny));
  v128.store(SCALES + (<usize>j0 << 2), scale);
}

/** quantize_row_q6_K_ref for one super-block at x: 208 bytes (ql, qh, scales) at y, f16 d at d. */
function q6kBlock(x: usize, y: usize, d: usize): bool {
  if (maxAbsBits(x, 256) >= 0x7f800000) {
    for (let i = 0; i < 208; i += 16) v128.store(y + i, i32x4.splat(0));
    store<u16>(d, 0);
    return true;
  }
  for (let g = 0; g < 4; g++) {
    const j0 = g * 4;
    transpose4(x + (<usize>(j0 * 16) << 2), 16, 16);
    qxx4(j0);
    untransposeL(j0, 16);
  }
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
  for (let j = 0; j < 16; j++) {
    const dj: f32 = dAll * <f32>load<i8>(sc + j);
    if (dj == 0) continue;
    const vd = f32x4.splat(dj);
    const p = x + (<usize>(16 * j) << 2);
    const lo = i32x4.splat(-32), hi = i32x4.splat(31), off = i32x4.splat(32);
    const l0 = i32x4.add(i32x4.max_s(lo, i32x4.min_s(hi, nearestIntX4(f32x4.div(v128.load(p), vd)))), off);
    const l1 = i32x4.add(i32x4.max_s(lo, i32x4.min_s(hi, nearestIntX4(f32x4.div(v128.load(p + 16), vd)))), off);
    const l2 = i32x4.add(i32x4.max_s(lo, i32x4.min_s(hi, nearestIntX4(f32x4.div(v128.load(p + 32), vd)))), off);
    const l3 = i32x4.add(i32x4.max_s(lo, i32x4.min_s(hi, nearestIntX4(f32x4.div(v128.load(p + 48), vd)))), off);
    v128.store(LNAT + <usize>(16 * j), lowBytes(l0, l1, l2, l3));
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
