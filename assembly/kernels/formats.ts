// Weight formats (docs/weight-formats.md, device layout): per-format row dot products for the
// GEMV (dequantized to f32 in registers, f32 accumulation) and row dequantization to f32 for the
// GEMM panels and the embedding gather.
//
// A part holds `rows` rows of K values; row n of a block format owns blocks n*(K/QK) .. + K/QK.
// Sections of a block part start at multiples of 16 bytes from the part's base pointer.
// Every function here has a fixed summation order per output (it never depends on which thread
// runs it or on which other rows are computed alongside).
import {
  align16, bf16Hi, bf16Lo, dotI8x16, loadF16x4, f16FastHi, f16FastLo, f16Hi, f16Lo, f16Special, f16ToF32, hsum, hsum4, madd,
} from './common';

export const FMT_F32: i32 = 0;
export const FMT_F16: i32 = 1;
export const FMT_BF16: i32 = 2;
export const FMT_Q8_0: i32 = 3;
export const FMT_Q4_0: i32 = 4;
export const FMT_Q5_0: i32 = 5;
export const FMT_Q4_K: i32 = 6;
export const FMT_Q6_K: i32 = 7;

// ---------------------------------------------------------------------------------------------
// Section layout

@inline function nblocks(rows: i32, K: i32, qk: i32): usize { return <usize>rows * <usize>(K / qk); }

/** Start of the f16 scale section of a q8_0 / q4_0 / q5_0 / q6_k part. */
@inline export function q8Scales(w: usize, rows: i32, K: i32): usize { return w + align16(nblocks(rows, K, 32) * 32); }
@inline export function q4Scales(w: usize, rows: i32, K: i32): usize { return w + align16(nblocks(rows, K, 32) * 16); }
@inline export function q5High(w: usize, rows: i32, K: i32): usize { return w + align16(nblocks(rows, K, 32) * 16); }
@inline export function q5Scales(w: usize, rows: i32, K: i32): usize { return q5High(w, rows, K) + align16(nblocks(rows, K, 32) * 4); }
@inline export function q6Scales(w: usize, rows: i32, K: i32): usize { return w + align16(nblocks(rows, K, 256) * 208); }

// ---------------------------------------------------------------------------------------------
// Row dot products: sum_k x[k] * W[n, k] for one row (dot1) or four rows sharing the x loads
// (dot4, 16/32-bit formats). dot4 lane r equals dot1 of row n + r bit for bit.

// 16/32-bit rows: accumulators a (even groups of 4) and b (odd groups), 16 values per step, then
// 8, then a scalar tail added after the horizontal sum.

@inline function tailF32(s: f32, row: usize, xr: usize, k: i32, K: i32): f32 {
  for (; k < K; k++) s += load<f32>(row + (<usize>k << 2)) * load<f32>(xr + (<usize>k << 2));
  return s;
}

function dotF32(xr: usize, row: usize, K: i32): f32 {
  let a = f32x4.splat(0), b = f32x4.splat(0);
  let k = 0;
  for (; k + 16 <= K; k += 16) {
    const o = <usize>k << 2;
    a = madd(v128.load(row + o), v128.load(xr + o), a);
    b = madd(v128.load(row + o, 16), v128.load(xr + o, 16), b);
    a = madd(v128.load(row + o, 32), v128.load(xr + o, 32), a);
    b = madd(v128.load(row + o, 48), v128.load(xr + o, 48), b);
  }
  for (; k + 8 <= K; k += 8) {
    const o = <usize>k << 2;
    a = madd(v128.load(row + o), v128.load(xr + o), a);
    b = madd(v128.load(row + o, 16), v128.load(xr + o, 16), b);
  }
  return tailF32(hsum(f32x4.add(a, b)), row, xr, k, K);
}

