// Weight-reading kernels: GEMV (decode), register-blocked GEMM (prefill), embedding gather.
// y[m, n] (= or +=) sum_k x[m, k] * W[n, k] for one part of W (rows n < rows of this part).
import { hsum4, madd, splitLo } from './common';
import { dequantRow, dotRow, dotRows4, formatBlock } from './formats';

/**
 * GEMV: each thread takes a contiguous range of 4-row units of W and, for every x row, computes
 * those outputs (W's 4 rows stay in L1 across the x rows). The last unit may be partial.
 * x(m, k) at x + 4 (m xRowStride + k); y(m, n) at y + 4 (m yRowStride + n).
 */
export function gemv(fmt: i32, x: usize, xRowStride: i32, M: i32, w: usize, rows: i32, K: i32,
  y: usize, yRowStride: i32, accumulate: i32, ti: i32, tc: i32): void {
  const units = (rows + 3) >> 2;
  const u1 = splitLo(units, ti + 1, tc);
  for (let u = splitLo(units, ti, tc); u < u1; u++) {
    const n = u << 2;
    for (let m = 0; m < M; m++) {
      const xr = x + ((<usize>m * <usize>xRowStride) << 2);
      const yr = y + ((<usize>m * <usize>yRowStride + <usize>n) << 2);
      if (n + 4 <= rows) {
        let s = dotRows4(fmt, xr, w, rows, K, n);
        if (accumulate) s = f32x4.add(s, v128.load(yr));
        v128.store(yr, s);
      } else {
        for (let i = 0; i < rows - n; i++) {
          let s = dotRow(fmt, xr, w, rows, K, n + i);
          const p = yr + (<usize>i << 2);
          if (accumulate) s += load<f32>(p);
          store<f32>(p, s);
        }
      }
    }
  }
}

/** Rows of W per GEMM panel (dequantized to f32 in the thread's scratch). */
const PANEL: i32 = 16;

/** Scratch bytes one GEMM thread needs for inner size K. */
export function gemmScratchBytes(K: i32): i32 {
  return PANEL * (((K + 3) & ~3) << 2);
}

/** Four outputs (row xr of x against panel rows p .. p+3) to yr, all or the first nValid. */
@inline function store4(yr: usize, s: v128, nValid: i32, accumulate: i32): void {
  if (nValid == 4) {
    if (accumulate) s = f32x4.add(s, v128.load(yr));
    v128.store(yr, s);
    return;
  }
  for (let i = 0; i < nValid; i++) {
    let v = f32x4.extract_lane(s, 0);
    if (i == 1) v = f32x4.extract_lane(s, 1);
    else if (i == 2) v = f32x4.extract_lane(s, 2);
    const p = yr + (<usize>i << 2);
    if (accumulate) v += load<f32>(p);
    store<f32>(p, v);
  }
}

/** The K % 4 leftover terms of four dot products, added one by one after the vector sums. */
@inline function tail4(s: v128, xr: usize, p: usize, rowBytes: usize, k: i32, K: i32): v128 {
  for (; k < K; k++) {
    const xv = f32x4.splat(load<f32>(xr + (<usize>k << 2)));
    const o = <usize>k << 2;
    let wv = f32x4.splat(load<f32>(p + o));
    wv = f32x4.replace_lane(wv, 1, load<f32>(p + rowBytes + o));
    wv = f32x4.replace_lane(wv, 2, load<f32>(p + 2 * rowBytes + o));
    wv = f32x4.replace_lane(wv, 3, load<f32>(p + 3 * rowBytes + o));
    s = f32x4.add(s, f32x4.mul(xv, wv));
  }
  return s;
}

/**
 * 2 x rows by 4 panel rows: 8 vector accumulators over k in steps of 4 (lane l sums k = l mod 4),
 * then fixed-order horizontal sums, then the K % 4 tail. micro1x4 does the same for one x row.
 */
@inline function micro2x4(xa: usize, xb: usize, p: usize, rowBytes: usize, K: i32,
  ya: usize, yb: usize, nValid: i32, accumulate: i32): void {
  const p1 = p + rowBytes, p2 = p1 + rowBytes, p3 = p2 + rowBytes;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  const K4 = K & ~3;
  for (let k = 0; k < K4; k += 4) {
    const o = <usize>k << 2;
    const x0 = v128.load(xa + o), x1 = v128.load(xb + o);
    let wv = v128.load(p + o);
    a0 = madd(x0, wv, a0); b0 = madd(x1, wv, b0);
    wv = v128.load(p1 + o);
    a1 = madd(x0, wv, a1); b1 = madd(x1, wv, b1);
    wv = v128.load(p2 + o);
    a2 = madd(x0, wv, a2); b2 = madd(x1, wv, b2);
    wv = v128.load(p3 + o);
    a3 = madd(x0, wv, a3); b3 = madd(x1, wv, b3);
  }
  store4(ya, tail4(hsum4(a0, a1, a2, a3), xa, p, rowBytes, K4, K), nValid, accumulate);
  store4(yb, tail4(hsum4(b0, b1, b2, b3), xb, p, rowBytes, K4, K), nValid, accumulate);
}

