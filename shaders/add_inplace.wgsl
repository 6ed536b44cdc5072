// add_inplace.wgsl: residual accumulate, x[i] += delta[i] (f32).
// The residual stream update `x = x + Mixer(...)` of docs/model.md §Zamba2/§Mamba2, done in place so
// the model keeps a single hidden buffer per block.
//
// Bindings:
//   params (uniform)  n: u32, total elements
//   1 x     array<f32> [n]  read_write
//   2 delta array<f32> [n]  read
// Dispatch: ceil(n / 256) workgroups of 256, folded into (x, y) past 65535; linear id bound-checked.

@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> delta: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  x[i] = x[i] + delta[i];
}