function dot4F32(xr: usize, w: usize, n: i32, K: i32): v128 {
  const stride = <usize>K << 2;
  const r0 = w + <usize>n * stride, r1 = r0 + stride, r2 = r1 + stride, r3 = r2 + stride;
  let a0 = f32x4.splat(0), b0 = f32x4.splat(0), a1 = f32x4.splat(0), b1 = f32x4.splat(0);
  let a2 = f32x4.splat(0), b2 = f32x4.splat(0), a3 = f32x4.splat(0), b3 = f32x4.splat(0);
  let k = 0;
  for (; k + 8 <= K; k += 8) {
    const o = <usize>k << 2;
    const x0 = v128.load(xr + o), x1 = v128.load(xr + o, 16);
    a0 = madd(v128.load(r0 + o), x0, a0); b0 = madd(v128.load(r0 + o, 16), x1, b0);
    a1 = madd(v128.load(r1 + o), x0, a1); b1 = madd(v128.load(r1 + o, 16), x1, b1);
    a2 = madd(v128.load(r2 + o), x0, a2); b2 = madd(v128.load(r2 + o, 16), x1, b2);
    a3 = madd(v128.load(r3 + o), x0, a3); b3 = madd(v128.load(r3 + o, 16), x1, b3);
  }
  // dotF32 runs 16-value steps then one 8-value step; the order of updates to a and b is the
  // same sequence either way (a, b, a, b, ...), so both give identical sums.
  let s = hsum4(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3));
  if (k < K) {
    s = f32x4.replace_lane(s, 0, tailF32(f32x4.extract_lane(s, 0), r0, xr, k, K));
    s = f32x4.replace_lane(s, 1, tailF32(f32x4.extract_lane(s, 1), r1, xr, k, K));
    s = f32x4.replace_lane(s, 2, tailF32(f32x4.extract_lane(s, 2), r2, xr, k, K));
    s = f32x4.replace_lane(s, 3, tailF32(f32x4.extract_lane(s, 3), r3, xr, k, K));
  }
  return s;
}

@inline function h16(bf: bool, q: v128, hi: bool): v128 {
  if (bf) return hi ? bf16Hi(q) : bf16Lo(q);
  return hi ? f16Hi(q) : f16Lo(q);
}

@inline function scalar16(bf: bool, row: usize, k: i32): f32 {
  const h = <u32>load<u16>(row + (<usize>k << 1));
  return bf ? reinterpret<f32>(h << 16) : f16ToF32(h);
}

@inline function tail16(bf: bool, s: f32, row: usize, xr: usize, k: i32, K: i32): f32 {
  for (; k < K; k++) s += scalar16(bf, row, k) * load<f32>(xr + (<usize>k << 2));
  return s;
}

@inline function dot16(bf: bool, xr: usize, row: usize, K: i32): f32 {
  let a = f32x4.splat(0), b = f32x4.splat(0);
  let k = 0;
  for (; k + 16 <= K; k += 16) {
    const o = <usize>k << 2, p = row + (<usize>k << 1);
    const q0 = v128.load(p), q1 = v128.load(p, 16);
    if (!bf && !v128.any_true(v128.or(f16Special(q0), f16Special(q1)))) {
      // The common case in trained f16 weights: the cheap conversion, bit-identical to the exact one.
      a = madd(f16FastLo(q0), v128.load(xr + o), a);
      b = madd(f16FastHi(q0), v128.load(xr + o, 16), b);
      a = madd(f16FastLo(q1), v128.load(xr + o, 32), a);
      b = madd(f16FastHi(q1), v128.load(xr + o, 48), b);
      continue;
    }
    a = madd(h16(bf, q0, false), v128.load(xr + o), a);
    b = madd(h16(bf, q0, true), v128.load(xr + o, 16), b);
    a = madd(h16(bf, q1, false), v128.load(xr + o, 32), a);
    b = madd(h16(bf, q1, true), v128.load(xr + o, 48), b);
  }
  for (; k + 8 <= K; k += 8) {
    const q0 = v128.load(row + (<usize>k << 1));
    a = madd(h16(bf, q0, false), v128.load(xr + (<usize>k << 2)), a);
    b = madd(h16(bf, q0, true), v128.load(xr + (<usize>k << 2), 16), b);
  }
  return tail16(bf, hsum(f32x4.add(a, b)), row, xr, k, K);
}

