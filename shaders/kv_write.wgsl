// kv_write.wgsl: appends T rows of new keys or values to an attention KV cache,
//   dst[dstRow + t, c] = src[srcOffset + t * srcRowStride + c]   (t < T, c < W)
// converting f32 to the cache's storage: f32, or (KV_F16) IEEE f16 packed two per u32, element
// 2i in the low half (pack2x16float needs no shader-f16 feature, so every adapter can hold an f16
// cache). The cache rows are the attention kernels' kCache / vCache [capacity, W].
//
// Bindings:
//   params (uniform) T, W (row width, even when KV_F16), srcOffset, srcRowStride (elements), dstRow
//   1 src  array<f32> rows [T, srcRowStride] from srcOffset        read
//   2 dst  array<f32> [capacity, W], or array<u32> [capacity, W/2]  read_write
// Dispatch: ceil(T * W / (KV_F16 ? 2 : 1) / 256) workgroups of 256 (folded into y past the
//           per-dimension limit; linear id bound-checked), one output word per thread.
// Defines: KV_F16 (bool).

@group(0) @binding(1) var<storage, read> src: array<f32>;
#if KV_F16
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
#else
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
#endif

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
#if KV_F16
  let wordsPerRow = params.W / 2u;
  if (i >= params.T * wordsPerRow) { return; }
  let t = i / wordsPerRow;
  let c = (i % wordsPerRow) * 2u;
  let s = params.srcOffset + t * params.srcRowStride + c;
  dst[(params.dstRow + t) * wordsPerRow + c / 2u] = pack2x16float(vec2<f32>(src[s], src[s + 1u]));
#else
  if (i >= params.T * params.W) { return; }
  let t = i / params.W;
  let c = i % params.W;
  dst[(params.dstRow + t) * params.W + c] = src[params.srcOffset + t * params.srcRowStride + c];
#endif
}
