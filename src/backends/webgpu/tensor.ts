// A weight tensor resident on the GPU: the backend-neutral WeightTensor (src/backends/tensor.ts)
// with GPUBuffer parts. Storage formats are described in docs/weight-formats.md; kernels read
// 16-bit data as array<f16> when the device has shader-f16 and as packed u32 + unpack otherwise.
import type { TensorPart as NeutralPart, WeightTensor } from '../tensor.ts';

export { type DType, FLOAT_DTYPE_BYTES as DTYPE_BYTES, numel, rowSize, singleBuffer, isQuantDType } from '../tensor.ts';

export type TensorPart = NeutralPart<GPUBuffer>;
export type GpuTensor = WeightTensor<GPUBuffer>;
