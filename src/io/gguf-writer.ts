// GGUF v3 writer (and v2, which has the same layout): metadata of every value type, tensor infos,
// alignment padding, data; the counterpart of src/io/gguf.ts. Used by tests and benchmarks to
// write small Mamba2 GGUF files in llama.cpp's names and conventions (encodeMamba2Gguf), with
// tensors in F32/F16/BF16 or quantized by the reference quantizers (src/quant/reference.ts,
// byte-identical to ggml's), so llama.cpp loads them as it loads its own converter's output.
// The library itself only reads GGUF.
import { InputError, UnsupportedError } from '../errors.ts';
import { GGML_TYPE, type GgmlTypeName, type QuantFormat, ggmlTypeInfo, quantFormatOfGgmlType } from '../quant/formats.ts';
import { f32ToBf16Bits, f32ToF16Bits } from '../quant/half.ts';
import { quantizeBlocks } from '../quant/reference.ts';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_DIMS, GGUF_MAX_NAME, type GgufKV, GgufType } from './gguf.ts';
import { placeholderTokenizerGguf, tokenizerToGguf } from './gguf-tokenizer.ts';

export interface GgufTensorIn {
  readonly name: string;
  /** PyTorch order, outermost first (written reversed, as ggml's ne). */
  readonly shape: readonly number[];
  /** ggml type id (GGML_TYPE). */
  readonly type: number;
  /** The encoded tensor bytes (row-major; block types: whole blocks per row). */
  readonly data: Uint8Array;
}

export interface GgufWriteOptions {
  /** 3 (default) or 2. */
  readonly version?: 2 | 3;
  /** Data alignment (power of two). Written as general.alignment when not the default 32. */
  readonly alignment?: number;
}

/** Shorthands for metadata values. */
export const gguf = {
  u8: (v: number): GgufKV => ({ type: GgufType.UINT8, value: v }),
  i8: (v: number): GgufKV => ({ type: GgufType.INT8, value: v }),
  u16: (v: number): GgufKV => ({ type: GgufType.UINT16, value: v }),
  i16: (v: number): GgufKV => ({ type: GgufType.INT16, value: v }),
  u32: (v: number): GgufKV => ({ type: GgufType.UINT32, value: v }),
  i32: (v: number): GgufKV => ({ type: GgufType.INT32, value: v }),
  f32: (v: number): GgufKV => ({ type: GgufType.FLOAT32, value: v }),
  f64: (v: number): GgufKV => ({ type: GgufType.FLOAT64, value: v }),
  u64: (v: bigint | number): GgufKV => ({ type: GgufType.UINT64, value: BigInt(v) }),
  i64: (v: bigint | number): GgufKV => ({ type: GgufType.INT64, value: BigInt(v) }),
  bool: (v: boolean): GgufKV => ({ type: GgufType.BOOL, value: v }),
  str: (v: string): GgufKV => ({ type: GgufType.STRING, value: v }),
  strings: (v: string[]): GgufKV => ({ type: GgufType.ARRAY, itemType: GgufType.STRING, value: v }),
  i32s: (v: ArrayLike<number>): GgufKV => ({ type: GgufType.ARRAY, itemType: GgufType.INT32, value: Int32Array.from(v) }),
  f32s: (v: ArrayLike<number>): GgufKV => ({ type: GgufType.ARRAY, itemType: GgufType.FLOAT32, value: Float32Array.from(v) }),
};

const utf8 = new TextEncoder();

/** Growable little-endian byte sink. */
class Sink {
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  length = 0;

