// lib/w_elem.wgsl: one element e (row-major index within a weight part) of W, for the unaligned
// (K % 8 != 0) paths. Needs: binding `w` (array<f32> when W_F32, else array<u32> of packed 16-bit),
// lib/unpack16.wgsl, defines VEC, W_F32.
#if !VEC
fn wElem(e: u32) -> f32 {
#if W_F32
  return w[e];
#else
  let p = unpack2(w[e >> 1u]);
  return select(p.x, p.y, (e & 1u) == 1u);
#endif
}
#endif
