// lib/dequant_k.wgsl: dequantization of the 256-value super-block formats q4_k and q6_k in the
// device layout of docs/weight-formats.md (one part of a weight W [N, K], K % 256 == 0):
//   q4_k  blocks: [nb] x 144 bytes = 36 words, ggml's block_q4_K verbatim: word 0 = d | dmin << 16
//         (f16), words 1..3 = scales[12] (6-bit scales and mins), words 4..35 = qs[128]
//   q6_k  blocks: [nb] x 208 bytes = 52 words: ql[128] (words 0..31), qh[64] (32..47),
//         scales: i8[16] (48..51); d: f16 [nb] at word params.dWord
// Super-block b of row n is b = n * (K / 256) + j. Values are produced exactly as the reference
// dequantizer does: q4_k y = fl(fl(d * sc) * q - fl(dmin * m)) (d * sc, d * sc * q and dmin * m
// are exact in f32, so one rounding), q6_k y = fl(fl(d * sc) * (q - 32)) (d * sc exact).
//
// Units (what wUnit decodes at once, 64 values, sixteen vec4 of 4 consecutive columns):
//   q4_k  unit u = 4 b + g (g = 0..3): sub-blocks 2g and 2g + 1 of super-block b, columns
//         256 j + 64 g .. + 63, from qs bytes 32 g .. 32 g + 31 (low nibbles, then high nibbles).
//   q6_k  unit u = 4 b + 2 h + lh: half h (128 values), l in 16 lh .. 16 lh + 15, the four values
//         l, l + 32, l + 64, l + 96 of that half: Unit[4 g + i] holds columns
//         256 j + 128 h + 32 g + 16 lh + 4 i .. + 3, from ql bytes 64 h + 16 lh (+ 32), qh bytes
//         32 h + 16 lh and scales 8 h + lh + 2 g.
// Provides (define W_Q4_K / W_Q6_K, exactly one true):
//   const UNIT = 64u, UV = 16u, UPS = 4u (units per super-block); alias Unit = array<vec4<f32>, UV>
//   Hdr: the super-block's decoded scales (q4_k: fl(d * sc) and fl(dmin * m) of its 8 sub-blocks;
//   q6_k: fl(d * sc) of its 16 groups), loaded and decoded once for the 4 units that share them
//   wHeader(n, g) -> Hdr of super-block g of row n; wUnitH(n, g, j, h) -> Unit j of super-block g;
//   wUnit(n, u) -> Unit; wDotH(n, g, j, h, xv, acc) -> acc + dot(unit, xv), decoded and consumed
//   a 16-byte word at a time (the four only with W_UNITS); unitK(u, i) -> column of Unit[i].x;
//   wLoad4(n, k) -> values k .. k + 3 (k % 4 == 0)
// Needs: bindings `wu: array<u32>` and, with W_UNITS (wUnit), `wq: array<vec4<u32>>` (the same buffer as
// 16-byte words; the blocks are whole 16-byte words, q6_k's d section is read through `wu`);
// params K, dWord.

const UNIT: u32 = 64u;
const UV: u32 = 16u;
const UPS: u32 = 4u;
alias Unit = array<vec4<f32>, 16>;

#if W_UNITS
fn wUnit(n: u32, u: u32) -> Unit { return wUnitH(n, u / 4u, u % 4u, wHeader(n, u / 4u)); }
#endif

const BYTE_SHIFTS = vec4<u32>(0u, 8u, 16u, 24u);

// Byte i (0..15) of a vec4<u32> / of a little-endian byte array held in 16-byte words.
fn byteOf(v: vec4<u32>, i: u32) -> u32 {
  return (v[i / 4u] >> (8u * (i % 4u))) & 0xffu;
}

#if W_Q4_K
// Byte i (0..11) of scales[12] held in three words.
fn scalesByte(sb: vec3<u32>, i: u32) -> u32 {
  return (sb[i / 4u] >> (8u * (i % 4u))) & 0xffu;
}

// Scale and min of sub-block s (0..7) from scales[12] held in h.y, h.z, h.w (ggml's
// get_scale_min_k4: 6-bit values, the high bits of sub-blocks 4..7 in the top bits of bytes 0..7).
fn scaleMinK4(h: vec4<u32>, s: u32) -> vec2<f32> {
  let sb = vec3<u32>(h.y, h.z, h.w);
  if (s < 4u) {
    return vec2<f32>(f32(scalesByte(sb, s) & 63u), f32(scalesByte(sb, s + 4u) & 63u));
  }
  let hiS = scalesByte(sb, s + 4u);
  let sc = (hiS & 0xfu) | ((scalesByte(sb, s - 4u) >> 6u) << 4u);
  let m = (hiS >> 4u) | ((scalesByte(sb, s) >> 6u) << 4u);
  return vec2<f32>(f32(sc), f32(m));
}

