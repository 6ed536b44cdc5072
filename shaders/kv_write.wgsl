// kv_write.wgsl: appends T rows of new keys or values to an attention KV cache,
//   dst[dstRow + t, c] = src[srcOffset + t * srcRowStride + c]   (t < T, c < W)
// and with PAIR also the next W values of each row to a second cache (keys and values of a
// [.. | k | v] row in one dispatch):
//   dst2[dstRow + t, c] = src[srcOffset + W + t * srcRowStride + c]
// converting f32 to the cache's storage: f32, or (KV_F16) IEEE f16 packed two per u32, element
// 2i in the low half (pack2x16float needs no shader-f16 feature, so every adapter can hold an f16
// cache). The cache rows are the attention kernels' kCache / vCache [capacity, W].
//
// Bindings:
//   params (uniform) T, W (row width, even when KV_F16), srcOffset, srcRowStride (elements), dstRow
//   1 src  array<f32> rows [T, srcRowStride] from srcOffset        read
//   2 dst  array<f32> [capacity, W], or array<u32> [capacity, W/2]  read_write
//   3 dst2 as dst (PAIR only)                                       read_write
// Dispatch: ceil(n / 256) workgroups of 256, n = T * W / (KV_F16 ? 2 : 1) * (PAIR ? 2 : 1) output
//           words (folded into y past the per-dimension limit; linear id bound-checked), one
//           output word per thread; the first T * W words go to dst, the rest to dst2.
// Defines: KV_F16 (bool), PAIR (bool).

@group(0) @binding(1) var<storage, read> src: array<f32>;
#if KV_F16
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
#if PAIR
@group(0) @binding(3) var<storage, read_write> dst2: array<u32>;
#endif
#else
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
#if PAIR
@group(0) @binding(3) var<storage, read_write> dst2: array<f32>;
#endif
#endif

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  var i = gid.x + gid.y * nwg.x * 256u;
#if KV_F16
  let wordsPerRow = params.W / 2u;
#else
  let wordsPerRow = params.W;
#endif
  let words = params.T * wordsPerRow;
#if PAIR
  if (i >= 2u * words) { return; }
  let second = i >= words;
  if (second) { i -= words; }
  let cOff = select(0u, params.W, second);
#else
  if (i >= words) { return; }
  let cOff = 0u;
#endif
  let t = i / wordsPerRow;
  let o = (params.dstRow + t) * wordsPerRow + i % wordsPerRow;
#if KV_F16
  let s = params.srcOffset + t * params.srcRowStride + cOff + (i % wordsPerRow) * 2u;
  let v = pack2x16float(vec2<f32>(src[s], src[s + 1u]));
#else
  let v = src[params.srcOffset + t * params.srcRowStride + cOff + i % wordsPerRow];
#endif
#if PAIR
  if (second) { dst2[o] = v; } else { dst[o] = v; }
#else
  dst[o] = v;
#endif
}
