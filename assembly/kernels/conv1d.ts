// Causal depthwise conv1d over time + bias + SiLU, with the conv state (docs/model.md §Mixer step 2;
// the semantics of shaders/conv1d.wgsl + conv1d_state.wgsl):
//   out[t, c] = silu(bias[c] + sum_{k<K} w[c, k] * xin(t - K + 1 + k, c)),
// xin(tau < 0) from the state: a ring f32 [K, C] whose row (a mod K) holds the raw input of
// absolute position a (src/backends/backend.ts convStateBytes); afterwards the rows of the block's
// last min(T, K) positions are written. A thread owns whole channels, so it writes their ring rows
// right after computing them: one pass, no barrier between the conv and the state update.
import { madd, splitLo } from './common';
import { siluv } from './math';

/**
 * Input (or state) vector of 4 channels at block position pos (negative: the ring row of absolute
 * position pos0 + pos, i.e. slot (pos0 mod K + pos + K) mod K since pos >= -(K - 1)).
 */
@inline function hist(pos: i32, c: usize, inp: usize, inStride: usize, state: usize, C: usize, slot0: i32, K: i32, lanes: i32): v128 {
  const p = pos >= 0 ? inp + ((<usize>pos * inStride + c) << 2) : state + ((<usize>((slot0 + pos + K) % K) * C + c) << 2);
  if (lanes == 4) return v128.load(p);
  return f32x4.splat(load<f32>(p));
}

/** w[c .. c+lanes, k] as a vector (lanes 4) or splat (lanes 1). */
@inline function tap(weight: usize, c: usize, K: i32, k: i32, lanes: i32): v128 {
  const p = weight + ((c * <usize>K + <usize>k) << 2);
  let v = f32x4.splat(load<f32>(p));
  if (lanes == 4) {
    const s = <usize>K << 2;
    v = f32x4.replace_lane(v, 1, load<f32>(p + s));
    v = f32x4.replace_lane(v, 2, load<f32>(p + 2 * s));
    v = f32x4.replace_lane(v, 3, load<f32>(p + 3 * s));
  }
  return v;
}

@inline function convChannels(T: i32, C: i32, K: i32, inp: usize, inStride: i32, weight: usize, bias: usize,
  state: usize, slot0: i32, out: usize, c: usize, lanes: i32): void {
  const H = K - 1;
  const is = <usize>inStride, Cs = <usize>C;
  const b = lanes == 4 ? v128.load(bias + (c << 2)) : f32x4.splat(load<f32>(bias + (c << 2)));
  if (K == 4) {
    // d_conv = 4 in every released Mamba2/Zamba2 checkpoint: taps stay in registers.
    const w0 = tap(weight, c, K, 0, lanes), w1 = tap(weight, c, K, 1, lanes);
    const w2 = tap(weight, c, K, 2, lanes), w3 = tap(weight, c, K, 3, lanes);
    for (let t = 0; t < T; t++) {
      let acc = b;
      acc = madd(w0, hist(t - 3, c, inp, is, state, Cs, slot0, K, lanes), acc);
      acc = madd(w1, hist(t - 2, c, inp, is, state, Cs, slot0, K, lanes), acc);
      acc = madd(w2, hist(t - 1, c, inp, is, state, Cs, slot0, K, lanes), acc);
      acc = madd(w3, hist(t, c, inp, is, state, Cs, slot0, K, lanes), acc);
      const r = siluv(acc);
      const o = out + ((<usize>t * Cs + c) << 2);
      if (lanes == 4) v128.store(o, r); else store<f32>(o, f32x4.extract_lane(r, 0));
    }
  } else {
    for (let t = 0; t < T; t++) {
      let acc = b;
      for (let k = 0; k < K; k++) acc = madd(tap(weight, c, K, k, lanes), hist(t + k - H, c, inp, is, state, Cs, slot0, K, lanes), acc);
      const r = siluv(acc);
      const o = out + ((<usize>t * Cs + c) << 2);
      if (lanes == 4) v128.store(o, r); else store<f32>(o, f32x4.extract_lane(r, 0));
    }
  }
  // The ring rows of the block's last min(T, K) positions take their raw inputs.
  for (let t = max(0, T - K); t < T; t++) {
    const dst = state + ((<usize>((slot0 + t) % K) * Cs + c) << 2);
    const src = inp + ((<usize>t * is + c) << 2);
    if (lanes == 4) v128.store(dst, v128.load(src)); else store<f32>(dst, load<f32>(src));
  }
}

