// Mamba2 GGUF files (src/io/gguf-writer.ts encodeMamba2Gguf, llama.cpp conventions) read back
// through the mapping (src/io/gguf-mamba2.ts): the config equals the one parsed from the
// fixture's config.json, every tensor layout.ts expects is mapped with our name and shape, and the
// values are the fixture's (exact for F32, rounded for F16/BF16, the reference dequantization for
// block types; A_log recovered from A = -exp(A_log) within the documented bound). Then the
// refusals (architecture, missing/misshapen tensors, unsupported types) and the tokenizer from
// metadata (a hand-checked placeholder vocabulary, and Llama 3's tokenizer.json through GGUF
// encoding exactly like the original).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CheckpointError, UnsupportedError } from '../../src/errors.ts';
import { type GgufKV, GgufType, readGgufHeader } from '../../src/io/gguf.ts';
import { aLogFromA, ggufRowChunks, mapMamba2Gguf, readGgufMamba2, readMappedTensorF32 } from '../../src/io/gguf-mamba2.ts';
import { GPT2_BYTE_CHARS, ggufTokenizer, tokenizerToGguf } from '../../src/io/gguf-tokenizer.ts';
import { type GgufDataType, type GgufTensorIn, encodeGguf, encodeMamba2Gguf, gguf } from '../../src/io/gguf-writer.ts';
import { MemorySource } from '../../src/io/sources.ts';
import { expectedTensors } from '../../src/models/layout.ts';
import { parseConfig } from '../../src/models/parse-config.ts';
import { GGML_TYPE, type QuantFormat } from '../../src/quant/formats.ts';
import { bf16BitsToNumber, f32ToBf16Bits, roundToF16 } from '../../src/quant/half.ts';
import { dequantizeBlocks, quantizeBlocks } from '../../src/quant/reference.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { makeFixture, type Mamba2Variant } from '../fixtures/index.ts';
import { mulberry32 } from '../fixtures/rng.ts';
import { generateCorpus } from '../tokenizer-corpus/corpus.ts';
import { readFiles } from '../tokenizer-corpus/load.ts';

type Tensors = Map<string, { shape: number[]; values: ArrayLike<number> }>;
const QF: Partial<Record<GgufDataType, QuantFormat>> = { Q8_0: 'q8_0', Q4_0: 'q4_0', Q5_0: 'q5_0', Q4_K: 'q4_k', Q6_K: 'q6_k' };

/** The values a tensor holds once written as `type`. */
function stored(type: GgufDataType, values: ArrayLike<number>): Float32Array {
  const f = Float32Array.from(values);
  if (type === 'F32') return f;
  if (type === 'F16') return f.map((v) => roundToF16(v));
  if (type === 'BF16') return f.map((v) => bf16BitsToNumber(f32ToBf16Bits(v)));
  return dequantizeBlocks(QF[type]!, quantizeBlocks(QF[type]!, f));
}

const src = (bytes: Uint8Array) => new MemorySource({ 'm.gguf': bytes });

