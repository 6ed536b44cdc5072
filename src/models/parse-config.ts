// config.json -> validated ModelConfig. The only place that knows the spellings:
//   Zamba2, old Zyphra fork   : layers_block_type ["m","g"], state_size, expansion_factor,
//                               conv_dimension, ffn_hidden_size, lora_rank,
//                               use_shared_attention_lora, use_shared_block_lora, kv_channels
//   Zamba2, transformers      : layers_block_type ["mamba","hybrid"], mamba_d_state, mamba_expand,
//                               mamba_d_conv, n_mamba_heads, mamba_headdim, mamba_ngroups,
//                               hybrid_layer_ids, adapter_rank, use_shared_attention_adapter, ...
//   Zamba2, newest transformers: layer_types (mamba = "linear_attention"), head_dim,
//                               rope_parameters.rope_theta
//   Mamba2 (transformers)     : num_heads, head_dim, state_size, expand, conv_kernel, n_groups,
//                               time_step_limit, layer_norm_epsilon, tie_word_embeddings
// Python's json writes float('inf') as a bare `Infinity` token (not JSON); newer writers use
// {"__float__": "Infinity"}. Both are read here. See docs/model.md "Config spellings".
import { ConfigError, UnsupportedError } from '../errors.ts';
import { type Mamba2Config, type ModelConfig, type Zamba2Config, LayerKind } from './config.ts';

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// JSON with non-finite numbers

const NON_FINITE: Record<string, number> = {
  infinity: Infinity, '+infinity': Infinity, '-infinity': -Infinity, inf: Infinity, '+inf': Infinity,
  '-inf': -Infinity, nan: NaN, '-nan': NaN,
};

/**
 * Rewrites bare `Infinity`, `-Infinity` and `NaN` tokens that sit outside strings into
 * {"__float__": "..."} objects so JSON.parse accepts the text; the reviver turns those back into
 * numbers. Strings are skipped character by character (escapes included), so a string value
 * containing the word "Infinity" is left alone.
 */
function rewriteNonFinite(text: string): string {
  let out = '';
  let last = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) { i += 2; continue; }
        i++;
        if (d === 0x22) break;
      }
      continue;
    }
    let m: RegExpMatchArray | null = null;
    if (c === 0x2d /* - */ || c === 0x49 /* I */ || c === 0x4e /* N */) {
      m = /^-?(?:Infinity|NaN)/.exec(text.slice(i, i + 10));
    }
    if (m) {
      out += text.slice(last, i) + `{"__float__":"${m[0]}"}`;
      i += m[0].length;
      last = i;
      continue;
    }
    i++;
  }
  return last === 0 ? text : out + text.slice(last);
}

function reviveFloat(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === '__float__') {
      const v = (value as Json).__float__;
      if (typeof v === 'number') return v;
      if (typeof v === 'string') {
        const named = NON_FINITE[v.trim().toLowerCase()];
        if (named !== undefined) return named;
        const num = Number(v);
        if (v.trim() !== '' && !Number.isNaN(num)) return num;
      }
      throw new ConfigError(`config: {"__float__": ${JSON.stringify(v)}} is not a number`);
    }
  }
  return value;
}

