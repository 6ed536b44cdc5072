// ssd_chunk_cb.wgsl: chunked SSD scan, step 2 of 4 for one chunk of L <= Q tokens at t0 (docs/model.md
// §Scan algorithms step 2 with the step-3 decay folded in). For each group g, chunk tokens s <= t,
// and every head h of the group:
//   M[h, t, s] = (C[t0+t, g, :] · B[t0+s, g, :]) * exp(min(a_t - a_s, 0)) * dt_s
// The C·Bᵀ dot is computed once per group and reused for its NH/G heads. Entries s > t are never
// written (step 3 reads only s <= t).
//
// Bindings:
//   params (uniform)  G, N, headsPerGroup, Q, L, t0, nTiles (= ceil(L/16)): u32;
//                     bOff, bStride, cOff, cStride: u32 (elements)
//   1 bs  array<f32>  B(t,g,n) = bs[bOff + t*bStride + g*N + n]     read
//   2 cs  array<f32>  C(t,g,n) = cs[cOff + t*cStride + g*N + n]     read
//   3 cum array<f32> [NH, 4, Q]  (dt_s, a hi, a lo, w_s)             read (ssd_chunk_cumsum)
//   4 m   array<f32> [NH, Q, Q]                                      write (s <= t < L)
// Dispatch: G * nTiles² workgroups of 16x16 threads (linear id wid.x + wid.y*nwg.x, bound-checked);
//   workgroup (g, tile row, tile col), thread (lid.y, lid.x) = (t, s) within the tile; tiles above
//   the diagonal exit at once. Adjacent threads write adjacent s.
// Tuning: tile 16x16 (fixed). B/C rows are read straight from global memory (cached: 16 threads
//   share each row); N is a runtime param.

@group(0) @binding(1) var<storage, read> bs: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@group(0) @binding(3) var<storage, read> cum: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let w = wid.x + wid.y * nwg.x;
  let nT = params.nTiles;
  if (w >= params.G * nT * nT) { return; }
  let g = w / (nT * nT);
  let rem = w % (nT * nT);
  let tTile = rem / nT;
  let sTile = rem % nT;
  if (sTile > tTile) { return; }
  let t = tTile * 16u + lid.y;
  let s = sTile * 16u + lid.x;
  if (t >= params.L || s > t) { return; }
  let N = params.N;
  let cRow = params.cOff + (params.t0 + t) * params.cStride + g * N;
  let bRow = params.bOff + (params.t0 + s) * params.bStride + g * N;
  var cb = 0.0;
  for (var n = 0u; n < N; n++) {
    cb = fma(cs[cRow + n], bs[bRow + n], cb);
  }
  let Q = params.Q;
  let h0 = g * params.headsPerGroup;
  for (var hh = 0u; hh < params.headsPerGroup; hh++) {
    let h = h0 + hh;
    let base = h * 4u * Q;
    let d = (cum[base + Q + t] - cum[base + Q + s]) + (cum[base + 2u * Q + t] - cum[base + 2u * Q + s]);
    m[(h * Q + t) * Q + s] = cb * exp(min(d, 0.0)) * cum[base + s];
  }
}
