// Mamba2 GGUF files (llama.cpp's converter and quantizer output) -> our config and tensor names.
//
// Metadata (llama.cpp src/models/mamba2.cpp, convert_hf_to_gguf.py Mamba2Model):
//   general.architecture "mamba2"; mamba2.embedding_length (H), .block_count, .ssm.conv_kernel,
//   .ssm.inner_size (d_inner), .ssm.state_size (N), .ssm.time_step_rank (the head count),
//   .ssm.group_count (G), .attention.layer_norm_rms_epsilon; vocab size = token_embd rows.
// Tensors (GGUF name, PyTorch-order GGUF shape -> ours, layout.ts):
//   token_embd.weight [V, H]             -> backbone.embeddings.weight [V, H]
//   blk.i.attn_norm.weight [H]           -> backbone.layers.i.norm.weight
//   blk.i.ssm_in.weight [dInProj, H]     -> backbone.layers.i.mixer.in_proj.weight
//   blk.i.ssm_conv1d.weight [C, K]       -> mixer.conv1d.weight [C, 1, K] (same element order)
//   blk.i.ssm_conv1d.bias [C]            -> mixer.conv1d.bias
//   blk.i.ssm_dt.bias [NH]               -> mixer.dt_bias
//   blk.i.ssm_a [NH, 1] = -exp(A_log)    -> mixer.A_log [NH]: A_log = log(-A) (transform 'a-to-a-log')
//   blk.i.ssm_d [NH, 1]                  -> mixer.D [NH]
//   blk.i.ssm_norm.weight [G, di / G]    -> mixer.norm.weight [di] (flattened, same order)
//   blk.i.ssm_out.weight [H, di]         -> mixer.out_proj.weight
//   output_norm.weight [H]               -> backbone.norm_f.weight
//   output.weight [V, H]                 -> lm_head.weight (absent: tied to the embedding)
// A_log from A: computed in float64 as log(-A) and rounded once to f32. A was stored as
// f32(-exp(A_log)), so the recovered A_log is within about one f32 ulp of the original, and
// -exp(recovered A_log) rounds back to the stored A (or a neighbour) in f32.
import { CheckpointError, ConfigError, UnsupportedError } from '../errors.ts';
import { type GgmlTypeInfo, type QuantFormat, GGML_TYPE, quantFormatOfGgmlType } from '../quant/formats.ts';
import { bf16BitsToNumber, f16BitsToNumber } from '../quant/half.ts';
import { dequantizeBlocks } from '../quant/reference.ts';
import { parseConfig } from '../models/parse-config.ts';
import type { ModelConfig } from '../models/config.ts';
import { type GgufHeader, metaFloat, metaInt, metaString, readGgufHeader } from './gguf.ts';
import { type HfTokenizer, ggufTokenizer } from './gguf-tokenizer.ts';
import type { CheckpointSource } from './sources.ts';

/** GGUF types a matrix may be stored in. */
const MATRIX_TYPES = new Set<number>([GGML_TYPE.F32, GGML_TYPE.F16, GGML_TYPE.BF16, GGML_TYPE.Q8_0, GGML_TYPE.Q4_0, GGML_TYPE.Q5_0, GGML_TYPE.Q4_K, GGML_TYPE.Q6_K]);
/** GGUF types a vector (norms, conv, A, D, dt bias) may be stored in. */
const VECTOR_TYPES = new Set<number>([GGML_TYPE.F32, GGML_TYPE.F16, GGML_TYPE.BF16]);

export interface GgufTensorMapping {
  /** Our (Hugging Face / layout.ts) name. */
  readonly name: string;
  readonly ggufName: string;
  readonly role: 'matrix' | 'embedding' | 'vector';
  readonly ggmlType: GgmlTypeInfo;
  /** The device block format when the GGUF type is one (repack instead of convert), else undefined. */
  readonly format?: QuantFormat;
  /** Absolute byte offset and length of the data in the GGUF file. */
  readonly offset: number;
  readonly byteLength: number;
  /** Our shape (PyTorch order, as layout.ts expects). */
  readonly shape: readonly number[];
  /** The GGUF tensor's PyTorch-order shape. */
  readonly ggufShape: readonly number[];
  /** 'a-to-a-log': the stored values are A; ours are A_log = log(-A) (aLogFromA). */
  readonly transform: 'none' | 'a-to-a-log';
}

