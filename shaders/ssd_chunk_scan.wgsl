// ssd_chunk_scan.wgsl: chunked SSD scan, step 3 of 4 for one chunk of L <= Q tokens at t0 (docs/model.md
// §Scan algorithms step 3): the outputs of the chunk, from the state carried in from earlier chunks
// (read only here; step 4 advances it afterwards):
//   y[t0+t, h, p] = sum_{s<=t} M[h,t,s] * x[t0+s,h,p]
//                 + exp(min(a_t, 0)) * sum_n S[h,p,n] * C[t0+t,g,n] + D[h] * x[t0+t,h,p]
// Two small GEMMs per head: [L x L]·[L x P] (masked) and [L x N]·[N x P].
//
// Bindings:
//   params (uniform)  NH, P, N, headsPerGroup, Q, L, t0, pBlocks (ceil(P/64)), tBlocks (ceil(L/(4*TR))): u32;
//                     xOff, xStride, cOff, cStride, yOff: u32 (elements)
//   1 xs    array<f32>  x(t,h,p) = xs[xOff + t*xStride + h*P + p]     read
//   2 cs    array<f32>  C(t,g,n) = cs[cOff + t*cStride + g*N + n]     read
//   3 hp    array<vec4<f32>> [NH]  (dt_bias, A, D, 0)                  read
//   4 cum   array<f32> [NH, 4, Q]  (dt_s, a hi, a lo, w_s)             read
//   5 m     array<f32> [NH, Q, Q]  (ssd_chunk_cb)                      read
//   6 state array<f32> [NH, P, N]  carried state before this chunk     read
//   7 y     array<f32> [T, NH*P] from yOff                             write (rows t0..t0+L-1)
// Dispatch: NH * pBlocks * tBlocks workgroups of 16x4 threads (linear id wid.x + wid.y*nwg.x,
//   bound-checked); workgroup (h, 64 rows p, 4*TR tokens). Thread (px, ty) holds a register tile of
//   4 rows p = block + px + 16i (i < 4; adjacent lanes read adjacent x) by TR tokens
//   t = ty*TR + k. M and C reads are the same address across the 16 px lanes.
// Tuning: TR (tokens per thread, define, default 4): per inner step 4 + TR loads feed 4*TR FMAs.

@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@group(0) @binding(3) var<storage, read> hp: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> cum: array<f32>;
@group(0) @binding(5) var<storage, read> m: array<f32>;
@group(0) @binding(6) var<storage, read> state: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(16, 4)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  let per = params.pBlocks * params.tBlocks;
  if (w >= params.NH * per) { return; }
  let h = w / per;
  let rem = w % per;
  let pBase = (rem / params.tBlocks) * 64u + lid.x;
  let tBase = (rem % params.tBlocks) * (4u * TR) + lid.y * TR;
  let P = params.P;
  let N = params.N;
  let Q = params.Q;
  let L = params.L;
  let t0 = params.t0;
  if (pBase >= P || tBase >= L) { return; }
  let g = h / params.headsPerGroup;
  // Rows past P are computed on a clamped row and not stored.
  var pc: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) { pc[i] = min(pBase + 16u * i, P - 1u); }
  let xCol = params.xOff + h * P;

  // Intra-chunk part: tokens s <= t of this chunk, weights M (decay and dt folded in).
  var acc: array<f32, 4 * TR>;
  let sEnd = min(tBase + TR, L);
  for (var s = 0u; s < sEnd; s++) {
    let xRow = xCol + (t0 + s) * params.xStride;
    var xv: array<f32, 4>;
    for (var i = 0u; i < 4u; i++) { xv[i] = xs[xRow + pc[i]]; }
    for (var k = 0u; k < TR; k++) {
      let t = min(tBase + k, L - 1u);
      let mv = select(0.0, m[(h * Q + t) * Q + s], s <= tBase + k);
      for (var i = 0u; i < 4u; i++) { acc[k * 4u + i] = fma(mv, xv[i], acc[k * 4u + i]); }
    }
  }
  // Inter-chunk part: the carried state read out with C_t.
  var off: array<f32, 4 * TR>;
  var cRow: array<u32, TR>;
  for (var k = 0u; k < TR; k++) { cRow[k] = params.cOff + (t0 + min(tBase + k, L - 1u)) * params.cStride + g * N; }
  for (var n = 0u; n < N; n++) {
    var sv: array<f32, 4>;
    for (var i = 0u; i < 4u; i++) { sv[i] = state[(h * P + pc[i]) * N + n]; }
    for (var k = 0u; k < TR; k++) {
      let cv = cs[cRow[k] + n];
      for (var i = 0u; i < 4u; i++) { off[k * 4u + i] = fma(sv[i], cv, off[k * 4u + i]); }
    }
  }
  let dSkip = hp[h].z;
  let base = h * 4u * Q;
  for (var k = 0u; k < TR; k++) {
    let t = tBase + k;
    if (t < L) {
      let decay = exp(min(cum[base + Q + t] + cum[base + 2u * Q + t], 0.0));
      let xRow = xCol + (t0 + t) * params.xStride;
      let yRow = params.yOff + (t0 + t) * params.NH * P + h * P;
      for (var i = 0u; i < 4u; i++) {
        let p = pBase + 16u * i;
        if (p < P) {
          y[yRow + p] = acc[k * 4u + i] + decay * off[k * 4u + i] + dSkip * xs[xRow + p];
        }
      }
    }
  }
}
