// matmul with the workgroup-memory tiled GEMM forced (shaders/matmul.wgsl, the GPU prefill kernel,
// which software adapters do not pick by default), against a float64 CPU reference: every weight
// dtype, M, N, K not multiples of the 64 x 64 x 16 tile, unaligned K (scalar loads) and K % 8 == 0
// (vector loads), split weights, offsets/strides, accumulation, many K slices.
// Tolerance and its reason: test/helpers/matmul-check.ts.
import { test } from 'uvu';
import { testGpu } from '../helpers/gpu.ts';
import { DTYPES, type MatmulCase, matmulTests } from '../helpers/matmul-check.ts';

const path = 'gemm-tiled' as const;
const cases: MatmulCase[] = [];
for (const dtype of DTYPES) {
  cases.push({ dtype, M: 67, N: 300, K: 129, path });
  cases.push({ dtype, M: 200, N: 77, K: 136, path });
  cases.push({ dtype, M: 70, N: 131, K: 53, rowsPerPart: 7, path });
  cases.push({ dtype, M: 67, N: 45, K: 64, xOffset: 8, xRowStride: 80, yOffset: 11, yRowStride: 99, accumulate: true, rowsPerPart: 20, path });
}
cases.push({ dtype: 'bf16', M: 67, N: 200, K: 2049, path });
cases.push({ dtype: 'bf16', M: 67, N: 45, K: 64, xOffset: 6, xRowStride: 66, yOffset: 7, yRowStride: 47, path });
cases.push({ dtype: 'f32', M: 3, N: 29, K: 80, accumulate: true, path });

matmulTests(test, testGpu, cases);
test.run();
