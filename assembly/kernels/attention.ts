// Causal GQA attention over a KV cache (docs/model.md §Zamba2 attention; the semantics of
// shaders/attention_flash.wgsl / attention_splitk.wgsl), f32 online softmax:
//   out[t, h, :] = sum_{j <= pos0 + t} softmax_j(scale * q[t, h] . k[j, kh]) * v[j, kh],
//   kh = h / (nHeads / nKv).
// One (query, head) pair is one unit of work, computed whole by one thread: keys in blocks of 4
// (scores in one vector), running max m and sum l in f32, the output row itself is the
// accumulator (rescaled when m grows). No score matrix, no scratch.
import { f16FastHi, f16FastLo, f16Hi, f16HiToF32, f16Lo, f16Special, hsum, loadF16x4, madd } from './common';
import { expv } from './math';

@inline function kvLoad4(p: usize, f16: bool): v128 { return f16 ? loadF16x4(p) : v128.load(p); }
@inline function kvLoad1(p: usize, f16: bool): f32 {
  if (f16) return f32x4.extract_lane(f16HiToF32(i32x4.splat(<i32>load<u16>(p) << 16)), 0);
  return load<f32>(p);
}

/**
 * q . k over hd values, fixed order (4-lane accumulator, then the hd % 4 tail). f16 keys go eight
 * at a time through the cheap conversion when all eight are normal numbers (exact either way).
 */
@inline function dotQK(qr: usize, kr: usize, hd: i32, f16: bool): f32 {
  let acc = f32x4.splat(0);
  let d = 0;
  if (f16) {
    for (; d + 8 <= hd; d += 8) {
      const h = v128.load(kr + (<usize>d << 1));
      const fast = !v128.any_true(f16Special(h));
      acc = madd(v128.load(qr + (<usize>d << 2)), fast ? f16FastLo(h) : f16Lo(h), acc);
      acc = madd(v128.load(qr + (<usize>d << 2), 16), fast ? f16FastHi(h) : f16Hi(h), acc);
    }
    for (; d + 4 <= hd; d += 4) acc = madd(v128.load(qr + (<usize>d << 2)), loadF16x4(kr + (<usize>d << 1)), acc);
  } else {
    for (; d + 4 <= hd; d += 4) acc = madd(v128.load(qr + (<usize>d << 2)), v128.load(kr + (<usize>d << 2)), acc);
  }
  let s = hsum(acc);
  for (; d < hd; d++) s += load<f32>(qr + (<usize>d << 2)) * kvLoad1(kr + <usize>d * (f16 ? 2 : 4), f16);
  return s;
}

/** out[d .. d+8) += sum_i p_i v_i[d .. d+8) over four f16 value rows (the fast conversion when all are normal). */
@inline function accumulateF16x8(o: usize, vr: usize, rowBytes: usize, e: usize, p0: v128, p1: v128, p2: v128, p3: v128): void {
  const h0 = v128.load(vr + e), h1 = v128.load(vr + rowBytes + e), h2 = v128.load(vr + 2 * rowBytes + e), h3 = v128.load(vr + 3 * rowBytes + e);
  let lo = v128.load(o), hi = v128.load(o, 16);
  if (!v128.any_true(v128.or(v128.or(f16Special(h0), f16Special(h1)), v128.or(f16Special(h2), f16Special(h3))))) {
    lo = madd(p0, f16FastLo(h0), lo); hi = madd(p0, f16FastHi(h0), hi);
    lo = madd(p1, f16FastLo(h1), lo); hi = madd(p1, f16FastHi(h1), hi);
    lo = madd(p2, f16FastLo(h2), lo); hi = madd(p2, f16FastHi(h2), hi);
    lo = madd(p3, f16FastLo(h3), lo); hi = madd(p3, f16FastHi(h3), hi);
  } else {
    lo = madd(p0, f16Lo(h0), lo); hi = madd(p0, f16Hi(h0), hi);
    lo = madd(p1, f16Lo(h1), lo); hi = madd(p1, f16Hi(h1), hi);
    lo = madd(p2, f16Lo(h2), lo); hi = madd(p2, f16Hi(h2), hi);
    lo = madd(p3, f16Lo(h3), lo); hi = madd(p3, f16Hi(h3), hi);
  }
  v128.store(o, lo);
  v128.store(o, hi, 16);
}