@inline function dot4x16(bf: bool, xr: usize, w: usize, n: i32, K: i32): v128 {
  const stride = <usize>K << 1;
  const r0 = w + <usize>n * stride, r1 = r0 + stride, r2 = r1 + stride, r3 = r2 + stride;
  let a0 = f32x4.splat(0), b0 = f32x4.splat(0), a1 = f32x4.splat(0), b1 = f32x4.splat(0);
  let a2 = f32x4.splat(0), b2 = f32x4.splat(0), a3 = f32x4.splat(0), b3 = f32x4.splat(0);
  let k = 0;
  for (; k + 8 <= K; k += 8) {
    const o = <usize>k << 1;
    const x0 = v128.load(xr + (<usize>k << 2)), x1 = v128.load(xr + (<usize>k << 2), 16);
    const q0 = v128.load(r0 + o), q1 = v128.load(r1 + o), q2 = v128.load(r2 + o), q3 = v128.load(r3 + o);
    if (!bf && !v128.any_true(v128.or(v128.or(f16Special(q0), f16Special(q1)), v128.or(f16Special(q2), f16Special(q3))))) {
      a0 = madd(f16FastLo(q0), x0, a0); b0 = madd(f16FastHi(q0), x1, b0);
      a1 = madd(f16FastLo(q1), x0, a1); b1 = madd(f16FastHi(q1), x1, b1);
      a2 = madd(f16FastLo(q2), x0, a2); b2 = madd(f16FastHi(q2), x1, b2);
      a3 = madd(f16FastLo(q3), x0, a3); b3 = madd(f16FastHi(q3), x1, b3);
      continue;
    }
    a0 = madd(h16(bf, q0, false), x0, a0); b0 = madd(h16(bf, q0, true), x1, b0);
    a1 = madd(h16(bf, q1, false), x0, a1); b1 = madd(h16(bf, q1, true), x1, b1);
    a2 = madd(h16(bf, q2, false), x0, a2); b2 = madd(h16(bf, q2, true), x1, b2);
    a3 = madd(h16(bf, q3, false), x0, a3); b3 = madd(h16(bf, q3, true), x1, b3);
  }
  let s = hsum4(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3));
  if (k < K) {
    s = f32x4.replace_lane(s, 0, tail16(bf, f32x4.extract_lane(s, 0), r0, xr, k, K));
    s = f32x4.replace_lane(s, 1, tail16(bf, f32x4.extract_lane(s, 1), r1, xr, k, K));
    s = f32x4.replace_lane(s, 2, tail16(bf, f32x4.extract_lane(s, 2), r2, xr, k, K));
    s = f32x4.replace_lane(s, 3, tail16(bf, f32x4.extract_lane(s, 3), r3, xr, k, K));
  }
  return s;
}

function dotBf16(xr: usize, row: usize, K: i32): f32 { return dot16(true, xr, row, K); }
function dotF16(xr: usize, row: usize, K: i32): f32 { return dot16(false, xr, row, K); }
function dot4Bf16(xr: usize, w: usize, n: i32, K: i32): v128 { return dot4x16(true, xr, w, n, K); }
function dot4F16(xr: usize, w: usize, n: i32, K: i32): v128 { return dot4x16(false, xr, w, n, K); }

// Block formats: per block, the integer quants times x summed in f32 (two chains), then scaled by
// the block's f16 scale and added to one vector accumulator; one horizontal sum per row.

