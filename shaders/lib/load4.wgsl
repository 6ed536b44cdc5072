// lib/load4.wgsl: 4-wide loads of W [N, K] (f32 or packed 16-bit, via lib/w_elem.wgsl, or a
// block-quantized format, via wLoad4 of lib/dequant_q.wgsl / lib/dequant_k.wgsl) and of
// x [M, xRowStride] for the GEMM kernels, zero past K, with vector loads when aligned.
// Needs: bindings `w` (or `wu` when W_QUANT) and `x` as the including kernel declares them;
// params K, N, xOffset, xRowStride; defines W_QUANT, VEC (K % 8 == 0), XVEC (VEC and x
// offset/stride % 4 == 0), W_F32.
// W[n, k .. k+4) (n < N checked by the caller's clamp; zeros past K).
fn loadW4(n: u32, k: u32) -> vec4<f32> {
#if W_QUANT
  // K is a multiple of the block size (>= 32): a group of 4 is all in or all out.
  if (k >= params.K) { return vec4<f32>(0.0); }
  return wLoad4(n, k);
#else
  let e = n * params.K + k;
#if VEC
  if (k >= params.K) { return vec4<f32>(0.0); } // K % 8 == 0: a group of 4 is all in or all out
#if W_F32
  return w[e / 4u];
#else
  let q = w[e / 4u];
  return vec4<f32>(unpack2(q.x), unpack2(q.y));
#endif
#else
  // Element-wise; indices are clamped into the part so the reads past K stay in bounds.
  let last = params.N * params.K - 1u;
  return vec4<f32>(
    select(0.0, wElem(min(e, last)), k < params.K),
    select(0.0, wElem(min(e + 1u, last)), k + 1u < params.K),
    select(0.0, wElem(min(e + 2u, last)), k + 2u < params.K),
    select(0.0, wElem(min(e + 3u, last)), k + 3u < params.K));
#endif
#endif
}

// x[m, k .. k+4) with zeros past K (m < M checked by the caller's clamp).
fn loadX4(m: u32, k: u32) -> vec4<f32> {
  let e = params.xOffset + m * params.xRowStride + k;
#if XVEC
  if (k >= params.K) { return vec4<f32>(0.0); }
  return x[e / 4u];
#else
  let last = arrayLength(&x) - 1u;
  return vec4<f32>(
    select(0.0, x[min(e, last)], k < params.K),
    select(0.0, x[min(e + 1u, last)], k + 1u < params.K),
    select(0.0, x[min(e + 2u, last)], k + 2u < params.K),
    select(0.0, x[min(e + 3u, last)], k + 3u < params.K));
#endif
}
