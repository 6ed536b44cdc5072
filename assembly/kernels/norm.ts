// RMSNorm (plain, and over concat(x, x2) of width 2H without storing the concat) and the mixer's
// gated, grouped RMSNorm. f32 throughout; sums of squares in one 4-lane accumulator (lane l takes
// elements l mod 4), the scalar tail after the horizontal sum.
import { hsum, splitLo } from './common';
import { siluv } from './math';

/** sum of squares of n floats at p, fixed order. */
@inline function sumSquares(p: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(p + (<usize>i << 2));
    acc = f32x4.add(acc, f32x4.mul(v, v));
  }
  let s = hsum(acc);
  for (; i < n; i++) { const v = load<f32>(p + (<usize>i << 2)); s += v * v; }
  return s;
}

/** dst[i] = (src[i] * inv) * w[i] for n floats. */
@inline function scaleRow(src: usize, w: usize, dst: usize, n: i32, inv: f32): void {
  const iv = f32x4.splat(inv);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, f32x4.mul(f32x4.mul(v128.load(src + o), iv), v128.load(w + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, (load<f32>(src + o) * inv) * load<f32>(w + o));
  }
}

/**
 * out[t, :W] = r / sqrt(mean(r^2) + eps) * w, r = x[t] (W = H) or concat(x[t], x2[t]) (W = 2H).
 * x, x2 [T, H]; w [W]; out [T, W] must not overlap x or x2. Threads split the rows.
 */
export function rmsnorm(x: usize, x2: usize, w: usize, out: usize, T: i32, H: i32, W: i32, eps: f32, ti: i32, tc: i32): void {
  const t1 = splitLo(T, ti + 1, tc);
  const both = W != H;
  for (let t = splitLo(T, ti, tc); t < t1; t++) {
    const xr = x + ((<usize>t * <usize>H) << 2);
    const x2r = x2 + ((<usize>t * <usize>H) << 2);
    let ss = sumSquares(xr, H);
    if (both) ss += sumSquares(x2r, H);
    const inv: f32 = 1.0 / Mathf.sqrt(ss / <f32>W + eps);
    const orow = out + ((<usize>t * <usize>W) << 2);
    scaleRow(xr, w, orow, H, inv);
    if (both) scaleRow(x2r, w + (<usize>H << 2), orow + (<usize>H << 2), H, inv);
  }
}

/**
 * out[t, :] = r / sqrt(mean(r^2) + eps) * w with r = x[t] + a[t] (a hybrid layer's norm of x + t;
 * the sum is parked in out, never stored elsewhere). x, a, out [T, H]; w [H]; out must not overlap
 * x or a. Threads split the rows.
 */
export function rmsnormAdd(x: usize, a: usize, w: usize, out: usize, T: i32, H: i32, eps: f32, ti: i32, tc: i32): void {
  const t1 = splitLo(T, ti + 1, tc);
  for (let t = splitLo(T, ti, tc); t < t1; t++) {
    const ro = (<usize>t * <usize>H) << 2;
    const xr = x + ro, ar = a + ro, orow = out + ro;
    let i = 0;
    for (; i + 4 <= H; i += 4) {
      const o = <usize>i << 2;
      v128.store(orow + o, f32x4.add(v128.load(xr + o), v128.load(ar + o)));
    }
    for (; i < H; i++) {
      const o = <usize>i << 2;
      store<f32>(orow + o, load<f32>(xr + o) + load<f32>(ar + o));
    }
    const inv: f32 = 1.0 / Mathf.sqrt(sumSquares(orow, H) / <f32>H + eps);
    scaleRow(orow, w, orow, H, inv);
  }
}

/**
 * Gated grouped RMSNorm (docs/model.md §Mixer step 6): g = y * silu(z); out = g / sqrt(mean_group(g^2)
 * + eps) * w over groups of groupSize channels. y, out [T, D]; z(t, c) at z + 4 (t zRowStride + c);
 * w [D]. out must not overlap y or z. Threads split the (t, group) pairs; g is parked in out.
 */
export function gatedRmsnorm(y: usize, z: usize, zRowStride: i32, w: usize, out: usize, T: i32, D: i32,
  groupSize: i32, eps: f32, ti: i32, tc: i32): void {
  const G = D / groupSize;
  const units = T * G;
  const u1 = splitLo(units, ti + 1, tc);
  for (let u = splitLo(units, ti, tc); u < u1; u++) {
    const t = u / G, c0 = (u % G) * groupSize;
    const yr = y + ((<usize>t * <usize>D + <usize>c0) << 2);
    const zr = z + ((<usize>t * <usize>zRowStride + <usize>c0) << 2);
    const orow = out + ((<usize>t * <usize>D + <usize>c0) << 2);
    let acc = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= groupSize; i += 4) {
      const o = <usize>i << 2;
      const g = f32x4.mul(v128.load(yr + o), siluv(v128.load(zr + o)));
      v128.store(orow + o, g);
      acc = f32x4.add(acc, f32x4.mul(g, g));
    }
    let ss = hsum(acc);
    for (; i < groupSize; i++) {
      const o = <usize>i << 2;
      const g = load<f32>(yr + o) * f32x4.extract_lane(siluv(f32x4.splat(load<f32>(zr + o))), 0);
      store<f32>(orow + o, g);
      ss += g * g;
    }
    const inv: f32 = 1.0 / Mathf.sqrt(ss / <f32>groupSize + eps);
    scaleRow(orow, w + (<usize>c0 << 2), orow, groupSize, inv);
  }
}
