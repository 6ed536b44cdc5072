// Weight formats as the kernels see them (docs/weight-formats.md, device layout): the format codes
// of assembly/kernels/formats.ts and the byte size of a part, so the wrappers can check a part's
// buffer before a kernel reads it.
import type { DType } from '../tensor.ts';
import { deviceLayout, isQuantFormat } from '../../quant/formats.ts';

/** The `fmt` argument of the kernels (assembly/kernels/formats.ts FMT_*). */
export const FORMAT_CODE: Readonly<Record<DType, number>> = {
  f32: 0, f16: 1, bf16: 2, q8_0: 3, q4_0: 4, q5_0: 5, q4_k: 6, q6_k: 7,
};

export const WEIGHT_FORMATS = Object.keys(FORMAT_CODE) as DType[];

export function isWeightFormat(v: unknown): v is DType {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(FORMAT_CODE, v);
}

/** Values per block: a row length (K) must be a multiple of it. */
export function formatBlock(f: DType): number {
  return f === 'q4_k' || f === 'q6_k' ? 256 : f === 'q8_0' || f === 'q4_0' || f === 'q5_0' ? 32 : 1;
}

/** Bytes of one part of `rows` rows of K values (for block formats: deviceLayout's totalBytes). */
export function partBytes(f: DType, rows: number, K: number): number {
  if (isQuantFormat(f)) return deviceLayout(f, rows, K).totalBytes;
  return f === 'f32' ? 4 * rows * K : Math.ceil((2 * rows * K) / 4) * 4;
}

/** Storage bytes per value of a format (for bandwidth figures). */
export function bytesPerValue(f: DType): number {
  return { f32: 4, f16: 2, bf16: 2, q8_0: 34 / 32, q4_0: 18 / 32, q5_0: 22 / 32, q4_k: 144 / 256, q6_k: 210 / 256 }[f];
}
