// Float64 model reference, shared parts: weight access, RMSNorm, activations and the Mamba2 mixer
// with the plain sequential recurrence (docs/model.md §Mixer). Written from docs/model.md only; it shares
// no code with src/ (not even the config parser) so that it can serve as the oracle.
// Everything is plain Float64Array loops, one token at a time, in the math's own order.

export interface RefTensor {
  /** PyTorch order. */
  shape: readonly number[];
  values: Float64Array;
}

export type RefWeights = ReadonlyMap<string, RefTensor>;

/** A fixture (test/fixtures) or anything with a config.json object and exact weight values. */
export interface RefModelInput {
  config: Record<string, unknown>;
  weights: RefWeights;
  /** Storage rounding of cached attention keys/values (e.g. to f16 for an f16 KV cache); default exact. */
  kvRound?: (v: number) => number;
}

export function refError(msg: string): Error {
  return new Error(`reference: ${msg}`);
}

/** The values of tensor `name`, after checking its shape. */
export function weight(w: RefWeights, name: string, shape: readonly number[]): Float64Array {
  const t = w.get(name);
  if (!t) throw refError(`missing tensor ${name}`);
  const ok = t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
  if (!ok) throw refError(`${name} has shape [${t.shape}], expected [${shape}]`);
  return t.values;
}

// ---- config helpers (spelling-tolerant field access) ----

type Cfg = Record<string, unknown>;

/** First present key among `keys` as a finite number (or Infinity), else `dflt` (error if none). */
export function num(cfg: Cfg, keys: string[], dflt?: number): number {
  for (const k of keys) {
    if (cfg[k] === undefined || cfg[k] === null) continue;
    return asNumber(cfg[k], k);
  }
  if (dflt === undefined) throw refError(`config lacks ${keys.join(' / ')}`);
  return dflt;
}

/** A config number that may be written as {"__float__": "Infinity"}. */
export function asNumber(v: unknown, what: string): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && '__float__' in v) {
    const s = String((v as { __float__: unknown }).__float__);
    const n = s === 'Infinity' ? Infinity : s === '-Infinity' ? -Infinity : Number(s);
    if (!Number.isNaN(n)) return n;
  }
  throw refError(`config field ${what} is not a number: ${JSON.stringify(v)}`);
}

export function bool(cfg: Cfg, keys: string[], dflt: boolean): boolean {
  for (const k of keys) if (typeof cfg[k] === 'boolean') return cfg[k] as boolean;
  return dflt;
}

// ---- math ----

export function silu(v: number): number { return v / (1 + Math.exp(-v)); }

/** docs/model.md §Mixer step 4: x > 20 ? x : log1p(exp(x)). */
export function softplus(v: number): number { return v > 20 ? v : Math.log1p(Math.exp(v)); }

/** erf to ~1e-16: Maclaurin series for |x| < 2 (cancellation grows past that), continued fraction for erfc beyond. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 2) {
    let term = a, sum = a;
    const x2 = a * a;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...))))), evaluated
  // bottom-up; 200 levels converge to double precision for a >= 2.
  let f = a;
  for (let k = 200; k >= 1; k--) f = a + (k / 2) / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** Exact (erf) GELU, transformers' "gelu". */
export function gelu(v: number): number { return 0.5 * v * (1 + erf(v / Math.SQRT2)); }

/** out[o + n] (= or +=) sum_k W[n, k] x[xo + k]; W is [N, K] row-major. */
export function matvec(W: Float64Array, N: number, K: number, x: Float64Array, xo: number,
  out: Float64Array, o: number, accumulate = false): void {
  for (let n = 0; n < N; n++) {
    let s = 0;
    const r = n * K;
    for (let k = 0; k < K; k++) s += W[r + k] * x[xo + k];
    out[o + n] = accumulate ? out[o + n] + s : s;
  }
}

/** out[o..o+n) = x / sqrt(mean(x^2) + eps) * w over x[xo..xo+n). */
export function rmsNorm(x: Float64Array, xo: number, n: number, w: Float64Array, eps: number,
  out: Float64Array, o: number): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[xo + i] * x[xo + i];
  const inv = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) out[o + i] = x[xo + i] * inv * w[i];
}

/** Greedy choice: first index of the maximum (ties go to the lower id, like torch.argmax). */
export function argmax(v: Float64Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[off + i] > v[off + best]) best = i;
  return best;
}

// ---- the Mamba2 mixer ----

export interface MixerDims {
  H: number; di: number; NH: number; P: number; N: number; G: number; K: number; convDim: number;
  /** dt clamp; Zamba2: [time_step_min, Infinity]; Mamba2: time_step_limit. */
  dtMin: number; dtMax: number;
  /** eps of the gated grouped norm (Zamba2: 1e-5 always; Mamba2: layer_norm_epsilon). */
  normEps: number;
}

