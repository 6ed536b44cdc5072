// matmul, GEMV path (decode-sized M <= 8, shaders/gemv.wgsl), against a float64 CPU reference:
// every weight dtype, unaligned K (scalar loads) and K % 8 == 0 (vector loads), odd N, split
// weights, x/y offsets and strides, accumulation; with this adapter's default tuning and with the
// other adapter class's tuning (GPU: 128 threads x 4 rows, CPU emulation: 32 x 32), so both
// shapes of the kernel are checked here. Tolerance and its reason: test/helpers/matmul-check.ts.
import { test } from 'uvu';
import { testGpu } from '../helpers/gpu.ts';
import { DTYPES, type MatmulCase, matmulTests, runMatmulCase } from '../helpers/matmul-check.ts';

const cases: MatmulCase[] = [];
for (const dtype of DTYPES) {
  for (const M of [1, 3]) {
    cases.push({ dtype, M, N: 37, K: 53 });
    cases.push({ dtype, M, N: 300, K: 129 });
    cases.push({ dtype, M, N: 77, K: 136 });
    cases.push({ dtype, M, N: 1000, K: 2049 });
    cases.push({ dtype, M, N: 101, K: 53, rowsPerPart: 7 }); // odd request -> 8 rows/part for 16-bit
  }
  for (const M of [1, 4]) {
    // x rows inside a wider buffer, y written into a strided slice (e.g. a KV-cache row), y +=.
    cases.push({ dtype, M, N: 45, K: 61, xOffset: 5, xRowStride: 70, yOffset: 3, yRowStride: 50, accumulate: true });
    cases.push({ dtype, M, N: 45, K: 64, xOffset: 8, xRowStride: 80, yOffset: 11, yRowStride: 99, accumulate: true, rowsPerPart: 16 });
  }
}
// Remaining specialisations, once each: M = 2 (in the MB = 4 variant), MB = 8, x not vec4-aligned,
// M above one MB group.
cases.push({ dtype: 'bf16', M: 2, N: 333, K: 2048 });
cases.push({ dtype: 'bf16', M: 5, N: 101, K: 64, rowsPerPart: 30 });
cases.push({ dtype: 'bf16', M: 4, N: 45, K: 64, xOffset: 6, xRowStride: 66, yOffset: 7, yRowStride: 47 });
cases.push({ dtype: 'bf16', M: 13, N: 29, K: 80, path: 'gemv', accumulate: true });

// The GPU tuning on software adapters (and the software tuning on GPUs): each dtype, both load paths.
const other = async () => ((await testGpu()).adapter.isSoftware ? { wg: 128, rows: 4 } : { wg: 32, rows: 32 });
for (const dtype of DTYPES) {
  for (const c of [{ M: 1, N: 300, K: 129 }, { M: 3, N: 77, K: 136, xOffset: 4, xRowStride: 140, yOffset: 3, yRowStride: 90, accumulate: true, rowsPerPart: 20 }]) {
    test(`matmul ${dtype} M=${c.M} N=${c.N} K=${c.K} other-adapter GEMV tuning`, async () => {
      await runMatmulCase(await testGpu(), { dtype, ...c, gemv: await other() });
    });
  }
}

matmulTests(test, testGpu, cases);
test.run();
