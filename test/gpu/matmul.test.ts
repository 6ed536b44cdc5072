// matmul with the packed 16-bit path forced, matmul input errors, embedding gather and argmax,
// against float64 CPU references on random inputs with odd sizes. GEMV and GEMM cases are in
// matmul-gemv.test.ts / matmul-gemm.test.ts; the matmul tolerance is explained in
// test/helpers/matmul-check.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray, rng } from '../helpers/gpu.ts';
import { makeTensor } from '../helpers/tensors.ts';
import { matmulTests } from '../helpers/matmul-check.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import type { DType } from '../../src/backends/webgpu/tensor.ts';
import { InputError } from '../../src/errors.ts';
import { argmax, embedding, matmul } from '../../src/backends/webgpu/kernels/matmul.ts';

const DTYPES: DType[] = ['f32', 'f16', 'bf16'];

// The packed 16-bit path (u32 + unpack2x16float) forced on an adapter that has shader-f16; on
// SwiftShader (no f16) these are the default path. GEMV scalar/vector and GEMM vector/scalar.
matmulTests(test, testGpu, [
  { dtype: 'f16', M: 1, N: 300, K: 129, forcePacked: true },
  { dtype: 'f16', M: 3, N: 77, K: 136, forcePacked: true, rowsPerPart: 20 },
  { dtype: 'f16', M: 67, N: 77, K: 136, forcePacked: true, rowsPerPart: 20 },
  { dtype: 'f16', M: 67, N: 45, K: 61, forcePacked: true, xOffset: 5, xRowStride: 70, yOffset: 3, yRowStride: 50, accumulate: true },
  { dtype: 'f16', M: 67, N: 77, K: 136, forcePacked: true, path: 'gemm-tiled' },
  { dtype: 'f16', M: 67, N: 45, K: 61, forcePacked: true, path: 'gemm-tiled' },
  { dtype: 'f16', M: 2, N: 300, K: 136, forcePacked: true, gemv: { wg: 128, rows: 4 } },
]);

// Offsets far into the buffers: x and y are bound as windows starting at an aligned offset below
// the first touched element; the kernels see rebased offsets (both load paths, all kernels).
matmulTests(test, testGpu, [
  { dtype: 'bf16', M: 3, N: 70, K: 64, xOffset: 1000, xRowStride: 72, yOffset: 333, yRowStride: 90, accumulate: true },
  { dtype: 'f32', M: 1, N: 70, K: 61, xOffset: 1001, yOffset: 4097 },
  { dtype: 'f16', M: 20, N: 70, K: 61, xOffset: 777, xRowStride: 65, yOffset: 5000 },
  { dtype: 'bf16', M: 67, N: 70, K: 136, xOffset: 2052, xRowStride: 140, yOffset: 999, yRowStride: 75, path: 'gemm-tiled' },
]);

test('matmul: rejects bad shapes and aliasing with InputError', async () => {
  const ctx = await testGpu();
  const wt = makeTensor(ctx, 'w', randomArray(12, 1), [3, 4], 'f32');
  const xb = ctx.alloc.create('scratch:x', 64, STORAGE_RW);
  const yb = ctx.alloc.create('scratch:y', 64, STORAGE_RW);
  try {
    let err: unknown;
    try { await matmul(ctx, { x: xb, M: 1, w: wt.tensor, y: xb }); } catch (e) { err = e; }
    assert.ok(err instanceof InputError, 'x === y');
    err = undefined;
    try { await matmul(ctx, { x: xb, M: 5, w: wt.tensor, y: yb }); } catch (e) { err = e; }
    assert.ok(err instanceof InputError, 'x too small for M rows');
    err = undefined;
    const w3 = { ...wt.tensor, shape: [3, 2, 2] };
    try { await matmul(ctx, { x: xb, M: 1, w: w3, y: yb }); } catch (e) { err = e; }
    assert.ok(err instanceof InputError, '3-D weight');
  } finally {
    ctx.alloc.destroy(xb); ctx.alloc.destroy(yb); wt.dispose();
  }
});

