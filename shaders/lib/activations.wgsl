// lib/activations.wgsl: the scalar activations the mixer kernels share (docs/model.md "Mixer").
// No bindings, no defines.

// softplus(v) = log1p(exp(v)), with v > 20 passed through (mixer step 4). WGSL has no log1p; this
// is the classic exact-ish form log(u) * e / (u - 1), u = 1 + e, which keeps tiny results accurate.
fn softplus(v: f32) -> f32 {
  if (v > 20.0) { return v; }
  let e = exp(v);
  let u = 1.0 + e;
  if (u == 1.0) { return e; }
  return log(u) * (e / (u - 1.0));
}

// silu(v) = v / (1 + exp(-v)); exp overflows to +inf for v < -88, giving -0: the right limit.
fn silu(v: f32) -> f32 {
  return v / (1.0 + exp(-v));
}