  /** Reserves n bytes (growing the buffer) and returns their offset. Callers take the offset
   *  before touching this.buf / this.dv, which may be replaced here. */
  private room(n: number): number {
    if (this.length + n > this.buf.byteLength) {
      const next = new Uint8Array(Math.max(this.buf.byteLength * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.dv = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  u8(v: number) { const at = this.room(1); this.dv.setUint8(at, v); }
  i8(v: number) { const at = this.room(1); this.dv.setInt8(at, v); }
  u16(v: number) { const at = this.room(2); this.dv.setUint16(at, v, true); }
  i16(v: number) { const at = this.room(2); this.dv.setInt16(at, v, true); }
  u32(v: number) { const at = this.room(4); this.dv.setUint32(at, v, true); }
  i32(v: number) { const at = this.room(4); this.dv.setInt32(at, v, true); }
  f32(v: number) { const at = this.room(4); this.dv.setFloat32(at, v, true); }
  f64(v: number) { const at = this.room(8); this.dv.setFloat64(at, v, true); }
  u64(v: bigint) { const at = this.room(8); this.dv.setBigUint64(at, v, true); }
  i64(v: bigint) { const at = this.room(8); this.dv.setBigInt64(at, v, true); }
  bytes(b: Uint8Array) { const at = this.room(b.byteLength); this.buf.set(b, at); }
  str(s: string) { const b = utf8.encode(s); this.u64(BigInt(b.byteLength)); this.bytes(b); }
  pad(to: number) { const n = (to - (this.length % to)) % to; const at = this.room(n); this.buf.fill(0, at, at + n); }
  result(): Uint8Array { return this.buf.slice(0, this.length); }
}

function writeScalar(s: Sink, t: GgufType, v: unknown, key: string): void {
  const bad = () => { throw new InputError(`GGUF writer: "${key}": ${String(v)} is not a valid ${GgufType[t]}`); };
  switch (t) {
    case GgufType.UINT8: case GgufType.INT8: case GgufType.UINT16: case GgufType.INT16: case GgufType.UINT32: case GgufType.INT32: {
      if (typeof v !== 'number' || !Number.isInteger(v)) bad();
      const n = v as number;
      const [lo, hi] = {
        [GgufType.UINT8]: [0, 255], [GgufType.INT8]: [-128, 127], [GgufType.UINT16]: [0, 65535], [GgufType.INT16]: [-32768, 32767],
        [GgufType.UINT32]: [0, 4294967295], [GgufType.INT32]: [-2147483648, 2147483647],
      }[t];
      if (n < lo || n > hi) bad();
      if (t === GgufType.UINT8) s.u8(n); else if (t === GgufType.INT8) s.i8(n); else if (t === GgufType.UINT16) s.u16(n);
      else if (t === GgufType.INT16) s.i16(n); else if (t === GgufType.UINT32) s.u32(n); else s.i32(n);
      return;
    }
    case GgufType.FLOAT32: if (typeof v !== 'number') bad(); s.f32(v as number); return;
    case GgufType.FLOAT64: if (typeof v !== 'number') bad(); s.f64(v as number); return;
    case GgufType.UINT64: case GgufType.INT64: {
      const b = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : bad();
      if (t === GgufType.UINT64) { if (b < 0n || b >= 1n << 64n) bad(); s.u64(b); } else { if (b < -(1n << 63n) || b >= 1n << 63n) bad(); s.i64(b); }
      return;
    }
    case GgufType.BOOL: if (typeof v !== 'boolean') bad(); s.u8(v ? 1 : 0); return;
    case GgufType.STRING: if (typeof v !== 'string') bad(); s.str(v as string); return;
    default: throw new InputError(`GGUF writer: "${key}": unknown value type ${t}`);
  }
}

/** Encodes a GGUF file: metadata (in iteration order), then tensor infos and data in the given order. */
export function encodeGguf(metadata: Iterable<[string, GgufKV]>, tensors: readonly GgufTensorIn[], opts: GgufWriteOptions = {}): Uint8Array {
  const version = opts.version ?? 3;
  const meta = new Map<string, GgufKV>();
  for (const [k, v] of metadata) {
    if (k === '' || meta.has(k)) throw new InputError(`GGUF writer: empty or duplicate metadata key "${k}"`);
    meta.set(k, v);
  }
  let alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const al = meta.get('general.alignment');
  if (al) alignment = al.value as number;
  else if (alignment !== GGUF_DEFAULT_ALIGNMENT) meta.set('general.alignment', { type: GgufType.UINT32, value: alignment });
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) throw new InputError(`GGUF writer: alignment ${alignment} is not a power of two`);

  const s = new Sink();
  s.u32(GGUF_MAGIC);
  s.u32(version);
  s.u64(BigInt(tensors.length));
  s.u64(BigInt(meta.size));
  for (const [k, kv] of meta) {
    s.str(k);
    s.u32(kv.type);
    if (kv.type === GgufType.ARRAY) {
      s.u32(kv.itemType);
      const items = kv.value as ArrayLike<unknown>;
      s.u64(BigInt(items.length));
      for (let i = 0; i < items.length; i++) writeScalar(s, kv.itemType, items[i], k);
    } else {
      writeScalar(s, kv.type, kv.value, k);
    }
  }
  const names = new Set<string>();
  let rel = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    if (!t.name || names.has(t.name) || utf8.encode(t.name).byteLength >= GGUF_MAX_NAME) throw new InputError(`GGUF writer: bad or duplicate tensor name "${t.name}"`);
    names.add(t.name);
    const info = ggmlTypeInfo(t.type);
    if (!info) throw new InputError(`GGUF writer: ${t.name}: unknown ggml type ${t.type}`);
    if (t.shape.length > GGUF_MAX_DIMS || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new InputError(`GGUF writer: ${t.name}: bad shape [${t.shape}]`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const row = t.shape.length ? t.shape[t.shape.length - 1] : 1;
    if (row % info.blockValues !== 0 || t.data.byteLength !== (numel / info.blockValues) * info.blockBytes) {
      throw new InputError(`GGUF writer: ${t.name}: ${t.data.byteLength} bytes do not encode shape [${t.shape}] as ${info.name}`);
    }
    s.str(t.name);
    s.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) s.u64(BigInt(t.shape[d]));
    s.u32(t.type);
    s.u64(BigInt(rel));
    offsets.push(rel);
    rel += Math.ceil(t.data.byteLength / alignment) * alignment;
  }
  if (tensors.length > 0) s.pad(alignment);
  for (const t of tensors) {
    s.bytes(t.data);
    s.pad(alignment);
  }
  return s.result();
}

// ---------------------------------------------------------------------------------------------
// Tensor data

export type GgufDataType = Extract<GgmlTypeName, 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q5_0' | 'Q4_K' | 'Q6_K'>;

/** Bytes of `values` (row-major, rows of the last dimension) as a GGUF tensor of `type`. */
export function encodeTensorData(type: GgufDataType, values: ArrayLike<number>, shape: readonly number[]): Uint8Array {
  const numel = shape.reduce((a, b) => a * b, 1);
  if (values.length !== numel) throw new InputError(`GGUF writer: ${values.length} values for shape [${shape}]`);
  if (type === 'F32') return new Uint8Array(Float32Array.from(values).buffer);
  if (type === 'F16' || type === 'BF16') {
    const h = new Uint16Array(numel);
    for (let i = 0; i < numel; i++) h[i] = type === 'F16' ? f32ToF16Bits(values[i]) : f32ToBf16Bits(values[i]);
    return new Uint8Array(h.buffer);
  }
  const format = quantFormatOfGgmlType(GGML_TYPE[type]) as QuantFormat;
  return quantizeBlocks(format, Float32Array.from(values));
}

/**
 * llama.cpp's fallback when rows of K values do not split into the type's blocks (llama-quant.cpp):
 * Q4_K -> Q5_0, Q6_K -> Q8_0, and F16 when the fallback does not fit either.
 */
export function ggufTypeForRow(type: GgufDataType, K: number): GgufDataType {
  const fits = (t: GgufDataType) => K % ggmlTypeInfo(GGML_TYPE[t])!.blockValues === 0;
  if (fits(type)) return type;
  const next: GgufDataType = type === 'Q4_K' ? 'Q5_0' : type === 'Q6_K' ? 'Q8_0' : 'F16';
  return fits(next) ? next : 'F16';
}

// ---------------------------------------------------------------------------------------------
// Mamba2 in llama.cpp's naming (convert_hf_to_gguf.py Mamba2Model, llama-arch.cpp LLM_ARCH_MAMBA2)

export interface Mamba2GgufOptions {
  /** The config.json object (model_type "mamba2"). */
  readonly config: Record<string, unknown>;
  /** Hugging Face tensor name -> PyTorch-order shape and row-major values. */
  readonly tensors: ReadonlyMap<string, { readonly shape: readonly number[]; readonly values: ArrayLike<number> }>;
  /** Type of in_proj / out_proj (and the embedding and output unless set below). */
  readonly matrixType: GgufDataType;
  /** Type of the output head, and of the embedding when it is tied (llama.cpp's Q4_K_M: Q6_K). */
  readonly outputType?: GgufDataType;
  /** Type of an untied embedding. */
  readonly embeddingType?: GgufDataType;
  /** tokenizer.json (+ tokenizer_config.json) to embed; without it a placeholder byte vocabulary. */
  readonly tokenizer?: { readonly json: Record<string, unknown> | string; readonly config?: Record<string, unknown> | string };
  readonly name?: string;
  readonly version?: 2 | 3;
  readonly alignment?: number;
  /** Extra metadata appended after the standard keys. */
  readonly extraMetadata?: readonly [string, GgufKV][];
}

export interface Mamba2Gguf {
  readonly bytes: Uint8Array;
  /** GGUF tensor name -> the type it was written in (after the row-length fallbacks). */
  readonly types: ReadonlyMap<string, GgufDataType>;
}

// llama_ftype (llama.h) of the file's dominant type, for general.file_type.
const FILE_TYPE: Record<GgufDataType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7, Q5_0: 8, Q4_K: 14, Q6_K: 18, BF16: 32 };

function num(cfg: Record<string, unknown>, key: string, dflt?: number): number {
  const v = cfg[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`GGUF writer: config "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * A Mamba2 GGUF file from a Hugging Face checkpoint's config and tensors: llama.cpp's tensor names
 * and shapes (A stored as -exp(A_log) [NH, 1], D [NH, 1], conv1d [C, K], the gated norm
 * [G, di/G]), vectors in F32, matrices in the requested types with llama.cpp's fallbacks, the
 * metadata keys llama.cpp's Mamba2 loader reads, and a tokenizer.
 */
export function encodeMamba2Gguf(o: Mamba2GgufOptions): Mamba2Gguf {
  const c = o.config;
  if (c.model_type !== 'mamba2') throw new UnsupportedError(`GGUF writer: model_type ${JSON.stringify(c.model_type)} (only mamba2)`);
  const H = num(c, 'hidden_size'), L = num(c, 'num_hidden_layers'), NH = num(c, 'num_heads');
  const P = num(c, 'head_dim', 64), N = num(c, 'state_size', 128), G = num(c, 'n_groups', 1), Kc = num(c, 'conv_kernel', 4);
  const eps = num(c, 'layer_norm_epsilon', 1e-5);
  const di = NH * P;
  const get = (name: string) => {
    const t = o.tensors.get(name);
    if (!t) throw new InputError(`GGUF writer: tensor ${name} is missing`);
    return t;
  };
  const emb = o.tensors.get('backbone.embeddings.weight') ?? get('backbone.embedding.weight');
  const vocabRows = emb.shape[0];
  const tied = !o.tensors.has('lm_head.weight');
  const outType = o.outputType ?? o.matrixType;
  const embType = tied ? outType : (o.embeddingType ?? o.matrixType);

  const tensors: GgufTensorIn[] = [];
  const types = new Map<string, GgufDataType>();
  const add = (name: string, shape: readonly number[], values: ArrayLike<number>, want: GgufDataType) => {
    const type = ggufTypeForRow(want, shape[shape.length - 1]);
    types.set(name, type);
    tensors.push({ name, shape, type: GGML_TYPE[type], data: encodeTensorData(type, values, shape) });
  };
  add('token_embd.weight', emb.shape, emb.values, embType);
  for (let l = 0; l < L; l++) {
    const p = `backbone.layers.${l}.`, m = `${p}mixer.`, b = `blk.${l}.`;
    add(`${b}attn_norm.weight`, [H], get(`${p}norm.weight`).values, 'F32');
    const inProj = get(`${m}in_proj.weight`);
    add(`${b}ssm_in.weight`, inProj.shape, inProj.values, o.matrixType);
    const conv = get(`${m}conv1d.weight`);
    add(`${b}ssm_conv1d.weight`, [conv.shape[0], conv.shape[conv.shape.length - 1]], conv.values, 'F32');
    const convB = get(`${m}conv1d.bias`);
    add(`${b}ssm_conv1d.bias`, convB.shape, convB.values, 'F32');
    add(`${b}ssm_dt.bias`, [NH], get(`${m}dt_bias`).values, 'F32');
    // llama.cpp stores A = -exp(A_log) (converter: data_torch = -torch.exp(data_torch)), in f32.
    const aLog = get(`${m}A_log`).values;
    add(`${b}ssm_a`, [NH, 1], Float32Array.from(aLog, (v) => -Math.exp(Math.fround(v))), 'F32');
    add(`${b}ssm_d`, [NH, 1], get(`${m}D`).values, 'F32');
    add(`${b}ssm_norm.weight`, [G, di / G], get(`${m}norm.weight`).values, 'F32');
    const outProj = get(`${m}out_proj.weight`);
    add(`${b}ssm_out.weight`, outProj.shape, outProj.values, o.matrixType);
  }
  add('output_norm.weight', [H], get('backbone.norm_f.weight').values, 'F32');
  if (!tied) {
    const head = get('lm_head.weight');
    add('output.weight', head.shape, head.values, outType);
  }

  const quantized = [...types.values()].some((t) => t.startsWith('Q'));
  const fileType = o.matrixType === 'Q4_K' && outType === 'Q6_K' ? 15 /* MOSTLY_Q4_K_M */ : FILE_TYPE[o.matrixType];
  const arch = 'mamba2';
  const meta: [string, GgufKV][] = [
    ['general.architecture', gguf.str(arch)],
    ['general.name', gguf.str(o.name ?? 'mamba2')],
    ['general.file_type', gguf.u32(fileType)],
    [`${arch}.context_length`, gguf.u32(2 ** 20)],
    [`${arch}.embedding_length`, gguf.u32(H)],
    [`${arch}.feed_forward_length`, gguf.u32(0)],
    [`${arch}.attention.head_count`, gguf.u32(0)],
    [`${arch}.block_count`, gguf.u32(L)],
    [`${arch}.ssm.conv_kernel`, gguf.u32(Kc)],
    [`${arch}.ssm.inner_size`, gguf.u32(di)],
    [`${arch}.ssm.state_size`, gguf.u32(N)],
    [`${arch}.ssm.time_step_rank`, gguf.u32(NH)],
    [`${arch}.ssm.group_count`, gguf.u32(G)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(eps)],
  ];
  if (quantized) meta.push(['general.quantization_version', gguf.u32(2)]);
  const idOf = (k: string) => (typeof c[k] === 'number' ? c[k] as number : Array.isArray(c[k]) && typeof (c[k] as unknown[])[0] === 'number' ? (c[k] as number[])[0] : undefined);
  const ids = { bos: idOf('bos_token_id'), eos: idOf('eos_token_id'), pad: idOf('pad_token_id') };
  meta.push(...(o.tokenizer
    ? tokenizerToGguf(o.tokenizer.json, o.tokenizer.config, { vocabRows, bosTokenId: ids.bos, eosTokenId: ids.eos, padTokenId: ids.pad })
    : placeholderTokenizerGguf(vocabRows, ids)));
  if (o.extraMetadata) meta.push(...o.extraMetadata);
  return { bytes: encodeGguf(meta, tensors, { version: o.version, alignment: o.alignment }), types };
}