async function checkRoundTrip(config: Record<string, unknown>, tensors: Tensors, matrixType: GgufDataType, outputType?: GgufDataType, expectTypes?: Record<string, GgufDataType>) {
  const { bytes, types } = encodeMamba2Gguf({ config, tensors, matrixType, outputType });
  for (const [k, t] of Object.entries(expectTypes ?? {})) assert.is(types.get(k), t, `${k} written as`);
  const m = await readGgufMamba2(src(bytes), 'm.gguf');
  const want = parseConfig(config);
  for (const k of ['arch', 'hiddenSize', 'numLayers', 'vocabSize', 'dState', 'nHeads', 'headDim', 'nGroups', 'convKernel',
    'dInner', 'convDim', 'inProjDim', 'tieWordEmbeddings', 'bosTokenId', 'eosTokenIds', 'padTokenId'] as const) {
    assert.equal(m.config[k], want[k], `config ${k}`);
  }
  assert.ok(Math.abs(m.config.rmsNormEps - want.rmsNormEps) <= want.rmsNormEps * 2 ** -23, 'eps (stored as f32)');
  assert.equal([m.config.dtMin, m.config.dtMax], [0, Infinity], 'llama.cpp has no dt clamp');
  const expected = expectedTensors(m.config);
  assert.equal([...m.tensors.keys()].sort(), expected.map((t) => t.name).sort());
  assert.equal(m.unusedTensors, []);
  for (const e of expected) {
    const t = m.tensors.get(e.name)!;
    assert.equal(t.shape, e.shape, `${e.name} shape`);
    const got = await readMappedTensorF32(src(bytes), m, e.name);
    const orig = tensors.get(e.name)!.values;
    const typ = types.get(t.ggufName)!;
    if (t.transform === 'a-to-a-log') {
      // A = f32(-exp(f32(a))) has relative error <= 2^-24, so log(-A) = a + O(2^-24) before the
      // final f32 rounding (half an ulp of a).
      for (let i = 0; i < got.length; i++) {
        const a = Math.fround(orig[i]);
        const ulp = 2 ** (Math.floor(Math.log2(Math.abs(a) || 2 ** -126)) - 23);
        assert.ok(Math.abs(got[i] - a) <= 2 ** -24 * 1.01 + ulp / 2, `${e.name}[${i}]: ${got[i]} vs ${a}`);
      }
      continue;
    }
    const want = stored(typ, orig);
    for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) assert.unreachable(`${e.name}[${i}] (${typ}): ${got[i]} vs ${want[i]}`);
    if (t.role !== 'vector') assert.is(t.format, QF[typ], `${e.name} device format`);
  }
  return m;
}

for (const variant of ['tied-g1', 'untied-g2'] as Mamba2Variant[]) {
  const fx = makeFixture({ arch: 'mamba2', variant, dtype: 'f32', seed: 3 });
  const tensors: Tensors = new Map([...fx.weights].map(([k, v]) => [k, { shape: v.shape, values: v.values }]));
  // tied-g1: H 32, di 64 (rows of 32 and 64 fit Q8_0/Q4_0/Q5_0). untied-g2: H 24, di 48: no block
  // type fits rows of 24 or 48 (48 % 32 = 16), so llama.cpp's rule falls back to F16 everywhere.
  const narrow = variant === 'untied-g2';
  for (const type of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q5_0'] as GgufDataType[]) {
    test(`mamba2 ${variant} as ${type}: config and every tensor map back`, async () => {
      const mat: GgufDataType = narrow && type.startsWith('Q') ? 'F16' : type;
      await checkRoundTrip(fx.config, tensors, type, undefined, {
        'blk.0.ssm_in.weight': mat, 'blk.0.ssm_out.weight': mat, 'token_embd.weight': mat, 'blk.0.ssm_a': 'F32', 'blk.0.ssm_norm.weight': 'F32',
      });
    });
  }
  test(`mamba2 ${variant}: Q4_K_M on rows that are not multiples of 256 falls back like llama.cpp`, async () => {
    // Q4_K -> Q5_0 and Q6_K -> Q8_0 where rows are multiples of 32 (tied-g1), F16 where not.
    const m = await checkRoundTrip(fx.config, tensors, 'Q4_K', 'Q6_K', narrow
      ? { 'blk.0.ssm_in.weight': 'F16', 'blk.0.ssm_out.weight': 'F16', 'token_embd.weight': 'F16', 'output.weight': 'F16' }
      : { 'blk.0.ssm_in.weight': 'Q5_0', 'blk.0.ssm_out.weight': 'Q5_0', 'token_embd.weight': 'Q8_0' });
    assert.is(m.tensors.get('backbone.layers.0.mixer.in_proj.weight')!.format, narrow ? undefined : 'q5_0');
  });
}