// Embedding: an exact gather (no arithmetic), so the comparison is exact equality with the
// rounded table values; out-of-range ids give zero rows.
for (const dtype of DTYPES) {
  for (const [V, H, rowsPerPart] of [[50, 37, undefined], [97, 64, 13], [61, 33, 9]] as [number, number, number | undefined][]) {
    test(`embedding ${dtype} V=${V} H=${H}${rowsPerPart ? ` rowsPerPart=${rowsPerPart}` : ''}`, async () => {
      const ctx = await testGpu();
      const T = 23;
      const r = rng(V * 31 + H);
      const ids = new Uint32Array(T);
      for (let t = 0; t < T; t++) ids[t] = Math.floor(r() * V);
      ids[0] = 0; ids[1] = V - 1; ids[T - 1] = V + 5; // both ends, and one invalid id
      const tab = makeTensor(ctx, 'emb', randomArray(V * H, V + H), [V, H], dtype, { rowsPerPart });
      const idb = ctx.upload('scratch:ids', ids);
      const out = ctx.upload('scratch:out', new Float32Array(T * H).fill(7));
      try {
        await embedding(ctx, { ids: idb, T, table: tab.tensor, out });
        const got = await ctx.readF32(out);
        for (let t = 0; t < T; t++) {
          for (let h = 0; h < H; h++) {
            const want = ids[t] < V ? tab.values[ids[t] * H + h] : 0;
            if (got[t * H + h] !== want) assert.unreachable(`t=${t} id=${ids[t]} h=${h}: got ${got[t * H + h]} want ${want}`);
          }
        }
      } finally {
        ctx.alloc.destroy(idb); ctx.alloc.destroy(out); tab.dispose();
      }
    });
  }
}

test('embedding f16 packed path', async () => {
  const ctx = await testGpu();
  const V = 41, H = 19, T = 9;
  const ids = new Uint32Array([3, 40, 0, 17, 17, 22, 39, 1, 5]);
  const tab = makeTensor(ctx, 'emb', randomArray(V * H, 3), [V, H], 'f16', { rowsPerPart: 10 });
  const idb = ctx.upload('scratch:ids', ids);
  const out = ctx.alloc.create('scratch:out', T * H * 4, STORAGE_RW);
  try {
    await embedding(ctx, { ids: idb, T, table: tab.tensor, out, forcePacked: true });
    const got = await ctx.readF32(out);
    for (let i = 0; i < T * H; i++) {
      const want = tab.values[ids[Math.floor(i / H)] * H + (i % H)];
      if (got[i] !== want) assert.unreachable(`element ${i}: got ${got[i]} want ${want}`);
    }
  } finally {
    ctx.alloc.destroy(idb); ctx.alloc.destroy(out); tab.dispose();
  }
});

// Argmax: exact (comparisons only). Reference: first index of the maximum, NaN beats everything.
function refArgmax(row: Float32Array): number {
  let bi = 0;
  for (let i = 1; i < row.length; i++) {
    const v = row[i], b = row[bi];
    if (Number.isNaN(b)) break;
    if (Number.isNaN(v) || v > b) bi = i;
  }
  return bi;
}

for (const [M, V] of [[1, 1], [3, 7], [5, 1000], [2, 32001], [70, 257]]) {
  test(`argmax M=${M} V=${V} (ties, NaN, -inf rows)`, async () => {
    const ctx = await testGpu();
    const data = randomArray(M * V, M * 1000 + V);
    // Coarse values so ties are common; row-specific specials.
    for (let i = 0; i < data.length; i++) data[i] = Math.round(data[i] * 2);
    if (M >= 3 && V >= 3) {
      data.fill(-Infinity, V, 2 * V);                    // row 1: all -inf -> index 0
      data[2 * V + V - 1] = 100; data[2 * V + 1] = 100;  // row 2: tie at the top -> index 1
    }
    if (M >= 5 && V >= 10) { data[4 * V + 7] = NaN; data[4 * V + 9] = NaN; } // row 4: first NaN -> 7
    const lb = ctx.upload('scratch:logits', data);
    const out = ctx.upload('scratch:out', new Uint32Array(M).fill(12345));
    try {
      await argmax(ctx, { logits: lb, M, V, out });
      const got = await ctx.readU32(out);
      for (let m = 0; m < M; m++) {
        assert.is(got[m], refArgmax(data.subarray(m * V, (m + 1) * V)), `row ${m}`);
      }
    } finally {
      ctx.alloc.destroy(lb); ctx.alloc.destroy(out);
    }
  });
}

test.run();
