// Elementary functions in f32 SIMD, written here because AssemblyScript's Mathf uses lookup tables
// (static data, which kernels must not need). Scalar forms run the vector code on one lane, so a
// value computed in a vector lane and in a scalar tail is the same bit for bit.

/**
 * e^x, four lanes: Cephes expf (x = k ln2 + r, |r| <= ln2/2, degree-6 polynomial, unfused Horner),
 * ~1-2 ulp. 2^k is applied as two exact power-of-two multiplies (k reaches 128 just below the
 * overflow point). Results below 1.6e-38 (x < -87) are flushed to +0 so no lane ever produces an
 * f32 denormal (slow on x86); overflow gives +inf, NaN stays NaN.
 */
@inline export function expv(x: v128): v128 {
  // pmin (one minps) rather than f32x4.min (a NaN-exact sequence of seven): NaN still passes through.
  const xc = f32x4.pmin(x, f32x4.splat(89.0));
  // k = round(x log2e) by the 1.5 * 2^23 trick: the add rounds to an integer (ties to even) held in
  // the low mantissa bits, so both the float k and the integer k come from one add and one subtract.
  const t = f32x4.add(f32x4.mul(xc, f32x4.splat(1.44269504088896341)), f32x4.splat(12582912.0));
  const k = f32x4.sub(t, f32x4.splat(12582912.0));
  let r = f32x4.sub(xc, f32x4.mul(k, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(k, f32x4.splat(-2.12194440e-4)));
  const z = f32x4.mul(r, r);
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  let e = f32x4.add(f32x4.add(f32x4.mul(p, z), r), f32x4.splat(1.0));
  const ki = i32x4.sub(t, i32x4.splat(0x4b400000));
  const k1 = i32x4.shr_s(ki, 1);
  const k2 = i32x4.sub(ki, k1);
  e = f32x4.mul(e, i32x4.shl(i32x4.add(k1, i32x4.splat(127)), 23));
  e = f32x4.mul(e, i32x4.shl(i32x4.add(k2, i32x4.splat(127)), 23));
  return v128.andnot(e, f32x4.lt(x, f32x4.splat(-87.0)));
}

@inline export function expf(x: f32): f32 { return f32x4.extract_lane(expv(f32x4.splat(x)), 0); }

/** silu(z) = z / (1 + e^-z); e^-z overflows to inf for z < -89, giving -0 (the right limit). */
@inline export function siluv(z: v128): v128 {
  return f32x4.div(z, f32x4.add(f32x4.splat(1.0), expv(f32x4.neg(z))));
}

/** ln(x) for finite x > 0 (Cephes logf, ~1 ulp; the scan calls it with x >= 1). */
export function logf(x: f32): f32 {
  let bits = reinterpret<u32>(x);
  let e = <i32>(bits >> 23) - 126;
  let m = reinterpret<f32>((bits & 0x007fffff) | 0x3f000000); // [0.5, 1)
  if (m < 0.707106781186547524) { e -= 1; m = m + m - 1.0; } else { m = m - 1.0; }
  const z = m * m;
  let y: f32 = 7.0376836292e-2;
  y = y * m - 1.1514610310e-1;
  y = y * m + 1.1676998740e-1;
  y = y * m - 1.2420140846e-1;
  y = y * m + 1.4249322787e-1;
  y = y * m - 1.6668057665e-1;
  y = y * m + 2.0000714765e-1;
  y = y * m - 2.4999993993e-1;
  y = y * m + 3.3333331174e-1;
  y = y * m * z;
  const fe = <f32>e;
  y += -2.12194440e-4 * fe;
  y += -0.5 * z;
  return (m + y) + 0.693359375 * fe;
}

/**
 * softplus(v) = log1p(e^v), with v > 20 passed through (docs/model.md §Mixer step 4). log1p(e) as
 * log(u) * e / (u - 1) with u = 1 + e (exact-ish for tiny e), as shaders/ssm_scan.wgsl does.
 */
export function softplus(v: f32): f32 {
  if (v > 20.0) return v;
  const e = expf(v);
  const u: f32 = 1.0 + e;
  if (u == 1.0) return e;
  return logf(u) * (e / (u - 1.0));
}

/**
 * (sin a, cos a) for four lanes, the algorithm of shaders/rope.wgsl: Cody-Waite reduction by pi/2
 * in three parts (exact for |k| < 2^16, angles below ~1e5 rad), then cephes' minimax polynomials
 * on [-pi/4, pi/4]. sinv and cosv each redo the reduction (callers compute an angle once per
 * (token, frequency) and reuse it across heads, so this is not on a hot path).
 */
@inline export function sinv(a: v128): v128 { return sincosPart(a, true); }
@inline export function cosv(a: v128): v128 { return sincosPart(a, false); }

@inline function sincosPart(a: v128, wantSin: bool): v128 {
  const kt = f32x4.add(f32x4.mul(a, f32x4.splat(0.6366197723675814)), f32x4.splat(12582912.0));
  const kf = f32x4.sub(kt, f32x4.splat(12582912.0)); // round(a 2/pi), ties to even
  let r = f32x4.sub(a, f32x4.mul(kf, f32x4.splat(1.5703125)));
  r = f32x4.sub(r, f32x4.mul(kf, f32x4.splat(0.000484466552734375)));
  r = f32x4.sub(r, f32x4.mul(kf, f32x4.splat(-6.397578431460715e-07)));
  const z = f32x4.mul(r, r);
  // s = r + r z (S1 + z (S2 + z S3)); c = 1 - z/2 + z^2 (C1 + z (C2 + z C3))
  let s = f32x4.add(f32x4.mul(f32x4.splat(-1.9515295891e-4), z), f32x4.splat(8.3321608736e-3));
  s = f32x4.add(f32x4.mul(s, z), f32x4.splat(-1.6666654611e-1));
  s = f32x4.add(f32x4.mul(s, f32x4.mul(z, r)), r);
  let c = f32x4.add(f32x4.mul(f32x4.splat(2.443315711809948e-5), z), f32x4.splat(-1.388731625493765e-3));
  c = f32x4.add(f32x4.mul(c, z), f32x4.splat(4.166664568298827e-2));
  c = f32x4.add(f32x4.mul(c, f32x4.mul(z, z)), f32x4.add(f32x4.mul(f32x4.splat(-0.5), z), f32x4.splat(1.0)));
  // quadrant q = k & 3: sin = (s, c, -s, -c)[q], cos = (c, -s, -c, s)[q]
  const q = i32x4.sub(kt, i32x4.splat(0x4b400000));
  const odd = i32x4.eq(v128.and(q, i32x4.splat(1)), i32x4.splat(1));
  const signBit = i32x4.splat(<i32>0x80000000);
  if (wantSin) {
    const v = v128.bitselect(c, s, odd);
    const neg = i32x4.eq(v128.and(q, i32x4.splat(2)), i32x4.splat(2));
    return v128.xor(v, v128.and(neg, signBit));
  }
  const v = v128.bitselect(s, c, odd);
  // cos is negated in quadrants 1 and 2: bit 0 xor bit 1
  const neg = i32x4.eq(v128.and(i32x4.add(q, i32x4.splat(1)), i32x4.splat(2)), i32x4.splat(2));
  return v128.xor(v, v128.and(neg, signBit));
}

/**
 * Exact-erf GELU for four lanes, the two fitted pieces of shaders/gelu_gate.wgsl (erf for |u| <= 1,
 * erfc via exp for |u| > 1, u = x / sqrt2), unfused Horner; both pieces are evaluated and the lane
 * picks one.
 */
@inline export function geluv(x: v128): v128 {
  const u = f32x4.mul(x, f32x4.splat(0.7071067811865476));
  const a = f32x4.abs(u);
  // small: 0.5 x (1 + erf(u)), erf(u) = u + u Q(u^2)
  const s = f32x4.mul(u, u);
  let q = f32x4.splat(-9.689741091278847e-06);
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(0.0001127473806263879));
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(-0.0008485438884235919));
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(0.005221138708293438));
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(-0.02686547487974167));
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(0.11283783614635468));
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(-0.37612637877464294));
  q = f32x4.add(f32x4.mul(q, s), f32x4.splat(0.12837916612625122));
  const erfSmall = f32x4.add(f32x4.mul(u, q), u);
  const half = f32x4.splat(0.5);
  const small = f32x4.mul(f32x4.mul(half, x), f32x4.add(f32x4.splat(1.0), erfSmall));
  // large: erfc(a) = e^(-a^2) w G(w), w = 1/a (a clamped >= 1 so the unused lanes stay finite)
  const al = f32x4.pmax(a, f32x4.splat(1.0));
  const wv = f32x4.div(f32x4.splat(1.0), al);
  let g = f32x4.splat(-0.03102780692279339);
  g = f32x4.add(f32x4.mul(g, wv), f32x4.splat(0.23489901423454285));
  g = f32x4.add(f32x4.mul(g, wv), f32x4.splat(-0.7688596248626709));
  g = f32x4.add(f32x4.mul(g, wv), f32x4.splat(1.4181171655654907));
  g = f32x4.add(f32x4.mul(g, wv), f32x4.splat(-1.5754773616790771));
  g = f32x4.add(f32x4.mul(g, wv), f32x4.splat(0.9699225425720215));
  g = f32x4.add(f32x4.mul(g, wv), f32x4.splat(-0.11592617630958557));
  g = f32x4.add(f32x4.mul(g, wv), f32x4.splat(-0.2672363817691803));
  g = f32x4.add(f32x4.mul(g, wv), f32x4.splat(-0.0010483321966603398));
  g = f32x4.add(f32x4.mul(g, wv), f32x4.splat(0.5642205476760864));
  const e = f32x4.mul(expv(f32x4.neg(f32x4.mul(al, al))), f32x4.mul(wv, g));
  const hx = f32x4.mul(half, x);
  const he = f32x4.mul(hx, e);
  // u < 0: x Phi(x) = 0.5 x erfc(|u|); u > 0: x - 0.5 x erfc(u)
  const large = v128.bitselect(he, f32x4.sub(x, he), f32x4.lt(u, f32x4.splat(0)));
  return v128.bitselect(small, large, f32x4.le(a, f32x4.splat(1.0)));
}