test('mamba2 with rows of 256/512: real Q4_K and Q6_K blocks', async () => {
  // H 256, 8 heads of 64 (di 512), N 16, G 2, one layer, vocab 300, tied.
  const config = {
    model_type: 'mamba2', hidden_size: 256, num_hidden_layers: 1, num_heads: 8, head_dim: 64, state_size: 16, n_groups: 2,
    conv_kernel: 4, expand: 2, vocab_size: 300, layer_norm_epsilon: 1e-5, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0, pad_token_id: 0,
  };
  const cfg = parseConfig(config);
  const r = mulberry32(17);
  const tensors: Tensors = new Map();
  for (const e of expectedTensors(cfg)) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const v = Float32Array.from({ length: n }, () => (r() - 0.5) * 0.2);
    if (e.name.endsWith('A_log')) v.forEach((_, i) => { v[i] = Math.log(0.1 + r()); });
    tensors.set(e.name, { shape: [...e.shape], values: v });
  }
  const m = await checkRoundTrip(config, tensors, 'Q4_K', 'Q6_K', {
    'blk.0.ssm_in.weight': 'Q4_K', 'blk.0.ssm_out.weight': 'Q4_K', 'token_embd.weight': 'Q6_K',
  });
  assert.is(m.tensors.get('backbone.embeddings.weight')!.format, 'q6_k');
  assert.is(m.tensors.get('backbone.layers.0.mixer.out_proj.weight')!.format, 'q4_k');
  const h = m.header;
  assert.is(h.metadata.get('general.file_type')!.value, 15); // LLAMA_FTYPE_MOSTLY_Q4_K_M
  assert.is(h.metadata.get('general.quantization_version')!.value, 2);
  assert.is(h.metadata.get('mamba2.ssm.time_step_rank')!.value, 8);
  assert.is(h.metadata.get('mamba2.ssm.inner_size')!.value, 512);
  assert.equal(h.tensors.get('blk.0.ssm_norm.weight')!.ne, [256, 2]);
  assert.equal(h.tensors.get('blk.0.ssm_a')!.ne, [1, 8]);
  assert.equal(h.tensors.get('blk.0.ssm_conv1d.weight')!.ne, [4, 512 + 2 * 2 * 16]);
});

test('aLogFromA: log(-A) in f64 rounded once; non-negative A refused', () => {
  const a = Float32Array.of(-1, -0.1, -Math.E);
  const l = aLogFromA(a);
  assert.equal([...l], [0, Math.fround(Math.log(Math.fround(0.1))), Math.fround(Math.log(Math.fround(Math.E)))]);
  assert.throws(() => aLogFromA([0]), (e: unknown) => e instanceof CheckpointError);
  assert.throws(() => aLogFromA([1]), (e: unknown) => e instanceof CheckpointError);
  assert.throws(() => aLogFromA([NaN]), (e: unknown) => e instanceof CheckpointError);
});

// ---------------------------------------------------------------------------------------------
// Refusals

const fx = makeFixture({ arch: 'mamba2', variant: 'tied-g1', dtype: 'f32', seed: 4 });
const fxTensors: Tensors = new Map([...fx.weights].map(([k, v]) => [k, { shape: v.shape, values: v.values }]));
const BASE = encodeMamba2Gguf({ config: fx.config, tensors: fxTensors, matrixType: 'Q8_0' }).bytes;

/** Re-encodes BASE after editing its metadata list and tensor list. */
async function rebuild(edit: (meta: [string, GgufKV][], tensors: GgufTensorIn[]) => void): Promise<Uint8Array> {
  const h = await readGgufHeader(src(BASE), 'm.gguf');
  const meta = [...h.metadata.entries()];
  const tensors: GgufTensorIn[] = [...h.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, type: t.type.id, data: BASE.slice(t.offset, t.offset + t.byteLength) }));
  edit(meta, tensors);
  return encodeGguf(meta, tensors);
}

async function refuses(bytes: Uint8Array, cls: typeof CheckpointError | typeof UnsupportedError, re: RegExp, tensor?: string) {
  try {
    await readGgufMamba2(src(bytes), 'm.gguf');
  } catch (e) {
    assert.instance(e, cls, (e as Error).message);
    assert.match((e as Error).message, re, (e as Error).message);
    if (tensor) assert.is((e as CheckpointError).tensor ?? ((e as Error).message.includes(tensor) ? tensor : undefined), tensor);
    return;
  }
  assert.unreachable(`accepted, expected ${re}`);
}

const setMeta = (meta: [string, GgufKV][], key: string, v: GgufKV | undefined) => {
  const i = meta.findIndex(([k]) => k === key);
  if (v === undefined) meta.splice(i, 1); else if (i >= 0) meta[i] = [key, v]; else meta.push([key, v]);
};

