// parseConfig: the three Zamba2 spellings and Mamba2, non-finite number forms, derived fields,
// and typed errors that name the offending field.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig, parseConfigJson } from '../../src/models/parse-config.ts';
import { LayerKind, type Mamba2Config, type Zamba2Config } from '../../src/models/config.ts';
import { ConfigError, UnsupportedError } from '../../src/errors.ts';

const HYBRID_1_2B = [5, 11, 17, 23, 29, 35];

function kinds(n: number, hybrid: number[], m: string, g: string): string[] {
  return Array.from({ length: n }, (_, i) => (hybrid.includes(i) ? g : m));
}

// Zamba2-1.2B as Zyphra's original fork wrote it (field names from the public config.json).
const OLD_ZYPHRA_1_2B = `{
  "add_bias_linear": false, "architectures": ["Zamba2ForCausalLM"], "attention_dropout": 0.0,
  "bos_token_id": 1, "conv_dimension": 4, "eos_token_id": 2, "expansion_factor": 2,
  "ffn_hidden_size": 8192, "ft_lora": false, "gated_linear_unit": true, "hidden_size": 2048,
  "kv_channels": 64, "layers_block_type": ${JSON.stringify(kinds(38, HYBRID_1_2B, 'm', 'g'))},
  "lora_rank": 128, "mamba_headdim": 64, "mamba_ngroups": 1, "max_position_embeddings": 4096,
  "model_type": "zamba2", "num_attention_heads": 32, "num_hidden_layers": 38, "num_key_value_heads": 32,
  "num_mem_blocks": 1, "num_query_groups": 32, "pad_token_id": 0, "rms_norm_eps": 1e-05,
  "rope_theta": 10000, "sliding_window": null, "state_size": 128, "use_mem_rope": true,
  "use_shared_attention_lora": true, "use_shared_block_lora": true, "vocab_size": 32000
}`;

// The same model in transformers' spelling, with a bare Infinity (Python json.dumps output).
const TRANSFORMERS_1_2B = `{
  "adapter_rank": 128, "add_bias_linear": false, "architectures": ["Zamba2ForCausalLM"],
  "attention_head_dim": 128, "attention_hidden_size": 4096, "bos_token_id": 1, "chunk_size": 256,
  "eos_token_id": 2, "hidden_act": "gelu", "hidden_size": 2048, "hybrid_layer_ids": [5, 11, 17, 23, 29, 35],
  "intermediate_size": 8192, "kv_channels": 64,
  "layers_block_type": ${JSON.stringify(kinds(38, HYBRID_1_2B, 'mamba', 'hybrid'))},
  "mamba_d_conv": 4, "mamba_d_state": 128, "mamba_expand": 2, "mamba_headdim": 64, "mamba_ngroups": 1,
  "max_position_embeddings": 4096, "model_type": "zamba2", "n_mamba_heads": 64, "num_attention_heads": 32,
  "num_hidden_layers": 38, "num_key_value_heads": 32, "num_mem_blocks": 1, "pad_token_id": 0,
  "rms_norm_eps": 1e-05, "rope_theta": 10000, "time_step_floor": 0.0001, "time_step_limit": [0.0, Infinity],
  "time_step_max": 0.1, "time_step_min": 0.001, "use_cache": true, "use_conv_bias": true,
  "use_long_context": false, "use_mem_rope": true, "use_shared_attention_adapter": true, "vocab_size": 32000
}`;

// Newest transformers: layer_types, head_dim, rope_parameters; Infinity as {"__float__": ...}.
const NEWEST_1_2B = `{
  "adapter_rank": 128, "head_dim": 128, "hidden_size": 2048, "intermediate_size": 8192,
  "layer_types": ${JSON.stringify(kinds(38, HYBRID_1_2B, 'linear_attention', 'hybrid'))},
  "mamba_d_conv": 4, "mamba_d_state": 128, "mamba_expand": 2, "mamba_ngroups": 1, "model_type": "zamba2",
  "n_mamba_heads": 64, "num_attention_heads": 32, "num_hidden_layers": 38, "num_key_value_heads": 32,
  "num_mem_blocks": 1, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
  "time_step_limit": [0.0, {"__float__": "Infinity"}], "time_step_min": 0.001,
  "use_mem_rope": true, "use_shared_attention_adapter": true, "vocab_size": 32000, "eos_token_id": [2]
}`;

