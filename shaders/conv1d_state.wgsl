// conv1d_state.wgsl: writes the raw inputs of a block into the conv state ring after conv1d.wgsl
// has read the old rows. The state is [K, C]: row (a mod K) holds the raw input of absolute
// position a, so of a block of T inputs at positions pos0 .. pos0+T-1 only the last min(T, K)
// are kept:  convState[(pos0 + t) mod K, c] = input[inOff + t*inStride + c],  t >= T - K.
// Reads inputs only, so rows can be written in any order.
//
// Bindings:
//   params (uniform)  T: u32; C: u32; K: u32; inOff: u32, inStride: u32 (elements); pos0: u32; outOff (unused)
//   1 inp       array<f32> [.., inStride]   read
//   2 convState array<f32> [K, C]           read_write
// Dispatch: ceil(C / 256) workgroups of 256 threads, one channel each.

@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> convState: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let C = params.C;
  if (c >= C) { return; }
  let K = params.K;
  let T = params.T;
  let first = select(0u, T - K, T > K);
  for (var t = first; t < T; t++) {
    convState[((params.pos0 + t) % K) * C + c] = inp[params.inOff + t * params.inStride + c];
  }
}
