// Tokenizers in GGUF metadata <-> Hugging Face tokenizer.json, for byte-level BPE vocabularies
// (tokenizer.ggml.model "gpt2": GPT-2 / GPT-NeoX / Mamba2, Llama 3, Qwen 2).
//
// GGUF keys (llama.cpp's convert_hf_to_gguf.py and src/llama-vocab.cpp):
//   tokenizer.ggml.model        "gpt2" (byte-level BPE); "llama" (SentencePiece), "bert", ... refused
//   tokenizer.ggml.pre          pre-tokenizer family: "gpt-2"/"olmo"/"phi-2" (GPT-2 regex),
//                               "llama-bpe"/"llama3"/... (Llama 3 regex, ignore_merges),
//                               "qwen2"/... (Qwen 2 regex); others refused
//   tokenizer.ggml.tokens       string[]: token i's byte-level spelling (as in tokenizer.json's vocab)
//   tokenizer.ggml.token_type   i32[]: 1 normal, 2 unknown, 3 control (special added token),
//                               4 user-defined (added, not special), 5 unused (padding), 6 byte
//   tokenizer.ggml.merges       string[] "a b", in rank order
//   tokenizer.ggml.{bos,eos,unknown,padding}_token_id   u32
//   tokenizer.ggml.add_bos_token / add_eos_token        bool (llama.cpp's default: true for the
//                               Llama 3 family, false otherwise)
//   tokenizer.chat_template     string
import { CheckpointError, UnsupportedError } from '../errors.ts';
import { type GgufHeader, type GgufKV, GgufType, metaBool, metaInt, metaIntArray, metaString, metaStringArray } from './gguf.ts';

export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

type Family = 'gpt2' | 'llama3' | 'qwen2';

// tokenizer.json pre-tokenizer regexes of the families (the strings HF files carry).
const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// tokenizer.ggml.pre values whose llama.cpp pre-tokenizer is one of our three regexes.
const PRE_FAMILY: Record<string, Family> = {
  'gpt-2': 'gpt2', 'phi-2': 'gpt2', olmo: 'gpt2',
  llama3: 'llama3', 'llama-v3': 'llama3', 'llama-bpe': 'llama3', falcon3: 'llama3', pixtral: 'llama3',
  qwen2: 'qwen2', 'deepseek-r1-qwen': 'qwen2', megrez: 'qwen2',
};
const FAMILY_PRE: Record<Family, string> = { gpt2: 'gpt-2', llama3: 'llama-bpe', qwen2: 'qwen2' };

/** GPT-2's byte -> printable character table (the alphabet byte-level vocabularies are spelled in). */
export const GPT2_BYTE_CHARS: readonly string[] = (() => {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep.includes(b) ? b : 256 + extra++);
  return out;
})();

export interface HfTokenizer {
  /** A tokenizer.json object (src/tokenizer Tokenizer.fromJSON's first argument). */
  readonly tokenizerJson: Record<string, unknown>;
  /** A tokenizer_config.json object (its second argument). */
  readonly tokenizerConfig: Record<string, unknown>;
}

function preTokenizerOf(f: Family): Record<string, unknown> {
  if (f === 'gpt2') return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: f === 'llama3' ? LLAMA3_REGEX : QWEN2_REGEX }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
}

/**
 * The tokenizer a GGUF file's metadata describes, as tokenizer.json + tokenizer_config.json
 * objects, or undefined when the file has no tokenizer.ggml.model. UnsupportedError for
 * tokenizer models other than byte-level BPE and for unknown pre-tokenizer families;
 * CheckpointError for missing or inconsistent keys.
 */