function check1_2B(c: Zamba2Config, label: string) {
  const expect: Partial<Zamba2Config> = {
    arch: 'zamba2', hiddenSize: 2048, numLayers: 38, vocabSize: 32000, dState: 128, nHeads: 64, headDim: 64,
    nGroups: 1, expand: 2, convKernel: 4, dInner: 4096, convDim: 4096 + 2 * 128, inProjDim: 4096 + 4352 + 64,
    chunkSize: 256, dtMin: 0.001, dtMax: Infinity, mixerNormEps: 1e-5, rmsNormEps: 1e-5, tieWordEmbeddings: true,
    numMemBlocks: 1, numAttentionHeads: 32, numKeyValueHeads: 32, attentionHeadDim: 128, ropeTheta: 10000,
    useMemRope: true, useSharedAttentionAdapter: true, adapterRank: 128, intermediateSize: 8192,
    maxPositionEmbeddings: 4096, bosTokenId: 1,
  };
  for (const [k, v] of Object.entries(expect)) assert.equal((c as unknown as Record<string, unknown>)[k], v, `${label}: ${k}`);
  assert.equal(c.hybridLayerIds, HYBRID_1_2B, `${label}: hybridLayerIds`);
  assert.equal(c.eosTokenIds, [2], `${label}: eos`);
  assert.is(c.layerKinds.length, 38);
  assert.is(c.layerKinds[5], LayerKind.Hybrid);
  assert.is(c.layerKinds[6], LayerKind.Mamba);
  assert.is(c.layerKinds.filter((k) => k === LayerKind.Hybrid).length, 6);
}

test('zamba2 1.2B: old Zyphra, transformers and newest spellings give the same config', () => {
  const a = parseConfig(OLD_ZYPHRA_1_2B) as Zamba2Config;
  const b = parseConfig(TRANSFORMERS_1_2B) as Zamba2Config;
  const c = parseConfig(NEWEST_1_2B) as Zamba2Config;
  check1_2B(a, 'old');
  check1_2B(b, 'transformers');
  check1_2B(c, 'newest');
  // Old fork: no time_step_min field -> the transformers default 0.001.
  assert.is(a.dtMin, 0.001);
  // The old fork's padToken default and explicit values.
  assert.is(b.padTokenId, 0);
});

test('zamba2 2.7B transformers spelling: two shared blocks, no rope, no attention adapters', () => {
  const hybrid = [6, 12, 18, 24, 30, 36, 42, 47, 51];
  const c = parseConfig({
    model_type: 'zamba2', hidden_size: 2560, num_hidden_layers: 54, vocab_size: 32000, mamba_d_state: 64,
    mamba_expand: 2, n_mamba_heads: 80, mamba_ngroups: 1, num_attention_heads: 32, num_mem_blocks: 2,
    layers_block_type: kinds(54, hybrid, 'mamba', 'hybrid'), use_mem_rope: false, use_shared_attention_adapter: false,
    time_step_min: 0.002,
  }) as Zamba2Config;
  assert.is(c.headDim, 64);
  assert.is(c.attentionHeadDim, 160, '2H / heads');
  assert.is(c.intermediateSize, 4 * 2560, 'defaults to 4H');
  assert.equal(c.hybridLayerIds, hybrid);
  assert.is(c.numMemBlocks, 2);
  assert.is(c.dtMin, 0.002);
  assert.is(c.numKeyValueHeads, 32, 'defaults to heads');
  assert.is(c.useMemRope, false);
  assert.is(c.maxPositionEmbeddings, 4096);
});

test('zamba2: hybrid_layer_ids alone builds layer kinds; long context stretches theta', () => {
  const c = parseConfig({
    model_type: 'zamba2', hidden_size: 64, num_hidden_layers: 5, vocab_size: 100, mamba_d_state: 8,
    n_mamba_heads: 4, hybrid_layer_ids: [3, 1], num_attention_heads: 4, use_mem_rope: true, use_long_context: true,
  }) as Zamba2Config;
  assert.equal(c.layerKinds, ['mamba', 'hybrid', 'mamba', 'hybrid', 'mamba']);
  assert.equal(c.hybridLayerIds, [1, 3], 'sorted');
  assert.is(c.attentionHeadDim, 32);
  // transformers: theta * 8 ** (hd / (hd - 2)), max positions 16384.
  assert.ok(Math.abs(c.ropeTheta - 10000 * 8 ** (32 / 30)) < 1e-6);
  assert.is(c.maxPositionEmbeddings, 16384);
});

test('zamba2: a finite time_step_limit sets dtMax; dtMin is time_step_min (the limit lower bound is unused)', () => {
  const base = { model_type: 'zamba2', hidden_size: 64, num_hidden_layers: 2, vocab_size: 100, mamba_d_state: 8, n_mamba_heads: 4, hybrid_layer_ids: [1] };
  let c = parseConfig({ ...base, time_step_limit: [0.0, 0.5] });
  assert.is(c.dtMax, 0.5);
  assert.is(c.dtMin, 0.001);
  c = parseConfig({ ...base, time_step_limit: [0.01, 1e9], time_step_min: 0.005 });
  assert.is(c.dtMin, 0.005);
  assert.is(c.dtMax, 1e9);
  c = parseConfig({ ...base, time_step_limit: null });
  assert.is(c.dtMax, Infinity);
});

