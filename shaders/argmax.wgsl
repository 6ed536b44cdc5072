// argmax.wgsl: out[m] = argmax_v logits[m, v] over rows of an f32 matrix [M, V], like torch.argmax:
// ties go to the lowest index, and a NaN counts as the maximum (the first NaN wins).
//
// Bindings:
//   params (uniform) M (rows), V (row width)
//   1 logits f32 [M, V]   read
//   2 out    u32 [M]      read_write
// Dispatch: M workgroups of WG threads (folded into (x, y) past the per-dimension limit; linear
//           row id bound-checked). Each thread scans a strided subset of the row, then a tree
//           reduction in workgroup memory keeps (value, index) pairs.
// Defines: WG (power of two, default 256).

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> outBuf: array<u32>;

var<workgroup> bestV: array<f32, WG>;
var<workgroup> bestI: array<u32, WG>;

fn isNan(v: f32) -> bool {
  // Compilers may fold `v != v`; test the bits instead.
  let b = bitcast<u32>(v);
  return (b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0u;
}

const NONE: u32 = 0xffffffffu; // index of an empty candidate (a thread that saw no element)

// True when candidate (v, i) beats the current best (bv, bi).
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
  if (i == NONE) { return false; }
  if (bi == NONE) { return true; }
  let vn = isNan(v);
  let bn = isNan(bv);
  if (vn || bn) { return vn && (!bn || i < bi); }
  return v > bv || (v == bv && i < bi);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let live = row < params.M;
  // No candidate yet (-inf cannot be written as a WGSL constant; NONE stands for "empty").
  var bv = 0.0;
  var bi = NONE;
  if (live) {
    let base = row * params.V;
    for (var v = lid; v < params.V; v += WG) {
      let x = logits[base + v];
      if (better(x, v, bv, bi)) { bv = x; bi = v; }
    }
  }
  bestV[lid] = bv;
  bestI[lid] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let ov = bestV[lid + s];
      let oi = bestI[lid + s];
      if (better(ov, oi, bestV[lid], bestI[lid])) { bestV[lid] = ov; bestI[lid] = oi; }
    }
    workgroupBarrier();
  }
  if (live && lid == 0u) { outBuf[row] = bestI[0]; }
}
