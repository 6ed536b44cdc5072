// Backend-neutral handles: device buffers and weight tensors. A backend owns the memory behind
// them (a GPUBuffer on WebGPU, a region of linear memory on Wasm); models and the runtime only
// pass them back to the backend's ops. Storage formats: docs/weight-formats.md.

/** A buffer owned by a backend. `size` is in bytes (a multiple of 4). */
export interface Buf {
  readonly size: number;
  readonly label: string;
}

/** 16/32-bit float storage. */
export type FloatDType = 'f32' | 'f16' | 'bf16';
/** Block-quantized storage (ggml blocks in the device layout of docs/weight-formats.md). */
export type QuantDType = 'q8_0' | 'q4_0' | 'q5_0' | 'q4_k' | 'q6_k';
/** How a matrix or embedding is stored. */
export type DType = FloatDType | QuantDType;

export const FLOAT_DTYPE_BYTES: Record<FloatDType, number> = { f32: 4, f16: 2, bf16: 2 };

export function isQuantDType(d: string): d is QuantDType {
  return d === 'q8_0' || d === 'q4_0' || d === 'q5_0' || d === 'q4_k' || d === 'q6_k';
}

export interface TensorPart<B extends Buf = Buf> {
  readonly buffer: B;
  /** First dim-0 index held by this part. */
  readonly rowStart: number;
  /** Number of dim-0 rows in this part. */
  readonly rows: number;
}

/**
 * A weight resident on a backend, split along dim 0 into parts when one part would exceed the
 * backend's largest binding. 16-bit parts start on an even element; quantized parts hold whole rows.
 */
export interface WeightTensor<B extends Buf = Buf> {
  readonly name: string;
  readonly dtype: DType;
  /** PyTorch order, outermost first: e.g. in_proj.weight [outFeatures, inFeatures]. */
  readonly shape: readonly number[];
  readonly parts: readonly TensorPart<B>[];
  /** Bytes of stored data (before padding), summed over parts. */
  readonly byteLength: number;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Elements per dim-0 row. */
export function rowSize(shape: readonly number[]): number {
  return shape.length <= 1 ? 1 : numel(shape.slice(1));
}

/** The single buffer of a tensor that was not split; throws for split tensors. */
export function singleBuffer<B extends Buf>(t: WeightTensor<B>): B {
  if (t.parts.length !== 1) throw new Error(`${t.name}: expected one part, has ${t.parts.length}`);
  return t.parts[0].buffer;
}

/** A row-strided f32 view into a larger activation buffer (e.g. xBC inside zxbcdt [T, inProjDim]). */
export interface Strided<B extends Buf = Buf> {
  readonly buffer: B;
  /** Element offset of row 0, column 0. */
  readonly offset: number;
  /** Elements between consecutive rows. */
  readonly rowStride: number;
}

export function strided<B extends Buf>(buffer: B, offset: number, rowStride: number): Strided<B> {
  return { buffer, offset, rowStride };
}
