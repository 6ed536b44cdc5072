// Float64 Zamba2 forward (docs/model.md §Zamba2), one sequence, with explicit state (mixer states per
// layer, KV cache per hybrid call site) so a forward can continue from an earlier one.
import {
  argmax, bool, cloneMixerState, gelu, matvec, mixerDims, mixerForward, mixerWeights, newMixerState, num,
  refError, rmsNorm, weight, type MixerDims, type MixerState, type RefModelInput, type RefWeights,
} from './common.ts';

export interface Zamba2RefConfig {
  vocab: number;
  H: number;
  numLayers: number;
  /** true where the layer is hybrid (shared block + mamba), false for plain mamba. */
  hybrid: boolean[];
  hybridIds: number[];
  numMemBlocks: number;
  heads: number;
  kvHeads: number;
  hd: number;
  F: number;
  adapterRank: number;
  attnAdapter: boolean;
  rope: boolean;
  ropeTheta: number;
  eps: number;
  mixer: MixerDims;
}

/** Reads all three config spellings (docs/model.md §Config spellings), independently of src/. */
export function parseZamba2RefConfig(cfg: Record<string, unknown>): Zamba2RefConfig {
  const H = num(cfg, ['hidden_size']);
  let kinds: unknown[] | undefined;
  if (Array.isArray(cfg.layers_block_type)) kinds = cfg.layers_block_type;
  else if (Array.isArray(cfg.layer_types)) kinds = cfg.layer_types;
  if (!kinds) throw refError('config has neither layers_block_type nor layer_types');
  const hybrid = kinds.map((k) => {
    if (k === 'm' || k === 'mamba' || k === 'linear_attention') return false;
    if (k === 'g' || k === 'hybrid') return true;
    throw refError(`unknown layer kind ${JSON.stringify(k)}`);
  });
  const numLayers = num(cfg, ['num_hidden_layers'], hybrid.length);
  if (numLayers !== hybrid.length) throw refError(`num_hidden_layers ${numLayers} != ${hybrid.length} layer kinds`);
  const hybridIds = hybrid.flatMap((h, l) => (h ? [l] : []));
  const expand = num(cfg, ['mamba_expand', 'expansion_factor'], 2);
  const di = expand * H;
  const P = num(cfg, ['mamba_headdim'], NaN);
  const NH = num(cfg, ['n_mamba_heads'], di / P);
  const heads = num(cfg, ['num_attention_heads']);
  // attention head dim is 2H / heads (the input is concat(x, orig)); Zyphra's kv_channels is H/heads
  // and is not used.
  const hd = num(cfg, ['head_dim', 'attention_head_dim'], (2 * H) / heads);
  const rp = cfg.rope_parameters as Record<string, unknown> | undefined;
  const ropeTheta = rp && rp.rope_theta !== undefined ? num(rp, ['rope_theta']) : num(cfg, ['rope_theta'], 10000);
  return {
    vocab: num(cfg, ['vocab_size']),
    H, numLayers, hybrid, hybridIds,
    numMemBlocks: num(cfg, ['num_mem_blocks'], 1),
    heads,
    kvHeads: num(cfg, ['num_key_value_heads'], heads),
    hd,
    F: num(cfg, ['intermediate_size', 'ffn_hidden_size'], 4 * H),
    adapterRank: num(cfg, ['adapter_rank', 'lora_rank'], 128),
    attnAdapter: bool(cfg, ['use_shared_attention_adapter', 'use_shared_attention_lora'], false),
    rope: bool(cfg, ['use_mem_rope'], false),
    ropeTheta,
    eps: num(cfg, ['rms_norm_eps'], 1e-5),
    // Zamba2: dt clamped from below at time_step_min only; the gated norm uses eps 1e-5 always.
    mixer: mixerDims(H, expand, NH, Number.isNaN(P) ? di / NH : P,
      num(cfg, ['mamba_d_state', 'state_size']), num(cfg, ['mamba_ngroups'], 1),
      num(cfg, ['mamba_d_conv', 'conv_dimension'], 4),
      num(cfg, ['time_step_min'], 0.001), Infinity, 1e-5),
  };
}

export interface Zamba2RefState {
  /** Tokens processed so far (absolute position of the next token). */
  pos: number;
  /** One per layer (hybrid layers have their own mamba too). */
  mixers: MixerState[];
  /** Per hybrid call site j: keys / values per position, each [kvHeads * hd] (keys after RoPE). */
  keys: Float64Array[][];
  values: Float64Array[][];
}

export function newZamba2RefState(c: Zamba2RefConfig): Zamba2RefState {
  return {
    pos: 0,
    mixers: Array.from({ length: c.numLayers }, () => newMixerState(c.mixer)),
    keys: c.hybridIds.map(() => []),
    values: c.hybridIds.map(() => []),
  };
}

export function cloneZamba2RefState(s: Zamba2RefState): Zamba2RefState {
  return {
    pos: s.pos,
    mixers: s.mixers.map(cloneMixerState),
    keys: s.keys.map((a) => a.map((r) => r.slice())),
    values: s.values.map((a) => a.map((r) => r.slice())),
  };
}