export function mixerDims(H: number, expand: number, NH: number, P: number, N: number, G: number, K: number,
  dtMin: number, dtMax: number, normEps: number): MixerDims {
  const di = expand * H;
  if (NH * P !== di) throw refError(`heads ${NH} x head dim ${P} != expand*H = ${di}`);
  if (NH % G !== 0) throw refError(`heads ${NH} not divisible by groups ${G}`);
  return { H, di, NH, P, N, G, K, convDim: di + 2 * G * N, dtMin, dtMax, normEps };
}

export interface MixerWeights {
  inProj: Float64Array;  // [di + convDim + NH, H]
  convW: Float64Array;   // [convDim, 1, K]
  convB: Float64Array;   // [convDim]
  dtBias: Float64Array;  // [NH]
  aLog: Float64Array;    // [NH]
  D: Float64Array;       // [NH]
  normW: Float64Array;   // [di]
  outProj: Float64Array; // [H, di]
}

export function mixerWeights(w: RefWeights, prefix: string, d: MixerDims): MixerWeights {
  return {
    inProj: weight(w, `${prefix}.in_proj.weight`, [d.di + d.convDim + d.NH, d.H]),
    convW: weight(w, `${prefix}.conv1d.weight`, [d.convDim, 1, d.K]),
    convB: weight(w, `${prefix}.conv1d.bias`, [d.convDim]),
    dtBias: weight(w, `${prefix}.dt_bias`, [d.NH]),
    aLog: weight(w, `${prefix}.A_log`, [d.NH]),
    D: weight(w, `${prefix}.D`, [d.NH]),
    normW: weight(w, `${prefix}.norm.weight`, [d.di]),
    outProj: weight(w, `${prefix}.out_proj.weight`, [d.H, d.di]),
  };
}

/** Per mamba layer: conv [K-1, convDim] = the last K-1 raw xBC rows, oldest first; ssm [NH, P, N]. */
export interface MixerState {
  conv: Float64Array;
  ssm: Float64Array;
}

export function newMixerState(d: MixerDims): MixerState {
  return { conv: new Float64Array((d.K - 1) * d.convDim), ssm: new Float64Array(d.NH * d.P * d.N) };
}

export function cloneMixerState(s: MixerState): MixerState {
  return { conv: s.conv.slice(), ssm: s.ssm.slice() };
}

/**
 * out [T, H] = Mixer(u [T, H]), advancing `st` token by token (docs/model.md §Mixer steps 1-7).
 */
export function mixerForward(d: MixerDims, w: MixerWeights, u: Float64Array, T: number, st: MixerState): Float64Array {
  const { H, di, NH, P, N, G, K, convDim } = d;
  const inDim = di + convDim + NH;
  const headsPerGroup = NH / G;
  const groupSize = di / G;
  const zxbcdt = new Float64Array(inDim);
  const c = new Float64Array(convDim);
  const y = new Float64Array(di);
  const normed = new Float64Array(di);
  const out = new Float64Array(T * H);
  const A = new Float64Array(NH);
  for (let h = 0; h < NH; h++) A[h] = -Math.exp(w.aLog[h]);
  for (let t = 0; t < T; t++) {
    // 1. in_proj, split z [di] | xBC [convDim] | dt [NH].
    matvec(w.inProj, inDim, H, u, t * H, zxbcdt, 0);
    const xbcOff = di, dtOff = di + convDim;
    // 2. causal depthwise conv: taps k < K-1 read the conv state (inputs t-K+1 .. t-1), tap K-1 the
    //    current input; then SiLU. Then shift the state by one row.
    for (let ch = 0; ch < convDim; ch++) {
      let s = w.convB[ch];
      for (let k = 0; k < K - 1; k++) s += w.convW[ch * K + k] * st.conv[k * convDim + ch];
      s += w.convW[ch * K + K - 1] * zxbcdt[xbcOff + ch];
      c[ch] = silu(s);
    }
    st.conv.copyWithin(0, convDim);
    st.conv.set(zxbcdt.subarray(xbcOff, xbcOff + convDim), (K - 2) * convDim);
    // 3-5. x = c[0:di], B = c[di:di+GN], C = c[di+GN:]; recurrence per head.
    const bOff = di, cOff = di + G * N;
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / headsPerGroup);
      let dt = softplus(zxbcdt[dtOff + h] + w.dtBias[h]);
      dt = Math.min(Math.max(dt, d.dtMin), d.dtMax);
      const dA = Math.exp(dt * A[h]);
      for (let p = 0; p < P; p++) {
        const xv = c[h * P + p];
        const sRow = (h * P + p) * N;
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const s = dA * st.ssm[sRow + n] + dt * xv * c[bOff + g * N + n];
          st.ssm[sRow + n] = s;
          acc += s * c[cOff + g * N + n];
        }
        y[h * P + p] = acc + w.D[h] * xv;
      }
    }
    // 6. gate, then RMSNorm per group of di/G channels.
    for (let i = 0; i < di; i++) y[i] *= silu(zxbcdt[i]);
    for (let g = 0; g < G; g++) {
      rmsNorm(y, g * groupSize, groupSize, w.normW.subarray(g * groupSize), d.normEps, normed, g * groupSize);
    }
    // 7. out_proj.
    matvec(w.outProj, H, di, normed, 0, out, t * H);
  }
  return out;
}