// Four nibbles (at bit sh of each byte of u) as fl(d1 * q - m1).
fn q4kWord(u: u32, sh: u32, d1: f32, m1: f32) -> vec4<f32> {
  let q = vec4<f32>(vec4<i32>((vec4<u32>(u) >> (BYTE_SHIFTS + vec4<u32>(sh))) & vec4<u32>(15u)));
  return q * d1 - m1;
}

#if W_UNITS
struct Hdr { d: array<f32, 8>, m: array<f32, 8> }

fn wHeader(n: u32, g: u32) -> Hdr {
  let h = wq[9u * (n * (params.K / 256u) + g)];
  let dd = unpack2x16float(h.x);
  var out: Hdr;
  for (var s = 0u; s < 8u; s++) {
    let sm = scaleMinK4(h, s);
    out.d[s] = dd.x * sm.x;
    out.m[s] = dd.y * sm.y;
  }
  return out;
}

// Unit j: sub-blocks 2j (low nibbles of qs bytes 32j .. 32j + 31) and 2j + 1 (high nibbles).
fn wUnitH(n: u32, g: u32, j: u32, h: Hdr) -> Unit {
  let b = n * (params.K / 256u) + g;
  let d0 = h.d[2u * j]; let m0 = h.m[2u * j];
  let d1 = h.d[2u * j + 1u]; let m1 = h.m[2u * j + 1u];
  let a = wq[9u * b + 1u + 2u * j];
  let c = wq[9u * b + 2u + 2u * j];
  return Unit(q4kWord(a.x, 0u, d0, m0), q4kWord(a.y, 0u, d0, m0), q4kWord(a.z, 0u, d0, m0), q4kWord(a.w, 0u, d0, m0),
              q4kWord(c.x, 0u, d0, m0), q4kWord(c.y, 0u, d0, m0), q4kWord(c.z, 0u, d0, m0), q4kWord(c.w, 0u, d0, m0),
              q4kWord(a.x, 4u, d1, m1), q4kWord(a.y, 4u, d1, m1), q4kWord(a.z, 4u, d1, m1), q4kWord(a.w, 4u, d1, m1),
              q4kWord(c.x, 4u, d1, m1), q4kWord(c.y, 4u, d1, m1), q4kWord(c.z, 4u, d1, m1), q4kWord(c.w, 4u, d1, m1));
}
#endif

#if W_UNITS
fn wDotH(n: u32, g: u32, j: u32, h: Hdr, xv: Unit, acc: f32) -> f32 {
  let b = n * (params.K / 256u) + g;
  let d0 = h.d[2u * j]; let m0 = h.m[2u * j];
  let d1 = h.d[2u * j + 1u]; let m1 = h.m[2u * j + 1u];
  let a = wq[9u * b + 1u + 2u * j];
  var s = q4kWord(a.x, 0u, d0, m0) * xv[0];
  s = fma(q4kWord(a.y, 0u, d0, m0), xv[1], s); s = fma(q4kWord(a.z, 0u, d0, m0), xv[2], s); s = fma(q4kWord(a.w, 0u, d0, m0), xv[3], s);
  s = fma(q4kWord(a.x, 4u, d1, m1), xv[8], s); s = fma(q4kWord(a.y, 4u, d1, m1), xv[9], s);
  s = fma(q4kWord(a.z, 4u, d1, m1), xv[10], s); s = fma(q4kWord(a.w, 4u, d1, m1), xv[11], s);
  let c = wq[9u * b + 2u + 2u * j];
  s = fma(q4kWord(c.x, 0u, d0, m0), xv[4], s); s = fma(q4kWord(c.y, 0u, d0, m0), xv[5], s);
  s = fma(q4kWord(c.z, 0u, d0, m0), xv[6], s); s = fma(q4kWord(c.w, 0u, d0, m0), xv[7], s);
  s = fma(q4kWord(c.x, 4u, d1, m1), xv[12], s); s = fma(q4kWord(c.y, 4u, d1, m1), xv[13], s);
  s = fma(q4kWord(c.z, 4u, d1, m1), xv[14], s); s = fma(q4kWord(c.w, 4u, d1, m1), xv[15], s);
  return acc + ((s.x + s.y) + (s.z + s.w));
}
#endif

fn unitK(u: u32, i: u32) -> u32 { return u * 64u + i * 4u; }

fn wLoad4(n: u32, k: u32) -> vec4<f32> {
  let b = n * (params.K / 256u) + k / 256u;
  let kk = k % 256u;
  let s = kk / 32u;                 // sub-block 0..7
  let base = 36u * b;
  let h = vec4<u32>(wu[base], wu[base + 1u], wu[base + 2u], wu[base + 3u]);
  let dd = unpack2x16float(h.x);
  let sm = scaleMinK4(h, s);
  let word = wu[base + 4u + 8u * (s / 2u) + (kk % 32u) / 4u];
  return q4kWord(word, 4u * (s % 2u), dd.x * sm.x, dd.y * sm.y);
}
#endif

#if W_Q6_K
fn q6Scale(b: u32) -> f32 {
  let p = unpack2x16float(wu[params.dWord + (b >> 1u)]);
  return select(p.x, p.y, (b & 1u) == 1u);
}