/** Parses config.json text (bare Infinity/NaN and {"__float__": ...} allowed) into an object. */
export function parseConfigJson(jsonText: string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(rewriteNonFinite(jsonText), reviveFloat);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`config.json is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError('config.json must hold a JSON object');
  }
  return parsed as Json;
}

// ---------------------------------------------------------------------------------------------
// Field readers: each names the field in its error.

class Fields {
  constructor(readonly raw: Json, readonly arch: string) {}

  /** The first of `names` present (not null/undefined) in the config, with its name. */
  pick(names: readonly string[]): { name: string; value: unknown } | undefined {
    for (const name of names) {
      const v = this.raw[name];
      if (v !== undefined && v !== null) return { name, value: v };
    }
    return undefined;
  }

  fail(field: string, why: string): never {
    throw new ConfigError(`${this.arch} config: "${field}" ${why}`);
  }

  /** A positive integer (or >= min). */
  int(names: readonly string[], dflt?: number, min = 1): number {
    const p = this.pick(names);
    if (!p) {
      if (dflt === undefined) this.fail(names[0], 'is missing');
      return dflt;
    }
    // Some writers store integral sizes as floats (2.0); accept those, reject 2.5.
    if (typeof p.value !== 'number' || !Number.isInteger(p.value)) this.fail(p.name, `must be an integer, got ${JSON.stringify(p.value)}`);
    if (p.value < min) this.fail(p.name, `must be >= ${min}, got ${p.value}`);
    return p.value;
  }

  /** A finite or infinite number (not NaN), >= min when given. */
  num(names: readonly string[], dflt?: number, min?: number, positive = false): number {
    const p = this.pick(names);
    if (!p) {
      if (dflt === undefined) this.fail(names[0], 'is missing');
      return dflt;
    }
    if (typeof p.value !== 'number' || Number.isNaN(p.value)) this.fail(p.name, `must be a number, got ${JSON.stringify(p.value)}`);
    if (min !== undefined && p.value < min) this.fail(p.name, `must be >= ${min}, got ${p.value}`);
    if (positive && !(p.value > 0)) this.fail(p.name, `must be > 0, got ${p.value}`);
    return p.value;
  }

  bool(names: readonly string[], dflt: boolean): boolean {
    const p = this.pick(names);
    if (!p) return dflt;
    if (typeof p.value !== 'boolean') this.fail(p.name, `must be true or false, got ${JSON.stringify(p.value)}`);
    return p.value;
  }

  optionalTokenId(name: string): number | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(name, `must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v;
  }

  tokenIds(name: string, dflt: number[]): number[] {
    const v = this.raw[name];
    if (v === undefined) return dflt;
    if (v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    for (const x of list) {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) this.fail(name, `must be a token id or a list of them, got ${JSON.stringify(v)}`);
    }
    return [...new Set(list as number[])];
  }

  /** [min, max] pair; null/absent -> undefined. Infinity allowed for max. */
  range(name: string): [number, number] | undefined {
    const v = this.raw[name];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.length !== 2 || v.some((x) => typeof x !== 'number' || Number.isNaN(x))) {
      this.fail(name, `must be a [min, max] pair of numbers, got ${JSON.stringify(v)}`);
    }
    const [lo, hi] = v as [number, number];
    if (lo < 0 || hi < lo) this.fail(name, `must satisfy 0 <= min <= max, got [${lo}, ${hi}]`);
    return [lo, hi];
  }
}

// ---------------------------------------------------------------------------------------------

/** Parses and validates a Zamba2 or Mamba2 config.json (text or already-parsed object). */
export function parseConfig(jsonText: string | object): ModelConfig {
  const raw: Json = typeof jsonText === 'string' ? parseConfigJson(jsonText) : reviveDeep(jsonText) as Json;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('config must be a JSON object');
  const modelType = raw.model_type;
  if (modelType === undefined || modelType === null) {
    const archs = Array.isArray(raw.architectures) ? raw.architectures.join(', ') : undefined;
    if (raw.ssm_cfg !== undefined || raw.d_model !== undefined) {
      throw new UnsupportedError('config has no "model_type" and looks like an original state-spaces/mamba ' +
        'config (d_model/ssm_cfg): use the Hugging Face transformers port of the model (model_type "mamba2")');
    }
    throw new ConfigError(`config: "model_type" is missing${archs ? ` (architectures: ${archs})` : ''}; expected "zamba2" or "mamba2"`);
  }
  if (modelType === 'zamba2') return parseZamba2(new Fields(raw, 'zamba2'));
  if (modelType === 'mamba2') return parseMamba2(new Fields(raw, 'mamba2'));
  throw new UnsupportedError(`model_type ${JSON.stringify(modelType)} is not supported; mamba-scan-lite runs "zamba2" and "mamba2" checkpoints`);
}

/** Converts {"__float__": ...} wrappers inside an already-parsed object. */
function reviveDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reviveDeep);
  if (v !== null && typeof v === 'object') {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) out[k] = reviveDeep(x);
    return reviveFloat('', out);
  }
  return v;
}

interface MixerFields {
  hiddenSize: number; dState: number; nHeads: number; headDim: number; nGroups: number;
  expand: number; convKernel: number; chunkSize: number;
}

/** Checks the mixer sizes against each other and computes the derived ones. */
function mixerDerived(f: Fields, m: MixerFields, names: { heads: string; headDim: string; groups: string; expand: string }) {
  const dInner = m.expand * m.hiddenSize;
  if (!Number.isInteger(dInner)) f.fail(names.expand, `times hidden_size must be an integer (${m.expand} * ${m.hiddenSize})`);
  if (m.nHeads * m.headDim !== dInner) {
    f.fail(names.heads, `(${m.nHeads}) * ${names.headDim} (${m.headDim}) must equal d_inner = ${names.expand} * hidden_size = ${dInner}`);
  }
  if (m.nHeads % m.nGroups !== 0) f.fail(names.groups, `(${m.nGroups}) must divide the number of heads (${m.nHeads})`);
  const convDim = dInner + 2 * m.nGroups * m.dState;
  return { dInner, convDim, inProjDim: dInner + convDim + m.nHeads };
}

