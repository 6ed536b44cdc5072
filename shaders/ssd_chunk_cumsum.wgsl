// ssd_chunk_cumsum.wgsl: chunked SSD scan, step 1 of 4 for one chunk of L <= Q tokens starting at
// token t0 (SPEC.md §Scan algorithms "Chunked SSD, streamed" step 1). Per head h and chunk token s:
//   dt_s = clamp(softplus(dt_raw[t0+s, h] + dt_bias[h]), dtMin, dtMax)
//   a_s  = sum_{r <= s} dt_r * A[h]          (inclusive; kept as a compensated pair hi + lo)
//   w_s  = exp(min(a_{L-1} - a_s, 0)) * dt_s  (weight of token s in the carried state update)
// Why compensated: a reaches -Q*dt*|A| (hundreds at Q = 256); the kernels use differences
// a_t - a_s, and an f32 cumsum would lose ~|a|*eps of each, i.e. relative errors of 1e-5..1e-4 in
// the decay weights. Two-sum keeps the difference accurate to ~eps*|a_t - a_s|.
//
// Bindings:
//   params (uniform)  NH, Q (scratch row length), L (tokens in this chunk), t0: u32;
//                     dtOff, dtStride: u32 (elements); dtMin, dtMax: f32 (dtMax 3.4e38 = none)
//   1 dts  array<f32>         dt(t,h) = dts[dtOff + t*dtStride + h]   read (raw, before bias)
//   2 hp   array<vec4<f32>> [NH]  (dt_bias, A, D, 0)                   read
//   3 cum  array<f32> [NH, 4, Q]   rows: dt_s, a_s hi, a_s lo, w_s    write (entries s < L)
// Dispatch: ceil(NH / 64) workgroups of 64 threads; one thread walks one head's L tokens in order.
// Tuning: none; O(NH*Q) work per chunk, small next to the other three steps.

@group(0) @binding(1) var<storage, read> dts: array<f32>;
@group(0) @binding(2) var<storage, read> hp: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> cum: array<f32>;

fn softplus(v: f32) -> f32 {
  if (v > 20.0) { return v; }
  let e = exp(v);
  let u = 1.0 + e;
  if (u == 1.0) { return e; }
  return log(u) * (e / (u - 1.0));   // log1p(e), accurate for small e
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let h = gid.x;
  if (h >= params.NH) { return; }
  let Q = params.Q;
  let L = params.L;
  let hv = hp[h];
  let base = h * 4u * Q;
  var hi = 0.0;
  var lo = 0.0;
  for (var s = 0u; s < L; s++) {
    let raw = dts[params.dtOff + (params.t0 + s) * params.dtStride + h] + hv.x;
    let dt = clamp(softplus(raw), params.dtMin, params.dtMax);
    let v = dt * hv.y;
    // Two-sum: sum + err == hi + v exactly.
    let sum = hi + v;
    let bv = sum - hi;
    let err = (hi - (sum - bv)) + (v - bv);
    hi = sum;
    lo += err;
    cum[base + s] = dt;
    cum[base + Q + s] = hi;
    cum[base + 2u * Q + s] = lo;
  }
  for (var s = 0u; s < L; s++) {
    let d = (hi - cum[base + Q + s]) + (lo - cum[base + 2u * Q + s]);
    cum[base + 3u * Q + s] = exp(min(d, 0.0)) * cum[base + s];
  }
}
