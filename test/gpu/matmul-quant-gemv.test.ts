// matmul, decode-sized M (<= 8) over block-quantized weights (shaders/gemv_q.wgsl), against a
// float64 CPU reference on the exact dequantized weights (src/quant/reference.ts), with both
// traversals forced (the GPU one and the software adapters' lane-per-row one) and the device's
// default: every format, odd N, M = 1..8 (all MB variants) and M > 8 (several z slices), K a multiple of 32 but not of 256
// (the q5_0/q8_0 fallback shapes), several parts, x/y offsets and strides (also x not
// vec4-aligned), accumulation, random raw blocks with extreme/subnormal/zero scales and zero
// blocks. Also the unit GEMV on 16/32-bit weights (the software adapters' decode path).
// Tolerance and its reason: test/helpers/matmul-check.ts (only f32 accumulation differs).
import { test } from 'uvu';
import { testGpu } from '../helpers/gpu.ts';
import { type MatmulCase, matmulTests } from '../helpers/matmul-check.ts';
import { QUANT_DTYPES } from '../helpers/quant-tensors.ts';

const cases: MatmulCase[] = [];
QUANT_DTYPES.forEach((dtype, i) => {
  const kq = dtype === 'q4_k' || dtype === 'q6_k';
  const Ks = kq ? [256, 768] : [96, 544];
  for (const path of ['gemv-gpu', 'gemv-lanes'] as const) {
    cases.push({ dtype, M: 1, N: 37, K: Ks[0], path });
    cases.push({ dtype, M: 3, N: 301, K: Ks[1], path, rowsPerPart: 97 });
    cases.push({ dtype, M: 2, N: 33, K: Ks[1], path, raw: true, yOffset: 11, yRowStride: 40, accumulate: true });
    // Each variant compiles for seconds on a CPU emulation: the MB = 8 and unaligned-x variants
    // (M = 5..8; x offset/stride not multiples of 4) run for alternating formats per traversal.
    if ((i + (path === 'gemv-gpu' ? 0 : 1)) % 2 === 0) {
      cases.push({ dtype, M: 8, N: 45, K: Ks[0], path, xOffset: 8, xRowStride: Ks[0] + 12, yOffset: 11, yRowStride: 99, accumulate: true });
    } else {
      cases.push({ dtype, M: 4, N: 29, K: Ks[0], path, xOffset: 5, xRowStride: Ks[0] + 3, yOffset: 3, yRowStride: 31, rowsPerPart: 10 });
    }
  }
  cases.push({ dtype, M: 1, N: 77, K: Ks[1], rowsPerPart: 7, accumulate: true, raw: true }); // the device's default GEMV
});
// GPU traversal with other tunings (R halved for MB = 8, a wider workgroup, a single row).
cases.push({ dtype: 'q4_k', M: 8, N: 41, K: 512, path: 'gemv-gpu', gemv: { wg: 128, rows: 8 } });
cases.push({ dtype: 'q8_0', M: 1, N: 41, K: 320, path: 'gemv-gpu', gemv: { wg: 32, rows: 1 } });
cases.push({ dtype: 'q6_k', M: 3, N: 23, K: 256, path: 'gemv-lanes', gemv: { wg: 4, rows: 1 } }); // no subgroup sharing
cases.push({ dtype: 'q5_0', M: 1, N: 70, K: 160, path: 'gemv-lanes', gemv: { wg: 16, rows: 4 } });
// The unit GEMV on 16/32-bit weights (K % 32 == 0).
for (const dtype of ['f32', 'f16', 'bf16'] as const) {
  cases.push({ dtype, M: 1, N: 300, K: 96, path: 'gemv-lanes' });
  cases.push({ dtype, M: 4, N: 45, K: 64, path: 'gemv-lanes', xOffset: 8, xRowStride: 80, yOffset: 11, yRowStride: 99, accumulate: true, rowsPerPart: 16 });
  cases.push({ dtype, M: 3, N: 33, K: 128, path: 'gemv-gpu', rowsPerPart: 12 });
}
cases.push({ dtype: 'f16', M: 3, N: 51, K: 160, path: 'gemv-lanes', forcePacked: true, xOffset: 3, xRowStride: 170 });
// More x rows than one workgroup serves (MB = 8 per slice of the grid's z; the last slice partial),
// as CPU emulations run small batches of decodes (gemvMaxM), and the device's default at such M.
cases.push({ dtype: 'q8_0', M: 13, N: 45, K: 96, path: 'gemv-lanes', yOffset: 5, yRowStride: 50, accumulate: true });
cases.push({ dtype: 'q4_k', M: 21, N: 37, K: 256, path: 'gemv-gpu' });
cases.push({ dtype: 'bf16', M: 19, N: 33, K: 64, path: 'gemv-lanes', rowsPerPart: 16 });
cases.push({ dtype: 'q6_k', M: 17, N: 29, K: 256 });

matmulTests(test, testGpu, cases);
test.run();
