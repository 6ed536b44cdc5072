// conv1d.wgsl: causal depthwise conv1d over time, plus bias, then SiLU (docs/model.md §Mixer step 2):
//   out[t, c] = silu(bias[c] + sum_{k<K} w[c, k] * xin(t - K + 1 + k, c))
// where xin(tau, c) = input[inOff + tau*inStride + c] for tau >= 0, and for tau < 0 the raw input
// from before this call, read from the conv state. The state is a ring of K rows [K, C]: row
// (a mod K) holds the raw input of absolute position a (src/backends/backend.ts convStateBytes),
// zeros before the sequence starts. Reads convState only; conv1d_state.wgsl writes the new rows
// afterwards (a separate dispatch, so no thread overwrites a row another still reads).
//
// Bindings:
//   params (uniform)  T: u32 tokens; C: u32 channels; K: u32 kernel size (2..8);
//                     inOff: u32, inStride: u32 (elements; input may be a column slice of zxbcdt);
//                     pos0: u32 absolute position of input row 0; outOff: u32 (elements) of out row 0
//   1 inp       array<f32> [.., inStride]   read   (row t at inOff + t*inStride, C columns)
//   2 weight    array<f32> [C, K]           read   (conv1d.weight [C, 1, K] flattened)
//   3 bias      array<f32> [C]              read
//   4 convState array<f32> [K, C]           read   (ring: row a mod K = position a)
//   5 outBuf    array<f32> [T, C] at outOff  write
// Dispatch: ceil(T*C / 256) workgroups of 256 threads, one output element each (channel fastest,
//   so neighbouring threads read neighbouring addresses); folded into (x, y) past the per-dimension
//   limit, linear id bound-checked.
// Tuning: WG 256 (fixed). Each input is read K times, from cache; the kernel is memory bound.

@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> convState: array<f32>;
@group(0) @binding(5) var<storage, read_write> outBuf: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  let C = params.C;
  let K = params.K;
  if (i >= params.T * C) { return; }
  let t = i / C;
  let c = i % C;
  var acc = bias[c];
  for (var k = 0u; k < K; k++) {
    // History index: position t - (K-1) + k; negative positions live in the state.
    let pos = i32(t + k) - i32(K - 1u);
    var v: f32;
    if (pos >= 0) {
      v = inp[params.inOff + u32(pos) * params.inStride + c];
    } else {
      // Absolute position pos0 + pos >= pos0 - (K - 1), so adding K keeps the index positive.
      let slot = u32(i32(params.pos0 % K) + pos + i32(K)) % K;
      v = convState[slot * C + c];
    }
    acc = fma(weight[c * K + k], v, acc);
  }
  outBuf[params.outOff + i] = silu(acc); // shaders/lib/activations.wgsl
}
