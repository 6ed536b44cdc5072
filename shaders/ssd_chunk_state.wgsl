// ssd_chunk_state.wgsl: chunked SSD scan, step 4 of 4 for one chunk of L <= Q tokens at t0 (SPEC.md
// §Scan algorithms step 4): advances the carried state past the chunk, in place:
//   S[h,p,n] = exp(min(a_{L-1}, 0)) * S[h,p,n] + sum_{s<L} w_s * x[t0+s,h,p] * B[t0+s,g,n]
// with w_s = exp(a_{L-1} - a_s) * dt_s from ssd_chunk_cumsum. Runs after ssd_chunk_scan (stream
// order), which read the state before this update.
//
// Bindings:
//   params (uniform)  NH, P, N, headsPerGroup, Q, L, t0, pBlocks (ceil(P/RP)), nBlocks (ceil(N/64)): u32;
//                     xOff, xStride, bOff, bStride: u32 (elements)
//   1 xs    array<f32>  x(t,h,p) = xs[xOff + t*xStride + h*P + p]     read
//   2 bs    array<f32>  B(t,g,n) = bs[bOff + t*bStride + g*N + n]     read
//   3 cum   array<f32> [NH, 4, Q]  (dt_s, a hi, a lo, w_s)             read
//   4 state array<f32> [NH, P, N]                                      read_write (in place)
// Dispatch: NH * pBlocks * nBlocks workgroups of 64 threads (linear id, bound-checked); workgroup
//   (h, block of RP rows p, block of 64 columns n), thread = one n for RP rows. State and B accesses
//   are contiguous across threads; x and w are broadcast.
// Tuning: RP (rows per thread, define, default 4).

@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> bs: array<f32>;
@group(0) @binding(3) var<storage, read> cum: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  let per = params.pBlocks * params.nBlocks;
  if (w >= params.NH * per) { return; }
  let h = w / per;
  let rem = w % per;
  let p0 = (rem / params.nBlocks) * RP;
  let n = (rem % params.nBlocks) * 64u + lid;
  let N = params.N;
  let P = params.P;
  if (n >= N) { return; }
  let Q = params.Q;
  let L = params.L;
  let t0 = params.t0;
  let g = h / params.headsPerGroup;
  let base = h * 4u * Q;
  let xCol = params.xOff + h * P;
  var acc: array<f32, RP>;
  for (var s = 0u; s < L; s++) {
    let wb = cum[base + 3u * Q + s] * bs[params.bOff + (t0 + s) * params.bStride + g * N + n];
    let xRow = xCol + (t0 + s) * params.xStride;
    for (var i = 0u; i < RP; i++) {
      let p = min(p0 + i, P - 1u);
      acc[i] = fma(xs[xRow + p], wb, acc[i]);
    }
  }
  let decay = exp(min(cum[base + Q + L - 1u] + cum[base + 2u * Q + L - 1u], 0.0));
  for (var i = 0u; i < RP; i++) {
    let p = p0 + i;
    if (p < P) {
      let idx = (h * P + p) * N + n;
      state[idx] = fma(decay, state[idx], acc[i]);
    }
  }
}