export function ggufTokenizer(h: GgufHeader): HfTokenizer | undefined {
  const model = metaString(h, 'tokenizer.ggml.model');
  if (model === undefined) return undefined;
  if (model !== 'gpt2') {
    throw new UnsupportedError(`${h.file}: tokenizer.ggml.model "${model}" is not supported (only "gpt2", byte-level BPE); pass a tokenizer.json instead`);
  }
  const pre = metaString(h, 'tokenizer.ggml.pre');
  const family = pre === undefined ? undefined : PRE_FAMILY[pre];
  if (!family) {
    throw new UnsupportedError(`${h.file}: tokenizer.ggml.pre ${pre === undefined ? 'is missing' : `"${pre}" is not a supported pre-tokenizer`} (supported: ${Object.keys(PRE_FAMILY).join(', ')}); pass a tokenizer.json instead`);
  }
  const tokens = metaStringArray(h, 'tokenizer.ggml.tokens');
  if (!tokens) throw new CheckpointError(h.file, 'metadata "tokenizer.ggml.tokens" is missing');
  const merges = metaStringArray(h, 'tokenizer.ggml.merges');
  if (!merges) throw new CheckpointError(h.file, 'metadata "tokenizer.ggml.merges" is missing (required for a BPE tokenizer)');
  const types = metaIntArray(h, 'tokenizer.ggml.token_type');
  if (types && types.length !== tokens.length) {
    throw new CheckpointError(h.file, `tokenizer.ggml.token_type has ${types.length} entries for ${tokens.length} tokens`);
  }
  const id = (key: string): number | undefined => {
    const v = metaInt(h, key);
    if (v !== undefined && v >= tokens.length) throw new CheckpointError(h.file, `metadata "${key}" = ${v} is not a token id (${tokens.length} tokens)`);
    return v;
  };
  const bos = id('tokenizer.ggml.bos_token_id');
  const eos = id('tokenizer.ggml.eos_token_id');
  const unk = id('tokenizer.ggml.unknown_token_id');
  const pad = id('tokenizer.ggml.padding_token_id');
  const addBos = metaBool(h, 'tokenizer.ggml.add_bos_token') ?? family === 'llama3';
  const addEos = metaBool(h, 'tokenizer.ggml.add_eos_token') ?? false;

  const vocab: Record<string, number> = {};
  const added: Record<string, unknown>[] = [];
  for (let i = 0; i < tokens.length; i++) {
    vocab[tokens[i]] = i;
    const t = types?.[i] ?? TOKEN_TYPE.NORMAL;
    if (t === TOKEN_TYPE.CONTROL || t === TOKEN_TYPE.USER_DEFINED) {
      added.push({ id: i, content: tokens[i], single_word: false, lstrip: false, rstrip: false, normalized: t === TOKEN_TYPE.USER_DEFINED, special: t === TOKEN_TYPE.CONTROL });
    }
  }
  const single: unknown[] = [];
  const special: Record<string, unknown> = {};
  if (addBos && bos !== undefined) {
    single.push({ SpecialToken: { id: tokens[bos], type_id: 0 } });
    special[tokens[bos]] = { id: tokens[bos], ids: [bos], tokens: [tokens[bos]] };
  }
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  if (addEos && eos !== undefined) {
    single.push({ SpecialToken: { id: tokens[eos], type_id: 0 } });
    special[tokens[eos]] = { id: tokens[eos], ids: [eos], tokens: [tokens[eos]] };
  }
  const tokenizerJson: Record<string, unknown> = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: preTokenizerOf(family),
    post_processor: single.length > 1 ? { type: 'TemplateProcessing', single, pair: single, special_tokens: special } : null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: unk !== undefined ? tokens[unk] : null, continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: family === 'llama3', vocab, merges,
    },
  };
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: addBos,
    add_eos_token: addEos,
    // llama.cpp's clean_spaces: off for the Qwen 2 family, on otherwise.
    clean_up_tokenization_spaces: family !== 'qwen2',
  };
  if (bos !== undefined) tokenizerConfig.bos_token = tokens[bos];
  if (eos !== undefined) tokenizerConfig.eos_token = tokens[eos];
  if (unk !== undefined) tokenizerConfig.unk_token = tokens[unk];
  if (pad !== undefined) tokenizerConfig.pad_token = tokens[pad];
  const chat = metaString(h, 'tokenizer.chat_template');
  if (chat !== undefined) tokenizerConfig.chat_template = chat;
  return { tokenizerJson, tokenizerConfig };
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json -> GGUF metadata (the writer side; what llama.cpp's converter produces)

type Json = Record<string, unknown>;

function familyOfPreTokenizer(pt: unknown): Family {
  const p = pt as Json | null;
  if (p && p.type === 'ByteLevel' && p.use_regex !== false && !p.add_prefix_space) return 'gpt2';
  if (p && p.type === 'Sequence' && Array.isArray(p.pretokenizers)) {
    const [split, bl] = p.pretokenizers as Json[];
    const regex = (split?.pattern as Json | undefined)?.Regex;
    if (split?.type === 'Split' && bl?.type === 'ByteLevel' && bl.use_regex === false && (p.pretokenizers as Json[]).length === 2) {
      if (regex === LLAMA3_REGEX) return 'llama3';
      if (regex === QWEN2_REGEX) return 'qwen2';
    }
  }
  throw new UnsupportedError(`GGUF writer: pre_tokenizer ${JSON.stringify(pt)?.slice(0, 200)} is not one of the byte-level families (GPT-2, Llama 3, Qwen 2)`);
}

function contentOf(t: unknown): string | undefined {
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && typeof (t as Json).content === 'string') return (t as Json).content as string;
  return undefined;
}