function commonTokens(f: Fields, defaults: { bos?: number; eos: number[]; pad?: number }) {
  const bos = f.raw.bos_token_id === undefined ? defaults.bos : f.optionalTokenId('bos_token_id');
  const pad = f.raw.pad_token_id === undefined ? defaults.pad : f.optionalTokenId('pad_token_id');
  const eosTokenIds = f.tokenIds('eos_token_id', defaults.eos);
  return { bosTokenId: bos, padTokenId: pad, eosTokenIds };
}

function checkTokenRange(f: Fields, vocabSize: number, t: { bosTokenId?: number; padTokenId?: number; eosTokenIds: readonly number[] }) {
  if (t.bosTokenId !== undefined && t.bosTokenId >= vocabSize) f.fail('bos_token_id', `(${t.bosTokenId}) must be < vocab_size (${vocabSize})`);
  if (t.padTokenId !== undefined && t.padTokenId >= vocabSize) f.fail('pad_token_id', `(${t.padTokenId}) must be < vocab_size (${vocabSize})`);
  for (const e of t.eosTokenIds) if (e >= vocabSize) f.fail('eos_token_id', `(${e}) must be < vocab_size (${vocabSize})`);
}

// ---------------------------------------------------------------------------------------------
// Zamba2

const MAMBA_NAMES = new Set(['m', 'mamba', 'linear_attention']);
// "g" is the old fork's name for a layer that runs the shared ("global") transformer block.
const HYBRID_NAMES = new Set(['g', 'hybrid', 'full_attention', 'attention']);

function layerKindsOf(f: Fields, numLayers: number): LayerKind[] | undefined {
  const p = f.pick(['layer_types', 'layers_block_type']);
  if (!p) return undefined;
  if (!Array.isArray(p.value)) f.fail(p.name, 'must be a list of layer types');
  const list = p.value as unknown[];
  if (list.length !== numLayers) f.fail(p.name, `has ${list.length} entries but num_hidden_layers is ${numLayers}`);
  return list.map((t, i) => {
    if (typeof t === 'string' && MAMBA_NAMES.has(t)) return LayerKind.Mamba;
    if (typeof t === 'string' && HYBRID_NAMES.has(t)) return LayerKind.Hybrid;
    return f.fail(`${p.name}[${i}]`, `is an unknown layer type ${JSON.stringify(t)} (expected one of ${[...MAMBA_NAMES, ...HYBRID_NAMES].join(', ')})`);
  });
}

