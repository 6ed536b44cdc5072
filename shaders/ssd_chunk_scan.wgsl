// ssd_chunk_scan.wgsl: chunked SSD scan, step 3 of 4 for one chunk of L <= Q tokens at t0 (SPEC.md
// §Scan algorithms step 3): the outputs of the chunk, from the state carried in from earlier chunks
// (read only here; step 4 advances it afterwards):
//   y[t0+t, h, p] = sum_{s<=t} M[h,t,s] * x[t0+s,h,p]
//                 + exp(min(a_t, 0)) * sum_n S[h,p,n] * C[t0+t,g,n] + D[h] * x[t0+t,h,p]
//
// Bindings:
//   params (uniform)  NH, P, N, headsPerGroup, Q, L, t0, pBlocks (ceil(P/64)), tBlocks (ceil(L/TR)): u32;
//                     xOff, xStride, cOff, cStride: u32 (elements)
//   1 xs    array<f32>  x(t,h,p) = xs[xOff + t*xStride + h*P + p]     read
//   2 cs    array<f32>  C(t,g,n) = cs[cOff + t*cStride + g*N + n]     read
//   3 hp    array<vec4<f32>> [NH]  (dt_bias, A, D, 0)                  read
//   4 cum   array<f32> [NH, 4, Q]  (dt_s, a hi, a lo, w_s)             read
//   5 m     array<f32> [NH, Q, Q]  (ssd_chunk_cb)                      read
//   6 state array<f32> [NH, P, N]  carried state before this chunk     read
//   7 y     array<f32> [T, NH*P]                                       write (rows t0..t0+L-1)
// Dispatch: NH * pBlocks * tBlocks workgroups of 64 threads (linear id, bound-checked); workgroup
//   (h, p block, t block), thread = one p, TR consecutive tokens in registers. M and C reads are
//   the same address across the workgroup (broadcast); x reads are contiguous across threads.
// Tuning: TR (tokens per thread, define, default 8).

@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@group(0) @binding(3) var<storage, read> hp: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> cum: array<f32>;
@group(0) @binding(5) var<storage, read> m: array<f32>;
@group(0) @binding(6) var<storage, read> state: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  let per = params.pBlocks * params.tBlocks;
  if (w >= params.NH * per) { return; }
  let h = w / per;
  let rem = w % per;
  let p = (rem / params.tBlocks) * 64u + lid;
  let tBase = (rem % params.tBlocks) * TR;
  let P = params.P;
  let N = params.N;
  let Q = params.Q;
  let L = params.L;
  let t0 = params.t0;
  if (p >= P) { return; }
  let g = h / params.headsPerGroup;
  let xCol = params.xOff + h * P + p;

  // Intra-chunk part: tokens s <= t of this chunk, weights M (decay and dt folded in).
  var acc: array<f32, TR>;
  let sEnd = min(tBase + TR, L);
  for (var s = 0u; s < sEnd; s++) {
    let xv = xs[xCol + (t0 + s) * params.xStride];
    for (var i = 0u; i < TR; i++) {
      let t = tBase + i;
      if (s <= t && t < L) { acc[i] = fma(m[(h * Q + t) * Q + s], xv, acc[i]); }
    }
  }
  // Inter-chunk part: the carried state read out with C_t.
  var off: array<f32, TR>;
  let sRow = (h * P + p) * N;
  for (var n = 0u; n < N; n++) {
    let sv = state[sRow + n];
    for (var i = 0u; i < TR; i++) {
      let t = min(tBase + i, L - 1u);
      off[i] = fma(sv, cs[params.cOff + (t0 + t) * params.cStride + g * N + n], off[i]);
    }
  }
  let dSkip = hp[h].z;
  let base = h * 4u * Q;
  for (var i = 0u; i < TR; i++) {
    let t = tBase + i;
    if (t < L) {
      let a = cum[base + Q + t] + cum[base + 2u * Q + t];
      let xv = xs[xCol + (t0 + t) * params.xStride];
      y[(t0 + t) * params.NH * P + h * P + p] = acc[i] + exp(min(a, 0.0)) * off[i] + dSkip * xv;
    }
  }
}
