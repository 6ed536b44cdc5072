// Float64 plain-Mamba2 forward (docs/model.md §Mamba2): x = x + Mixer(RMSNorm(x)) per layer,
// final norm, tied or untied head. Explicit per-layer state for continuation.
import {
  cloneMixerState, mixerDims, mixerForward, mixerWeights, newMixerState, num, refError, rmsNorm, weight, asNumber,
  matvec, type MixerDims, type MixerState, type RefModelInput,
} from './common.ts';

export interface Mamba2RefConfig {
  vocab: number;
  H: number;
  numLayers: number;
  eps: number;
  tied: boolean;
  mixer: MixerDims;
}

export function parseMamba2RefConfig(cfg: Record<string, unknown>): Mamba2RefConfig {
  const H = num(cfg, ['hidden_size']);
  const NH = num(cfg, ['num_heads']);
  const P = num(cfg, ['head_dim']);
  const eps = num(cfg, ['layer_norm_epsilon', 'rms_norm_eps'], 1e-5);
  let lo = 0, hi = Infinity;
  const lim = cfg.time_step_limit;
  if (Array.isArray(lim)) {
    if (lim.length !== 2) throw refError('time_step_limit must have two entries');
    lo = asNumber(lim[0], 'time_step_limit[0]');
    hi = asNumber(lim[1], 'time_step_limit[1]');
  }
  // transformers' Mamba2 has intermediate = expand * H and requires num_heads * head_dim to match.
  const expand = num(cfg, ['expand'], (NH * P) / H);
  return {
    vocab: num(cfg, ['vocab_size']),
    H,
    numLayers: num(cfg, ['num_hidden_layers']),
    eps,
    tied: cfg.tie_word_embeddings === undefined ? true : Boolean(cfg.tie_word_embeddings),
    // The mixer's gated norm uses layer_norm_epsilon in Mamba2 (unlike Zamba2's fixed 1e-5).
    mixer: mixerDims(H, expand, NH, P, num(cfg, ['state_size']), num(cfg, ['n_groups'], 1),
      num(cfg, ['conv_kernel'], 4), lo, hi, eps),
  };
}

export interface Mamba2RefState {
  pos: number;
  mixers: MixerState[];
}

export function newMamba2RefState(c: Mamba2RefConfig): Mamba2RefState {
  return { pos: 0, mixers: Array.from({ length: c.numLayers }, () => newMixerState(c.mixer)) };
}

export function cloneMamba2RefState(s: Mamba2RefState): Mamba2RefState {
  return { pos: s.pos, mixers: s.mixers.map(cloneMixerState) };
}

export function mamba2RefForward(model: RefModelInput, ids: readonly number[], state?: Mamba2RefState):
  { logits: Float64Array; state: Mamba2RefState } {
  const c = parseMamba2RefConfig(model.config);
  const w = model.weights;
  const st = state ? cloneMamba2RefState(state) : newMamba2RefState(c);
  const T = ids.length, H = c.H, V = c.vocab;
  const embName = w.has('backbone.embeddings.weight') ? 'backbone.embeddings.weight' : 'backbone.embedding.weight';
  const E = weight(w, embName, [V, H]);
  const x = new Float64Array(T * H);
  for (let t = 0; t < T; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= V) throw refError(`token id ${id} out of range`);
    x.set(E.subarray(id * H, id * H + H), t * H);
  }
  const normed = new Float64Array(T * H);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `backbone.layers.${l}`;
    const nw = weight(w, `${p}.norm.weight`, [H]);
    for (let t = 0; t < T; t++) rmsNorm(x, t * H, H, nw, c.eps, normed, t * H);
    const m = mixerForward(c.mixer, mixerWeights(w, `${p}.mixer`, c.mixer), normed, T, st.mixers[l]);
    for (let i = 0; i < T * H; i++) x[i] += m[i];
  }
  st.pos += T;
  const fw = weight(w, 'backbone.norm_f.weight', [H]);
  const head = c.tied ? E : weight(w, 'lm_head.weight', [V, H]);
  const logits = new Float64Array(T * V);
  const hf = new Float64Array(H);
  for (let t = 0; t < T; t++) {
    rmsNorm(x, t * H, H, fw, c.eps, hf, 0);
    matvec(head, V, H, hf, 0, logits, t * V);
  }
  return { logits, state: st };
}
