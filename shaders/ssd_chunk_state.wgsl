// ssd_chunk_state.wgsl: chunked SSD scan, step 4 of 4 for one chunk of L <= Q tokens at t0 (docs/model.md
// §Scan algorithms step 4): advances the carried state past the chunk, in place:
//   S[h,p,n] = exp(min(a_{L-1}, 0)) * S[h,p,n] + sum_{s<L} w_s * x[t0+s,h,p] * B[t0+s,g,n]
// with w_s = exp(a_{L-1} - a_s) * dt_s from ssd_chunk_cumsum: a [P x L]·[L x N] GEMM per head.
// Runs after ssd_chunk_scan (stream order), which read the state before this update.
//
// Bindings:
//   params (uniform)  NH, P, N, headsPerGroup, Q, L, t0, pBlocks (ceil(P/(4*RP))), nBlocks (ceil(N/64)): u32;
//                     xOff, xStride, bOff, bStride: u32 (elements)
//   1 xs    array<f32>  x(t,h,p) = xs[xOff + t*xStride + h*P + p]     read
//   2 bs    array<f32>  B(t,g,n) = bs[bOff + t*bStride + g*N + n]     read
//   3 cum   array<f32> [NH, 4, Q]  (dt_s, a hi, a lo, w_s)             read
//   4 state array<f32> [NH, P, N]                                      read_write (in place)
// Dispatch: NH * pBlocks * nBlocks workgroups of 16x4 threads (linear id, bound-checked); workgroup
//   (h, 4*RP rows p, 64 columns n). Thread (nx, py) holds a register tile of RP rows
//   p = py*RP + i by 4 columns n = block + nx + 16j (adjacent lanes: adjacent B and state
//   addresses); x and w reads are the same address across the 16 nx lanes.
// Tuning: RP (rows per thread, define, default 4): per token 4 + RP loads feed 4*RP FMAs.

@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> bs: array<f32>;
@group(0) @binding(3) var<storage, read> cum: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;

@compute @workgroup_size(16, 4)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  let per = params.pBlocks * params.nBlocks;
  if (w >= params.NH * per) { return; }
  let h = w / per;
  let rem = w % per;
  let p0 = (rem / params.nBlocks) * (4u * RP) + lid.y * RP;
  let nBase = (rem % params.nBlocks) * 64u + lid.x;
  let N = params.N;
  let P = params.P;
  if (nBase >= N || p0 >= P) { return; }
  let Q = params.Q;
  let L = params.L;
  let t0 = params.t0;
  let g = h / params.headsPerGroup;
  let base = h * 4u * Q;
  var nc: array<u32, 4>;
  for (var j = 0u; j < 4u; j++) { nc[j] = min(nBase + 16u * j, N - 1u); }
  var acc: array<f32, 4 * RP>;
  for (var s = 0u; s < L; s++) {
    let ws = cum[base + 3u * Q + s];
    let bRow = params.bOff + (t0 + s) * params.bStride + g * N;
    var wb: array<f32, 4>;
    for (var j = 0u; j < 4u; j++) { wb[j] = ws * bs[bRow + nc[j]]; }
    let xRow = params.xOff + (t0 + s) * params.xStride + h * P;
    for (var i = 0u; i < RP; i++) {
      let xv = xs[xRow + min(p0 + i, P - 1u)];
      for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] = fma(xv, wb[j], acc[i * 4u + j]); }
    }
  }
  let decay = exp(min(cum[base + Q + L - 1u] + cum[base + 2u * Q + L - 1u], 0.0));
  for (var i = 0u; i < RP; i++) {
    let p = p0 + i;
    for (var j = 0u; j < 4u; j++) {
      let n = nBase + 16u * j;
      if (p < P && n < N) {
        let idx = (h * P + p) * N + n;
        state[idx] = fma(decay, state[idx], acc[i * 4u + j]);
      }
    }
  }
}