// Four 6-bit values from a ql word (nibbles at bit sh) and a qh word (2 bits at bit hs of each
// byte), times ds = fl(d * sc): fl(ds * (q - 32)).
fn q6Word(ql: u32, sh: u32, qh: u32, hs: u32, ds: f32) -> vec4<f32> {
  let lo = (vec4<u32>(ql) >> (BYTE_SHIFTS + vec4<u32>(sh))) & vec4<u32>(15u);
  let hi = ((vec4<u32>(qh) >> (BYTE_SHIFTS + vec4<u32>(hs))) & vec4<u32>(3u)) << vec4<u32>(4u);
  return (vec4<f32>(vec4<i32>(lo | hi)) - 32.0) * ds;
}

// Signed scale byte i (0..15) of the scales word group.
fn q6Sc(s: vec4<u32>, i: u32) -> f32 {
  return f32(bitcast<i32>(byteOf(s, i) << 24u) >> 24u);
}

#if W_UNITS
struct Hdr { s: array<f32, 16> }

fn wHeader(n: u32, g: u32) -> Hdr {
  let b = n * (params.K / 256u) + g;
  let d = q6Scale(b);
  let sc = wq[13u * b + 12u];
  var out: Hdr;
  for (var i = 0u; i < 16u; i++) { out.s[i] = d * q6Sc(sc, i); }
  return out;
}

// Unit j = 2 h + lh of the super-block: half h, l in 16 lh .. 16 lh + 15, values l + 32 g' (g' = 0..3).
fn wUnitH(n: u32, g: u32, j: u32, hd: Hdr) -> Unit {
  let b = n * (params.K / 256u) + g;
  let h = j / 2u;
  let lh = j % 2u;
  let base = 13u * b;
  let qa = wq[base + 4u * h + lh];        // ql bytes 64h + 16lh ..      : values l (low), l + 64 (high)
  let qb = wq[base + 4u * h + 2u + lh];   // ql bytes 64h + 32 + 16lh .. : values l + 32 (low), l + 96 (high)
  let qh = wq[base + 8u + 2u * h + lh];   // qh bytes 32h + 16lh ..
  let si = 8u * h + lh;
  let s0 = hd.s[si]; let s1 = hd.s[si + 2u]; let s2 = hd.s[si + 4u]; let s3 = hd.s[si + 6u];
  return Unit(q6Word(qa.x, 0u, qh.x, 0u, s0), q6Word(qa.y, 0u, qh.y, 0u, s0), q6Word(qa.z, 0u, qh.z, 0u, s0), q6Word(qa.w, 0u, qh.w, 0u, s0),
              q6Word(qb.x, 0u, qh.x, 2u, s1), q6Word(qb.y, 0u, qh.y, 2u, s1), q6Word(qb.z, 0u, qh.z, 2u, s1), q6Word(qb.w, 0u, qh.w, 2u, s1),
              q6Word(qa.x, 4u, qh.x, 4u, s2), q6Word(qa.y, 4u, qh.y, 4u, s2), q6Word(qa.z, 4u, qh.z, 4u, s2), q6Word(qa.w, 4u, qh.w, 4u, s2),
              q6Word(qb.x, 4u, qh.x, 6u, s3), q6Word(qb.y, 4u, qh.y, 6u, s3), q6Word(qb.z, 4u, qh.z, 6u, s3), q6Word(qb.w, 4u, qh.w, 6u, s3));
}
#endif

#if W_UNITS
fn wDotH(n: u32, g: u32, j: u32, hd: Hdr, xv: Unit, acc: f32) -> f32 {
  let u = wUnitH(n, g, j, hd); // the 6-bit values need all three words: nothing to interleave
  var s = u[0] * xv[0];
  for (var i = 1u; i < 16u; i++) { s = fma(u[i], xv[i], s); }
  return acc + ((s.x + s.y) + (s.z + s.w));
}
#endif

fn unitK(u: u32, i: u32) -> u32 {
  return (u / 4u) * 256u + ((u / 2u) % 2u) * 128u + (i / 4u) * 32u + (u % 2u) * 16u + (i % 4u) * 4u;
}

fn wLoad4(n: u32, k: u32) -> vec4<f32> {
  let b = n * (params.K / 256u) + k / 256u;
  let kk = k % 256u;
  let h = kk / 128u;
  let g = (kk % 128u) / 32u;      // which of the four values of l
  let l = kk % 32u;
  let base = 52u * b;
  let ql = wu[base + (64u * h + l + 32u * (g % 2u)) / 4u];
  let qh = wu[base + 32u + (32u * h + l) / 4u];
  let si = 8u * h + l / 16u + 2u * g;
  let scw = wu[base + 48u + si / 4u];
  let sc = f32(bitcast<i32>(((scw >> (8u * (si % 4u))) & 0xffu) << 24u) >> 24u);
  return q6Word(ql, 4u * (g / 2u), qh, 2u * g, q6Scale(b) * sc);
}
#endif
