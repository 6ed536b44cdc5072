// matmul (GEMV + tiled GEMM), embedding gather and argmax against float64 CPU references, on
// random inputs with odd sizes, all three weight dtypes, split weights, offsets/strides,
// accumulation and (where the adapter has shader-f16) the packed 16-bit path forced on.
//
// Tolerance for matmul: each output is a sum of K products of values that are exact in f32
// (weights are compared against their rounded f16/bf16 values, so storage rounding is not an
// error). Any f32 summation order is within (K + 1) * 2^-24 * sum_k |x_k w_k| of the exact sum
// (standard first-order bound), plus 2^-24 * |y0| for the accumulated term; we allow
// tol = (K + 2) * 2^-24 * (sum_k |x_k w_k| + |y0|). A dropped, doubled or misplaced term changes
// a result by about |x_k w_k|, i.e. ~1/K of that magnitude on average and far more at the worst
// entry, which is well above the bound for the K used here, so indexing bugs cannot hide in it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray, rng } from '../helpers/gpu.ts';
import { makeTensor } from '../helpers/tensors.ts';
import { STORAGE_RW } from '../../src/gpu/flags.ts';
import type { GpuContext } from '../../src/gpu/context.ts';
import type { DType } from '../../src/gpu/tensor.ts';
import { InputError } from '../../src/errors.ts';
import { argmax, embedding, matmul } from '../../src/kernels/matmul.ts';

const U = 2 ** -24;

interface Case {
  dtype: DType; M: number; N: number; K: number;
  xOffset?: number; xRowStride?: number; yOffset?: number; yRowStride?: number;
  accumulate?: boolean; rowsPerPart?: number; forcePacked?: boolean; path?: 'gemv' | 'gemm';
}

function label(c: Case): string {
  const extra = Object.entries(c).filter(([k]) => !['dtype', 'M', 'N', 'K'].includes(k)).map(([k, v]) => `${k}=${v}`);
  return `matmul ${c.dtype} M=${c.M} N=${c.N} K=${c.K}${extra.length ? ' ' + extra.join(' ') : ''}`;
}

let seed = 1;

async function runCase(ctx: GpuContext, c: Case): Promise<void> {
  const { M, N, K } = c;
  const xOffset = c.xOffset ?? 0, xs = c.xRowStride ?? K, yOffset = c.yOffset ?? 0, ys = c.yRowStride ?? N;
  const xLen = xOffset + (M - 1) * xs + K + 3; // a few spare elements past the last row
  const yLen = yOffset + (M - 1) * ys + N + 5;
  const x = randomArray(xLen, seed++);
  const y0 = randomArray(yLen, seed++); // guard values everywhere; the kernel must keep what it does not own
  const wt = makeTensor(ctx, 'w', randomArray(N * K, seed++, 1 / Math.sqrt(K)), [N, K], c.dtype, { rowsPerPart: c.rowsPerPart });
  if (c.rowsPerPart !== undefined && c.rowsPerPart < N) assert.ok(wt.tensor.parts.length > 1, 'tensor was split');
  const xb = ctx.upload('scratch:x', x);
  const yb = ctx.upload('scratch:y', y0);
  try {
    await matmul(ctx, {
      x: xb, xOffset: c.xOffset, xRowStride: c.xRowStride, M, w: wt.tensor, y: yb,
      yOffset: c.yOffset, yRowStride: c.yRowStride, accumulate: c.accumulate, forcePacked: c.forcePacked, path: c.path,
    });
    const got = await ctx.readF32(yb);
    const wv = wt.values;
    const owned = new Uint8Array(yLen);
    let worst = 0, worstAt = '';
    for (let m = 0; m < M; m++) {
      const xr = xOffset + m * xs;
      for (let n = 0; n < N; n++) {
        let s = 0, mag = 0;
        const wr = n * K;
        for (let k = 0; k < K; k++) {
          const p = x[xr + k] * wv[wr + k];
          s += p; mag += Math.abs(p);
        }
        const yi = yOffset + m * ys + n;
        owned[yi] = 1;
        if (c.accumulate) { s += y0[yi]; mag += Math.abs(y0[yi]); }
        const tol = (K + 2) * U * mag + 1e-30;
        const r = Math.abs(got[yi] - s) / tol;
        if (!(r <= worst)) { worst = r; worstAt = `m=${m} n=${n} got ${got[yi]} want ${s} tol ${tol}`; }
      }
    }
    assert.ok(worst <= 1, `${label(c)}: error ${worst.toFixed(2)} x tolerance at ${worstAt}`);
    for (let i = 0; i < yLen; i++) {
      if (!owned[i] && got[i] !== y0[i]) assert.unreachable(`${label(c)}: wrote y[${i}] outside its rows/columns`);
    }
  } finally {
    ctx.alloc.destroy(xb); ctx.alloc.destroy(yb); wt.dispose();
  }
}

const DTYPES: DType[] = ['f32', 'f16', 'bf16'];
const cases: Case[] = [];
// Unaligned K (scalar path) and aligned K (vector path), odd N, every M class.
for (const dtype of DTYPES) {
  for (const M of [1, 3, 67, 200]) {
    cases.push({ dtype, M, N: 37, K: 53 });
    cases.push({ dtype, M, N: 300, K: 129 });
    cases.push({ dtype, M, N: 77, K: 136 });
  }
  cases.push({ dtype, M: 1, N: 1000, K: 2049 });
  cases.push({ dtype, M: 3, N: 1000, K: 2049 });
  cases.push({ dtype, M: 2, N: 333, K: 2048 });
  cases.push({ dtype, M: 67, N: 1000, K: 2049, rowsPerPart: 301 });
  // Split parts (an odd request becomes even for 16-bit with odd K), both kernels.
  cases.push({ dtype, M: 1, N: 101, K: 53, rowsPerPart: 7 });
  cases.push({ dtype, M: 5, N: 101, K: 64, rowsPerPart: 30 });
  cases.push({ dtype, M: 70, N: 131, K: 53, rowsPerPart: 7 });
  cases.push({ dtype, M: 70, N: 131, K: 64, rowsPerPart: 66 });
  // Offsets/strides (unaligned and vec4-aligned) and accumulation, e.g. into a KV-cache row.
  for (const M of [1, 4, 67]) {
    cases.push({ dtype, M, N: 45, K: 61, xOffset: 5, xRowStride: 70, yOffset: 3, yRowStride: 50, accumulate: true });
    cases.push({ dtype, M, N: 45, K: 64, xOffset: 8, xRowStride: 80, yOffset: 11, yRowStride: 99, accumulate: true });
    cases.push({ dtype, M, N: 45, K: 64, xOffset: 6, xRowStride: 66, yOffset: 7, yRowStride: 47 });
  }
  // Forced kernels outside their default M range: GEMV with two MB groups, GEMM for tiny M.
  cases.push({ dtype, M: 13, N: 29, K: 80, path: 'gemv' });
  cases.push({ dtype, M: 2, N: 29, K: 80, path: 'gemm', accumulate: true });
}
// The packed 16-bit path on an adapter that has shader-f16 (SwiftShader always takes it).
for (const M of [1, 3, 67]) {
  cases.push({ dtype: 'f16', M, N: 300, K: 129, forcePacked: true });
  cases.push({ dtype: 'f16', M, N: 77, K: 136, forcePacked: true, rowsPerPart: 20 });
}

for (const c of cases) {
  test(label(c), async () => { await runCase(await testGpu(), c); });
}

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