interface SharedBlock {
  inNorm: Float64Array; preFfNorm: Float64Array;
  q: Float64Array; k: Float64Array; v: Float64Array; o: Float64Array;
  gateUp: Float64Array; down: Float64Array;
}

function sharedBlock(w: RefWeights, c: Zamba2RefConfig, b: number): SharedBlock {
  const s = `model.layers.${c.hybridIds[b]}.shared_transformer`;
  const H2 = 2 * c.H;
  return {
    inNorm: weight(w, `${s}.input_layernorm.weight`, [H2]),
    preFfNorm: weight(w, `${s}.pre_ff_layernorm.weight`, [c.H]),
    q: weight(w, `${s}.self_attn.q_proj.weight`, [c.heads * c.hd, H2]),
    k: weight(w, `${s}.self_attn.k_proj.weight`, [c.kvHeads * c.hd, H2]),
    v: weight(w, `${s}.self_attn.v_proj.weight`, [c.kvHeads * c.hd, H2]),
    o: weight(w, `${s}.self_attn.o_proj.weight`, [c.H, c.heads * c.hd]),
    gateUp: weight(w, `${s}.feed_forward.gate_up_proj.weight`, [2 * c.F, c.H]),
    down: weight(w, `${s}.feed_forward.down_proj.weight`, [c.H, c.F]),
  };
}

/** NeoX rotate-half RoPE over the full head dim, in place on x[off .. off + nHeads*hd). */
function rope(x: Float64Array, off: number, nHeads: number, hd: number, pos: number, theta: number): void {
  const half = hd / 2;
  for (let h = 0; h < nHeads; h++) {
    const b = off + h * hd;
    for (let i = 0; i < half; i++) {
      const ang = pos * Math.pow(theta, (-2 * i) / hd);
      const cs = Math.cos(ang), sn = Math.sin(ang);
      const x1 = x[b + i], x2 = x[b + i + half];
      x[b + i] = x1 * cs - x2 * sn;
      x[b + i + half] = x2 * cs + x1 * sn;
    }
  }
}

/** y[o..] += (x A^T) B^T for an unscaled adapter pair A [r, K], B [Nout, r]. */
function addAdapter(w: RefWeights, prefix: string, r: number, K: number, Nout: number,
  x: Float64Array, xo: number, y: Float64Array, o: number): void {
  const A = weight(w, `${prefix}.0.weight`, [r, K]);
  const B = weight(w, `${prefix}.1.weight`, [Nout, r]);
  const mid = new Float64Array(r);
  matvec(A, r, K, x, xo, mid, 0);
  matvec(B, Nout, r, mid, 0, y, o, true);
}

