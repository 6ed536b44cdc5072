// Float64 CPU references for the Mamba2 mixer's sequence kernels (docs/model.md §Mixer steps 2, 4,
// 5): the causal depthwise conv1d with its rolling state, and the selective-scan recurrence.
// Plain sequential loops in the math's own order: no chunking, no parallel reduction, nothing shared
// with the WGSL they check. Inputs are f32 arrays (what the GPU sees); outputs are Float64Array.

/** A row-strided view into a flat host array, as the kernels see their StridedInput. */
export interface HostStrided {
  data: Float32Array;
  offset: number;
  rowStride: number;
}

export function silu64(v: number): number { return v / (1 + Math.exp(-v)); }

/** softplus as docs/model.md §Mixer step 4 writes it: x > 20 ? x : log1p(exp(x)). */
export function softplus64(v: number): number { return v > 20 ? v : Math.log1p(Math.exp(v)); }

export interface ConvRefArgs {
  T: number;
  channels: number;
  kernelSize: number;
  input: HostStrided;
  /** [C, K] */
  weight: Float32Array;
  /** [C] */
  bias: Float32Array;
  /** [K-1, C]: the K-1 raw inputs before this call, oldest first (zeros for a fresh sequence). */
  convState: Float64Array | Float32Array;
}

/**
 * c[t, ch] = silu(bias[ch] + sum_{k<K} w[ch, k] * xin[t-K+1+k, ch]), positions before t = 0 taken
 * from convState. Returns out [T, C] and the new state [K-1, C] (the last K-1 raw inputs).
 */
export function conv1dRef(a: ConvRefArgs): { out: Float64Array; state: Float64Array } {
  const { T, channels: C, kernelSize: K } = a;
  const H = K - 1;
  // The whole history: H state rows then T input rows.
  const hist = (i: number, ch: number): number =>
    i < H ? a.convState[i * C + ch] : a.input.data[a.input.offset + (i - H) * a.input.rowStride + ch];
  const out = new Float64Array(T * C);
  for (let t = 0; t < T; t++) {
    for (let ch = 0; ch < C; ch++) {
      let acc = a.bias[ch];
      for (let k = 0; k < K; k++) acc += a.weight[ch * K + k] * hist(t + k, ch);
      out[t * C + ch] = silu64(acc);
    }
  }
  const state = new Float64Array(H * C);
  for (let i = 0; i < H; i++) for (let ch = 0; ch < C; ch++) state[i * C + ch] = hist(T + i, ch);
  return { out, state };
}

export interface ScanRefArgs {
  T: number;
  nHeads: number;
  headDim: number;
  dState: number;
  nGroups: number;
  /** x(t,h,p) = x.data[x.offset + t*x.rowStride + h*P + p] */
  x: HostStrided;
  /** dt(t,h) = dt.data[dt.offset + t*dt.rowStride + h], raw (before bias) */
  dt: HostStrided;
  /** B(t,g,n) = B.data[B.offset + t*B.rowStride + g*N + n] */
  B: HostStrided;
  C: HostStrided;
  dtBias: Float32Array;
  aLog: Float32Array;
  D: Float32Array;
  /** [NH, P, N], updated in place to the final state. */
  state: Float64Array;
  dtMin: number;
  dtMax: number;
}

/**
 * docs/model.md §Mixer step 4-5, one token at a time: dt = clamp(softplus(dt + dt_bias)), A = -exp(A_log),
 * S = exp(dt*A)*S + dt*(x ⊗ B[g]); y = S·C[g] + D*x, with g = floor(h / (NH/G)).
 * Returns y [T, NH*P]; the state array ends as the final state.
 */
export function ssmScanRef(a: ScanRefArgs): Float64Array {
  const { T, nHeads: NH, headDim: P, dState: N, nGroups: G } = a;
  const y = new Float64Array(T * NH * P);
  const headsPerGroup = NH / G;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / headsPerGroup);
      const raw = a.dt.data[a.dt.offset + t * a.dt.rowStride + h] + a.dtBias[h];
      const dt = Math.min(Math.max(softplus64(raw), a.dtMin), a.dtMax);
      const A = -Math.exp(a.aLog[h]);
      const dA = Math.exp(dt * A);
      const bRow = a.B.offset + t * a.B.rowStride + g * N;
      const cRow = a.C.offset + t * a.C.rowStride + g * N;
      for (let p = 0; p < P; p++) {
        const xv = a.x.data[a.x.offset + t * a.x.rowStride + h * P + p];
        const base = (h * P + p) * N;
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const s = dA * a.state[base + n] + dt * xv * a.B.data[bRow + n];
          a.state[base + n] = s;
          acc += s * a.C.data[cRow + n];
        }
        y[t * NH * P + h * P + p] = acc + a.D[h] * xv;
      }
    }
  }
  return y;
}