@inline function attendUnit(q: usize, qRowStride: i32, k: usize, v: usize, f16: bool, out: usize,
  t: i32, h: i32, pos0: i32, nHeads: i32, group: i32, hd: i32, kvStride: i32, scale: f32): void {
  const esz: usize = f16 ? 2 : 4;
  const qr = q + ((<usize>t * <usize>qRowStride + <usize>h * <usize>hd) << 2);
  const orow = out + ((<usize>t * <usize>nHeads * <usize>hd + <usize>h * <usize>hd) << 2);
  const kvOff = <usize>(h / group) * <usize>hd * esz;
  const rowBytes = <usize>kvStride * esz;
  const L = pos0 + t + 1;
  const hd4 = hd & ~3;
  for (let d = 0; d < hd; d++) store<f32>(orow + (<usize>d << 2), 0);
  let m: f32 = -Infinity;
  let l: f32 = 0;
  for (let j0 = 0; j0 < L; j0 += 4) {
    const nk = min(4, L - j0);
    const kr = k + <usize>j0 * rowBytes + kvOff;
    const s0 = dotQK(qr, kr, hd, f16) * scale;
    const s1 = nk > 1 ? dotQK(qr, kr + rowBytes, hd, f16) * scale : -Infinity;
    const s2 = nk > 2 ? dotQK(qr, kr + 2 * rowBytes, hd, f16) * scale : -Infinity;
    const s3 = nk > 3 ? dotQK(qr, kr + 3 * rowBytes, hd, f16) * scale : -Infinity;
    const mNew = max(m, max(max(s0, s1), max(s2, s3)));
    if (mNew > m) {
      // exp(-inf) = 0 on the first block (the output row is still zero).
      const corr = f32x4.splat(f32x4.extract_lane(expv(f32x4.splat(m - mNew)), 0));
      l *= f32x4.extract_lane(corr, 0);
      for (let d = 0; d < hd4; d += 4) {
        const o = orow + (<usize>d << 2);
        v128.store(o, f32x4.mul(v128.load(o), corr));
      }
      for (let d = hd4; d < hd; d++) {
        const o = orow + (<usize>d << 2);
        store<f32>(o, load<f32>(o) * f32x4.extract_lane(corr, 0));
      }
      m = mNew;
    }
    let sv = f32x4.splat(s0);
    sv = f32x4.replace_lane(sv, 1, s1);
    sv = f32x4.replace_lane(sv, 2, s2);
    sv = f32x4.replace_lane(sv, 3, s3);
    const pv = expv(f32x4.sub(sv, f32x4.splat(m))); // masked lanes: exp(-inf) = 0
    l += hsum(pv);
    const vr = v + <usize>j0 * rowBytes + kvOff;
    if (nk == 4) {
      const p0 = f32x4.splat(f32x4.extract_lane(pv, 0)), p1 = f32x4.splat(f32x4.extract_lane(pv, 1));
      const p2 = f32x4.splat(f32x4.extract_lane(pv, 2)), p3 = f32x4.splat(f32x4.extract_lane(pv, 3));
      let d0 = 0;
      if (f16) {
        for (; d0 + 8 <= hd4; d0 += 8) accumulateF16x8(orow + (<usize>d0 << 2), vr, rowBytes, <usize>d0 << 1, p0, p1, p2, p3);
      }
      for (let d = d0; d < hd4; d += 4) {
        const o = orow + (<usize>d << 2);
        const e = <usize>d * esz;
        let acc = v128.load(o);
        acc = madd(p0, kvLoad4(vr + e, f16), acc);
        acc = madd(p1, kvLoad4(vr + rowBytes + e, f16), acc);
        acc = madd(p2, kvLoad4(vr + 2 * rowBytes + e, f16), acc);
        acc = madd(p3, kvLoad4(vr + 3 * rowBytes + e, f16), acc);
        v128.store(o, acc);
      }
      for (let d = hd4; d < hd; d++) {
        const o = orow + (<usize>d << 2);
        const e = <usize>d * esz;
        let a = f32x4.splat(load<f32>(o));
        a = madd(p0, f32x4.splat(kvLoad1(vr + e, f16)), a);
        a = madd(p1, f32x4.splat(kvLoad1(vr + rowBytes + e, f16)), a);
        a = madd(p2, f32x4.splat(kvLoad1(vr + 2 * rowBytes + e, f16)), a);
        a = madd(p3, f32x4.splat(kvLoad1(vr + 3 * rowBytes + e, f16)), a);
        store<f32>(o, f32x4.extract_lane(a, 0));
      }
    } else {
      for (let i = 0; i < nk; i++) {
        const pi = f32x4.splat(i == 0 ? f32x4.extract_lane(pv, 0) : i == 1 ? f32x4.extract_lane(pv, 1) : f32x4.extract_lane(pv, 2));
        const vi = vr + <usize>i * rowBytes;
        for (let d = 0; d < hd4; d += 4) {
          const o = orow + (<usize>d << 2);
          v128.store(o, madd(pi, kvLoad4(vi + <usize>d * esz, f16), v128.load(o)));
        }
        for (let d = hd4; d < hd; d++) {
          const o = orow + (<usize>d << 2);
          store<f32>(o, f32x4.extract_lane(madd(pi, f32x4.splat(kvLoad1(vi + <usize>d * esz, f16)), f32x4.splat(load<f32>(o))), 0));
        }
      }
    }
  }
  const lv = f32x4.splat(l);
  for (let d = 0; d < hd4; d += 4) {
    const o = orow + (<usize>d << 2);
    v128.store(o, f32x4.div(v128.load(o), lv));
  }
  for (let d = hd4; d < hd; d++) {
    const o = orow + (<usize>d << 2);
    store<f32>(o, load<f32>(o) / l);
  }
}

/**
 * q(t, h, d) at q + 4 (t qRowStride + h hd + d) (RoPE applied); kCache, vCache [capacity, nKv hd]
 * in f32 (kvF16 = 0) or f16 (kvF16 = 1), rows 0 .. pos0 + T - 1 valid; out f32 [T, nHeads hd]
 * (must not overlap q or the caches). Units (t, h) go to threads round-robin (u = ti, ti + tc, ..)
 * so the causal triangle's growing rows spread evenly.
 */
export function attention(q: usize, qRowStride: i32, kCache: usize, vCache: usize, kvF16: i32, out: usize,
  T: i32, pos0: i32, nHeads: i32, nKv: i32, hd: i32, scale: f32, ti: i32, tc: i32): void {
  const group = nHeads / nKv;
  const kvStride = nKv * hd;
  const units = T * nHeads;
  for (let u = ti; u < units; u += tc) {
    const t = u / nHeads, h = u % nHeads;
    if (kvF16) attendUnit(q, qRowStride, kCache, vCache, true, out, t, h, pos0, nHeads, group, hd, kvStride, scale);
    else attendUnit(q, qRowStride, kCache, vCache, false, out, t, h, pos0, nHeads, group, hd, kvStride, scale);
  }
}
