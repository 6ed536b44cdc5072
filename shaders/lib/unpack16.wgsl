// lib/unpack16.wgsl: two packed 16-bit weights (element 2i in the low half, the safetensors
// byte order) -> vec2<f32>. Included by kernels that read f16/bf16 weights.
// Needs defines: W_BF16 (bf16: the high bits of an f32), F16 (read f16 natively; else
// unpack2x16float).
fn unpack2(u: u32) -> vec2<f32> {
#if W_BF16
  return vec2<f32>(bitcast<f32>(u << 16u), bitcast<f32>(u & 0xffff0000u));
#else
#if F16
  return vec2<f32>(bitcast<vec2<f16>>(u));
#else
  return unpack2x16float(u);
#endif
#endif
}