const MAMBA2_130M = `{
  "architectures": ["Mamba2ForCausalLM"], "bos_token_id": 0, "chunk_size": 256, "conv_kernel": 4,
  "eos_token_id": 0, "expand": 2, "head_dim": 64, "hidden_act": "silu", "hidden_size": 768,
  "layer_norm_epsilon": 1e-05, "model_type": "mamba2", "n_groups": 1, "num_heads": 24,
  "num_hidden_layers": 24, "pad_token_id": 0, "rescale_prenorm_residual": false, "residual_in_fp32": true,
  "rms_norm": true, "state_size": 128, "tie_word_embeddings": true, "time_step_floor": 0.0001,
  "time_step_limit": [0.0, Infinity], "time_step_max": 0.1, "time_step_min": 0.001, "time_step_rank": 48,
  "use_bias": false, "use_cache": true, "use_conv_bias": true, "vocab_size": 50288
}`;

test('mamba2 130m: fields, derived sizes, time_step_limit with bare Infinity', () => {
  const c = parseConfig(MAMBA2_130M) as Mamba2Config;
  assert.is(c.arch, 'mamba2');
  assert.is(c.hiddenSize, 768);
  assert.is(c.nHeads, 24);
  assert.is(c.headDim, 64);
  assert.is(c.dInner, 1536);
  assert.is(c.convDim, 1536 + 256);
  assert.is(c.inProjDim, 1536 + 1792 + 24);
  assert.is(c.dtMin, 0);
  assert.is(c.dtMax, Infinity);
  assert.is(c.mixerNormEps, 1e-5);
  assert.is(c.rmsNormEps, 1e-5);
  assert.is(c.tieWordEmbeddings, true);
  assert.equal(c.eosTokenIds, [0]);
  assert.is(c.vocabSize, 50288);
});

test('mamba2 codestral-like: groups, untied, limit and eps, tie default true when absent', () => {
  const c = parseConfig({
    model_type: 'mamba2', hidden_size: 4096, num_hidden_layers: 64, vocab_size: 32768, num_heads: 128, head_dim: 64,
    n_groups: 8, state_size: 128, tie_word_embeddings: false, time_step_limit: [0.0, 0.25], layer_norm_epsilon: 1e-6,
    eos_token_id: [2, 7],
  });
  assert.is(c.nGroups, 8);
  assert.is(c.convDim, 8192 + 2 * 8 * 128);
  assert.is(c.tieWordEmbeddings, false);
  assert.is(c.dtMax, 0.25);
  assert.is(c.mixerNormEps, 1e-6);
  assert.equal(c.eosTokenIds, [2, 7]);
  const d = parseConfig({ model_type: 'mamba2', hidden_size: 64, num_hidden_layers: 1, vocab_size: 10, num_heads: 2 });
  assert.is(d.tieWordEmbeddings, true);
  assert.is(d.headDim, 64);
  assert.is(d.dtMax, Infinity);
});

test('non-finite tokens: bare forms outside strings, __float__ objects, strings left alone', () => {
  const o = parseConfigJson('{"a": Infinity, "b": -Infinity, "c": NaN, "d": [1, -Infinity], "s": "Infinity NaN -Infinity", ' +
    '"e": {"__float__": "-inf"}, "f": {"__float__": "1e3"}, "q": "a \\" Infinity"}');
  assert.is(o.a, Infinity);
  assert.is(o.b, -Infinity);
  assert.ok(Number.isNaN(o.c));
  assert.equal(o.d, [1, -Infinity]);
  assert.is(o.s, 'Infinity NaN -Infinity');
  assert.is(o.e, -Infinity);
  assert.is(o.f, 1000);
  assert.is(o.q, 'a " Infinity');
  // Already-parsed objects with __float__ wrappers are accepted too.
  const c = parseConfig({ model_type: 'mamba2', hidden_size: 64, num_hidden_layers: 1, vocab_size: 10, num_heads: 2,
    time_step_limit: [0, { __float__: 'Infinity' }] });
  assert.is(c.dtMax, Infinity);
  throwsNaming(() => parseConfigJson('{"a": {"__float__": "lots"}}'), ConfigError, /__float__/, 'bad float');
});

