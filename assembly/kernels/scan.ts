// The recurrent selective scan (docs/model.md §Mixer steps 4-5; the semantics of shaders/ssm_scan.wgsl
// + ssm_scan_head_params.wgsl). Per token t, head h, row p, with g = h / (NH / G):
//   dt = clamp(softplus(dt_raw[t, h] + dt_bias[h]), dtMin, dtMax); dA = exp(dt * A[h]), A = -exp(A_log[h])
//   S[h, p, :] = dA * S[h, p, :] + (dt * x[t, h, p]) * B[t, g, :]
//   y[t, h, p] = S[h, p, :] . C[t, g, :] + D[h] * x[t, h, p]
// Threads split the heads; a head's state (P x N f32, 32 KiB at P = 64, N = 128) stays in L1
// across the tokens of a prefill block.
import { hsum, hsum4, madd, splitLo } from './common';
import { expf, softplus } from './math';

/** The N % 4 leftover state columns of one row, one by one, added to the row's vector sum. */
@inline function scanTail(acc: f32, sRow: usize, bRow: usize, cRow: usize, dA: v128, dx: v128, n0: i32, N: i32): f32 {
  for (let n = n0; n < N; n++) {
    const o = <usize>n << 2;
    const s = f32x4.extract_lane(madd(f32x4.splat(load<f32>(sRow + o)), dA, f32x4.mul(dx, f32x4.splat(load<f32>(bRow + o)))), 0);
    store<f32>(sRow + o, s);
    acc += s * load<f32>(cRow + o);
  }
  return acc;
}

/**
 * x(t, h, p) at x + 4 (t xStride + h P + p); dt(t, h) at dt + 4 (t dtStride + h);
 * B(t, g, n) at B + 4 (t bStride + g N + n); C likewise; dtBias, aLog, D f32 [NH];
 * state f32 [NH, P, N] in/out; y f32 [T, NH P] (must not overlap any input or the state).
 * dtMax = +inf for no upper clamp.
 */
export function ssmScan(T: i32, NH: i32, P: i32, N: i32, G: i32,
  x: usize, xStride: i32, dt: usize, dtStride: i32, B: usize, bStride: i32, C: usize, cStride: i32,
  dtBias: usize, aLog: usize, D: usize, state: usize, y: usize, dtMin: f32, dtMax: f32, ti: i32, tc: i32): void {
  const h1 = splitLo(NH, ti + 1, tc);
  const hpg = NH / G;
  const N4 = N & ~3;
  const rowBytes = <usize>N << 2;
  for (let h = splitLo(NH, ti, tc); h < h1; h++) {
    const A = -expf(load<f32>(aLog + (<usize>h << 2)));
    const bias = load<f32>(dtBias + (<usize>h << 2));
    const dskip = load<f32>(D + (<usize>h << 2));
    const g = h / hpg;
    const sHead = state + <usize>h * <usize>P * rowBytes;
    for (let t = 0; t < T; t++) {
      const raw = load<f32>(dt + ((<usize>t * <usize>dtStride + <usize>h) << 2)) + bias;
      const dtv = min(max(softplus(raw), dtMin), dtMax);
      const dA = f32x4.splat(expf(dtv * A));
      const bRow = B + ((<usize>t * <usize>bStride + <usize>g * <usize>N) << 2);
      const cRow = C + ((<usize>t * <usize>cStride + <usize>g * <usize>N) << 2);
      const xRow = x + ((<usize>t * <usize>xStride + <usize>h * <usize>P) << 2);
      const yRow = y + ((<usize>t * <usize>(NH * P) + <usize>h * <usize>P) << 2);
      // Four rows at a time: one B and one C load serve four state rows.
      let p = 0;
      for (; p + 4 <= P; p += 4) {
        const xv0 = load<f32>(xRow + (<usize>p << 2)), xv1 = load<f32>(xRow + (<usize>p << 2), 4);
        const xv2 = load<f32>(xRow + (<usize>p << 2), 8), xv3 = load<f32>(xRow + (<usize>p << 2), 12);
        const d0 = f32x4.splat(dtv * xv0), d1 = f32x4.splat(dtv * xv1), d2 = f32x4.splat(dtv * xv2), d3 = f32x4.splat(dtv * xv3);
        const r0 = sHead + <usize>p * rowBytes, r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let n = 0; n < N4; n += 4) {
          const o = <usize>n << 2;
          const bv = v128.load(bRow + o), cv = v128.load(cRow + o);
          const s0 = madd(v128.load(r0 + o), dA, f32x4.mul(d0, bv));
          const s1 = madd(v128.load(r1 + o), dA, f32x4.mul(d1, bv));
          const s2 = madd(v128.load(r2 + o), dA, f32x4.mul(d2, bv));
          const s3 = madd(v128.load(r3 + o), dA, f32x4.mul(d3, bv));
          v128.store(r0 + o, s0); v128.store(r1 + o, s1); v128.store(r2 + o, s2); v128.store(r3 + o, s3);
          a0 = madd(s0, cv, a0); a1 = madd(s1, cv, a1); a2 = madd(s2, cv, a2); a3 = madd(s3, cv, a3);
        }
        let sums = hsum4(a0, a1, a2, a3);
        if (N4 < N) {
          sums = f32x4.replace_lane(sums, 0, scanTail(f32x4.extract_lane(sums, 0), r0, bRow, cRow, dA, d0, N4, N));
          sums = f32x4.replace_lane(sums, 1, scanTail(f32x4.extract_lane(sums, 1), r1, bRow, cRow, dA, d1, N4, N));
          sums = f32x4.replace_lane(sums, 2, scanTail(f32x4.extract_lane(sums, 2), r2, bRow, cRow, dA, d2, N4, N));
          sums = f32x4.replace_lane(sums, 3, scanTail(f32x4.extract_lane(sums, 3), r3, bRow, cRow, dA, d3, N4, N));
        }
        let xs = f32x4.splat(xv0);
        xs = f32x4.replace_lane(xs, 1, xv1);
        xs = f32x4.replace_lane(xs, 2, xv2);
        xs = f32x4.replace_lane(xs, 3, xv3);
        v128.store(yRow + (<usize>p << 2), f32x4.add(sums, f32x4.mul(f32x4.splat(dskip), xs)));
      }
      for (; p < P; p++) {
        const xv = load<f32>(xRow + (<usize>p << 2));
        const dx = f32x4.splat(dtv * xv);
        const sRow = sHead + <usize>p * rowBytes;
        let a0 = f32x4.splat(0);
        for (let n = 0; n < N4; n += 4) {
          const o = <usize>n << 2;
          const s0 = madd(v128.load(sRow + o), dA, f32x4.mul(dx, v128.load(bRow + o)));
          v128.store(sRow + o, s0);
          a0 = madd(s0, v128.load(cRow + o), a0);
        }
        store<f32>(yRow + (<usize>p << 2), scanTail(hsum(a0), sRow, bRow, cRow, dA, dx, N4, N) + dskip * xv);
      }
    }
  }
}
