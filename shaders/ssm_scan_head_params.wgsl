// ssm_scan_head_params.wgsl: packs the per-head scan constants into one vec4 per head, so the scan
// kernels need one binding for them instead of three (keeps every scan kernel within the default
// 8 storage buffers per stage):
//   hp[h] = (dt_bias[h], A[h] = -exp(A_log[h]), D[h], 0)          (docs/model.md §Mixer step 4)
//
// Bindings:
//   params (uniform)  NH: u32 heads
//   1 dtBias array<f32> [NH]         read
//   2 aLog   array<f32> [NH]         read
//   3 dSkip  array<f32> [NH]         read
//   4 hp     array<vec4<f32>> [NH]   write
// Dispatch: ceil(NH / 64) workgroups of 64 threads, one head each.

@group(0) @binding(1) var<storage, read> dtBias: array<f32>;
@group(0) @binding(2) var<storage, read> aLog: array<f32>;
@group(0) @binding(3) var<storage, read> dSkip: array<f32>;
@group(0) @binding(4) var<storage, read_write> hp: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let h = gid.x;
  if (h >= params.NH) { return; }
  hp[h] = vec4<f32>(dtBias[h], -exp(aLog[h]), dSkip[h], 0.0);
}
