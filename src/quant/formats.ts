// Weight storage formats: the ggml/GGUF type table, the block-quantized device layout of
// docs/weight-formats.md (deviceLayout: the one function the memory planner, the loader and the
// kernels' tests use to place sections), and the quantization recipe (which format a tensor gets).
//
// Block contents follow ggml bit for bit (ggml/src/ggml-common.h); the device layout only moves the
// f16 scales (and q5_0's high bits) out of the blocks into their own 16-byte-aligned sections so
// every array is 4-byte aligned:
//
//   q8_0  qs: i8 [nb, 32]      | d: f16 [nb]
//   q4_0  qs: u8 [nb, 16]      | d: f16 [nb]
//   q5_0  qs: u8 [nb, 16]      | qh: u32 [nb] | d: f16 [nb]
//   q4_k  qs: block_q4_K [nb] (144 bytes each, verbatim: d, dmin, scales[12], qs[128])
//   q6_k  qs: [nb] x 208 bytes (ql[128], qh[64], scales[16]) | d: f16 [nb]
//
// Blocks are numbered row-major (b = row * K / QK + j); every section starts at a multiple of 16
// bytes and the buffer is the end of the last section rounded up to 4.
import { InputError, UnsupportedError } from '../errors.ts';

/** The block-quantized formats this library stores on the device. */
export type QuantFormat = 'q8_0' | 'q4_0' | 'q5_0' | 'q4_k' | 'q6_k';

export const QUANT_FORMATS: readonly QuantFormat[] = ['q8_0', 'q4_0', 'q5_0', 'q4_k', 'q6_k'];

/** ggml_type ids (ggml/include/ggml.h, gguf-py GGMLQuantizationType). Ids 4, 5, 31-33, 36-38 are retired. */
export const GGML_TYPE = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30, TQ1_0: 34, TQ2_0: 35,
  MXFP4: 39, NVFP4: 40, Q1_0: 41, Q2_0: 42,
} as const;

export type GgmlTypeName = keyof typeof GGML_TYPE;

export interface GgmlTypeInfo {
  readonly id: number;
  readonly name: GgmlTypeName;
  /** Values per block (1 for plain element types). */
  readonly blockValues: number;
  /** Bytes per block. */
  readonly blockBytes: number;
}

const QK_K = 256;
// (block values, block bytes) from gguf-py's GGML_QUANT_SIZES.
const SIZES: Record<GgmlTypeName, [number, number]> = {
  F32: [1, 4], F16: [1, 2], Q4_0: [32, 18], Q4_1: [32, 20], Q5_0: [32, 22], Q5_1: [32, 24],
  Q8_0: [32, 34], Q8_1: [32, 36], Q2_K: [QK_K, 84], Q3_K: [QK_K, 110], Q4_K: [QK_K, 144],
  Q5_K: [QK_K, 176], Q6_K: [QK_K, 210], Q8_K: [QK_K, 292], IQ2_XXS: [QK_K, 66], IQ2_XS: [QK_K, 74],
  IQ3_XXS: [QK_K, 98], IQ1_S: [QK_K, 50], IQ4_NL: [32, 18], IQ3_S: [QK_K, 110], IQ2_S: [QK_K, 82],
  IQ4_XS: [QK_K, 136], I8: [1, 1], I16: [1, 2], I32: [1, 4], I64: [1, 8], F64: [1, 8],
  IQ1_M: [QK_K, 56], BF16: [1, 2], TQ1_0: [QK_K, 54], TQ2_0: [QK_K, 66], MXFP4: [32, 17],
  NVFP4: [64, 36], Q1_0: [128, 18], Q2_0: [64, 18],
};

const BY_ID = new Map<number, GgmlTypeInfo>();
for (const [name, id] of Object.entries(GGML_TYPE) as [GgmlTypeName, number][]) {
  const [blockValues, blockBytes] = SIZES[name];
  BY_ID.set(id, { id, name, blockValues, blockBytes });
}