function dotQ8_0(xr: usize, w: usize, rows: i32, K: i32, n: i32): f32 {
  const nbr = K >> 5;
  const ds = q8Scales(w, rows, K);
  const b0 = <usize>n * <usize>nbr;
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
  let j = 0;
  // Four blocks per step: their four f16 scales convert as one vector.
  for (; j + 4 <= nbr; j += 4) {
    const b = b0 + <usize>j;
    const qp = w + (b << 5), xp = xr + (<usize>j << 7);
    const d = loadF16x4(ds + (b << 1));
    const s0 = f32x4.add(dotI8x16(v128.load(qp), xp), dotI8x16(v128.load(qp, 16), xp + 64));
    const s1 = f32x4.add(dotI8x16(v128.load(qp, 32), xp + 128), dotI8x16(v128.load(qp, 48), xp + 192));
    const s2 = f32x4.add(dotI8x16(v128.load(qp, 64), xp + 256), dotI8x16(v128.load(qp, 80), xp + 320));
    const s3 = f32x4.add(dotI8x16(v128.load(qp, 96), xp + 384), dotI8x16(v128.load(qp, 112), xp + 448));
    acc0 = madd(s0, v128.shuffle<f32>(d, d, 0, 0, 0, 0), acc0);
    acc1 = madd(s1, v128.shuffle<f32>(d, d, 1, 1, 1, 1), acc1);
    acc0 = madd(s2, v128.shuffle<f32>(d, d, 2, 2, 2, 2), acc0);
    acc1 = madd(s3, v128.shuffle<f32>(d, d, 3, 3, 3, 3), acc1);
  }
  for (; j < nbr; j++) {
    const b = b0 + <usize>j;
    const qp = w + (b << 5), xp = xr + (<usize>j << 7);
    const s = f32x4.add(dotI8x16(v128.load(qp), xp), dotI8x16(v128.load(qp, 16), xp + 64));
    const d = f32x4.splat(f16ToF32(<u32>load<u16>(ds + (b << 1))));
    if (j & 1) acc1 = madd(s, d, acc1); else acc0 = madd(s, d, acc0);
  }
  return hsum(f32x4.add(acc0, acc1));
}

@inline function nibblesLo(v: v128): v128 { return v128.and(v, i8x16.splat(0x0f)); }
@inline function nibblesHi(v: v128): v128 { return v128.and(i16x8.shr_u(v, 4), i8x16.splat(0x0f)); }

/** Sum over one q4_0 block (16 bytes at qp) times x. */
@inline function blockQ4_0(qp: usize, xp: usize): v128 {
  const v = v128.load(qp);
  const eight = i8x16.splat(8);
  return f32x4.add(dotI8x16(i8x16.sub(nibblesLo(v), eight), xp), dotI8x16(i8x16.sub(nibblesHi(v), eight), xp + 64));
}

function dotQ4_0(xr: usize, w: usize, rows: i32, K: i32, n: i32): f32 {
  const nbr = K >> 5;
  const ds = q4Scales(w, rows, K);
  const b0 = <usize>n * <usize>nbr;
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= nbr; j += 4) {
    const b = b0 + <usize>j;
    const qp = w + (b << 4), xp = xr + (<usize>j << 7);
    const d = loadF16x4(ds + (b << 1));
    acc0 = madd(blockQ4_0(qp, xp), v128.shuffle<f32>(d, d, 0, 0, 0, 0), acc0);
    acc1 = madd(blockQ4_0(qp + 16, xp + 128), v128.shuffle<f32>(d, d, 1, 1, 1, 1), acc1);
    acc0 = madd(blockQ4_0(qp + 32, xp + 256), v128.shuffle<f32>(d, d, 2, 2, 2, 2), acc0);
    acc1 = madd(blockQ4_0(qp + 48, xp + 384), v128.shuffle<f32>(d, d, 3, 3, 3, 3), acc1);
  }
  for (; j < nbr; j++) {
    const b = b0 + <usize>j;
    const s = blockQ4_0(w + (b << 4), xr + (<usize>j << 7));
    const d = f32x4.splat(f16ToF32(<u32>load<u16>(ds + (b << 1))));
    if (j & 1) acc1 = madd(s, d, acc1); else acc0 = madd(s, d, acc0);
  }
  return hsum(f32x4.add(acc0, acc1));
}

