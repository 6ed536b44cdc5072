// ssd_chunk_cumsum.wgsl: chunked SSD scan, step 1 of 4 for one chunk of L <= Q tokens starting at
// token t0 (docs/model.md §Scan algorithms "Chunked SSD, streamed" step 1). Per head h and chunk token s:
//   dt_s = clamp(softplus(dt_raw[t0+s, h] + dt_bias[h]), dtMin, dtMax)
//   a_s  = sum_{r <= s} dt_r * A[h]          (inclusive; kept as a compensated pair hi + lo)
//   w_s  = exp(min(a_{L-1} - a_s, 0)) * dt_s  (weight of token s in the carried state update)
// Why compensated: a reaches -Q*dt*|A| (hundreds at Q = 256); the kernels use differences
// a_t - a_s, and an f32 cumsum would lose ~|a|*eps of each, i.e. relative errors of 1e-5..1e-4 in
// the decay weights. Two-sum keeps the difference accurate to ~eps*|a_t - a_s|.
//
// Bindings:
//   params (uniform)  NH, Q (scratch row length), L (tokens in this chunk, <= 256), t0: u32;
//                     dtOff, dtStride: u32 (elements); dtMin, dtMax: f32 (dtMax 3.4e38 = none)
//   1 dts  array<f32>         dt(t,h) = dts[dtOff + t*dtStride + h]   read (raw, before bias)
//   2 hp   array<vec4<f32>> [NH]  (dt_bias, A, D, 0)                   read
//   3 cum  array<f32> [NH, 4, Q]   rows: dt_s, a_s hi, a_s lo, w_s    write (entries s < L)
// Dispatch: NH workgroups of 64 threads (linear id, bound-checked), one per head: the threads
//   compute dt_s for s = lid + 64i in parallel into workgroup memory, thread 0 runs the sequential
//   compensated sum there (no global-memory latency in the chain), then all threads write w_s.
// Tuning: none; O(NH*Q) work per chunk, small next to the other three steps.

@group(0) @binding(1) var<storage, read> dts: array<f32>;
@group(0) @binding(2) var<storage, read> hp: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> cum: array<f32>;

const QMAX: u32 = 256u;
var<workgroup> dtw: array<f32, QMAX>;
var<workgroup> hiw: array<f32, QMAX>;
var<workgroup> low: array<f32, QMAX>;

// softplus comes from shaders/lib/activations.wgsl.

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let h = wid.x + wid.y * nwg.x;
  if (h >= params.NH) { return; }
  let Q = params.Q;
  let L = params.L;
  let hv = hp[h];
  let base = h * 4u * Q;
  for (var s = lid; s < L; s += 64u) {
    let raw = dts[params.dtOff + (params.t0 + s) * params.dtStride + h] + hv.x;
    dtw[s] = clamp(softplus(raw), params.dtMin, params.dtMax);
  }
  workgroupBarrier();
  if (lid == 0u) {
    var hi = 0.0;
    var lo = 0.0;
    for (var s = 0u; s < L; s++) {
      let v = dtw[s] * hv.y;
      // Two-sum: sum + err == hi + v exactly.
      let sum = hi + v;
      let bv = sum - hi;
      let err = (hi - (sum - bv)) + (v - bv);
      hi = sum;
      lo += err;
      hiw[s] = hi;
      low[s] = lo;
    }
  }
  workgroupBarrier();
  let hiLast = hiw[L - 1u];
  let loLast = low[L - 1u];
  for (var s = lid; s < L; s += 64u) {
    let d = (hiLast - hiw[s]) + (loLast - low[s]);
    cum[base + s] = dtw[s];
    cum[base + Q + s] = hiw[s];
    cum[base + 2u * Q + s] = low[s];
    cum[base + 3u * Q + s] = exp(min(d, 0.0)) * dtw[s];
  }
}
