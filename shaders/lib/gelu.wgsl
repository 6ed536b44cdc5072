// lib/gelu.wgsl: exact-erf GELU, gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt2)) (docs/model.md
// §Zamba2, MLP), shared by gelu_gate.wgsl and the GEMV's XGELU prologue. No bindings, no defines.
// erf is not a WGSL builtin, and the Abramowitz-Stegun style formulas (abs error ~1e-7..1e-5) are
// visibly worse than torch's f32 erf, so it is done here in two pieces fitted for f32
// (least squares on Chebyshev nodes against mpmath, coefficients rounded to f32):
//   |u| <= 1:  erf(u)  = u + u * Q(u^2)          Q of degree 7, fit error 3e-11
//   |u| >  1:  erfc(u) = exp(-u^2) * w * G(w)    w = 1/u, G of degree 9, fit error 1e-7 relative
// Evaluated in f32 (unfused Horner, emulated on the host) erf is within 1e-7 absolute everywhere,
// i.e. about one f32 ulp near 1. For x < -sqrt2 gelu = 0.5 x erfc(|u|) is formed from erfc
// directly, so the negative tail keeps its relative accuracy instead of 1 - erf cancelling.

const SQRT1_2: f32 = 0.7071067811865476;

// erf(u) for |u| <= 1.
fn erfSmall(u: f32) -> f32 {
  let s = u * u;
  var q = -9.689741091278847e-06;
  q = fma(q, s, 0.0001127473806263879);
  q = fma(q, s, -0.0008485438884235919);
  q = fma(q, s, 0.005221138708293438);
  q = fma(q, s, -0.02686547487974167);
  q = fma(q, s, 0.11283783614635468);
  q = fma(q, s, -0.37612637877464294);
  q = fma(q, s, 0.12837916612625122);
  return fma(u, q, u);
}

// erfc(a) for a >= 1 (exp underflows to 0 past a ~ 9.4, where erfc is below f32's range anyway).
fn erfcLarge(a: f32) -> f32 {
  let w = 1.0 / a;
  var g = -0.03102780692279339;
  g = fma(g, w, 0.23489901423454285);
  g = fma(g, w, -0.7688596248626709);
  g = fma(g, w, 1.4181171655654907);
  g = fma(g, w, -1.5754773616790771);
  g = fma(g, w, 0.9699225425720215);
  g = fma(g, w, -0.11592617630958557);
  g = fma(g, w, -0.2672363817691803);
  g = fma(g, w, -0.0010483321966603398);
  g = fma(g, w, 0.5642205476760864);
  return exp(-(a * a)) * (w * g);
}

fn gelu(x: f32) -> f32 {
  let u = x * SQRT1_2;
  let a = abs(u);
  if (a <= 1.0) { return 0.5 * x * (1.0 + erfSmall(u)); }
  let e = erfcLarge(a);
  if (u < 0.0) { return 0.5 * x * e; }   // x * Phi(x) with Phi = erfc(|u|) / 2
  return x - 0.5 * x * e;                // x * (1 - erfc(u) / 2)
}