function parseZamba2(f: Fields): Zamba2Config {
  const r = f.raw;
  if (r.add_bias_linear === true) throw new UnsupportedError('zamba2 config: add_bias_linear = true (linear biases) is not supported');
  if (r.use_conv_bias === false) throw new UnsupportedError('zamba2 config: use_conv_bias = false is not supported');
  const hiddenSize = f.int(['hidden_size']);
  const numLayers = f.int(['num_hidden_layers', 'num_layers']);
  const vocabSize = f.int(['vocab_size']);

  // Layer kinds: from a type list, else from hybrid_layer_ids; when both are given they must agree.
  let layerKinds = layerKindsOf(f, numLayers);
  let hybridLayerIds: number[];
  const idsRaw = r.hybrid_layer_ids;
  if (idsRaw !== undefined && idsRaw !== null) {
    if (!Array.isArray(idsRaw)) f.fail('hybrid_layer_ids', 'must be a list of layer indices');
    const ids = idsRaw as unknown[];
    ids.forEach((id, i) => {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= numLayers) {
        f.fail(`hybrid_layer_ids[${i}]`, `(${JSON.stringify(id)}) is out of range: layers are 0..${numLayers - 1}`);
      }
    });
    hybridLayerIds = [...new Set(ids as number[])].sort((a, b) => a - b);
    if (hybridLayerIds.length !== ids.length) f.fail('hybrid_layer_ids', 'has duplicate entries');
    if (layerKinds) {
      const fromKinds = layerKinds.flatMap((k, i) => (k === LayerKind.Hybrid ? [i] : []));
      if (fromKinds.join() !== hybridLayerIds.join()) {
        f.fail('hybrid_layer_ids', `[${hybridLayerIds}] disagrees with the hybrid entries of the layer type list [${fromKinds}]`);
      }
    } else {
      const set = new Set(hybridLayerIds);
      layerKinds = Array.from({ length: numLayers }, (_, i) => (set.has(i) ? LayerKind.Hybrid : LayerKind.Mamba));
    }
  } else if (layerKinds) {
    hybridLayerIds = layerKinds.flatMap((k, i) => (k === LayerKind.Hybrid ? [i] : []));
  } else {
    f.fail('layers_block_type', 'is missing (nor layer_types or hybrid_layer_ids): cannot tell which layers are hybrid');
  }

  const expand = f.num(['mamba_expand', 'expansion_factor'], 2, undefined, true);
  const dState = f.int(['mamba_d_state', 'state_size']);
  const nGroups = f.int(['mamba_ngroups'], 1);
  const convKernel = f.int(['mamba_d_conv', 'conv_dimension'], 4);
  const dInnerGuess = expand * hiddenSize;
  // Heads: n_mamba_heads (transformers) or d_inner / mamba_headdim (old fork; transformers derives
  // mamba_headdim from n_mamba_heads and stores both).
  let nHeads: number, headDim: number;
  const nh = f.pick(['n_mamba_heads']);
  if (nh) {
    nHeads = f.int(['n_mamba_heads']);
    headDim = f.int(['mamba_headdim'], Math.floor(dInnerGuess / nHeads));
  } else {
    headDim = f.int(['mamba_headdim']);
    if (dInnerGuess % headDim !== 0) f.fail('mamba_headdim', `(${headDim}) must divide d_inner = ${dInnerGuess}`);
    nHeads = dInnerGuess / headDim;
  }
  const chunkSize = f.int(['chunk_size'], 256);
  const mixer = { hiddenSize, dState, nHeads, headDim, nGroups, expand, convKernel, chunkSize };
  const derived = mixerDerived(f, mixer, { heads: nh ? 'n_mamba_heads' : 'mamba_headdim', headDim: 'mamba_headdim', groups: 'mamba_ngroups', expand: 'mamba_expand' });

  // dt clamp: transformers' Zamba2 torch path clamps dt from below at time_step_min only (its
  // time_step_limit lower bound is unused); an upper clamp exists when time_step_limit has a
  // finite max.
  const dtMin = f.num(['time_step_min'], 0.001, 0);
  const limit = f.range('time_step_limit');
  const dtMax = limit && Number.isFinite(limit[1]) ? limit[1] : Infinity;
  if (dtMax < dtMin) f.fail('time_step_limit', `upper bound ${dtMax} is below time_step_min ${dtMin}`);

  const numMemBlocks = f.int(['num_mem_blocks'], 1);
  const numAttentionHeads = f.int(['num_attention_heads'], 32);
  const numKeyValueHeads = f.int(['num_key_value_heads', 'num_query_groups'], numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    f.fail('num_key_value_heads', `(${numKeyValueHeads}) must divide num_attention_heads (${numAttentionHeads})`);
  }
  // Attention runs on concat(x, orig): width 2H, so hd = 2H / heads unless head_dim (newest) or
  // attention_head_dim says otherwise. kv_channels is never read: writers disagree on what it
  // means (transformers stores H / heads there).
  const hdNames = ['head_dim', 'attention_head_dim'];
  const hdDefault = (2 * hiddenSize) / numAttentionHeads;
  const hdGiven = f.pick(hdNames);
  if (!hdGiven && !Number.isInteger(hdDefault)) {
    f.fail('num_attention_heads', `(${numAttentionHeads}) must divide 2 * hidden_size (${2 * hiddenSize}) when head_dim is not given`);
  }
  const attentionHeadDim = hdGiven ? f.int([hdGiven.name]) : hdDefault;

  const useMemRope = f.bool(['use_mem_rope'], false);
  const useLongContext = f.bool(['use_long_context'], false);
  const ropeParams = r.rope_parameters;
  let ropeTheta: number;
  if (ropeParams !== undefined && ropeParams !== null) {
    if (typeof ropeParams !== 'object' || Array.isArray(ropeParams)) f.fail('rope_parameters', 'must be an object');
    const rp = ropeParams as Json;
    const rt = rp.rope_type ?? rp.type;
    if (rt !== undefined && rt !== 'default') throw new UnsupportedError(`zamba2 config: rope_parameters.rope_type ${JSON.stringify(rt)} is not supported (only "default")`);
    const th = rp.rope_theta;
    if (th === undefined) ropeTheta = f.num(['rope_theta'], 10000, undefined, true);
    else if (typeof th !== 'number' || !(th > 0)) f.fail('rope_parameters.rope_theta', `must be a positive number, got ${JSON.stringify(th)}`);
    else ropeTheta = th;
  } else {
    ropeTheta = f.num(['rope_theta'], 10000, undefined, true);
    // transformers' Zamba2Config stretches theta for the long-context variant at construction
    // time (the stretched value is not what config.json stores).
    if (useMemRope && useLongContext) ropeTheta *= 8 ** (attentionHeadDim / (attentionHeadDim - 2));
  }
  const useSharedAttentionAdapter = f.bool(['use_shared_attention_adapter', 'use_shared_attention_lora'], false);
  // use_shared_block_lora / use_shared_mlp_adapter are not read: transformers' Zamba2 always
  // builds the MLP adapters (docs/model.md), and the tensor check reports them if a checkpoint lacks them.
  const adapterRank = f.int(['adapter_rank', 'lora_rank'], 128);
  const intermediateSize = f.int(['intermediate_size', 'ffn_hidden_size'], 4 * hiddenSize);
  const maxPositionEmbeddings = useLongContext ? 16384 : f.int(['max_position_embeddings'], 4096);
  if (hybridLayerIds.length > 0 && numMemBlocks > hybridLayerIds.length) {
    f.fail('num_mem_blocks', `(${numMemBlocks}) exceeds the number of hybrid layers (${hybridLayerIds.length})`);
  }

  const tokens = commonTokens(f, { bos: 1, eos: [2], pad: 0 });
  checkTokenRange(f, vocabSize, tokens);
  const rmsNormEps = f.num(['rms_norm_eps'], 1e-5, undefined, true);
  return {
    arch: 'zamba2',
    ...mixer,
    ...derived,
    dtMin,
    dtMax,
    // Zamba2's gated norm inside the mixer ignores rms_norm_eps (docs/model.md, mixer step 6).
    mixerNormEps: 1e-5,
    vocabSize,
    numLayers,
    rmsNormEps,
    // Zamba2 always ties (lm_head is the embedding); an explicit false is honoured and then
    // requires lm_head.weight in the checkpoint.
    tieWordEmbeddings: f.bool(['tie_word_embeddings'], true),
    ...tokens,
    layerKinds,
    hybridLayerIds,
    numMemBlocks,
    numAttentionHeads,
    numKeyValueHeads,
    attentionHeadDim,
    ropeTheta,
    useMemRope,
    useSharedAttentionAdapter,
    adapterRank,
    intermediateSize,
    maxPositionEmbeddings,
  };
}