/** The hybrid layer's transformer output t [T, H] (before `linear`), appending to the KV cache of site j. */
function sharedBlockForward(w: RefWeights, c: Zamba2RefConfig, j: number, x: Float64Array, orig: Float64Array,
  T: number, st: Zamba2RefState, kvRound?: (v: number) => number): Float64Array {
  const H = c.H, H2 = 2 * H, hd = c.hd;
  const b = j % c.numMemBlocks;
  const blk = sharedBlock(w, c, b);
  const sPrefix = `model.layers.${c.hybridIds[b]}.shared_transformer`;
  const qDim = c.heads * hd, kvDim = c.kvHeads * hd;
  const repeat = c.heads / c.kvHeads;
  const scale = 1 / Math.sqrt(hd / 2);
  const cat = new Float64Array(H2);
  const s = new Float64Array(T * H2);
  const q = new Float64Array(T * qDim);
  const attn = new Float64Array(qDim);
  const a = new Float64Array(T * H);
  // s = RMSNorm_in(concat(x, orig)); q, k, v (+ adapters) ; RoPE ; append k, v at positions pos0 + t.
  for (let t = 0; t < T; t++) {
    cat.set(x.subarray(t * H, t * H + H), 0);
    cat.set(orig.subarray(t * H, t * H + H), H);
    rmsNorm(cat, 0, H2, blk.inNorm, c.eps, s, t * H2);
    const k = new Float64Array(kvDim), v = new Float64Array(kvDim);
    matvec(blk.q, qDim, H2, s, t * H2, q, t * qDim);
    matvec(blk.k, kvDim, H2, s, t * H2, k, 0);
    matvec(blk.v, kvDim, H2, s, t * H2, v, 0);
    if (c.attnAdapter) {
      const ad = `${sPrefix}.self_attn.linear_`;
      addAdapter(w, `${ad}q_adapter_list.${j}`, c.adapterRank, H2, qDim, s, t * H2, q, t * qDim);
      addAdapter(w, `${ad}k_adapter_list.${j}`, c.adapterRank, H2, kvDim, s, t * H2, k, 0);
      addAdapter(w, `${ad}v_adapter_list.${j}`, c.adapterRank, H2, kvDim, s, t * H2, v, 0);
    }
    if (c.rope) {
      rope(q, t * qDim, c.heads, hd, st.pos + t, c.ropeTheta);
      rope(k, 0, c.kvHeads, hd, st.pos + t, c.ropeTheta);
    }
    if (kvRound) for (let i = 0; i < kvDim; i++) { k[i] = kvRound(k[i]); v[i] = kvRound(v[i]); }
    st.keys[j].push(k);
    st.values[j].push(v);
  }
  // Causal attention: query t (position pos0 + t) sees keys 0 .. pos0 + t. Softmax in f64.
  for (let t = 0; t < T; t++) {
    const last = st.pos + t;
    for (let h = 0; h < c.heads; h++) {
      const kvh = Math.floor(h / repeat);
      const sc = new Float64Array(last + 1);
      let mx = -Infinity;
      for (let p = 0; p <= last; p++) {
        const kk = st.keys[j][p];
        let d = 0;
        for (let i = 0; i < hd; i++) d += q[t * qDim + h * hd + i] * kk[kvh * hd + i];
        sc[p] = d * scale;
        if (sc[p] > mx) mx = sc[p];
      }
      let den = 0;
      for (let p = 0; p <= last; p++) { sc[p] = Math.exp(sc[p] - mx); den += sc[p]; }
      // Same ascending-p sum per output channel, walked row by row for memory locality.
      const acc = new Float64Array(hd);
      for (let p = 0; p <= last; p++) {
        const vv = st.values[j][p], wgt = sc[p], o = kvh * hd;
        for (let i = 0; i < hd; i++) acc[i] += wgt * vv[o + i];
      }
      for (let i = 0; i < hd; i++) attn[h * hd + i] = acc[i] / den;
    }
    const ao = new Float64Array(H);
    matvec(blk.o, H, qDim, attn, 0, ao, 0);
    rmsNorm(ao, 0, H, blk.preFfNorm, c.eps, a, t * H);
  }
  // MLP with the call site's adapter: gu = a gate_up^T + (a A^T) B^T; out = (gelu(g) * u) down^T.
  const F = c.F;
  const gu = new Float64Array(2 * F);
  const hmid = new Float64Array(F);
  const out = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    matvec(blk.gateUp, 2 * F, H, a, t * H, gu, 0);
    addAdapter(w, `${sPrefix}.feed_forward.gate_up_proj_adapter_list.${j}`, c.adapterRank, H, 2 * F, a, t * H, gu, 0);
    for (let i = 0; i < F; i++) hmid[i] = gelu(gu[i]) * gu[F + i];
    matvec(blk.down, H, F, hmid, 0, out, t * H);
  }
  return out;
}

/** Logits [T, V] for `ids`, continuing from `state` (not modified; the new state is returned). */
export function zamba2RefForward(model: RefModelInput, ids: readonly number[], state?: Zamba2RefState):
  { logits: Float64Array; state: Zamba2RefState } {
  const c = parseZamba2RefConfig(model.config);
  const w = model.weights;
  const st = state ? cloneZamba2RefState(state) : newZamba2RefState(c);
  const T = ids.length, H = c.H, V = c.vocab;
  const E = weight(w, 'model.embed_tokens.weight', [V, H]);
  const x = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= V) throw refError(`token id ${id} out of range`);
    x.set(E.subarray(id * H, id * H + H), t * H);
  }
  const orig = x.slice();
  const normed = new Float64Array(T * H);
  for (let l = 0; l < c.numLayers; l++) {
    const j = c.hybridIds.indexOf(l);
    let prefix: string;
    let mixIn: Float64Array = x;
    if (j >= 0) {
      // Hybrid: x = x + Mixer(RMSNorm(x + linear(shared(x, orig)))): the residual is x, not x + t.
      const tOut = sharedBlockForward(w, c, j, x, orig, T, st, model.kvRound);
      const lin = weight(w, `model.layers.${l}.linear.weight`, [H, H]);
      mixIn = new Float64Array(T * H);
      for (let t = 0; t < T; t++) {
        matvec(lin, H, H, tOut, t * H, mixIn, t * H);
        for (let i = 0; i < H; i++) mixIn[t * H + i] += x[t * H + i];
      }
      prefix = `model.layers.${l}.mamba_decoder`;
    } else {
      prefix = `model.layers.${l}`;
    }
    const nw = weight(w, `${prefix}.input_layernorm.weight`, [H]);
    for (let t = 0; t < T; t++) rmsNorm(mixIn, t * H, H, nw, c.eps, normed, t * H);
    const m = mixerForward(c.mixer, mixerWeights(w, `${prefix}.mamba`, c.mixer), normed, T, st.mixers[l]);
    for (let i = 0; i < T * H; i++) x[i] += m[i];
  }
  st.pos += T;
  const fw = weight(w, 'model.final_layernorm.weight', [H]);
  const logits = new Float64Array(T * V);
  const hf = new Float64Array(H);
  for (let t = 0; t < T; t++) {
    rmsNorm(x, t * H, H, fw, c.eps, hf, 0);
    matvec(E, V, H, hf, 0, logits, t * V);
  }
  return { logits, state: st };
}

export { argmax };