/** The fifth bits of a q5_0 block as 0x10 bytes: values 0..15 (lo) or 16..31 (hi) from qh. */
@inline function q5Bits(qh: u32, hi: bool): v128 {
  const hv = i32x4.splat(<i32>qh);
  const sel = hi
    ? v128.shuffle<u8>(hv, hv, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)
    : v128.shuffle<u8>(hv, hv, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const bit = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return v128.and(i8x16.eq(v128.and(sel, bit), bit), i8x16.splat(0x10));
}

/** Sum over one q5_0 block (16 bytes at qp, high bits qh) times x. */
@inline function blockQ5_0(qp: usize, qh: u32, xp: usize): v128 {
  const v = v128.load(qp);
  const sixteen = i8x16.splat(16);
  const lo = i8x16.sub(v128.or(nibblesLo(v), q5Bits(qh, false)), sixteen);
  const hi = i8x16.sub(v128.or(nibblesHi(v), q5Bits(qh, true)), sixteen);
  return f32x4.add(dotI8x16(lo, xp), dotI8x16(hi, xp + 64));
}

function dotQ5_0(xr: usize, w: usize, rows: i32, K: i32, n: i32): f32 {
  const nbr = K >> 5;
  const hs = q5High(w, rows, K), ds = q5Scales(w, rows, K);
  const b0 = <usize>n * <usize>nbr;
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= nbr; j += 4) {
    const b = b0 + <usize>j;
    const qp = w + (b << 4), hp = hs + (b << 2), xp = xr + (<usize>j << 7);
    const d = loadF16x4(ds + (b << 1));
    acc0 = madd(blockQ5_0(qp, load<u32>(hp), xp), v128.shuffle<f32>(d, d, 0, 0, 0, 0), acc0);
    acc1 = madd(blockQ5_0(qp + 16, load<u32>(hp, 4), xp + 128), v128.shuffle<f32>(d, d, 1, 1, 1, 1), acc1);
    acc0 = madd(blockQ5_0(qp + 32, load<u32>(hp, 8), xp + 256), v128.shuffle<f32>(d, d, 2, 2, 2, 2), acc0);
    acc1 = madd(blockQ5_0(qp + 48, load<u32>(hp, 12), xp + 384), v128.shuffle<f32>(d, d, 3, 3, 3, 3), acc1);
  }
  for (; j < nbr; j++) {
    const b = b0 + <usize>j;
    const s = blockQ5_0(w + (b << 4), load<u32>(hs + (b << 2)), xr + (<usize>j << 7));
    const d = f32x4.splat(f16ToF32(<u32>load<u16>(ds + (b << 1))));
    if (j & 1) acc1 = madd(s, d, acc1); else acc0 = madd(s, d, acc0);
  }
  return hsum(f32x4.add(acc0, acc1));
}

/** ggml's get_scale_min_k4: 6-bit scale (low byte of the result) and min (high byte) of sub-block j. */
@inline function q4kScaleMin(sp: usize, j: i32): u32 {
  if (j < 4) {
    return (<u32>load<u8>(sp + j) & 63) | ((<u32>load<u8>(sp + j + 4) & 63) << 8);
  }
  const sc = (<u32>load<u8>(sp + j + 4) & 0xf) | ((<u32>load<u8>(sp + j - 4) >> 6) << 4);
  const m = (<u32>load<u8>(sp + j + 4) >> 4) | ((<u32>load<u8>(sp + j) >> 6) << 4);
  return sc | (m << 8);
}

/** Sum of the 32 x values at xp, fixed order. */
@inline function xsum32(xp: usize): v128 {
  const a = f32x4.add(f32x4.add(v128.load(xp), v128.load(xp, 16)), f32x4.add(v128.load(xp, 32), v128.load(xp, 48)));
  const b = f32x4.add(f32x4.add(v128.load(xp, 64), v128.load(xp, 80)), f32x4.add(v128.load(xp, 96), v128.load(xp, 112)));
  return f32x4.add(a, b);
}

function dotQ4_K(xr: usize, w: usize, K: i32, n: i32): f32 {
  const nbr = K >> 8;
  const b0 = <usize>n * <usize>nbr;
  let acc = f32x4.splat(0);
  for (let j = 0; j < nbr; j++) {
    const bp = w + (b0 + <usize>j) * 144;
    const d = f16ToF32(<u32>load<u16>(bp));
    const dmin = f16ToF32(<u32>load<u16>(bp, 2));
    const sp = bp + 4, qs = bp + 16;
    const xb = xr + (<usize>j << 10);
    for (let i = 0; i < 4; i++) {
      const q0 = v128.load(qs + (<usize>i << 5)), q1 = v128.load(qs + (<usize>i << 5), 16);
      const xp = xb + (<usize>i << 8); // 64 values per group of 32 bytes
      const smA = q4kScaleMin(sp, 2 * i), smB = q4kScaleMin(sp, 2 * i + 1);
      // sub-block 2i: low nibbles; 2i+1: high nibbles
      const sA = f32x4.add(dotI8x16(nibblesLo(q0), xp), dotI8x16(nibblesLo(q1), xp + 64));
      const sB = f32x4.add(dotI8x16(nibblesHi(q0), xp + 128), dotI8x16(nibblesHi(q1), xp + 192));
      acc = madd(sA, f32x4.splat(d * <f32>(smA & 0xff)), acc);
      acc = f32x4.sub(acc, f32x4.mul(xsum32(xp), f32x4.splat(dmin * <f32>(smA >> 8))));
      acc = madd(sB, f32x4.splat(d * <f32>(smB & 0xff)), acc);
      acc = f32x4.sub(acc, f32x4.mul(xsum32(xp + 128), f32x4.splat(dmin * <f32>(smB >> 8))));
    }
  }
  return hsum(acc);
}