function throwsNaming(fn: () => unknown, cls: new (...a: never[]) => Error, field: RegExp, label: string) {
  try {
    fn();
  } catch (e) {
    assert.instance(e, cls, `${label}: error class (${(e as Error).message})`);
    assert.match((e as Error).message, field, `${label}: message names the field`);
    return;
  }
  assert.unreachable(`${label}: did not throw`);
}

const Z = () => JSON.parse(JSON.stringify({
  model_type: 'zamba2', hidden_size: 64, num_hidden_layers: 4, vocab_size: 100, mamba_d_state: 8,
  n_mamba_heads: 4, mamba_ngroups: 2, layers_block_type: ['mamba', 'hybrid', 'mamba', 'hybrid'], num_attention_heads: 4,
}));

test('errors: missing, negative, non-integer and inconsistent fields name the field', () => {
  const cases: [string, (o: Record<string, unknown>) => void, RegExp, (new (...a: never[]) => Error)?][] = [
    ['missing hidden_size', (o) => { delete o.hidden_size; }, /hidden_size.*missing/],
    ['missing d_state', (o) => { delete o.mamba_d_state; }, /mamba_d_state.*missing/],
    ['negative vocab', (o) => { o.vocab_size = -3; }, /vocab_size/],
    ['fractional layers', (o) => { o.num_hidden_layers = 3.5; }, /num_hidden_layers/],
    ['string size', (o) => { o.hidden_size = '64'; }, /hidden_size/],
    ['di != NH*P', (o) => { o.mamba_headdim = 16; }, /n_mamba_heads.*mamba_headdim/],
    ['NH % G', (o) => { o.mamba_ngroups = 3; }, /mamba_ngroups/],
    ['hybrid id out of range', (o) => { delete o.layers_block_type; o.hybrid_layer_ids = [1, 9]; }, /hybrid_layer_ids\[1\].*out of range/],
    ['hybrid ids disagree', (o) => { o.hybrid_layer_ids = [1, 2]; }, /hybrid_layer_ids/],
    ['unknown layer type', (o) => { (o.layers_block_type as string[])[2] = 'moe'; }, /layers_block_type\[2\].*unknown layer type "moe"/],
    ['layer list length', (o) => { o.layers_block_type = ['mamba']; }, /layers_block_type.*1 entries/],
    ['no layer kinds', (o) => { delete o.layers_block_type; }, /layers_block_type.*missing/],
    ['kv heads', (o) => { o.num_key_value_heads = 3; }, /num_key_value_heads/],
    ['attention heads', (o) => { o.num_attention_heads = 5; }, /num_attention_heads/],
    ['eos range', (o) => { o.eos_token_id = [2, 100]; }, /eos_token_id/],
    ['bad limit', (o) => { o.time_step_limit = [1, 0]; }, /time_step_limit/],
    ['bad rms eps', (o) => { o.rms_norm_eps = -1; }, /rms_norm_eps/],
    ['bias linear', (o) => { o.add_bias_linear = true; }, /add_bias_linear/, UnsupportedError],
    ['rope type', (o) => { o.rope_parameters = { rope_type: 'yarn', rope_theta: 1 }; }, /rope_type/, UnsupportedError],
  ];
  for (const [label, mutate, re, cls] of cases) {
    const o = Z();
    parseConfig(o); // the base is valid
    mutate(o);
    throwsNaming(() => parseConfig(o), cls ?? ConfigError, re, label);
  }
});

test('errors: model_type, malformed JSON, non-object', () => {
  throwsNaming(() => parseConfig({ model_type: 'llama', hidden_size: 8 }), UnsupportedError, /"llama".*not supported/, 'llama');
  throwsNaming(() => parseConfig({ hidden_size: 8 }), ConfigError, /model_type/, 'no model_type');
  throwsNaming(() => parseConfig({ d_model: 768, ssm_cfg: { layer: 'Mamba2' } }), UnsupportedError, /state-spaces/, 'mamba_ssm config');
  throwsNaming(() => parseConfig('{"model_type": "zamba2",'), ConfigError, /not valid JSON/, 'truncated');
  throwsNaming(() => parseConfig('[1, 2]'), ConfigError, /object/, 'array');
  throwsNaming(() => parseConfig({ model_type: 'mamba2', hidden_size: 64, num_hidden_layers: 1, vocab_size: 10, num_heads: 3 }),
    ConfigError, /num_heads.*head_dim/, 'mamba2 heads');
  throwsNaming(() => parseConfig({ model_type: 'mamba2', hidden_size: 64, num_hidden_layers: 1, vocab_size: 10, num_heads: 2, use_bias: true }),
    UnsupportedError, /use_bias/, 'mamba2 bias');
});

test.run();
