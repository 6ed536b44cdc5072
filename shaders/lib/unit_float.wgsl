// lib/unit_float.wgsl: the GEMV unit interface of lib/dequant_q.wgsl for 16/32-bit weights
// (f32, or f16/bf16 packed two per u32, element 2i in the low half), so shaders/gemv_q.wgsl can
// stream them too (its lane-per-row variant is the software adapters' GEMV). Needs K % 32 == 0.
//   const UNIT = 32u, UV = 8u, UPS = 1u; alias Unit = array<vec4<f32>, UV>; alias Hdr = u32 (unused)
//   wHeader(n, g) -> Hdr, wUnitH(n, g, j, h) -> Unit, wUnit(n, u) -> Unit: columns 32u .. 32u + 31
//   of row n; wDotH(n, g, j, h, xv, acc) -> acc + the unit's dot with xv (decoded and consumed a
//   16-byte word at a time); unitK(u, i) -> column of Unit[i].x
// Needs: binding `wq: array<vec4<u32>>` (the part as 16-byte words), lib/unpack16.wgsl, params K;
// defines W_F32 / W_F16 / W_BF16 (one true), F16.

const UNIT: u32 = 32u;
const UV: u32 = 8u;
const UPS: u32 = 1u;
alias Unit = array<vec4<f32>, 8>;
alias Hdr = u32;

fn wHeader(n: u32, g: u32) -> Hdr { return 0u; }
fn wUnit(n: u32, u: u32) -> Unit { return wUnitH(n, u, 0u, 0u); }

fn wUnitH(n: u32, g: u32, j: u32, h: Hdr) -> Unit {
  let e = n * params.K + g * 32u;   // element index, a multiple of 32
#if W_F32
  let b = e / 4u;
  return Unit(bitcast<vec4<f32>>(wq[b]), bitcast<vec4<f32>>(wq[b + 1u]), bitcast<vec4<f32>>(wq[b + 2u]), bitcast<vec4<f32>>(wq[b + 3u]),
              bitcast<vec4<f32>>(wq[b + 4u]), bitcast<vec4<f32>>(wq[b + 5u]), bitcast<vec4<f32>>(wq[b + 6u]), bitcast<vec4<f32>>(wq[b + 7u]));
#else
  let b = e / 8u;
  let q0 = wq[b]; let q1 = wq[b + 1u]; let q2 = wq[b + 2u]; let q3 = wq[b + 3u];
  return Unit(vec4<f32>(unpack2(q0.x), unpack2(q0.y)), vec4<f32>(unpack2(q0.z), unpack2(q0.w)),
              vec4<f32>(unpack2(q1.x), unpack2(q1.y)), vec4<f32>(unpack2(q1.z), unpack2(q1.w)),
              vec4<f32>(unpack2(q2.x), unpack2(q2.y)), vec4<f32>(unpack2(q2.z), unpack2(q2.w)),
              vec4<f32>(unpack2(q3.x), unpack2(q3.y)), vec4<f32>(unpack2(q3.z), unpack2(q3.w)));
#endif
}

fn unitK(u: u32, i: u32) -> u32 { return u * 32u + i * 4u; }

fn wDotH(n: u32, g: u32, j: u32, h: Hdr, xv: Unit, acc: f32) -> f32 {
  let e = n * params.K + g * 32u;
#if W_F32
  let b = e / 4u;
  var s = bitcast<vec4<f32>>(wq[b]) * xv[0];
  for (var i = 1u; i < 8u; i++) { s = fma(bitcast<vec4<f32>>(wq[b + i]), xv[i], s); }
#else
  let b = e / 8u;
  var s = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    let q = wq[b + i];
    s = fma(vec4<f32>(unpack2(q.x), unpack2(q.y)), xv[2u * i], s);
    s = fma(vec4<f32>(unpack2(q.z), unpack2(q.w)), xv[2u * i + 1u], s);
  }
#endif
  return acc + ((s.x + s.y) + (s.z + s.w));
}