export interface GgufMamba2Model {
  readonly header: GgufHeader;
  /** A config.json object for model_type "mamba2" (what the safetensors path reads from config.json). */
  readonly configJson: Record<string, unknown>;
  /** configJson parsed and validated by src/models/parse-config.ts. */
  readonly config: ModelConfig;
  /** Our tensor name -> where and how it is stored. */
  readonly tensors: ReadonlyMap<string, GgufTensorMapping>;
  /** GGUF tensors the mapping does not use. */
  readonly unusedTensors: readonly string[];
  /** The tokenizer from the metadata, when the file has one (tokenizer.ggml.model). */
  readonly tokenizer?: HfTokenizer;
}

function need(h: GgufHeader, key: string, min = 1): number {
  const v = metaInt(h, key, min);
  if (v === undefined) throw new CheckpointError(h.file, `metadata "${key}" is missing`);
  return v;
}

/**
 * Maps a validated GGUF header (readGgufHeader) of a Mamba2 file to our config and tensor names.
 * UnsupportedError for other architectures and for tensor types we cannot load; CheckpointError
 * for missing keys or tensors and for shapes that disagree with the metadata. Reads no tensor data.
 */
export function mapMamba2Gguf(h: GgufHeader, opts: { tokenizer?: boolean } = {}): GgufMamba2Model {
  const arch = metaString(h, 'general.architecture');
  if (arch === undefined) throw new CheckpointError(h.file, 'metadata "general.architecture" is missing');
  if (arch !== 'mamba2') {
    throw new UnsupportedError(`${h.file}: GGUF architecture "${arch}" is not supported (GGUF files must be "mamba2"; Zamba2 loads from Hugging Face safetensors)`);
  }
  const H = need(h, 'mamba2.embedding_length');
  const L = need(h, 'mamba2.block_count');
  const convKernel = need(h, 'mamba2.ssm.conv_kernel');
  const dInner = need(h, 'mamba2.ssm.inner_size');
  const dState = need(h, 'mamba2.ssm.state_size');
  const nHeads = need(h, 'mamba2.ssm.time_step_rank');
  const nGroups = metaInt(h, 'mamba2.ssm.group_count', 1) ?? 1;
  const eps = metaFloat(h, 'mamba2.attention.layer_norm_rms_epsilon');
  if (eps === undefined) throw new CheckpointError(h.file, 'metadata "mamba2.attention.layer_norm_rms_epsilon" is missing');
  if (dInner % nHeads !== 0) throw new CheckpointError(h.file, `ssm.inner_size ${dInner} is not a multiple of ssm.time_step_rank (heads) ${nHeads}`);
  if (dInner % nGroups !== 0) throw new CheckpointError(h.file, `ssm.inner_size ${dInner} is not a multiple of ssm.group_count ${nGroups}`);
  const emb = h.tensors.get('token_embd.weight');
  if (!emb) throw new CheckpointError(h.file, 'tensor token_embd.weight is missing');
  if (emb.shape.length !== 2 || emb.shape[1] !== H) throw new CheckpointError(h.file, `shape [${emb.shape}] is not [vocab, ${H}]`, 'token_embd.weight');
  const vocab = emb.shape[0];
  const tied = !h.tensors.has('output.weight');

  const tokenId = (key: string) => {
    const v = metaInt(h, key);
    return v !== undefined && v < vocab ? v : undefined;
  };
  const bos = tokenId('tokenizer.ggml.bos_token_id'), eos = tokenId('tokenizer.ggml.eos_token_id'), pad = tokenId('tokenizer.ggml.padding_token_id');
  const configJson: Record<string, unknown> = {
    architectures: ['Mamba2ForCausalLM'], model_type: 'mamba2',
    hidden_size: H, num_hidden_layers: L, vocab_size: vocab, state_size: dState, n_groups: nGroups,
    conv_kernel: convKernel, num_heads: nHeads, head_dim: dInner / nHeads, expand: dInner / H,
    layer_norm_epsilon: eps, tie_word_embeddings: tied,
    // llama.cpp applies no dt clamp; transformers' default limit is (0, inf).
    time_step_limit: [0, Infinity], use_bias: false, use_conv_bias: true, rms_norm: true, chunk_size: 256,
    bos_token_id: bos ?? null, eos_token_id: eos ?? null, pad_token_id: pad ?? null,
  };
  let config: ModelConfig;
  try {
    config = parseConfig(configJson);
  } catch (e) {
    if (e instanceof ConfigError) throw new CheckpointError(h.file, `metadata describes an invalid mamba2 model: ${e.message}`, undefined, { cause: e });
    throw e;
  }

  const tensors = new Map<string, GgufTensorMapping>();
  const used = new Set<string>();
  const convDim = config.convDim, inProj = config.inProjDim;
  const map = (ggufName: string, name: string, role: GgufTensorMapping['role'], ggufShape: number[], shape: number[], transform: GgufTensorMapping['transform'] = 'none', optional = false) => {
    const t = h.tensors.get(ggufName);
    if (!t) {
      if (optional) return;
      throw new CheckpointError(h.file, 'tensor is missing', ggufName);
    }
    used.add(ggufName);
    if (t.shape.length !== ggufShape.length || t.shape.some((d, i) => d !== ggufShape[i])) {
      throw new CheckpointError(h.file, `shape [${t.shape}] does not match the metadata: expected [${ggufShape}]`, ggufName);
    }
    const allowed = role === 'vector' ? VECTOR_TYPES : MATRIX_TYPES;
    if (!allowed.has(t.type.id)) {
      throw new UnsupportedError(`${h.file} [${ggufName}]: ${role === 'vector' ? 'a vector' : 'a matrix'} stored as ${t.type.name} is not supported (supported: ${[...allowed].map((id) => typeName(id)).join(', ')})`);
    }
    tensors.set(name, {
      name, ggufName, role, ggmlType: t.type, format: quantFormatOfGgmlType(t.type.id), offset: t.offset, byteLength: t.byteLength,
      shape, ggufShape: t.shape, transform,
    });
  };
  map('token_embd.weight', 'backbone.embeddings.weight', 'embedding', [vocab, H], [vocab, H]);
  for (let l = 0; l < L; l++) {
    const b = `blk.${l}.`, m = `backbone.layers.${l}.mixer.`;
    map(`${b}attn_norm.weight`, `backbone.layers.${l}.norm.weight`, 'vector', [H], [H]);
    map(`${b}ssm_in.weight`, `${m}in_proj.weight`, 'matrix', [inProj, H], [inProj, H]);
    map(`${b}ssm_conv1d.weight`, `${m}conv1d.weight`, 'vector', [convDim, convKernel], [convDim, 1, convKernel]);
    map(`${b}ssm_conv1d.bias`, `${m}conv1d.bias`, 'vector', [convDim], [convDim]);
    map(`${b}ssm_dt.bias`, `${m}dt_bias`, 'vector', [nHeads], [nHeads]);
    map(`${b}ssm_a`, `${m}A_log`, 'vector', [nHeads, 1], [nHeads], 'a-to-a-log');
    map(`${b}ssm_d`, `${m}D`, 'vector', [nHeads, 1], [nHeads]);
    map(`${b}ssm_norm.weight`, `${m}norm.weight`, 'vector', [nGroups, dInner / nGroups], [dInner]);
    map(`${b}ssm_out.weight`, `${m}out_proj.weight`, 'matrix', [H, dInner], [H, dInner]);
  }
  map('output_norm.weight', 'backbone.norm_f.weight', 'vector', [H], [H]);
  map('output.weight', 'lm_head.weight', 'matrix', [vocab, H], [vocab, H], 'none', true);
  const unusedTensors = [...h.tensors.keys()].filter((n) => !used.has(n));
  const tokenizer = opts.tokenizer === false ? undefined : ggufTokenizer(h);
  return { header: h, configJson, config, tensors, unusedTensors, tokenizer };
}

