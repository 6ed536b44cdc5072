// gated_rmsnorm.wgsl: the Mamba2 mixer's gated, grouped RMSNorm (docs/model.md §Mixer step 6, the
// grouped form of mamba_ssm's RMSNormGated with norm_before_gate=False):
//   g[t, c]   = y[t, c] * silu(z[t, c])
//   out[t, c] = g[t, c] / sqrt(mean_{c' in group(c)} g[t, c']^2 + eps) * w[c]
// with groups of groupSize consecutive channels (group = c / groupSize, D = G * groupSize).
// z is a strided view into zxbcdt: z(t, c) = z[zOffset + t * zRowStride + c].
//
// Bindings:
//   params (uniform)  T: u32; D: u32 channels; groupSize: u32; G: u32 groups (D / groupSize);
//                     zOffset: u32 elements; zRowStride: u32 elements; eps: f32
//   1 y    array<f32> [T, D]                read
//   2 z    array<f32> (strided, see above)  read
//   3 w    array<f32> [D]                   read
//   4 out  array<f32> [T, D]                read_write (must not alias y or z)
// Dispatch: one workgroup of WG threads per (t, group): T * G workgroups, linear id
//   wid.x + wid.y * nwg.x = t * G + group, folded past 65535; ids >= T * G return uniformly.
// The gate is recomputed in the output pass instead of being kept: a group can be 8192 wide
// (Codestral) and re-reading y/z is cheaper than workgroup memory that large.
// Tuning knobs: WG (define, power of two, default 256).

@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> outBuf: array<f32>;

var<workgroup> red: array<f32, WG>;

fn gate(yb: u32, zb: u32, c: u32) -> f32 {
  let zv = z[zb + c];
  return y[yb + c] * silu(zv); // shaders/lib/activations.wgsl
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let id = wid.x + wid.y * nwg.x;
  if (id >= params.T * params.G) { return; }
  let t = id / params.G;
  let c0 = (id % params.G) * params.groupSize;
  let yb = t * params.D + c0;
  let zb = params.zOffset + t * params.zRowStride + c0;
  let n = params.groupSize;

  var ss = 0.0;
  for (var i = lid; i < n; i += WG) { let g = gate(yb, zb, i); ss = fma(g, g, ss); }
  red[lid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(red[0] / f32(n) + params.eps);
  for (var i = lid; i < n; i += WG) { outBuf[yb + i] = gate(yb, zb, i) * inv * w[c0 + i]; }
}
