// matmul, default GEMM path (prefill, M > 8: shaders/matmul.wgsl on GPUs, the register-blocked
// shaders/matmul_rb.wgsl on CPU emulations; the tiled kernel is forced in matmul-gemm-tiled.test.ts),
// against a float64 CPU reference: every weight dtype, M, N, K not multiples of the tiles, unaligned K (scalar loads)
// and K % 8 == 0 (vector loads), split weights, x/y offsets and strides, accumulation.
// Tolerance and its reason: test/helpers/matmul-check.ts.
import { test } from 'uvu';
import { testGpu } from '../helpers/gpu.ts';
import { DTYPES, type MatmulCase, matmulTests } from '../helpers/matmul-check.ts';

const cases: MatmulCase[] = [];
for (const dtype of DTYPES) {
  for (const M of [67, 200]) {
    cases.push({ dtype, M, N: 37, K: 53 });
    cases.push({ dtype, M, N: 300, K: 129 });
    cases.push({ dtype, M, N: 77, K: 136 });
  }
  cases.push({ dtype, M: 70, N: 131, K: 53, rowsPerPart: 7 });
  cases.push({ dtype, M: 70, N: 131, K: 64, rowsPerPart: 66 });
  cases.push({ dtype, M: 67, N: 45, K: 61, xOffset: 5, xRowStride: 70, yOffset: 3, yRowStride: 50, accumulate: true });
  cases.push({ dtype, M: 67, N: 45, K: 64, xOffset: 8, xRowStride: 80, yOffset: 11, yRowStride: 99, accumulate: true });
}
// Long K through many slices, split, at a realistic width; x not vec4-aligned; the GEMM at tiny M.
cases.push({ dtype: 'bf16', M: 67, N: 1000, K: 2049, rowsPerPart: 301 });
cases.push({ dtype: 'bf16', M: 67, N: 45, K: 64, xOffset: 6, xRowStride: 66, yOffset: 7, yRowStride: 47 });
cases.push({ dtype: 'bf16', M: 2, N: 29, K: 80, path: 'gemm', accumulate: true });
cases.push({ dtype: 'f32', M: 9, N: 65, K: 88 });

matmulTests(test, testGpu, cases);
test.run();