/** The four 16-value groups of q6_k quants (minus 32) for l = lc .. lc+15 of a half block. */
@inline function q6Quads(a: v128, b: v128, h: v128, which: i32): v128 {
  const m4 = i8x16.splat(0x0f), m30 = i8x16.splat(0x30);
  let q: v128;
  if (which == 0) q = v128.or(v128.and(a, m4), v128.and(i16x8.shl(h, 4), m30));
  else if (which == 1) q = v128.or(v128.and(b, m4), v128.and(i16x8.shl(h, 2), m30));
  else if (which == 2) q = v128.or(v128.and(i16x8.shr_u(a, 4), m4), v128.and(h, m30));
  else q = v128.or(v128.and(i16x8.shr_u(b, 4), m4), v128.and(i16x8.shr_u(h, 2), m30));
  return i8x16.sub(q, i8x16.splat(32));
}

function dotQ6_K(xr: usize, w: usize, rows: i32, K: i32, n: i32): f32 {
  const nbr = K >> 8;
  const ds = q6Scales(w, rows, K);
  const b0 = <usize>n * <usize>nbr;
  let acc = f32x4.splat(0);
  for (let j = 0; j < nbr; j++) {
    const b = b0 + <usize>j;
    const bp = w + b * 208;
    const d = f16ToF32(<u32>load<u16>(ds + (b << 1)));
    for (let half = 0; half < 2; half++) {
      const ql = bp + (<usize>half << 6), qh = bp + 128 + (<usize>half << 5), sc = bp + 192 + (<usize>half << 3);
      const xb = xr + (<usize>j << 10) + (<usize>half << 9);
      for (let lc = 0; lc < 32; lc += 16) {
        const a = v128.load(ql + lc), bb = v128.load(ql + 32 + lc), h = v128.load(qh + lc);
        const is = lc >> 4;
        const xp = xb + (<usize>lc << 2);
        acc = madd(dotI8x16(q6Quads(a, bb, h, 0), xp), f32x4.splat(d * <f32>load<i8>(sc + is)), acc);
        acc = madd(dotI8x16(q6Quads(a, bb, h, 1), xp + 128), f32x4.splat(d * <f32>load<i8>(sc + is + 2)), acc);
        acc = madd(dotI8x16(q6Quads(a, bb, h, 2), xp + 256), f32x4.splat(d * <f32>load<i8>(sc + is + 4)), acc);
        acc = madd(dotI8x16(q6Quads(a, bb, h, 3), xp + 384), f32x4.splat(d * <f32>load<i8>(sc + is + 6)), acc);
      }
    }
  }
  return hsum(acc);
}

/** sum_k x[k] * W[n, k] for row n of a part in format fmt. */
export function dotRow(fmt: i32, xr: usize, w: usize, rows: i32, K: i32, n: i32): f32 {
  switch (fmt) {
    case FMT_F32: return dotF32(xr, w + <usize>n * (<usize>K << 2), K);
    case FMT_F16: return dotF16(xr, w + <usize>n * (<usize>K << 1), K);
    case FMT_BF16: return dotBf16(xr, w + <usize>n * (<usize>K << 1), K);
    case FMT_Q8_0: return dotQ8_0(xr, w, rows, K, n);
    case FMT_Q4_0: return dotQ4_0(xr, w, rows, K, n);
    case FMT_Q5_0: return dotQ5_0(xr, w, rows, K, n);
    case FMT_Q4_K: return dotQ4_K(xr, w, K, n);
    default: return dotQ6_K(xr, w, rows, K, n);
  }
}

