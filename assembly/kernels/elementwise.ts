// Elementwise kernels: residual add, exact-erf GELU gate, row stores into a KV cache (f32 or f16),
// and argmax over rows.
import { splitLo } from './common';
import { geluv } from './math';

/** Elements per work unit of the flat elementwise kernels. */
const CHUNK: i32 = 64;

/** out[i] = a[i] + b[i], n floats; out may be a or b (same index only). */
export function add(a: usize, b: usize, out: usize, n: i32, ti: i32, tc: i32): void {
  const units = (n + CHUNK - 1) / CHUNK;
  const e1 = min(n, splitLo(units, ti + 1, tc) * CHUNK);
  let i = splitLo(units, ti, tc) * CHUNK;
  for (; i + 4 <= e1; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < e1; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/** out[t, f] = gelu(gu[t, f]) * gu[t, F + f]; gu [T, 2F], out [T, F] not overlapping gu. */
export function geluGate(gu: usize, out: usize, T: i32, F: i32, ti: i32, tc: i32): void {
  const per = (F + CHUNK - 1) / CHUNK;
  const u1 = splitLo(T * per, ti + 1, tc);
  for (let u = splitLo(T * per, ti, tc); u < u1; u++) {
    const t = u / per;
    const f0 = (u % per) * CHUNK, f1 = min(F, f0 + CHUNK);
    const g = gu + ((<usize>t * <usize>(2 * F)) << 2);
    const up = g + (<usize>F << 2);
    const o = out + ((<usize>t * <usize>F) << 2);
    let f = f0;
    for (; f + 4 <= f1; f += 4) {
      const k = <usize>f << 2;
      v128.store(o + k, f32x4.mul(geluv(v128.load(g + k)), v128.load(up + k)));
    }
    for (; f < f1; f++) {
      const k = <usize>f << 2;
      store<f32>(o + k, f32x4.extract_lane(geluv(f32x4.splat(load<f32>(g + k))), 0) * load<f32>(up + k));
    }
  }
}

/**
 * Row copy into a KV cache: dst[r, c] = src[r, c] for r < rows, c < width, stored as f32
 * (dstF16 = 0) or f16 (dstF16 = 1: round to nearest even, overflow to inf, f16 subnormals, NaN
 * stays NaN). src row stride srcStride floats; dst row stride dstStride elements of its type.
 * Threads split the rows.
 */
export function storeRows(src: usize, srcStride: i32, rows: i32, width: i32, dst: usize, dstStride: i32, dstF16: i32,
  ti: i32, tc: i32): void {
  const r1 = splitLo(rows, ti + 1, tc);
  for (let r = splitLo(rows, ti, tc); r < r1; r++) {
    const s = src + ((<usize>r * <usize>srcStride) << 2);
    let c = 0;
    if (dstF16) {
      const d = dst + ((<usize>r * <usize>dstStride) << 1);
      for (; c + 4 <= width; c += 4) {
        const h = f32ToF16x4(v128.load(s + (<usize>c << 2)));
        v128.store64_lane(d + (<usize>c << 1), v128.shuffle<u16>(h, h, 0, 2, 4, 6, 0, 2, 4, 6), 0);
      }
      for (; c < width; c++) {
        const h = f32ToF16x4(f32x4.splat(load<f32>(s + (<usize>c << 2))));
        store<u16>(d + (<usize>c << 1), <u16>i32x4.extract_lane(h, 0));
      }
    } else {
      const d = dst + ((<usize>r * <usize>dstStride) << 2);
      for (; c + 4 <= width; c += 4) v128.store(d + (<usize>c << 2), v128.load(s + (<usize>c << 2)));
      for (; c < width; c++) store<f32>(d + (<usize>c << 2), load<f32>(s + (<usize>c << 2)));
    }
  }
}

/** f32 -> f16 bits (in the low half of each u32 lane), round to nearest even. */
@inline function f32ToF16x4(v: v128): v128 {
  const bits = v;
  const sign = v128.and(i32x4.shr_u(bits, 16), i32x4.splat(0x8000));
  const a = v128.and(bits, i32x4.splat(0x7fffffff));
  // Normal range: rebias, round the 13 dropped bits to nearest even (a carry into the exponent is right).
  const mant = i32x4.shr_u(a, 13);
  const odd = v128.and(mant, i32x4.splat(1));
  const normal = i32x4.sub(i32x4.shr_u(i32x4.add(i32x4.add(a, i32x4.splat(0x0fff)), odd), 13), i32x4.splat(112 << 10));
  // Subnormal halves (|v| < 2^-14): value * 2^24 rounded to an integer by the f32 adder
  // (adding 0.5 (2^-1) in units ... done as |v| + 2^-1 in a scaled domain): |v| * 2^24 < 1024,
  // and adding 2^23 rounds it to an integer with ties to even.
  const scaled = f32x4.add(f32x4.mul(a, f32x4.splat(16777216.0)), f32x4.splat(8388608.0));
  const sub = i32x4.sub(scaled, i32x4.splat(0x4b000000));
  let h = v128.bitselect(sub, normal, i32x4.lt_s(a, i32x4.splat(0x38800000)));
  // Overflow (>= 65520 rounds to inf) and inf -> 0x7c00; NaN -> 0x7e00.
  h = v128.bitselect(i32x4.splat(0x7c00), h, i32x4.ge_s(a, i32x4.splat(0x477ff000)));
  h = v128.bitselect(i32x4.splat(0x7e00), h, i32x4.gt_s(a, i32x4.splat(0x7f800000)));
  return v128.or(h, sign);
}

@inline function isNaN32(v: f32): bool { return v != v; }

/**
 * out[m] = argmax_v logits[m, v] (u32), like torch.argmax: ties go to the lowest index and a NaN
 * counts as the maximum (the first NaN wins). Threads split the rows.
 */
export function argmax(logits: usize, M: i32, V: i32, out: usize, ti: i32, tc: i32): void {
  const m1 = splitLo(M, ti + 1, tc);
  for (let m = splitLo(M, ti, tc); m < m1; m++) {
    const row = logits + ((<usize>m * <usize>V) << 2);
    // Per lane: best value and the first index holding it (strict > keeps the earliest). Lanes
    // start from real elements, so a row of -inf still resolves to index 0.
    let bv: f32 = load<f32>(row);
    let bi: i32 = 0;
    let nan = i32x4.splat(0);
    let v = 0;
    if (V >= 4) {
      let best = v128.load(row);
      let bestIdx = i32x4(0, 1, 2, 3);
      let idx = bestIdx;
      nan = f32x4.ne(best, best);
      for (v = 4; v + 4 <= V; v += 4) {
        const x = v128.load(row + (<usize>v << 2));
        idx = i32x4.add(idx, i32x4.splat(4));
        const gt = f32x4.gt(x, best);
        best = v128.bitselect(x, best, gt);
        bestIdx = v128.bitselect(idx, bestIdx, gt);
        nan = v128.or(nan, f32x4.ne(x, x));
      }
      for (let l = 1; l < 4; l++) {
        const lv = l == 1 ? f32x4.extract_lane(best, 1) : l == 2 ? f32x4.extract_lane(best, 2) : f32x4.extract_lane(best, 3);
        const li = l == 1 ? i32x4.extract_lane(bestIdx, 1) : l == 2 ? i32x4.extract_lane(bestIdx, 2) : i32x4.extract_lane(bestIdx, 3);
        if (l == 1) { bv = f32x4.extract_lane(best, 0); bi = i32x4.extract_lane(bestIdx, 0); }
        if (lv > bv || (lv == bv && li < bi)) { bv = lv; bi = li; }
      }
    } else {
      v = 1;
      if (isNaN32(bv)) nan = i32x4.splat(-1);
    }
    for (let t = v; t < V; t++) {
      const x = load<f32>(row + (<usize>t << 2));
      if (isNaN32(x)) { nan = i32x4.splat(-1); break; }
      if (x > bv) { bv = x; bi = t; }
    }
    if (v128.any_true(nan)) {
      for (let t = 0; t < V; t++) {
        if (isNaN32(load<f32>(row + (<usize>t << 2)))) { bi = t; break; }
      }
    }
    store<u32>(out + (<usize>m << 2), <u32>bi);
  }
}
