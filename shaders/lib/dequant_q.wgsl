// lib/dequant_q.wgsl: dequantization of the 32-value block formats q8_0, q4_0 and q5_0 in the
// device layout of docs/weight-formats.md (one part of a weight W [N, K], K % 32 == 0):
//   q8_0  qs: i8 [nb, 32]  at word 0          | d: f16 [nb] at word params.dWord
//   q4_0  qs: u8 [nb, 16]  at word 0          | d: f16 [nb] at word params.dWord
//   q5_0  qs: u8 [nb, 16]  at word 0          | qh: u32 [nb] at word params.qhWord | d: f16 [nb]
// Block b of row n is b = n * (K / 32) + j. Every value is produced exactly as the reference
// dequantizer does (q * d, (q - 8) * d, (q - 16) * d: exact in f32), so kernels differ from an f64
// reference on the dequantized weights only by their f32 accumulation.
//
// Provides (for the kernels that include it; define W_Q8_0 / W_Q4_0 / W_Q5_0, exactly one true):
//   const UNIT = 32u, UV = 8u, UPS = 1u; alias Unit = array<vec4<f32>, UV>; alias Hdr = f32
//   wHeader(n, g) -> Hdr         what units g * UPS .. + UPS - 1 of row n share (the block scale)
//   wUnitH(n, g, j, h) -> Unit   values of unit u = g * UPS + j (columns 32u .. 32u + 31) of row n
//   wUnit(n, u) -> Unit          the same with its own header
//   wDotH(n, g, j, h, xv, acc)   acc + dot(unit, xv), decoding and consuming one 16-byte word at a
//                                time (short live ranges: CPU emulations spill a materialized Unit)
//                                (wHeader, wUnitH, wUnit, wDotH only with W_UNITS; they need
//                                binding `wq: array<vec4<u32>>`)
//   unitK(u, i) -> u32           column of Unit[i].x (4 consecutive columns per vec4)
//   wLoad4(n, k) -> vec4<f32>    values k .. k + 3 of row n, k % 4 == 0 (needs only `wu`)
// Needs: bindings `wu: array<u32>` (the part as words) and, with W_UNITS (wUnit), `wq: array<vec4<u32>>` (the
// same buffer as 16-byte words: the qs and qh sections are whole 16-byte words, the d section may
// end inside one, so scales are always read through `wu`); params K, dWord, qhWord.

const UNIT: u32 = 32u;
const UV: u32 = 8u;
const UPS: u32 = 1u;
alias Unit = array<vec4<f32>, 8>;
alias Hdr = f32;

#if W_UNITS
fn wHeader(n: u32, g: u32) -> Hdr { return blockScale(n * (params.K / 32u) + g); }
fn wUnit(n: u32, u: u32) -> Unit { return wUnitH(n, u, 0u, wHeader(n, u)); }
#endif

// f16 scale of block b (two per word, block 2i in the low half).
fn blockScale(b: u32) -> f32 {
  let p = unpack2x16float(wu[params.dWord + (b >> 1u)]);
  return select(p.x, p.y, (b & 1u) == 1u);
}

// Byte lanes of a word: bytes 0..3 shifted to bit 0 (q8_0 signed, the rest unsigned).
const BYTE_SHIFTS = vec4<u32>(0u, 8u, 16u, 24u);