@inline function micro1x4(xa: usize, p: usize, rowBytes: usize, K: i32, ya: usize, nValid: i32, accumulate: i32): void {
  const p1 = p + rowBytes, p2 = p1 + rowBytes, p3 = p2 + rowBytes;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const K4 = K & ~3;
  for (let k = 0; k < K4; k += 4) {
    const o = <usize>k << 2;
    const x0 = v128.load(xa + o);
    a0 = madd(x0, v128.load(p + o), a0);
    a1 = madd(x0, v128.load(p1 + o), a1);
    a2 = madd(x0, v128.load(p2 + o), a2);
    a3 = madd(x0, v128.load(p3 + o), a3);
  }
  store4(ya, tail4(hsum4(a0, a1, a2, a3), xa, p, rowBytes, K4, K), nValid, accumulate);
}

/**
 * GEMM for larger M: each call takes a contiguous range of 16-row panels of W, dequantizes a panel
 * to f32 in `scratch` (gemmScratchBytes(K) bytes private to this call: calls running at the same
 * time need different regions), then runs the 2x4 micro-kernel over all x rows. Rows of a partial
 * last panel are zero-filled (never stored).
 */
export function gemm(fmt: i32, x: usize, xRowStride: i32, M: i32, w: usize, rows: i32, K: i32,
  y: usize, yRowStride: i32, accumulate: i32, scratch: usize, ti: i32, tc: i32): void {
  const panels = (rows + PANEL - 1) / PANEL;
  const p1 = splitLo(panels, ti + 1, tc);
  const buf = scratch;
  const rowBytes = <usize>((K + 3) & ~3) << 2;
  const xs = <usize>xRowStride << 2, ys = <usize>yRowStride << 2;
  for (let pi = splitLo(panels, ti, tc); pi < p1; pi++) {
    const n0 = pi * PANEL;
    const nr = min(PANEL, rows - n0);
    for (let r = 0; r < PANEL; r++) {
      const dst = buf + <usize>r * rowBytes;
      if (r < nr) {
        dequantRow(fmt, w, rows, K, n0 + r, dst);
        for (let k = K; k < ((K + 3) & ~3); k++) store<f32>(dst + (<usize>k << 2), 0);
      } else {
        memory.fill(dst, 0, rowBytes);
      }
    }
    const quads = (nr + 3) >> 2;
    let m = 0;
    for (; m + 2 <= M; m += 2) {
      const xa = x + <usize>m * xs, xb = xa + xs;
      const ya = y + <usize>m * ys + (<usize>n0 << 2), yb = ya + ys;
      for (let q = 0; q < quads; q++) {
        micro2x4(xa, xb, buf + <usize>(q << 2) * rowBytes, rowBytes, K,
          ya + (<usize>q << 4), yb + (<usize>q << 4), min(4, nr - (q << 2)), accumulate);
      }
    }
    if (m < M) {
      const xa = x + <usize>m * xs;
      const ya = y + <usize>m * ys + (<usize>n0 << 2);
      for (let q = 0; q < quads; q++) {
        micro1x4(xa, buf + <usize>(q << 2) * rowBytes, rowBytes, K, ya + (<usize>q << 4), min(4, nr - (q << 2)), accumulate);
      }
    }
  }
}

/**
 * Embedding gather for one part of a table [V, H] holding rows rowStart .. rowStart+rows-1:
 * out[t, :] = table[ids[t], :] as f32 for ids in this part; ids >= V get a zero row when
 * zeroInvalid (pass it for exactly one part). Threads split the tokens.
 */
export function embedding(fmt: i32, ids: usize, T: i32, table: usize, rowStart: i32, rows: i32, V: i32, H: i32,
  out: usize, zeroInvalid: i32, ti: i32, tc: i32): void {
  const t1 = splitLo(T, ti + 1, tc);
  const rowBytes = <usize>H << 2;
  for (let t = splitLo(T, ti, tc); t < t1; t++) {
    const id = load<u32>(ids + (<usize>t << 2));
    const dst = out + <usize>t * rowBytes;
    if (id >= <u32>V) {
      if (zeroInvalid) memory.fill(dst, 0, rowBytes);
      continue;
    }
    if (id < <u32>rowStart || id - <u32>rowStart >= <u32>rows) continue;
    dequantRow(fmt, table, rows, H, <i32>(id - <u32>rowStart), dst);
  }
}

/** Values per block of format fmt (1, 32 or 256); K and H must be multiples of it. */
export function weightBlock(fmt: i32): i32 { return formatBlock(fmt); }
