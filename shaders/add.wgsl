// add.wgsl: elementwise residual add, out[i] = a[i] + b[i] (f32).
// Used for the residual stream (docs/model.md §Zamba2 forward `x = x + ...`).
//
// Bindings:
//   params (uniform)  n: u32, total elements
//   1 a   array<f32> [n]  read
//   2 b   array<f32> [n]  read
//   3 out array<f32> [n]  read_write (may alias neither input; launcher allocates or passes one)
// Dispatch: ceil(n / 256) workgroups of 256, folded into (x, y) past 65535; linear id bound-checked.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> outBuf: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.n) { return; }
  outBuf[i] = a[i] + b[i];
}
