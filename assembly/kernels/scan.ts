// The recurrent selective scan (SPEC.md §Mixer steps 4-5; the semantics of shaders/ssm_scan.wgsl
// + ssm_scan_head_params.wgsl). Per token t, head h, row p, with g = h / (NH / G):
//   dt = clamp(softplus(dt_raw[t, h] + dt_bias[h]), dtMin, dtMax); dA = exp(dt * A[h]), A = -exp(A_log[h])
//   S[h, p, :] = dA * S[h, p, :] + (dt * x[t, h, p]) * B[t, g, :]
//   y[t, h, p] = S[h, p, :] . C[t, g, :] + D[h] * x[t, h, p]
// Threads split the heads; a head's state (P x N f32, 32 KiB at P = 64, N = 128) stays in L1
// across the tokens of a prefill block.
import { hsum, madd, splitLo } from './common';
import { expf, softplus } from './math';

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
      for (let p = 0; p < P; p++) {
        const xv = load<f32>(xRow + (<usize>p << 2));
        const dx = f32x4.splat(dtv * xv);
        const sRow = sHead + <usize>p * rowBytes;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
        let n = 0;
        for (; n + 8 <= N4; n += 8) {
          const o = <usize>n << 2;
          const s0 = madd(v128.load(sRow + o), dA, f32x4.mul(dx, v128.load(bRow + o)));
          const s1 = madd(v128.load(sRow + o, 16), dA, f32x4.mul(dx, v128.load(bRow + o, 16)));
          v128.store(sRow + o, s0);
          v128.store(sRow + o, s1, 16);
          a0 = madd(s0, v128.load(cRow + o), a0);
          a1 = madd(s1, v128.load(cRow + o, 16), a1);
        }
        if (n < N4) {
          const o = <usize>n << 2;
          const s0 = madd(v128.load(sRow + o), dA, f32x4.mul(dx, v128.load(bRow + o)));
          v128.store(sRow + o, s0);
          a0 = madd(s0, v128.load(cRow + o), a0);
        }
        let acc = hsum(f32x4.add(a0, a1));
        for (n = N4; n < N; n++) {
          const o = <usize>n << 2;
          const s = f32x4.extract_lane(madd(f32x4.splat(load<f32>(sRow + o)), dA, f32x4.mul(dx, f32x4.splat(load<f32>(bRow + o)))), 0);
          store<f32>(sRow + o, s);
          acc += s * load<f32>(cRow + o);
        }
        store<f32>(yRow + (<usize>p << 2), acc + dskip * xv);
      }
    }
  }
}
