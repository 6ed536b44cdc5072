// matmul_rb.wgsl: register-blocked matmul without workgroup memory, y[m, nBase + n] (= or +=)
// sum_k x[m, k] * W[n, k] for one part of a weight W [N, K] in f32, f16, bf16 or a block-quantized
// format (dequantized 4 values at a time by wLoad4, lib/dequant_q.wgsl / dequant_k.wgsl, exactly as
// the reference dequantizer: only the f32 accumulation differs from it). Each invocation
// owns a 4 x 4 block of y (see Dispatch) and walks K in vec4 steps, reading x and W
// straight from storage (caches do the reuse): 8 vec4 loads per 16 dot4s, no barriers.
// This is the prefill kernel on CPU emulations (lavapipe, SwiftShader), where barriers and
// workgroup memory are very expensive; GPUs use the tiled shaders/matmul.wgsl.
//
// Bindings (as matmul.wgsl):
//   params (uniform) M, N (rows of this part), K, nBase (first output column of this part),
//                    xOffset, xRowStride, yOffset, yRowStride (elements), accumulate (0/1),
//                    qhWord, dWord (quantized sections' word offsets; unused otherwise)
//   1 x  f32 [M, xRowStride] at xOffset      read        (array<vec4<f32>> when XVEC)
//   2 w  W part [N, K] row-major, packed     read        (vec2<u32> / vec4<f32> units when VEC;
//                                                         `wu: array<u32>` in the device layout of
//                                                         docs/weight-formats.md when W_QUANT)
//   3 y  f32, y[m, c] at yOffset + m * yRowStride + c   read_write
// Dispatch: x = ceil(N / 32) (folded into y past the limit; linear id wid.x + wid.y * nwg.x),
//           z = ceil(M / 32); workgroup 64 = 8 x 8 invocations, each a 4 x 4 block of y:
//           rows m0 + ty + 8i, columns n0 + tx + 8j (i, j in 0..4) with m0/n0 the 32 x 32 tile.
// Defines: W_F32 / W_F16 / W_BF16, or W_QUANT with one of W_Q8_0 / W_Q4_0 / W_Q5_0 / W_Q4_K /
//          W_Q6_K (one format true); F16 (native f16 reads); VEC (K % 8 == 0);
//          XVEC (VEC and x offset/stride % 4 == 0).
// Tuning: tile 32 x 32, block 4 x 4 (fixed).

const BM: u32 = 32u;
const BN: u32 = 32u;

#if W_QUANT
@group(0) @binding(2) var<storage, read> wu: array<u32>;
#else
#if VEC
#if W_F32
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
#else
@group(0) @binding(2) var<storage, read> w: array<vec2<u32>>;
#endif
#else
#if W_F32
@group(0) @binding(2) var<storage, read> w: array<f32>;
#else
@group(0) @binding(2) var<storage, read> w: array<u32>;
#endif
#endif
#endif
#if XVEC
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
#endif
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// unpack2, wElem, loadW4, loadX4 come from shaders/lib/{unpack16,w_elem,load4}.wgsl (KernelDef.libraries).

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let n0 = (wid.x + wid.y * nwg.x) * BN;
  let m0 = wid.z * BM;
  if (n0 >= params.N) { return; } // no barriers here, so early exit is fine
  let tx = lid % 8u;
  let ty = lid / 8u;
  // Out-of-range rows read a clamped (valid) row; their results are never stored.
  var xm: array<u32, 4>;
  var wn: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    xm[i] = min(m0 + ty + 8u * i, params.M - 1u);
    wn[i] = min(n0 + tx + 8u * i, params.N - 1u);
  }
  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k = 0u; k < params.K; k += 4u) {
    let b0 = loadW4(wn[0], k);
    let b1 = loadW4(wn[1], k);
    let b2 = loadW4(wn[2], k);
    let b3 = loadW4(wn[3], k);
    for (var i = 0u; i < 4u; i++) {
      let a = loadX4(xm[i], k);
      acc[i] += vec4<f32>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty + 8u * i;
    if (m >= params.M) { break; }
    let row = params.yOffset + m * params.yRowStride + params.nBase;
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx + 8u * j;
      if (n < params.N) {
        var s = acc[i][j];
        if (params.accumulate != 0u) { s += y[row + n]; }
        y[row + n] = s;
      }
    }
  }
}