/** Rows n .. n+3 (all < rows) as one vector; lane r is bit-identical to dotRow(.., n + r). */
export function dotRows4(fmt: i32, xr: usize, w: usize, rows: i32, K: i32, n: i32): v128 {
  switch (fmt) {
    case FMT_F32: return dot4F32(xr, w, n, K);
    case FMT_F16: return dot4F16(xr, w, n, K);
    case FMT_BF16: return dot4Bf16(xr, w, n, K);
    default: {
      let s = f32x4.splat(dotRow(fmt, xr, w, rows, K, n));
      s = f32x4.replace_lane(s, 1, dotRow(fmt, xr, w, rows, K, n + 1));
      s = f32x4.replace_lane(s, 2, dotRow(fmt, xr, w, rows, K, n + 2));
      return f32x4.replace_lane(s, 3, dotRow(fmt, xr, w, rows, K, n + 3));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Row dequantization: dst f32 [K] <- W[n, :]. Values are formed exactly as ggml's dequantizers
// form them in f32: q*d (q8_0), (q-8)*d, (q-16)*d (exact products), (d*sc)*q - dmin*m (q4_k),
// (d*sc)*(q-32) (q6_k).

@inline function storeScaledI8(q: v128, s: v128, dst: usize): void {
  const lo = i16x8.extend_low_i8x16_s(q), hi = i16x8.extend_high_i8x16_s(q);
  v128.store(dst, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), s));
  v128.store(dst, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), s), 16);
  v128.store(dst, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), s), 32);
  v128.store(dst, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), s), 48);
}

@inline function storeScaledMinI8(q: v128, s: v128, m: v128, dst: usize): void {
  const lo = i16x8.extend_low_i8x16_s(q), hi = i16x8.extend_high_i8x16_s(q);
  v128.store(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), s), m));
  v128.store(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), s), m), 16);
  v128.store(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), s), m), 32);
  v128.store(dst, f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), s), m), 48);
}

