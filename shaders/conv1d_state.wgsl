// conv1d_state.wgsl: rolls the conv state forward after conv1d.wgsl has read it. The new state
// holds the last K-1 raw inputs of the sequence [old state (K-1 rows); input (T rows)]:
//   new[i, c] = i + T < K-1 ? old[i + T, c] : input[inOff + (i + T - (K-1))*inStride + c]
// In place: one thread owns a channel and walks i upwards, reading row i+T (>= i, not yet
// overwritten) before writing row i, so T < K-1 (e.g. decode, T = 1) is safe.
//
// Bindings:
//   params (uniform)  T: u32; C: u32; K: u32; inOff: u32, inStride: u32 (elements)
//   1 inp       array<f32> [.., inStride]   read
//   2 convState array<f32> [K-1, C]         read_write
// Dispatch: ceil(C / 256) workgroups of 256 threads, one channel each.

@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> convState: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let C = params.C;
  if (c >= C) { return; }
  let H = params.K - 1u;
  let T = params.T;
  for (var i = 0u; i < H; i++) {
    let j = i + T;
    var v: f32;
    if (j < H) {
      v = convState[j * C + c];
    } else {
      v = inp[params.inOff + (j - H) * params.inStride + c];
    }
    convState[i * C + c] = v;
  }
}
