// embedding.wgsl: embedding gather, out[t, h] = table[ids[t], h] as f32, for one part of a table
// [V, H] (f32, f16 or bf16; split along V). Each dispatch writes only the tokens whose id falls in
// its part's rows [rowStart, rowStart + rows); the dispatch flagged `zeroInvalid` (the first part)
// also writes zeros for ids >= V. The host validates ids before; zeros keep a bad id harmless.
//
// Bindings:
//   params (uniform) T (tokens), H (row width), rowStart, rows (this part), V (total rows),
//                    zeroInvalid (0/1)
//   1 ids   u32 [T]                      read
//   2 table part [rows, H], packed       read   (array<f32> or array<u32> of two 16-bit values)
//   3 out   f32 [T, H]                   read_write
// Dispatch: ceil(T * H / 256) workgroups of 256 threads, one output element each, folded into
//           (x, y) past the per-dimension limit; linear index bound-checked.
// Defines: W_F32 / W_F16 / W_BF16 (one true); F16 (native f16 reads).
// Tuning: none (T * H elements per call; a negligible cost next to the matmuls).

@group(0) @binding(1) var<storage, read> ids: array<u32>;
#if W_F32
@group(0) @binding(2) var<storage, read> table: array<f32>;
#else
@group(0) @binding(2) var<storage, read> table: array<u32>;
#endif
@group(0) @binding(3) var<storage, read_write> outBuf: array<f32>;

// unpack2 comes from shaders/lib/unpack16.wgsl (KernelDef.libraries).

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
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
}