/**
 * T tokens, C channels, K taps (2..8). inp(t, c) at inp + 4 (t inStride + c); weight f32 [C, K];
 * bias [C]; state: the ring f32 [K, C], read and updated in place; pos0: absolute position of
 * input row 0; out f32 [T, C] must not overlap inp or state. Threads split the channels in groups
 * of 4.
 */
export function conv1d(T: i32, C: i32, K: i32, inp: usize, inStride: i32, weight: usize, bias: usize,
  state: usize, pos0: i32, out: usize, ti: i32, tc: i32): void {
  const slot0 = <i32>(<u32>pos0 % <u32>K);
  const units = (C + 3) >> 2;
  const u0 = splitLo(units, ti, tc), u1 = splitLo(units, ti + 1, tc);
  const full = min(u1, C >> 2); // whole quads of this range
  if (K == 4 && full > u0) {
    convQuadsK4(T, C, inp, inStride, weight, bias, state, slot0, out, u0, full);
  } else {
    for (let u = u0; u < full; u++) convChannels(T, C, K, inp, inStride, weight, bias, state, slot0, out, <usize>(u << 2), 4);
  }
  for (let u = max(u0, full); u < u1; u++) {
    for (let c = u << 2; c < min(C, (u << 2) + 4); c++) convChannels(T, C, K, inp, inStride, weight, bias, state, slot0, out, <usize>c, 1);
  }
}

/** Tokens per block of convQuadsK4: its input rows stay in cache while every quad of the range passes. */
const TBLOCK: i32 = 16;

/**
 * K = 4, channel quads u0 .. u1-1: blocks of TBLOCK tokens outermost so the strided input rows
 * are read once per block in address order (not once per quad down the whole sequence), and a
 * sliding window keeps the previous three inputs of a quad in registers. Per output the sum is
 * bias + w0 v(t-3) + w1 v(t-2) + w2 v(t-1) + w3 v(t), as convChannels forms it.
 */
function convQuadsK4(T: i32, C: i32, inp: usize, inStride: i32, weight: usize, bias: usize,
  state: usize, slot0: i32, out: usize, u0: i32, u1: i32): void {
  const is = <usize>inStride, Cs = <usize>C;
  for (let t0 = 0; t0 < T; t0 += TBLOCK) {
    const t1 = min(T, t0 + TBLOCK);
    for (let u = u0; u < u1; u++) {
      const c = <usize>(u << 2);
      const w0 = tap(weight, c, 4, 0, 4), w1 = tap(weight, c, 4, 1, 4), w2 = tap(weight, c, 4, 2, 4), w3 = tap(weight, c, 4, 3, 4);
      const b = v128.load(bias + (c << 2));
      let v0 = hist(t0 - 3, c, inp, is, state, Cs, slot0, 4, 4);
      let v1 = hist(t0 - 2, c, inp, is, state, Cs, slot0, 4, 4);
      let v2 = hist(t0 - 1, c, inp, is, state, Cs, slot0, 4, 4);
      for (let t = t0; t < t1; t++) {
        const v3 = v128.load(inp + ((<usize>t * is + c) << 2));
        let acc = madd(w0, v0, b);
        acc = madd(w1, v1, acc);
        acc = madd(w2, v2, acc);
        acc = madd(w3, v3, acc);
        v128.store(out + ((<usize>t * Cs + c) << 2), siluv(acc));
        v0 = v1; v1 = v2; v2 = v3;
      }
    }
  }
  // The ring rows of the block's last min(T, 4) positions, after every read of the old rows.
  for (let u = u0; u < u1; u++) {
    const c = <usize>(u << 2);
    for (let t = max(0, T - 4); t < T; t++) {
      v128.store(state + ((<usize>((slot0 + t) % 4) * Cs + c) << 2), v128.load(inp + ((<usize>t * is + c) << 2)));
    }
  }
}
