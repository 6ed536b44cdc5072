// A row-strided f32 view into a larger activation buffer, so kernels can read a column slice
// (e.g. xBC or dt inside zxbcdt [T, inProjDim]) without a copy. Buffers are always bound whole:
// WebGPU binding offsets must be 256-byte aligned, our slices are not.

export interface StridedInput {
  readonly buffer: GPUBuffer;
  /** Element offset of row 0, column 0. */
  readonly offset: number;
  /** Elements between consecutive rows. */
  readonly rowStride: number;
}

export function strided(buffer: GPUBuffer, offset: number, rowStride: number): StridedInput {
  return { buffer, offset, rowStride };
}
