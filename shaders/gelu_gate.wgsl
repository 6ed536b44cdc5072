// gelu_gate.wgsl: the Zamba2 MLP gate (docs/model.md §Zamba2 MLP), exact-erf GELU:
//   out[t, f] = gelu(gu[t, f]) * gu[t, F + f],   gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt2))
// gelu() (exact erf, ~1 f32 ulp) comes from shaders/lib/gelu.wgsl.
//
// Bindings:
//   params (uniform)  T: u32 rows; F: u32 intermediate size
//   1 gu   array<f32> [T, 2F]  read   (gate half first, then up half, as gate_up_proj emits)
//   2 out  array<f32> [T, F]   read_write
// Dispatch: one thread per output element, ceil(T * F / WG) workgroups, folded into (x, y) past
//   65535; linear element id = (wid.x + wid.y * nwg.x) * WG + lid, bound-checked.
// Tuning knobs: WG (define, default 256).

@group(0) @binding(1) var<storage, read> gu: array<f32>;
@group(0) @binding(2) var<storage, read_write> outBuf: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  let F = params.F;
  if (i >= params.T * F) { return; }
  let t = i / F;
  let f = i - t * F;
  let b = t * 2u * F + f;
  outBuf[i] = gelu(gu[b]) * gu[b + F];
}