test('other architectures are refused with UnsupportedError', async () => {
  await refuses(await rebuild((m) => setMeta(m, 'general.architecture', gguf.str('llama'))), UnsupportedError, /architecture "llama" is not supported/);
  await refuses(await rebuild((m) => setMeta(m, 'general.architecture', gguf.str('mamba'))), UnsupportedError, /"mamba"/);
  await refuses(await rebuild((m) => setMeta(m, 'general.architecture', undefined)), CheckpointError, /general.architecture" is missing/);
  await refuses(await rebuild((m) => setMeta(m, 'general.architecture', gguf.u32(1))), CheckpointError, /must be a string/);
});

test('missing or inconsistent metadata', async () => {
  await refuses(await rebuild((m) => setMeta(m, 'mamba2.ssm.state_size', undefined)), CheckpointError, /state_size" is missing/);
  await refuses(await rebuild((m) => setMeta(m, 'mamba2.block_count', gguf.u32(0))), CheckpointError, /block_count" = 0 is out of range/);
  await refuses(await rebuild((m) => setMeta(m, 'mamba2.ssm.time_step_rank', gguf.u32(7))), CheckpointError, /not a multiple of ssm.time_step_rank/);
  await refuses(await rebuild((m) => setMeta(m, 'mamba2.ssm.group_count', gguf.u32(3))), CheckpointError, /group_count 3/);
  await refuses(await rebuild((m) => setMeta(m, 'mamba2.embedding_length', gguf.u32(16))), CheckpointError, /token_embd.weight.*not \[vocab, 16\]/);
  await refuses(await rebuild((m) => setMeta(m, 'mamba2.attention.layer_norm_rms_epsilon', gguf.str('x'))), CheckpointError, /must be a number/);
  // A block count above the tensors present.
  await refuses(await rebuild((m) => setMeta(m, 'mamba2.block_count', gguf.u32(9))), CheckpointError, /tensor is missing/, 'blk.4.attn_norm.weight');
});

test('missing, misshapen and wrongly typed tensors', async () => {
  await refuses(await rebuild((_, t) => { t.splice(t.findIndex((x) => x.name === 'blk.1.ssm_d'), 1); }), CheckpointError, /tensor is missing/, 'blk.1.ssm_d');
  await refuses(await rebuild((_, t) => { t.splice(t.findIndex((x) => x.name === 'output_norm.weight'), 1); }), CheckpointError, /tensor is missing/, 'output_norm.weight');
  await refuses(await rebuild((_, t) => {
    const i = t.findIndex((x) => x.name === 'blk.0.ssm_norm.weight');
    t[i] = { ...t[i], shape: [t[i].shape[1]] }; // flattened: llama.cpp writes [G, di/G]
  }), CheckpointError, /shape \[64\] does not match the metadata: expected \[1,64\]/, 'blk.0.ssm_norm.weight');
  await refuses(await rebuild((_, t) => {
    const i = t.findIndex((x) => x.name === 'blk.2.ssm_out.weight');
    t[i] = { ...t[i], type: GGML_TYPE.Q4_1, data: new Uint8Array((t[i].shape[0] * t[i].shape[1] / 32) * 20) };
  }), UnsupportedError, /blk.2.ssm_out.weight.*matrix stored as Q4_1 is not supported/);
  await refuses(await rebuild((_, t) => {
    const i = t.findIndex((x) => x.name === 'blk.0.ssm_norm.weight');
    t[i] = { ...t[i], type: GGML_TYPE.Q8_0, data: new Uint8Array(2 * 34) };
  }), UnsupportedError, /vector stored as Q8_0/);
  const m = mapMamba2Gguf(await readGgufHeader(src(await rebuild((_, t) => { t.push({ name: 'extra.weight', shape: [2], type: 0, data: new Uint8Array(8) }); })), 'm.gguf'));
  assert.equal(m.unusedTensors, ['extra.weight']);
});

test('ggufRowChunks: whole rows, bounded bytes, even block counts, contiguous cover', async () => {
  const m = await readGgufMamba2(src(encodeMamba2Gguf({ config: fx.config, tensors: fxTensors, matrixType: 'Q8_0' }).bytes), 'm.gguf');
  // out_proj [32, 64] as Q8_0: 2 blocks of 34 bytes per row (68 B); in_proj [inProj, 32]: 1 block per row (odd).
  const out = m.tensors.get('backbone.layers.0.mixer.out_proj.weight')!;
  assert.equal(ggufRowChunks(out, 204).map((c) => [c.row0, c.rows, c.end - c.start]), Array.from({ length: 11 }, (_, i) => i < 10 ? [3 * i, 3, 204] : [30, 2, 136]));
  const inp = m.tensors.get('backbone.layers.0.mixer.in_proj.weight')!;
  const cs = ggufRowChunks(inp, 34 * 5);
  assert.ok(cs.slice(0, -1).every((c) => c.rows === 4), 'odd blocks per row: chunk rows rounded down to even');
  assert.is(cs[0].start, inp.offset);
  for (let i = 1; i < cs.length; i++) assert.is(cs[i].start, cs[i - 1].end);
  assert.is(cs[cs.length - 1].end, inp.offset + inp.byteLength);
  assert.equal(ggufRowChunks(inp, 1).map((c) => c.rows).slice(0, 2), [2, 2], 'at least two rows when one row is an odd block count');
});

// ---------------------------------------------------------------------------------------------
// Tokenizer from metadata

test('placeholder vocabulary: byte characters, decoded by hand', async () => {
  const m = await readGgufMamba2(src(BASE), 'm.gguf');
  assert.ok(m.tokenizer);
  const tok = await Tokenizer.fromJSON(m.tokenizer!.tokenizerJson, m.tokenizer!.tokenizerConfig);
  // Token i is byte i's GPT-2 character: '!' (0x21) ... "'" (0x27) are ids 33..39; no merges.
  assert.equal(tok.encode('!"#$%&\''), [33, 34, 35, 36, 37, 38, 39]);
  assert.is(tok.decode([33, 39]), "!'");
  // The fixture's bos/eos id 0 is byte 0x00, spelled U+0100 in GPT-2's byte alphabet.
  assert.equal([fx.config.bos_token_id, m.tokenizer!.tokenizerConfig.bos_token, tok.bosTokenId], [0, '\u0100', 0]);
});

test('Llama 3 tokenizer.json -> GGUF -> tokenizer encodes and decodes exactly like the original', async () => {
  const { json, config } = readFiles('llama3');
  const meta: [string, GgufKV][] = [['general.architecture', gguf.str('mamba2')], ...tokenizerToGguf(json, config)];
  const h = await readGgufHeader(src(encodeGguf(meta, [])), 'm.gguf');
  assert.is(h.metadata.get('tokenizer.ggml.pre')!.value, 'llama-bpe');
  assert.is((h.metadata.get('tokenizer.ggml.tokens')!.value as string[]).length, 128256);
  const t = ggufTokenizer(h)!;
  const ours = await Tokenizer.fromJSON(t.tokenizerJson, t.tokenizerConfig);
  const orig = await Tokenizer.fromJSON(json, config);
  assert.is(ours.vocabSize, orig.vocabSize);
  assert.equal([ours.bosTokenId, ours.eosTokenIds], [orig.bosTokenId, orig.eosTokenIds]);
  const corpus = generateCorpus(21, 6, 1);
  for (const { category, text } of corpus) {
    for (const addSpecialTokens of [false, true]) {
      const a = ours.encode(text, { addSpecialTokens }), b = orig.encode(text, { addSpecialTokens });
      if (a.length !== b.length || a.some((v, i) => v !== b[i])) assert.unreachable(`${category}: ${JSON.stringify(text.slice(0, 60))} encodes differently`);
    }
    const ids = orig.encode(text);
    assert.is(ours.decode(ids), orig.decode(ids), `${category} decode`);
  }
  const special = '<|begin_of_text|>hi<|eot_id|>';
  assert.equal(ours.encode(special), orig.encode(special));
});

/**
 * A small GPT-2-style tokenizer.json: the 256 byte characters (ids 0..255 in byte order), merges
 * "h e" -> 256 "he", "l l" -> 257 "ll", "he ll" -> 258 "hell", "Ġ w" -> 259 "Ġw", and a special
 * <|end|> = 260.
 */
function miniTokenizer(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  GPT2_BYTE_CHARS.forEach((c, b) => { vocab[c] = b; });
  Object.assign(vocab, { he: 256, ll: 257, hell: 258, 'Ġw': 259, '<|end|>': 260 });
  return {
    version: '1.0', added_tokens: [{ id: 260, content: '<|end|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null, decoder: { type: 'ByteLevel' },
    model: { type: 'BPE', vocab, merges: ['h e', 'l l', 'he ll', 'Ġ w'] },
  };
}

test('a small GPT-2 tokenizer through GGUF: ids by hand', async () => {
  const meta: [string, GgufKV][] = [['general.architecture', gguf.str('mamba2')], ...tokenizerToGguf(miniTokenizer(), { eos_token: '<|end|>' }, { vocabRows: 264 })];
  const h = await readGgufHeader(src(encodeGguf(meta, [])), 'm.gguf');
  assert.equal((h.metadata.get('tokenizer.ggml.token_type')!.value as Int32Array).slice(255), Int32Array.of(1, 1, 1, 1, 1, 3, 5, 5, 5));
  assert.is(h.metadata.get('tokenizer.ggml.pre')!.value, 'gpt-2');
  const t = ggufTokenizer(h)!;
  const tok = await Tokenizer.fromJSON(t.tokenizerJson, t.tokenizerConfig);
  // "hello world": words "hello", " world" -> h e l l o -> he ll o -> hell o = [258, 111];
  // "Ġworld" -> Ġw o r l d = [259, 111, 114, 108, 100]; then the special token.
  assert.equal(tok.encode('hello world<|end|>'), [258, 111, 259, 111, 114, 108, 100, 260]);
  assert.equal(tok.eosTokenIds, [260]);
  assert.is(tok.decode([258, 111, 259, 260], { skipSpecialTokens: true }), 'hello w');
  assert.is(tok.vocabSize, 264);
});

test('tokenizer refusals: other tokenizer models, unknown pre-tokenizers, missing or inconsistent keys', async () => {
  const withTok = async (edit: (m: [string, GgufKV][]) => void) => {
    const meta: [string, GgufKV][] = [['general.architecture', gguf.str('mamba2')], ...tokenizerToGguf(miniTokenizer(), undefined)];
    edit(meta);
    return readGgufHeader(src(encodeGguf(meta, [])), 'm.gguf');
  };
  const bad = async (edit: (m: [string, GgufKV][]) => void, cls: typeof CheckpointError | typeof UnsupportedError, re: RegExp) => {
    const h = await withTok(edit);
    assert.throws(() => ggufTokenizer(h), (e: unknown) => e instanceof cls && re.test((e as Error).message));
  };
  await bad((m) => setMeta(m, 'tokenizer.ggml.model', gguf.str('llama')), UnsupportedError, /"llama" is not supported/);
  await bad((m) => setMeta(m, 'tokenizer.ggml.pre', gguf.str('deepseek-coder')), UnsupportedError, /"deepseek-coder" is not a supported pre-tokenizer/);
  await bad((m) => setMeta(m, 'tokenizer.ggml.pre', undefined), UnsupportedError, /pre is missing/);
  await bad((m) => setMeta(m, 'tokenizer.ggml.tokens', undefined), CheckpointError, /tokens" is missing/);
  await bad((m) => setMeta(m, 'tokenizer.ggml.merges', undefined), CheckpointError, /merges" is missing/);
  await bad((m) => setMeta(m, 'tokenizer.ggml.token_type', gguf.i32s([1, 1])), CheckpointError, /2 entries for 261 tokens/);
  await bad((m) => setMeta(m, 'tokenizer.ggml.eos_token_id', gguf.u32(200000)), CheckpointError, /not a token id/);
  await bad((m) => setMeta(m, 'tokenizer.ggml.tokens', { type: GgufType.ARRAY, itemType: GgufType.INT32, value: Int32Array.of(1) }), CheckpointError, /array of strings/);
  assert.is(ggufTokenizer(await withTok((m) => setMeta(m, 'tokenizer.ggml.model', undefined))), undefined);
  assert.throws(() => tokenizerToGguf({ ...miniTokenizer(), pre_tokenizer: { type: 'Metaspace' } }, undefined), (e: unknown) => e instanceof UnsupportedError);
  assert.throws(() => tokenizerToGguf(miniTokenizer(), undefined, { vocabRows: 100 }), (e: unknown) => e instanceof UnsupportedError && /261 tokens but the embedding only 100 rows/.test((e as Error).message));
});

test.run();