// ---------------------------------------------------------------------------------------------
// Mamba2

function parseMamba2(f: Fields): Mamba2Config {
  const r = f.raw;
  if (r.use_bias === true) throw new UnsupportedError('mamba2 config: use_bias = true (in/out projection biases) is not supported');
  if (r.use_conv_bias === false) throw new UnsupportedError('mamba2 config: use_conv_bias = false is not supported');
  if (r.rms_norm === false) throw new UnsupportedError('mamba2 config: rms_norm = false (no gated norm) is not supported');
  const hiddenSize = f.int(['hidden_size']);
  const numLayers = f.int(['num_hidden_layers']);
  const vocabSize = f.int(['vocab_size']);
  const expand = f.num(['expand'], 2, undefined, true);
  const dState = f.int(['state_size'], 128);
  const nGroups = f.int(['n_groups'], 1);
  const convKernel = f.int(['conv_kernel'], 4);
  const nHeads = f.int(['num_heads']);
  const headDim = f.int(['head_dim'], 64);
  const chunkSize = f.int(['chunk_size'], 256);
  const mixer = { hiddenSize, dState, nHeads, headDim, nGroups, expand, convKernel, chunkSize };
  const derived = mixerDerived(f, mixer, { heads: 'num_heads', headDim: 'head_dim', groups: 'n_groups', expand: 'expand' });
  const limit = f.range('time_step_limit') ?? [0, Infinity];
  const eps = f.num(['layer_norm_epsilon', 'rms_norm_eps'], 1e-5, undefined, true);
  // transformers' Mamba2Config defaults.
  const tokens = commonTokens(f, { bos: 0, eos: [2], pad: 1 });
  checkTokenRange(f, vocabSize, tokens);
  return {
    arch: 'mamba2',
    ...mixer,
    ...derived,
    dtMin: limit[0],
    dtMax: limit[1],
    mixerNormEps: eps,
    vocabSize,
    numLayers,
    rmsNormEps: eps,
    tieWordEmbeddings: f.bool(['tie_word_embeddings'], true),
    ...tokens,
  };
}