function typeName(id: number): string {
  return (Object.entries(GGML_TYPE).find(([, v]) => v === id) ?? [String(id)])[0];
}

/**
 * Reads and validates `file`'s header and maps it (readGgufHeader + mapMamba2Gguf). The
 * architecture is checked first, before the tokenizer or any tensor is looked at.
 */
export async function readGgufMamba2(source: CheckpointSource, file: string, opts: { tokenizer?: boolean } = {}): Promise<GgufMamba2Model> {
  return mapMamba2Gguf(await readGgufHeader(source, file), opts);
}

/** A_log from llama.cpp's A = -exp(A_log): log(-A) in float64, rounded to f32. A must be negative. */
export function aLogFromA(a: ArrayLike<number>, file = 'GGUF', tensor?: string): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    if (!(a[i] < 0) || !Number.isFinite(a[i])) throw new CheckpointError(file, `A[${i}] = ${a[i]}: A = -exp(A_log) must be negative and finite`, tensor);
    out[i] = Math.log(-a[i]);
  }
  return out;
}

/**
 * f32 values of a tensor's raw GGUF bytes (F32/F16/BF16 exactly; block types through the
 * reference dequantizer). For vectors and tests; the loader streams matrices itself.
 */
export function ggufBytesToF32(type: GgmlTypeInfo, bytes: Uint8Array, numel: number): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (numel / type.blockValues) * type.blockBytes;
  if (bytes.byteLength < need) throw new CheckpointError('GGUF', `${bytes.byteLength} bytes for ${numel} ${type.name} values (need ${need})`);
  const out = new Float32Array(numel);
  if (type.id === GGML_TYPE.F32) for (let i = 0; i < numel; i++) out[i] = dv.getFloat32(4 * i, true);
  else if (type.id === GGML_TYPE.F16) for (let i = 0; i < numel; i++) out[i] = f16BitsToNumber(dv.getUint16(2 * i, true));
  else if (type.id === GGML_TYPE.BF16) for (let i = 0; i < numel; i++) out[i] = bf16BitsToNumber(dv.getUint16(2 * i, true));
  else {
    const f = quantFormatOfGgmlType(type.id);
    if (!f) throw new UnsupportedError(`GGUF tensors of type ${type.name} cannot be decoded`);
    out.set(dequantizeBlocks(f, bytes, numel / type.blockValues));
  }
  return out;
}

