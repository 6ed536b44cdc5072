// rmsnorm.wgsl: RMSNorm over rows, in f32 (docs/model.md §Zamba2/§Mamba2 `RMSNorm`, transformers
// Zamba2RMSNorm / MambaRMSNormGated without gate):
//   out[t, i] = r[t, i] / sqrt(mean_i(r[t, :]^2) + eps) * w[i]
// where the row r[t] is x[t] (width W = H), or for the Zamba2 shared block input the concat
// (x[t], x2[t]) (width W = 2H) read from the two buffers directly (the concat is never stored), or
// with ADD the sum x[t] + x2[t] (width H: a hybrid layer's RMSNorm(x + t), the sum never stored).
//
// Bindings:
//   params (uniform)  T: u32 rows; H: u32 width of x (and x2); W: u32 row width, H or 2H; eps: f32
//   1 x    array<f32> [T, H]  read
//   2 x2   array<f32> [T, H]  read (bound to x when W == H without ADD; then never read)
//   3 w    array<f32> [W]     read
//   4 out  array<f32> [T, W]  read_write (must not alias x or x2)
// Dispatch: one workgroup of WG threads per row: T workgroups, folded into (x, y) past 65535;
//   the row is wid.x + wid.y * nwg.x and rows >= T return (uniformly, before any barrier).
// Each thread sums squares over a strided slice of the row, then a tree reduction in workgroup
// memory (log2(WG) barriers) gives the row sum; a second pass over the row writes out.
// Defines: ADD (bool). Tuning knobs: WG (define, power of two, default 256).

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> x2: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> outBuf: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= params.T) { return; }
  let H = params.H;
  let n2 = params.W - H; // 0 or H
  let xb = t * H;

  var ss = 0.0;
#if ADD
  for (var i = lid; i < H; i += WG) { let v = x[xb + i] + x2[xb + i]; ss = fma(v, v, ss); }
#else
  for (var i = lid; i < H; i += WG) { let v = x[xb + i]; ss = fma(v, v, ss); }
#endif
  for (var i = lid; i < n2; i += WG) { let v = x2[xb + i]; ss = fma(v, v, ss); }
  red[lid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(red[0] / f32(params.W) + params.eps);

  let ob = t * params.W;
#if ADD
  for (var i = lid; i < H; i += WG) { outBuf[ob + i] = (x[xb + i] + x2[xb + i]) * inv * w[i]; }
#else
  for (var i = lid; i < H; i += WG) { outBuf[ob + i] = x[xb + i] * inv * w[i]; }
#endif
  for (var i = lid; i < n2; i += WG) { outBuf[ob + H + i] = x2[xb + i] * inv * w[H + i]; }
}