/** Whether a post-processor adds a special token before (bos) or after (eos) the sequence. */
function templateAdds(pp: unknown): { bos: boolean; eos: boolean } {
  const p = pp as Json | null;
  if (!p) return { bos: false, eos: false };
  if (p.type === 'Sequence') {
    const r = { bos: false, eos: false };
    for (const q of (p.processors ?? []) as unknown[]) { const s = templateAdds(q); r.bos ||= s.bos; r.eos ||= s.eos; }
    return r;
  }
  if (p.type !== 'TemplateProcessing') return { bos: false, eos: false };
  const single = (p.single ?? []) as Json[];
  const seq = single.findIndex((s) => s.Sequence !== undefined);
  return { bos: single.slice(0, seq).some((s) => s.SpecialToken), eos: single.slice(seq + 1).some((s) => s.SpecialToken) };
}

export interface TokenizerToGgufOptions {
  /** Pad the token list to this many entries (the embedding rows) with "[PAD{i}]" unused tokens. */
  vocabRows?: number;
  /** Fallback special ids (config.json's bos_token_id / eos_token_id / pad_token_id). */
  bosTokenId?: number;
  eosTokenId?: number;
  padTokenId?: number;
}

/**
 * GGUF metadata for a byte-level BPE tokenizer.json (+ tokenizer_config.json), as llama.cpp's
 * converter writes it. UnsupportedError for other tokenizer kinds.
 */