#if W_Q8_0
// Four signed bytes of a word as exact floats times d.
fn q8Word(u: u32, d: f32) -> vec4<f32> {
  let s = bitcast<vec4<i32>>(vec4<u32>(u) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
  return vec4<f32>(s) * d;
}

#if W_UNITS
fn wUnitH(n: u32, g: u32, j: u32, d: Hdr) -> Unit {
  let b = n * (params.K / 32u) + g;
  let a = wq[2u * b];
  let c = wq[2u * b + 1u];
  return Unit(q8Word(a.x, d), q8Word(a.y, d), q8Word(a.z, d), q8Word(a.w, d),
              q8Word(c.x, d), q8Word(c.y, d), q8Word(c.z, d), q8Word(c.w, d));
}
#endif

#if W_UNITS
fn wDotH(n: u32, g: u32, j: u32, d: Hdr, xv: Unit, acc: f32) -> f32 {
  let b = n * (params.K / 32u) + g;
  let a = wq[2u * b];
  var s = q8Word(a.x, d) * xv[0];
  s = fma(q8Word(a.y, d), xv[1], s); s = fma(q8Word(a.z, d), xv[2], s); s = fma(q8Word(a.w, d), xv[3], s);
  let c = wq[2u * b + 1u];
  s = fma(q8Word(c.x, d), xv[4], s); s = fma(q8Word(c.y, d), xv[5], s);
  s = fma(q8Word(c.z, d), xv[6], s); s = fma(q8Word(c.w, d), xv[7], s);
  return acc + ((s.x + s.y) + (s.z + s.w));
}
#endif

fn wLoad4(n: u32, k: u32) -> vec4<f32> {
  let b = n * (params.K / 32u) + k / 32u;
  return q8Word(wu[b * 8u + (k % 32u) / 4u], blockScale(b));
}
#endif

#if W_Q4_0
// Nibbles of a word starting at bit `sh` of each byte (0: low nibbles, 4: high), as (q - 8) * d.
fn q4Word(u: u32, sh: u32, d: f32) -> vec4<f32> {
  let q = vec4<f32>(vec4<i32>((vec4<u32>(u) >> (BYTE_SHIFTS + vec4<u32>(sh))) & vec4<u32>(15u)));
  return (q - 8.0) * d;
}

#if W_UNITS
fn wUnitH(n: u32, g: u32, j: u32, d: Hdr) -> Unit {
  let b = n * (params.K / 32u) + g;
  let q = wq[b];
  // Word i holds bytes 4i .. 4i + 3: low nibbles are values 4i .., high nibbles 16 + 4i ...
  return Unit(q4Word(q.x, 0u, d), q4Word(q.y, 0u, d), q4Word(q.z, 0u, d), q4Word(q.w, 0u, d),
              q4Word(q.x, 4u, d), q4Word(q.y, 4u, d), q4Word(q.z, 4u, d), q4Word(q.w, 4u, d));
}
#endif

#if W_UNITS
fn wDotH(n: u32, g: u32, j: u32, d: Hdr, xv: Unit, acc: f32) -> f32 {
  let b = n * (params.K / 32u) + g;
  let q = wq[b];
  var s = q4Word(q.x, 0u, d) * xv[0];
  s = fma(q4Word(q.y, 0u, d), xv[1], s); s = fma(q4Word(q.z, 0u, d), xv[2], s); s = fma(q4Word(q.w, 0u, d), xv[3], s);
  s = fma(q4Word(q.x, 4u, d), xv[4], s); s = fma(q4Word(q.y, 4u, d), xv[5], s);
  s = fma(q4Word(q.z, 4u, d), xv[6], s); s = fma(q4Word(q.w, 4u, d), xv[7], s);
  return acc + ((s.x + s.y) + (s.z + s.w));
}
#endif

fn wLoad4(n: u32, k: u32) -> vec4<f32> {
  let b = n * (params.K / 32u) + k / 32u;
  let j = k % 32u;
  return q4Word(wu[b * 4u + (j % 16u) / 4u], select(0u, 4u, j >= 16u), blockScale(b));
}
#endif

#if W_Q5_0
// As q4Word plus bit 4 from qh: bits h .. h + 3 for these four values; (q - 16) * d.
fn q5Word(u: u32, sh: u32, qh: u32, h: u32, d: f32) -> vec4<f32> {
  let lo = (vec4<u32>(u) >> (BYTE_SHIFTS + vec4<u32>(sh))) & vec4<u32>(15u);
  let hi = ((vec4<u32>(qh) >> (vec4<u32>(h) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u)) << vec4<u32>(4u);
  return (vec4<f32>(vec4<i32>(lo | hi)) - 16.0) * d;
}

#if W_UNITS
fn wUnitH(n: u32, g: u32, j: u32, d: Hdr) -> Unit {
  let b = n * (params.K / 32u) + g;
  let qh = wu[params.qhWord + b];
  let q = wq[b];
  return Unit(q5Word(q.x, 0u, qh, 0u, d), q5Word(q.y, 0u, qh, 4u, d), q5Word(q.z, 0u, qh, 8u, d), q5Word(q.w, 0u, qh, 12u, d),
              q5Word(q.x, 4u, qh, 16u, d), q5Word(q.y, 4u, qh, 20u, d), q5Word(q.z, 4u, qh, 24u, d), q5Word(q.w, 4u, qh, 28u, d));
}
#endif

#if W_UNITS
fn wDotH(n: u32, g: u32, j: u32, d: Hdr, xv: Unit, acc: f32) -> f32 {
  let b = n * (params.K / 32u) + g;
  let qh = wu[params.qhWord + b];
  let q = wq[b];
  var s = q5Word(q.x, 0u, qh, 0u, d) * xv[0];
  s = fma(q5Word(q.y, 0u, qh, 4u, d), xv[1], s); s = fma(q5Word(q.z, 0u, qh, 8u, d), xv[2], s);
  s = fma(q5Word(q.w, 0u, qh, 12u, d), xv[3], s); s = fma(q5Word(q.x, 4u, qh, 16u, d), xv[4], s);
  s = fma(q5Word(q.y, 4u, qh, 20u, d), xv[5], s); s = fma(q5Word(q.z, 4u, qh, 24u, d), xv[6], s);
  s = fma(q5Word(q.w, 4u, qh, 28u, d), xv[7], s);
  return acc + ((s.x + s.y) + (s.z + s.w));
}
#endif

fn wLoad4(n: u32, k: u32) -> vec4<f32> {
  let b = n * (params.K / 32u) + k / 32u;
  let j = k % 32u;
  return q5Word(wu[b * 4u + (j % 16u) / 4u], select(0u, 4u, j >= 16u), wu[params.qhWord + b], j, blockScale(b));
}
#endif

fn unitK(u: u32, i: u32) -> u32 { return u * 32u + i * 4u; }