/** The ggml type with this id, or undefined for ids ggml does not define. */
export function ggmlTypeInfo(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/** Byte size of `numel` values of a ggml type whose rows hold `rowLength` values (undefined if rows do not split into blocks). */
export function ggmlTensorBytes(info: GgmlTypeInfo, rowLength: number, numel: number): number | undefined {
  if (rowLength % info.blockValues !== 0) return undefined;
  return (numel / info.blockValues) * info.blockBytes;
}

export interface QuantFormatInfo {
  readonly format: QuantFormat;
  /** Values per block. */
  readonly qk: number;
  /** GGUF block size in bytes (block_q8_0: 34, ...). */
  readonly ggufBlockBytes: number;
  /** The GGUF/ggml type id of the same blocks. */
  readonly ggmlType: number;
  /** Bytes per block in the device `qs` section (the whole 144-byte block for q4_k). */
  readonly qsBlockBytes: number;
  /** Whether the device layout has a `qh: u32 [nb]` section (q5_0). */
  readonly hasQh: boolean;
  /** Whether the device layout has a `d: f16 [nb]` section (all but q4_k). */
  readonly hasD: boolean;
}

export const FORMAT_INFO: Readonly<Record<QuantFormat, QuantFormatInfo>> = {
  q8_0: { format: 'q8_0', qk: 32, ggufBlockBytes: 34, ggmlType: GGML_TYPE.Q8_0, qsBlockBytes: 32, hasQh: false, hasD: true },
  q4_0: { format: 'q4_0', qk: 32, ggufBlockBytes: 18, ggmlType: GGML_TYPE.Q4_0, qsBlockBytes: 16, hasQh: false, hasD: true },
  q5_0: { format: 'q5_0', qk: 32, ggufBlockBytes: 22, ggmlType: GGML_TYPE.Q5_0, qsBlockBytes: 16, hasQh: true, hasD: true },
  q4_k: { format: 'q4_k', qk: 256, ggufBlockBytes: 144, ggmlType: GGML_TYPE.Q4_K, qsBlockBytes: 144, hasQh: false, hasD: false },
  q6_k: { format: 'q6_k', qk: 256, ggufBlockBytes: 210, ggmlType: GGML_TYPE.Q6_K, qsBlockBytes: 208, hasQh: false, hasD: true },
};

export function isQuantFormat(x: unknown): x is QuantFormat {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(FORMAT_INFO, x);
}

/** The device format of a GGUF type id, when it is one we store (undefined otherwise). */
export function quantFormatOfGgmlType(id: number): QuantFormat | undefined {
  for (const f of QUANT_FORMATS) if (FORMAT_INFO[f].ggmlType === id) return f;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Device layout

export interface Section {
  /** Byte offset from the start of the part's buffer (a multiple of 16). */
  readonly offset: number;
  readonly bytes: number;
}

export interface DeviceLayout {
  readonly format: QuantFormat;
  readonly rows: number;
  readonly K: number;
  /** Blocks per row (K / QK). */
  readonly blocksPerRow: number;
  /** Blocks in the part (rows * K / QK). */
  readonly nb: number;
  /** Quants: i8/u8 [nb, QK or QK/2], or the whole 144-byte q4_k blocks, or q6_k's 208-byte blocks. */
  readonly qs: Section;
  /** q5_0 only: the fifth bits, u32 [nb] (bit j of word b = bit 4 of value j of block b). */
  readonly qh?: Section;
  /** The f16 block scales, f16 [nb] (absent for q4_k, whose d and dmin stay inside the block). */
  readonly d?: Section;
  /** Buffer size: end of the last section rounded up to 4. */
  readonly totalBytes: number;
}

const align16 = (n: number) => Math.ceil(n / 16) * 16;

/**
 * Section offsets and buffer size of one part of `rows` rows of a [N, K] matrix stored as
 * `format` (docs/weight-formats.md). K must be a positive multiple of the format's block size.
 */
export function deviceLayout(format: QuantFormat, rows: number, K: number): DeviceLayout {
  const info = FORMAT_INFO[format];
  if (!info) throw new InputError(`deviceLayout: unknown format ${JSON.stringify(format)}`);
  if (!Number.isSafeInteger(rows) || rows < 0) throw new InputError(`deviceLayout: rows must be a non-negative integer, got ${rows}`);
  if (!Number.isSafeInteger(K) || K <= 0 || K % info.qk !== 0) {
    throw new InputError(`deviceLayout: K (${K}) must be a positive multiple of ${info.qk} for ${format}`);
  }
  const blocksPerRow = K / info.qk;
  const nb = rows * blocksPerRow;
  const qs: Section = { offset: 0, bytes: nb * info.qsBlockBytes };
  let end = qs.bytes;
  let qh: Section | undefined;
  let d: Section | undefined;
  if (info.hasQh) {
    qh = { offset: align16(end), bytes: nb * 4 };
    end = qh.offset + qh.bytes;
  }
  if (info.hasD) {
    d = { offset: align16(end), bytes: nb * 2 };
    end = d.offset + d.bytes;
  }
  const totalBytes = Math.ceil(end / 4) * 4;
  if (!Number.isSafeInteger(totalBytes)) throw new InputError(`deviceLayout: ${rows} x ${K} ${format} is too large`);
  return { format, rows, K, blocksPerRow, nb, qs, qh, d, totalBytes };
}

/** Bytes of a GGUF tensor of `rows` rows of K values in `format` (rows * K / QK blocks). */
export function ggufBytes(format: QuantFormat, rows: number, K: number): number {
  const info = FORMAT_INFO[format];
  return (rows * K / info.qk) * info.ggufBlockBytes;
}

// ---------------------------------------------------------------------------------------------
// Recipes

export type QuantizeMode = 'q8_0' | 'q4_k' | 'none';

/**
 * matrix          : a projection weight (in_proj, out_proj, attention and MLP matrices).
 * output          : an untied output head (lm_head).
 * tied-embedding  : the token table that is also the output head.
 * embedding       : an untied token table (only gathered).
 * high-precision  : never quantized: conv1d weight/bias, A_log, D, dt_bias, norms, biases, LoRA adapters.
 */
export type TensorQuantRole = 'matrix' | 'output' | 'tied-embedding' | 'embedding' | 'high-precision';

/** 'keep' = stay in the checkpoint's 16/32-bit dtype (or the loader's requested float dtype). */
export type RecipeChoice = QuantFormat | 'keep';

/**
 * The format a tensor with rows of K values gets under `mode`:
 *   'none' : keep.
 *   'q8_0' : q8_0 where K % 32 == 0, else keep.
 *   'q4_k' : llama.cpp's Q4_K_M: q6_k for the output head and a tied embedding, q4_k elsewhere;
 *            where K % 256 != 0, q6_k falls back to q8_0 and q4_k to q5_0 (and both keep the
 *            16-bit dtype when K % 32 != 0 too).
 * High-precision tensors always keep.
 */
export function recipeFormat(role: TensorQuantRole, K: number, mode: QuantizeMode): RecipeChoice {
  if (mode !== 'none' && mode !== 'q8_0' && mode !== 'q4_k') {
    throw new UnsupportedError(`quantize: ${JSON.stringify(mode)} is not supported (use 'q8_0', 'q4_k' or 'none')`);
  }
  if (!Number.isSafeInteger(K) || K <= 0) throw new InputError(`recipeFormat: K must be a positive integer, got ${K}`);
  if (mode === 'none' || role === 'high-precision') return 'keep';
  if (mode === 'q8_0') return K % 32 === 0 ? 'q8_0' : 'keep';
  const wide = role === 'output' || role === 'tied-embedding';
  if (K % 256 === 0) return wide ? 'q6_k' : 'q4_k';
  if (K % 32 === 0) return wide ? 'q8_0' : 'q5_0';
  return 'keep';
}