export function tokenizerToGguf(tokenizerJson: Json | string, tokenizerConfig: Json | string | undefined, opts: TokenizerToGgufOptions = {}): [string, GgufKV][] {
  const tj = (typeof tokenizerJson === 'string' ? JSON.parse(tokenizerJson) : tokenizerJson) as Json;
  const cfg = (tokenizerConfig === undefined ? {} : typeof tokenizerConfig === 'string' ? JSON.parse(tokenizerConfig) : tokenizerConfig) as Json;
  const model = tj.model as Json | undefined;
  if (!model || (model.type ?? 'BPE') !== 'BPE') throw new UnsupportedError('GGUF writer: only BPE tokenizer.json models are supported');
  const family = familyOfPreTokenizer(tj.pre_tokenizer);
  const vocab = model.vocab as Record<string, number>;
  const addedList = (tj.added_tokens ?? []) as Json[];
  let n = opts.vocabRows ?? 0;
  for (const v of Object.values(vocab)) n = Math.max(n, v + 1);
  for (const a of addedList) n = Math.max(n, (a.id as number) + 1);
  if (opts.vocabRows !== undefined && n > opts.vocabRows) {
    throw new UnsupportedError(`GGUF writer: the tokenizer has ${n} tokens but the embedding only ${opts.vocabRows} rows`);
  }
  const tokens: (string | undefined)[] = new Array(n).fill(undefined);
  const types = new Int32Array(n).fill(TOKEN_TYPE.NORMAL);
  for (const [t, i] of Object.entries(vocab)) tokens[i] = t;
  for (const a of addedList) {
    const i = a.id as number;
    tokens[i] = a.content as string;
    types[i] = a.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED;
  }
  for (let i = 0; i < n; i++) {
    if (tokens[i] === undefined) { tokens[i] = `[PAD${i}]`; types[i] = TOKEN_TYPE.UNUSED; }
  }
  const merges = ((model.merges ?? []) as (string | [string, string])[]).map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));
  const idOf = (tok: unknown, fallback: number | undefined) => {
    const c = contentOf(tok);
    const i = c === undefined ? undefined : tokens.indexOf(c);
    return i !== undefined && i >= 0 ? i : fallback;
  };
  const tpl = templateAdds(tj.post_processor);
  const out: [string, GgufKV][] = [
    ['tokenizer.ggml.model', { type: GgufType.STRING, value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: GgufType.STRING, value: FAMILY_PRE[family] }],
    ['tokenizer.ggml.tokens', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: tokens as string[] }],
    ['tokenizer.ggml.token_type', { type: GgufType.ARRAY, itemType: GgufType.INT32, value: types }],
    ['tokenizer.ggml.merges', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: merges }],
  ];
  const ids: [string, number | undefined][] = [
    ['tokenizer.ggml.bos_token_id', idOf(cfg.bos_token, opts.bosTokenId)],
    ['tokenizer.ggml.eos_token_id', idOf(cfg.eos_token, opts.eosTokenId)],
    ['tokenizer.ggml.unknown_token_id', idOf(cfg.unk_token ?? model.unk_token, undefined)],
    ['tokenizer.ggml.padding_token_id', idOf(cfg.pad_token, opts.padTokenId)],
  ];
  for (const [k, v] of ids) if (v !== undefined) out.push([k, { type: GgufType.UINT32, value: v }]);
  out.push(['tokenizer.ggml.add_bos_token', { type: GgufType.BOOL, value: typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : tpl.bos }]);
  out.push(['tokenizer.ggml.add_eos_token', { type: GgufType.BOOL, value: typeof cfg.add_eos_token === 'boolean' ? cfg.add_eos_token : tpl.eos }]);
  const chat = cfg.chat_template;
  if (typeof chat === 'string') out.push(['tokenizer.chat_template', { type: GgufType.STRING, value: chat }]);
  return out;
}

/**
 * A stand-in byte-level vocabulary for models without a tokenizer (test fixtures): token i < 256
 * is byte i's GPT-2 character, the rest "[PAD{i}]"; no merges; GPT-2 pre-tokenizer.
 */
export function placeholderTokenizerGguf(vocabRows: number, ids: { bos?: number; eos?: number; pad?: number } = {}): [string, GgufKV][] {
  const tokens: string[] = [];
  const types = new Int32Array(vocabRows);
  for (let i = 0; i < vocabRows; i++) {
    tokens.push(i < 256 ? GPT2_BYTE_CHARS[i] : `[PAD${i}]`);
    types[i] = i < 256 ? TOKEN_TYPE.NORMAL : TOKEN_TYPE.UNUSED;
  }
  const out: [string, GgufKV][] = [
    ['tokenizer.ggml.model', { type: GgufType.STRING, value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: GgufType.STRING, value: 'gpt-2' }],
    ['tokenizer.ggml.tokens', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: tokens }],
    ['tokenizer.ggml.token_type', { type: GgufType.ARRAY, itemType: GgufType.INT32, value: types }],
    ['tokenizer.ggml.merges', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: [] }],
  ];
  if (ids.bos !== undefined && ids.bos < vocabRows) out.push(['tokenizer.ggml.bos_token_id', { type: GgufType.UINT32, value: ids.bos }]);
  if (ids.eos !== undefined && ids.eos < vocabRows) out.push(['tokenizer.ggml.eos_token_id', { type: GgufType.UINT32, value: ids.eos }]);
  if (ids.pad !== undefined && ids.pad < vocabRows) out.push(['tokenizer.ggml.padding_token_id', { type: GgufType.UINT32, value: ids.pad }]);
  return out;
}
