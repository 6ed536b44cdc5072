// embedding.wgsl: embedding gather, out[t, h] = table[ids[t], h] as f32, for one part of a table
// [V, H] (f32, f16, bf16, or block-quantized in the device layout of docs/weight-formats.md,
// dequantized 4 values at a time by wLoad4 of lib/dequant_q.wgsl / dequant_k.wgsl exactly as the
// reference dequantizer; split along V). Each dispatch writes only the tokens whose id falls in
// its part's rows [rowStart, rowStart + rows); the dispatch flagged `zeroInvalid` (the first part)
// also writes zeros for ids >= V. The host validates ids before; zeros keep a bad id harmless.
//
// Bindings:
//   params (uniform) T (tokens), H (row width), rowStart, rows (this part), V (total rows),
//                    zeroInvalid (0/1); K (= H, the row length as the dequant libraries name it),
//                    qhWord, dWord (quantized sections' word offsets; unused otherwise)
//   1 ids   u32 [T]                      read
//   2 table part [rows, H], packed       read   (array<f32> or array<u32> of two 16-bit values;
//                                                `wu: array<u32>` when W_QUANT)
//   3 out   f32 [T, H]                   read_write
// Dispatch: ceil(T * H / 256) workgroups of 256 threads, one output element each (W_QUANT: four,
//           ceil(T * H / 1024) workgroups; H % 32 == 0), folded into (x, y) past the
//           per-dimension limit; linear index bound-checked.
// Defines: W_F32 / W_F16 / W_BF16, or W_QUANT with one of W_Q8_0 / W_Q4_0 / W_Q5_0 / W_Q4_K /
//          W_Q6_K; F16 (native f16 reads).
// Tuning: none (T * H elements per call; a negligible cost next to the matmuls).

@group(0) @binding(1) var<storage, read> ids: array<u32>;
#if W_QUANT
@group(0) @binding(2) var<storage, read> wu: array<u32>;
#else
#if W_F32
@group(0) @binding(2) var<storage, read> table: array<f32>;
#else
@group(0) @binding(2) var<storage, read> table: array<u32>;
#endif
#endif
@group(0) @binding(3) var<storage, read_write> outBuf: array<f32>;

// unpack2 comes from shaders/lib/unpack16.wgsl (KernelDef.libraries).

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
#if W_QUANT
  let i4 = gid.x + gid.y * nwg.x * 256u;
  if (i4 >= params.T * params.H / 4u) { return; }
  let t = (4u * i4) / params.H;
  let h = (4u * i4) % params.H;
  let id = ids[t];
  if (id >= params.V) {
    if (params.zeroInvalid != 0u) { for (var c = 0u; c < 4u; c++) { outBuf[4u * i4 + c] = 0.0; } }
    return;
  }
  if (id < params.rowStart || id - params.rowStart >= params.rows) { return; }
  let v = wLoad4(id - params.rowStart, h);
  outBuf[4u * i4] = v.x; outBuf[4u * i4 + 1u] = v.y; outBuf[4u * i4 + 2u] = v.z; outBuf[4u * i4 + 3u] = v.w;
#else
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= params.T * params.H) { return; }
  let t = i / params.H;
  let h = i % params.H;
  let id = ids[t];
  if (id >= params.V) {
    if (params.zeroInvalid != 0u) { outBuf[i] = 0.0; }
    return;
  }
  if (id < params.rowStart || id - params.rowStart >= params.rows) { return; }
  let e = (id - params.rowStart) * params.H + h;
#if W_F32
  outBuf[i] = table[e];
#else
  let p = unpack2(table[e >> 1u]);
  outBuf[i] = select(p.x, p.y, (e & 1u) == 1u);
#endif
#endif
}
