// Float64 CPU references for the layer kernels: RMSNorm (plain and concat), gated grouped RMSNorm,
// the exact-erf GELU gate, NeoX RoPE and causal GQA attention. Plain loops in the math's own order,
// no tiling, no online softmax: they share no structure with the WGSL they check.
// Inputs are f32 arrays (what the GPU sees); outputs are Float64Array.

/** out [T, W] = x / sqrt(mean(x^2) + eps) * w, rows of x [T, H] or concat(x [T,H], x2 [T,H]) (W = 2H). */
export function rmsNormRef(x: Float32Array, w: Float32Array, T: number, H: number, eps: number, x2?: Float32Array): Float64Array {
  const W = x2 ? 2 * H : H;
  const out = new Float64Array(T * W);
  const row = new Float64Array(W);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < H; i++) row[i] = x[t * H + i];
    if (x2) for (let i = 0; i < H; i++) row[H + i] = x2[t * H + i];
    let ss = 0;
    for (let i = 0; i < W; i++) ss += row[i] * row[i];
    const inv = 1 / Math.sqrt(ss / W + eps);
    for (let i = 0; i < W; i++) out[t * W + i] = row[i] * inv * w[i];
  }
  return out;
}

export function silu(v: number): number { return v / (1 + Math.exp(-v)); }

/**
 * docs/model.md §Mixer step 6: g = y * silu(z); out = g / sqrt(mean_group(g^2) + eps) * w, groups of
 * `groupSize` consecutive channels. z(t, c) = z[zOffset + t*zRowStride + c].
 */
export function gatedRmsNormRef(y: Float32Array, z: Float32Array, zOffset: number, zRowStride: number,
  w: Float32Array, T: number, D: number, groupSize: number, eps: number): Float64Array {
  const out = new Float64Array(T * D);
  const g = new Float64Array(groupSize);
  for (let t = 0; t < T; t++) {
    for (let g0 = 0; g0 < D; g0 += groupSize) {
      let ss = 0;
      for (let i = 0; i < groupSize; i++) {
        const c = g0 + i;
        g[i] = y[t * D + c] * silu(z[zOffset + t * zRowStride + c]);
        ss += g[i] * g[i];
      }
      const inv = 1 / Math.sqrt(ss / groupSize + eps);
      for (let i = 0; i < groupSize; i++) out[t * D + g0 + i] = g[i] * inv * w[g0 + i];
    }
  }
  return out;
}

/** erf in float64: Maclaurin series for |x| < 2.5 (terms stay below ~1e3, ~1e-13 accurate), else the erfc continued fraction. */
export function erf64(x: number): number {
  const a = Math.abs(x);
  if (a < 2.5) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = a, sum = a;
    for (let n = 1; n < 200; n++) {
      term *= -a * a / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * sum * 2 / Math.sqrt(Math.PI);
  }
  return Math.sign(x) * (1 - erfcLarge(a));
}

/** erfc(a) for a >= 2.5 by the Laplace continued fraction (modified Lentz); relative accuracy ~1e-15. */
export function erfcLarge(a: number): number {
  // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...)))))
  const tiny = 1e-300;
  let f = a, C = a, D = 0;
  for (let n = 1; n < 500; n++) {
    const an = n / 2;
    D = a + an * D; if (D === 0) D = tiny; D = 1 / D;
    C = a + an / C; if (C === 0) C = tiny;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
}

/** gelu(x) = x * Phi(x) = 0.5 x erfc(-x / sqrt2), computed through erfc so negative tails keep relative accuracy. */
export function gelu64(x: number): number {
  const u = -x / Math.SQRT2;
  const erfc = u >= 2.5 ? erfcLarge(u) : 1 - erf64(u);
  return 0.5 * x * erfc;
}

/** out [T, F] = gelu(gu[:, :F]) * gu[:, F:] for gu [T, 2F]. */
export function geluGateRef(gu: Float32Array, T: number, F: number): Float64Array {
  const out = new Float64Array(T * F);
  for (let t = 0; t < T; t++) {
    for (let f = 0; f < F; f++) out[t * F + f] = gelu64(gu[t * 2 * F + f]) * gu[t * 2 * F + F + f];
  }
  return out;
}

/**
 * inv_freq[i] for i < hd/2 exactly as transformers computes it in float32:
 * 1 / (theta ** (arange(0, hd, 2) / hd)), each step rounded to f32.
 */
export function ropeInvFreqF32(headDim: number, theta: number): Float32Array {
  const half = headDim >> 1;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const e = Math.fround((2 * i) / headDim);
    out[i] = Math.fround(1 / Math.fround(Math.pow(Math.fround(theta), e)));
  }
  return out;
}

/**
 * NeoX rotate-half RoPE on x[offset + t*rowStride + h*hd + i] (returns a rotated copy of all of x).
 * The angle is pos * inv_freq rounded to f32, as transformers forms it (the f32 angle itself carries
 * ~pos*6e-8 rad of rounding at high positions, which is part of the reference's semantics); sin/cos
 * and the rotation are then exact in f64.
 */
export function ropeRef(x: Float32Array, offset: number, rowStride: number, T: number, nHeads: number,
  headDim: number, pos0: number, theta: number): Float64Array {
  const out = Float64Array.from(x);
  const inv = ropeInvFreqF32(headDim, theta);
  const half = headDim >> 1;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nHeads; h++) {
      const base = offset + t * rowStride + h * headDim;
      for (let i = 0; i < half; i++) {
        const ang = Math.fround((pos0 + t) * inv[i]);
        const c = Math.cos(ang), s = Math.sin(ang);
        const x1 = x[base + i], x2 = x[base + half + i];
        out[base + i] = x1 * c - x2 * s;
        out[base + half + i] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}

/**
 * Causal GQA attention with a KV cache. q(t, h, d) = q[qOffset + t*qRowStride + h*hd + d];
 * k/v cache [capacity, nKv*hd]; query t (absolute position pos0+t) attends keys 0..pos0+t;
 * head h uses kv head floor(h / (nHeads/nKv)). Returns out [T, nHeads*hd]. Two-pass softmax in f64.
 */
export function attentionRef(q: Float32Array, qOffset: number, qRowStride: number, k: Float32Array, v: Float32Array,
  T: number, pos0: number, nHeads: number, nKv: number, hd: number, scale: number): Float64Array {
  const out = new Float64Array(T * nHeads * hd);
  const kvw = nKv * hd;
  const group = nHeads / nKv;
  for (let t = 0; t < T; t++) {
    const L = pos0 + t + 1;
    const s = new Float64Array(L);
    for (let h = 0; h < nHeads; h++) {
      const kh = Math.floor(h / group);
      const qb = qOffset + t * qRowStride + h * hd;
      let m = -Infinity;
      for (let j = 0; j < L; j++) {
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += q[qb + d] * k[j * kvw + kh * hd + d];
        s[j] = dot * scale;
        if (s[j] > m) m = s[j];
      }
      let l = 0;
      for (let j = 0; j < L; j++) { s[j] = Math.exp(s[j] - m); l += s[j]; }
      for (let d = 0; d < hd; d++) {
        let acc = 0;
        for (let j = 0; j < L; j++) acc += s[j] * v[j * kvw + kh * hd + d];
        out[t * nHeads * hd + h * hd + d] = acc / l;
      }
    }
  }
  return out;
}