export function dequantRow(fmt: i32, w: usize, rows: i32, K: i32, n: i32, dst: usize): void {
  switch (fmt) {
    case FMT_F32: {
      // A loop, not memory.copy: V8 runs memory.copy on shared memory as a slow runtime call.
      const row = w + <usize>n * (<usize>K << 2);
      let k = 0;
      for (; k + 4 <= K; k += 4) v128.store(dst + (<usize>k << 2), v128.load(row + (<usize>k << 2)));
      for (; k < K; k++) store<f32>(dst + (<usize>k << 2), load<f32>(row + (<usize>k << 2)));
      return;
    }
    case FMT_F16:
    case FMT_BF16: {
      const bf = fmt == FMT_BF16;
      const row = w + <usize>n * (<usize>K << 1);
      let k = 0;
      for (; k + 8 <= K; k += 8) {
        const q = v128.load(row + (<usize>k << 1));
        const o = dst + (<usize>k << 2);
        if (bf) { v128.store(o, bf16Lo(q)); v128.store(o, bf16Hi(q), 16); }
        else if (!v128.any_true(f16Special(q))) { v128.store(o, f16FastLo(q)); v128.store(o, f16FastHi(q), 16); }
        else { v128.store(o, f16Lo(q)); v128.store(o, f16Hi(q), 16); }
      }
      for (; k < K; k++) store<f32>(dst + (<usize>k << 2), scalar16(bf, row, k));
      return;
    }
    case FMT_Q8_0: {
      const nbr = K >> 5, ds = q8Scales(w, rows, K), b0 = <usize>n * <usize>nbr;
      for (let j = 0; j < nbr; j++) {
        const b = b0 + <usize>j;
        const s = f32x4.splat(f16ToF32(<u32>load<u16>(ds + (b << 1))));
        const o = dst + (<usize>j << 7);
        storeScaledI8(v128.load(w + (b << 5)), s, o);
        storeScaledI8(v128.load(w + (b << 5), 16), s, o + 64);
      }
      return;
    }
    case FMT_Q4_0:
    case FMT_Q5_0: {
      const five = fmt == FMT_Q5_0;
      const nbr = K >> 5, b0 = <usize>n * <usize>nbr;
      const ds = five ? q5Scales(w, rows, K) : q4Scales(w, rows, K);
      const hs = q5High(w, rows, K);
      const bias = i8x16.splat(five ? 16 : 8);
      for (let j = 0; j < nbr; j++) {
        const b = b0 + <usize>j;
        const s = f32x4.splat(f16ToF32(<u32>load<u16>(ds + (b << 1))));
        const v = v128.load(w + (b << 4));
        let lo = nibblesLo(v), hi = nibblesHi(v);
        if (five) {
          const qh = load<u32>(hs + (b << 2));
          lo = v128.or(lo, q5Bits(qh, false));
          hi = v128.or(hi, q5Bits(qh, true));
        }
        const o = dst + (<usize>j << 7);
        storeScaledI8(i8x16.sub(lo, bias), s, o);
        storeScaledI8(i8x16.sub(hi, bias), s, o + 64);
      }
      return;
    }
    case FMT_Q4_K: {
      const nbr = K >> 8, b0 = <usize>n * <usize>nbr;
      for (let j = 0; j < nbr; j++) {
        const bp = w + (b0 + <usize>j) * 144;
        const d = f16ToF32(<u32>load<u16>(bp));
        const dmin = f16ToF32(<u32>load<u16>(bp, 2));
        const sp = bp + 4, qs = bp + 16;
        const ob = dst + (<usize>j << 10);
        for (let i = 0; i < 4; i++) {
          const q0 = v128.load(qs + (<usize>i << 5)), q1 = v128.load(qs + (<usize>i << 5), 16);
          const smA = q4kScaleMin(sp, 2 * i), smB = q4kScaleMin(sp, 2 * i + 1);
          const sA = f32x4.splat(d * <f32>(smA & 0xff)), mA = f32x4.splat(dmin * <f32>(smA >> 8));
          const sB = f32x4.splat(d * <f32>(smB & 0xff)), mB = f32x4.splat(dmin * <f32>(smB >> 8));
          const o = ob + (<usize>i << 8);
          storeScaledMinI8(nibblesLo(q0), sA, mA, o);
          storeScaledMinI8(nibblesLo(q1), sA, mA, o + 64);
          storeScaledMinI8(nibblesHi(q0), sB, mB, o + 128);
          storeScaledMinI8(nibblesHi(q1), sB, mB, o + 192);
        }
      }
      return;
    }
    default: {
      const nbr = K >> 8, ds = q6Scales(w, rows, K), b0 = <usize>n * <usize>nbr;
      for (let j = 0; j < nbr; j++) {
        const b = b0 + <usize>j;
        const bp = w + b * 208;
        const d = f16ToF32(<u32>load<u16>(ds + (b << 1)));
        for (let half = 0; half < 2; half++) {
          const ql = bp + (<usize>half << 6), qh = bp + 128 + (<usize>half << 5), sc = bp + 192 + (<usize>half << 3);
          const ob = dst + (<usize>j << 10) + (<usize>half << 9);
          for (let lc = 0; lc < 32; lc += 16) {
            const a = v128.load(ql + lc), bb = v128.load(ql + 32 + lc), h = v128.load(qh + lc);
            const is = lc >> 4;
            const o = ob + (<usize>lc << 2);
            storeScaledI8(q6Quads(a, bb, h, 0), f32x4.splat(d * <f32>load<i8>(sc + is)), o);
            storeScaledI8(q6Quads(a, bb, h, 1), f32x4.splat(d * <f32>load<i8>(sc + is + 2)), o + 128);
            storeScaledI8(q6Quads(a, bb, h, 2), f32x4.splat(d * <f32>load<i8>(sc + is + 4)), o + 256);
            storeScaledI8(q6Quads(a, bb, h, 3), f32x4.splat(d * <f32>load<i8>(sc + is + 6)), o + 384);
          }
        }
      }
    }
  }
}

/** Values per block (1 for the 16/32-bit formats): K must be a multiple of it. */
export function formatBlock(fmt: i32): i32 {
  if (fmt == FMT_Q4_K || fmt == FMT_Q6_K) return 256;
  if (fmt >= FMT_Q8_0) return 32;
  return 1;
}
