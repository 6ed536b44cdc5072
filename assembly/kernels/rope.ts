// NeoX rotate-half RoPE in place (docs/model.md §Zamba2 attention; the semantics of shaders/rope.wgsl):
// for i < hd/2 and angle = f32(pos0 + t) * invFreq[i],
//   x[b + i] = x1 cos - x2 sin,  x[b + hd/2 + i] = x2 cos + x1 sin,  b = t rowStride + h hd.
import { splitLo } from './common';
import { cosv, sinv } from './math';

/**
 * x: row 0 (offset already applied); rowStride floats between tokens; invFreq f32 [hd/2] (the
 * host forms it exactly as torch does in f32). Threads split the tokens; the angles of a token are
 * computed once and reused for every head.
 */
export function rope(x: usize, rowStride: i32, T: i32, nHeads: i32, headDim: i32, pos0: i32, invFreq: usize, ti: i32, tc: i32): void {
  const half = headDim >> 1;
  const t1 = splitLo(T, ti + 1, tc);
  const hb = <usize>headDim << 2, hh = <usize>half << 2;
  for (let t = splitLo(T, ti, tc); t < t1; t++) {
    const pos = f32x4.splat(<f32>(pos0 + t));
    const row = x + ((<usize>t * <usize>rowStride) << 2);
    let i = 0;
    for (; i < half; i += 4) {
      const o = <usize>i << 2;
      const n = half - i; // lanes >= n are past the pairs (their sums are not stored)
      let fr: v128;
      if (n >= 4) fr = v128.load(invFreq + o);
      else {
        fr = f32x4.splat(load<f32>(invFreq + o));
        if (n > 1) fr = f32x4.replace_lane(fr, 1, load<f32>(invFreq + o + 4));
        if (n > 2) fr = f32x4.replace_lane(fr, 2, load<f32>(invFreq + o + 8));
      }
      const ang = f32x4.mul(pos, fr);
      const s = sinv(ang), c = cosv(ang);
      for (let h = 0; h < nHeads; h++) {
        const p1 = row + <usize>h * hb + o, p2 = p1 + hh;
        if (n >= 4) {
          const x1 = v128.load(p1), x2 = v128.load(p2);
          v128.store(p1, f32x4.sub(f32x4.mul(x1, c), f32x4.mul(x2, s)));
          v128.store(p2, f32x4.add(f32x4.mul(x2, c), f32x4.mul(x1, s)));
        } else {
          for (let l = 0; l < n; l++) {
            const cl = l == 0 ? f32x4.extract_lane(c, 0) : l == 1 ? f32x4.extract_lane(c, 1) : f32x4.extract_lane(c, 2);
            const sl = l == 0 ? f32x4.extract_lane(s, 0) : l == 1 ? f32x4.extract_lane(s, 1) : f32x4.extract_lane(s, 2);
            const q1 = p1 + (<usize>l << 2), q2 = p2 + (<usize>l << 2);
            const x1 = load<f32>(q1), x2 = load<f32>(q2);
            store<f32>(q1, x1 * cl - x2 * sl);
            store<f32>(q2, x2 * cl + x1 * sl);
          }
        }
      }
    }
  }
}
