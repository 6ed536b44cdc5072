// rope.wgsl: NeoX rotate-half rotary embedding, in place (docs/model.md §Zamba2 attention, transformers
// apply_rotary_pos_emb with rotate_half over the full head dim):
//   for i < hd/2, position p = pos0 + t, angle = f32(p) * inv_freq[i] (rounded to f32 like torch):
//     x1 = x[b + i], x2 = x[b + hd/2 + i],   b = offset + t * rowStride + h * hd
//     x[b + i]        = x1 * cos(angle) - x2 * sin(angle)
//     x[b + hd/2 + i] = x2 * cos(angle) + x1 * sin(angle)
// inv_freq comes from a table the host computes exactly as torch does in f32, and sin/cos are our
// own (Cody-Waite reduction by pi/2 in three parts, exact for k < 2^16, i.e. angles below ~1e5
// rad, then cephes' minimax polynomials on [-pi/4, pi/4]): WGSL only promises 2^-11 absolute for
// the builtins, and nothing at all outside [-pi, pi], while angles here reach the position count.
// Host-emulated error of this sin/cos in f32: 7e-8 absolute over [0, 7e4].
//
// Bindings:
//   params (uniform)  offset: u32 elements; rowStride: u32 elements; T: u32; nHeads: u32;
//                     half: u32 (= hd / 2); headDim: u32; pos0: u32
//   1 x        array<f32> strided rows as above   read_write (q, k, or rows of a KV cache)
//   2 invFreq  array<f32> [hd / 2]               read
//   3 positions array<u32> [T]: row t's position (POSITIONS; rows of several sequences), else pos0 + t
// Dispatch: one thread per rotated pair (t, h, i): ceil(T * nHeads * half / WG) workgroups, folded
//   into (x, y) past 65535; linear id = (wid.x + wid.y * nwg.x) * WG + lid, bound-checked.
// Defines: POSITIONS (bool). Tuning knobs: WG (define, default 256).

@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> invFreq: array<f32>;
#if POSITIONS
@group(0) @binding(3) var<storage, read> positions: array<u32>;
#endif

// pi/2 = C1 + C2 + C3; C1 and C2 have 8 significant bits, so k * C1 and k * C2 are exact in f32.
const C1: f32 = 1.5703125;
const C2: f32 = 0.000484466552734375;
const C3: f32 = -6.397578431460715e-07;
const TWO_OVER_PI: f32 = 0.6366197723675814;

// Returns (sin(a), cos(a)).
fn sincos(a: f32) -> vec2f {
  let kf = round(a * TWO_OVER_PI);
  let r = ((a - kf * C1) - kf * C2) - kf * C3; // |r| <= pi/4 (+ rounding)
  let z = r * r;
  let s = fma(fma(fma(-1.9515295891e-4, z, 8.3321608736e-3), z, -1.6666654611e-1), z * r, r);
  let c = fma(fma(fma(2.443315711809948e-5, z, -1.388731625493765e-3), z, 4.166664568298827e-2), z * z, fma(-0.5, z, 1.0));
  switch (u32(i32(kf)) & 3u) {
    case 0u: { return vec2f(s, c); }
    case 1u: { return vec2f(c, -s); }
    case 2u: { return vec2f(-s, -c); }
    default: { return vec2f(-c, s); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  let half = params.half;
  if (id >= params.T * params.nHeads * half) { return; }
  let i = id % half;
  let th = id / half;        // t * nHeads + h
  let h = th % params.nHeads;
  let t = th / params.nHeads;
  let b = params.offset + t * params.rowStride + h * params.headDim + i;
#if POSITIONS
  let angle = f32(positions[t]) * invFreq[i];
#else
  let angle = f32(params.pos0 + t) * invFreq[i];
#endif
  let sc = sincos(angle);
  let x1 = x[b];
  let x2 = x[b + half];
  x[b] = x1 * sc.y - x2 * sc.x;
  x[b + half] = x2 * sc.y + x1 * sc.x;
}
