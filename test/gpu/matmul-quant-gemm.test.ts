// matmul, prefill-sized M (> 8) over block-quantized weights: the tiled GEMM (shaders/matmul.wgsl,
// tiles dequantized into workgroup memory: the GPU kernel) and the register-blocked one
// (shaders/matmul_rb.wgsl: the software adapters' kernel), both forced, and the device's default,
// against a float64 CPU reference on the exact dequantized weights: every format, M, N, K not
// multiples of the tiles, K a multiple of 32 but not of 256, several parts, offsets/strides,
// accumulation, random raw blocks with extreme/zero scales. Tolerance: test/helpers/matmul-check.ts.
import { test } from 'uvu';
import { testGpu } from '../helpers/gpu.ts';
import { type MatmulCase, matmulTests } from '../helpers/matmul-check.ts';
import { QUANT_DTYPES } from '../helpers/quant-tensors.ts';

const cases: MatmulCase[] = [];
for (const dtype of QUANT_DTYPES) {
  const kq = dtype === 'q4_k' || dtype === 'q6_k';
  const K = kq ? 512 : 96;
  for (const path of ['gemm-tiled', 'gemm-blocked'] as const) {
    cases.push({ dtype, M: 67, N: 77, K, path, rowsPerPart: 30 });
    cases.push({ dtype, M: 9, N: 45, K, path, xOffset: 5, xRowStride: K + 3, yOffset: 3, yRowStride: 50, accumulate: true });
    cases.push({ dtype, M: 33, N: 29, K, path, raw: true });
  }
  cases.push({ dtype, M: 70, N: 65, K: kq ? 256 : 160, xOffset: 8, xRowStride: (kq ? 256 : 160) + 4, yOffset: 7, yRowStride: 70 });
}
cases.push({ dtype: 'q4_k', M: 130, N: 70, K: 768, path: 'gemm-tiled' });
cases.push({ dtype: 'q8_0', M: 20, N: 131, K: 1056, path: 'gemm-blocked', rowsPerPart: 64 });

matmulTests(test, testGpu, cases);
test.run();