/** One chunk of whole rows of a GGUF tensor: rows [row0, row0 + rows), file bytes [start, end). */
export interface GgufRowChunk {
  readonly row0: number;
  readonly rows: number;
  readonly start: number;
  readonly end: number;
}

/**
 * Splits a mapped 2-D tensor into chunks of whole rows of at most maxBytes of file data each (at
 * least one row). With evenBlocks (default) a chunk's block count is kept even, so the f16 `d`
 * slices of consecutive chunks land on 4-byte boundaries of a device buffer (GPU buffer writes
 * need 4-byte offsets and sizes); only the last chunk may end on an odd block.
 */
export function ggufRowChunks(t: GgufTensorMapping, maxBytes: number, evenBlocks = true): GgufRowChunk[] {
  const rowsTotal = t.shape[0];
  const K = t.ggufShape[t.ggufShape.length - 1];
  const blocksPerRow = K / t.ggmlType.blockValues;
  const rowBytes = blocksPerRow * t.ggmlType.blockBytes;
  let per = Math.max(1, Math.floor(maxBytes / rowBytes));
  if (evenBlocks && blocksPerRow % 2 === 1 && per % 2 === 1 && per < rowsTotal) per = per > 1 ? per - 1 : 2;
  const out: GgufRowChunk[] = [];
  for (let r = 0; r < rowsTotal; r += per) {
    const rows = Math.min(per, rowsTotal - r);
    out.push({ row0: r, rows, start: t.offset + r * rowBytes, end: t.offset + (r + rows) * rowBytes });
  }
  return out;
}

/** Reads one mapped tensor as f32 in our convention (A -> A_log applied). Small tensors only. */
export async function readMappedTensorF32(source: CheckpointSource, model: GgufMamba2Model, name: string): Promise<Float32Array> {
  const t = model.tensors.get(name);
  if (!t) throw new CheckpointError(model.header.file, 'no such mapped tensor', name);
  const bytes = await source.readRange(model.header.file, t.offset, t.offset + t.byteLength);
  const numel = t.shape.reduce((a, b) => a * b, 1);
  const v = ggufBytesToF32(t.ggmlType, bytes, numel);
  return t.transform === 'a-to-a-log' ? aLogFromA(v, model.header.file, t.ggufName) : v;
}