// ---- Random inputs laid out like the real mixer (shared by the scan tests and the benchmark) ----

export interface ScanShape { T: number; NH: number; P: number; N: number; G: number }

/** Mulberry32, so the inputs do not depend on any test helper. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gauss(r: () => number): number {
  const u = Math.max(r(), 1e-12), v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export interface ScanInputs {
  shape: ScanShape;
  /** xbc [T, convDim] (x | B | C, convDim = NH*P + 2*G*N), the conv output the mixer scans. */
  xbc: Float32Array;
  convDim: number;
  /** zxbcdt [T, inProjDim] (z | xBC | dt); only the dt columns matter here. */
  zxbcdt: Float32Array;
  inProjDim: number;
  x: HostStrided; B: HostStrided; C: HostStrided; dt: HostStrided;
  dtBias: Float32Array; aLog: Float32Array; D: Float32Array;
  /** [NH, P, N] initial state (f32 values). */
  state0: Float32Array;
}

/**
 * Inputs with the value ranges of trained Mamba2 layers: dt_bias = softplus⁻¹ of a log-uniform dt in
 * [1e-3, 0.1] (mamba_ssm's init), A_log = log U[1, 16], x/B/C ~ N(0, 1), raw dt ~ N(0, 0.5²), a random
 * initial state. Laid out as the mixer does: x at column 0, B at NH*P, C at NH*P + G*N of xbc; dt at
 * column di + convDim of zxbcdt.
 */
export function makeScanInputs(shape: ScanShape, seed: number, opts: { zeroState?: boolean } = {}): ScanInputs {
  const { T, NH, P, N, G } = shape;
  const r = prng(seed);
  const di = NH * P;
  const convDim = di + 2 * G * N;
  const inProjDim = di + convDim + NH;
  const xbc = new Float32Array(T * convDim);
  for (let i = 0; i < xbc.length; i++) xbc[i] = gauss(r);
  const zxbcdt = new Float32Array(T * inProjDim);
  for (let i = 0; i < zxbcdt.length; i++) zxbcdt[i] = 0.5 * gauss(r);
  const dtBias = new Float32Array(NH), aLog = new Float32Array(NH), D = new Float32Array(NH);
  for (let h = 0; h < NH; h++) {
    const dt0 = Math.exp(Math.log(1e-3) + r() * (Math.log(0.1) - Math.log(1e-3)));
    dtBias[h] = dt0 + Math.log(-Math.expm1(-dt0)); // softplus^-1(dt0)
    aLog[h] = Math.log(1 + 15 * r());
    D[h] = gauss(r);
  }
  const state0 = new Float32Array(NH * P * N);
  if (!opts.zeroState) for (let i = 0; i < state0.length; i++) state0[i] = 0.5 * gauss(r);
  return {
    shape, xbc, convDim, zxbcdt, inProjDim,
    x: { data: xbc, offset: 0, rowStride: convDim },
    B: { data: xbc, offset: di, rowStride: convDim },
    C: { data: xbc, offset: di + G * N, rowStride: convDim },
    dt: { data: zxbcdt, offset: di + convDim, rowStride: inProjDim },
    dtBias, aLog, D, state0,
  };
}

/** Runs ssmScanRef on ScanInputs from state0; returns y and the final state. */
export function scanInputsRef(inp: ScanInputs, dtMin: number, dtMax: number): { y: Float64Array; state: Float64Array } {
  const { T, NH, P, N, G } = inp.shape;
  const state = Float64Array.from(inp.state0);
  const y = ssmScanRef({
    T, nHeads: NH, headDim: P, dState: N, nGroups: G, x: inp.x, dt: inp.dt, B: inp.B, C: inp.C,
    dtBias: inp.dtBias, aLog: inp.aLog, D: inp.D, state, dtMin, dtMax,
  });
  return { y, state };
}
