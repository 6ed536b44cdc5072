// A weight tensor resident on the GPU.
//
// Storage formats:
//   f32  : array<f32>, one element per 4 bytes.
//   f16  : IEEE half, two per u32, element 2i in the low 16 bits (little-endian, exactly the
//          safetensors bytes). Kernels read it as array<f16> when the device has shader-f16 and
//          as array<u32> + unpack2x16float otherwise.
//   bf16 : bfloat16, packed the same way; element e = bitcast<f32>(half << 16).
// Buffers are padded to a multiple of 4 bytes.
//
// A tensor larger than the device's max storage binding is split along dim 0 into parts; every
// part starts on an even element so 16-bit packing never straddles a part boundary.

export type DType = 'f32' | 'f16' | 'bf16';

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };

export interface TensorPart {
  readonly buffer: GPUBuffer;
  /** First dim-0 index held by this part. */
  readonly rowStart: number;
  /** Number of dim-0 rows in this part. */
  readonly rows: number;
}

export interface GpuTensor {
  readonly name: string;
  readonly dtype: DType;
  /** PyTorch order, outermost first: e.g. in_proj.weight [outFeatures, inFeatures]. */
  readonly shape: readonly number[];
  readonly parts: readonly TensorPart[];
  /** Bytes of element data (before padding), summed over parts. */
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
export function singleBuffer(t: GpuTensor): GPUBuffer {
  if (t.parts.length !== 1) throw new Error(`${t.name}: expected one part, has ${t.parts.length}`);
  return t.parts[0].buffer;
}
