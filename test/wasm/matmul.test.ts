// Wasm matmul (GEMV and panel GEMM) and embedding gather, every weight format, against float64
// references on the exact stored values (block formats: src/quant/reference.ts dequantizeDevice),
// on odd sizes, with strides, offsets, accumulate and split weights; every case runs under 1 thread,
// all cores, and 3 and 7 simulated threads, and the outputs must be bit-identical across them.
//
// Tolerance: y = sum_k x_k w_k (+ y0) in f32 is within (K + c) 2^-24 (sum_k |x_k| m_k + |y0|) of the
// exact sum, the standard first-order bound for any summation order with at most K + c roundings
// on a term's path. m_k = |w_k| for every format except q4_k, where the GEMV sums d sc q x and
// dmin m x separately and m_k = |d sc q| + |dmin m| (src: test/wasm/helpers.ts). c = 2 for the
// 16/32-bit formats (products, sums, the y0 add); c = 8 for block formats, whose block sums take
// extra roundings (the per-block scale multiply, the sub-block min product, the two-chain split).
// A dropped, doubled or misplaced term moves a result by about |x_k w_k|, far above the bound at
// these K, so indexing bugs cannot hide in it. Every element outside the output rows/columns must
// keep its guard value.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WEIGHT_FORMATS } from '../../src/backends/wasm/formats.ts';
import type { DType } from '../../src/backends/tensor.ts';
import { f16BitsToNumber } from '../../src/quant/half.ts';
import {
  CONFIG_GROUPS, U, assertSameBits, closeAll, configName, kernels, makeWeight, randomArray, type BlockSource,
} from './helpers.ts';

interface Case {
  dtype: DType; M: number; N: number; K: number; path: 'gemv' | 'gemm';
  xOffset?: number; xRowStride?: number; yOffset?: number; yRowStride?: number;
  accumulate?: boolean; rowsPerPart?: number; source?: BlockSource; scale?: number;
}

function label(c: Case): string {
  const extra = Object.entries(c).filter(([k]) => !['dtype', 'M', 'N', 'K', 'path'].includes(k)).map(([k, v]) => `${k}=${v}`);
  return `${c.path} ${c.dtype} M=${c.M} N=${c.N} K=${c.K}${extra.length ? ' ' + extra.join(' ') : ''}`;
}

let seed = 100;

async function runCase(c: Case): Promise<void> {
  const { M, N, K } = c;
  const xOffset = c.xOffset ?? 0, xs = c.xRowStride ?? K, yOffset = c.yOffset ?? 0, ys = c.yRowStride ?? N;
  const xLen = xOffset + (M - 1) * xs + K + 3;
  const yLen = yOffset + (M - 1) * ys + N + 5;
  const x = randomArray(xLen, seed++);
  const y0 = randomArray(yLen, seed++);
  const wSeed = seed++;
  const block = c.dtype.startsWith('q') ? 8 : 2;
  for (const group of CONFIG_GROUPS) {
    const outputs: Float32Array[] = [];
    for (const cfg of group) {
      const k = await kernels(cfg);
      const w = makeWeight(k, 'w', c.dtype, N, K, wSeed, { rowsPerPart: c.rowsPerPart, source: c.source, scale: c.scale });
      if (c.rowsPerPart !== undefined && c.rowsPerPart < N) assert.ok(w.tensor.parts.length > 1, 'tensor was split');
      const xb = k.upload('act:x', x), yb = k.upload('act:y', y0);
      try {
        k.matmul({ x: xb, xOffset: c.xOffset, xRowStride: c.xRowStride, M, w: w.tensor, y: yb, yOffset: c.yOffset,
          yRowStride: c.yRowStride, accumulate: c.accumulate, path: c.path });
        const got = k.readF32(yb, 0, yLen);
        outputs.push(got);
        if (outputs.length > 1) {
          assertSameBits(got, outputs[0], `${label(c)}: ${configName(cfg)} vs ${configName(group[0])}`);
          continue;
        }
        const owned = new Uint8Array(yLen);
        let worst = 0, worstAt = '';
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < N; n++) {
            let s = 0, mag = 0;
            for (let kk = 0; kk < K; kk++) {
              const xv = x[xOffset + m * xs + kk];
              s += xv * w.values[n * K + kk];
              mag += Math.abs(xv) * w.magnitude[n * K + kk];
            }
            const yi = yOffset + m * ys + n;
            owned[yi] = 1;
            if (c.accumulate) { s += y0[yi]; mag += Math.abs(y0[yi]); }
            const tol = (K + block) * U * mag + 1e-30;
            const r = Math.abs(got[yi] - s) / tol;
            if (!(r <= worst)) { worst = r; worstAt = `m=${m} n=${n} got ${got[yi]} want ${s} tol ${tol}`; }
          }
        }
        assert.ok(worst <= 1, `${label(c)}: error ${worst.toFixed(2)} x tolerance at ${worstAt}`);
        for (let i = 0; i < yLen; i++) {
          if (!owned[i] && got[i] !== y0[i]) assert.unreachable(`${label(c)}: wrote y[${i}] outside its rows/columns`);
        }
      } finally {
        k.heap.free(xb); k.heap.free(yb); w.dispose();
      }
    }
  }
}

const cases: Case[] = [];
for (const path of ['gemv', 'gemm'] as const) {
  for (const dtype of ['f32', 'f16', 'bf16'] as DType[]) {
    cases.push(
      { dtype, path, M: 1, N: 1, K: 1 },
      { dtype, path, M: 1, N: 7, K: 13 },
      { dtype, path, M: 1, N: 33, K: 64 },
      { dtype, path, M: 3, N: 17, K: 37, accumulate: true },
      { dtype, path, M: 5, N: 9, K: 129, rowsPerPart: 4 },
      { dtype, path, M: 9, N: 18, K: 24, xOffset: 3, xRowStride: 29, yOffset: 5, yRowStride: 21, accumulate: true },
      { dtype, path, M: 2, N: 11, K: 8, rowsPerPart: 3 },
    );
  }
  cases.push({ dtype: 'f16', path, M: 2, N: 13, K: 70, scale: 1e-6 }); // mostly f16 subnormals
  for (const dtype of ['q8_0', 'q4_0', 'q5_0'] as DType[]) {
    cases.push(
      { dtype, path, M: 1, N: 1, K: 32 },
      { dtype, path, M: 1, N: 13, K: 96 },
      { dtype, path, M: 3, N: 21, K: 160, rowsPerPart: 8, accumulate: true },
      { dtype, path, M: 6, N: 5, K: 64, xOffset: 7, xRowStride: 71, yOffset: 2, yRowStride: 9, source: 'random' },
    );
  }
  for (const dtype of ['q4_k', 'q6_k'] as DType[]) {
    cases.push(
      { dtype, path, M: 1, N: 3, K: 256 },
      { dtype, path, M: 2, N: 9, K: 512, rowsPerPart: 4, accumulate: true },
      { dtype, path, M: 5, N: 6, K: 256, xOffset: 1, xRowStride: 259, source: 'random' },
    );
  }
}

for (const c of cases) test(label(c), () => runCase(c));

test('matmul: every dtype of the table is covered', () => {
  const covered = new Set(cases.map((c) => c.dtype));
  for (const f of WEIGHT_FORMATS) assert.ok(covered.has(f), f);
});

test('matmul: K = 0 clears y (or leaves it when accumulating); M = 0 and N = 0 write nothing', async () => {
  const k = await kernels({ threads: 1 });
  const w = makeWeight(k, 'w0', 'f32', 3, 0, 1);
  const y = k.upload('act:y', new Float32Array([1, 2, 3, 4]));
  const x = k.upload('act:x', new Float32Array(4));
  k.matmul({ x, M: 1, w: w.tensor, y, accumulate: true });
  assert.equal([...k.readF32(y)], [1, 2, 3, 4]);
  k.matmul({ x, M: 1, w: w.tensor, y });
  assert.equal([...k.readF32(y)], [0, 0, 0, 4]);
  k.heap.free(x); k.heap.free(y); w.dispose();
});

test('matmul: bad arguments are refused with typed errors before any kernel runs', async () => {
  const k = await kernels({ threads: 1 });
  const w = makeWeight(k, 'wq', 'q8_0', 4, 64, 2);
  const x = k.upload('act:x', new Float32Array(64)), y = k.upload('act:y', new Float32Array(4));
  assert.throws(() => k.matmul({ x, M: 2, w: w.tensor, y }), /needs 512 bytes/);
  assert.throws(() => k.matmul({ x, M: 1, w: w.tensor, y: x }), /y overlaps x/);
  assert.throws(() => k.matmul({ x, M: 1.5, w: w.tensor, y }), /integer/);
  const bad = { ...w.tensor, shape: [4, 48] };
  assert.throws(() => k.matmul({ x, M: 1, w: bad, y }), /multiple of the q8_0 block/);
  const short = { ...w.tensor, parts: [{ ...w.tensor.parts[0], rows: 3 }] };
  assert.throws(() => k.matmul({ x, M: 1, w: short, y }), /parts hold 3 rows/);
  const unknown = { ...w.tensor, dtype: 'q2_k' as DType };
  assert.throws(() => k.matmul({ x, M: 1, w: unknown, y }), /not supported/);
  k.heap.free(y);
  assert.throws(() => k.matmul({ x, M: 1, w: w.tensor, y }), /not a live buffer/);
  k.heap.free(x); w.dispose();
});

// ---- embedding ----

for (const dtype of WEIGHT_FORMATS) {
  test(`embedding ${dtype}: rows gathered exactly (bit for bit), split table, out-of-range ids zeroed`, async () => {
    const H = dtype === 'q4_k' || dtype === 'q6_k' ? 512 : dtype.startsWith('q') ? 96 : 37;
    const V = 11;
    const ids = new Uint32Array([3, 0, 10, 7, 11, 3, 0xffffffff, 5, 1]);
    const outputs: Float32Array[] = [];
    for (const cfg of CONFIG_GROUPS.flat()) {
      const k = await kernels(cfg);
      const table = makeWeight(k, 'emb', dtype, V, H, 7, { rowsPerPart: 4, source: dtype.startsWith('q') ? 'random' : undefined });
      const idb = k.upload('act:ids', ids);
      const out = k.upload('act:out', new Float32Array(ids.length * H).fill(Math.PI));
      k.embedding({ ids: idb, T: ids.length, table: table.tensor, out });
      const got = k.readF32(out);
      for (let t = 0; t < ids.length; t++) {
        for (let h = 0; h < H; h++) {
          const want = ids[t] < V ? table.values[ids[t] * H + h] : 0;
          const g = got[t * H + h];
          if (!(Object.is(g, want) || (Number.isNaN(g) && Number.isNaN(want)) || g === want)) {
            assert.unreachable(`${configName(cfg)}: token ${t} (id ${ids[t]}) element ${h}: got ${g}, want ${want}`);
          }
        }
      }
      if (outputs.length) assertSameBits(got, outputs[0], `embedding ${dtype} ${configName(cfg)}`);
      outputs.push(got);
      k.heap.free(idb); k.heap.free(out); table.dispose();
    }
  });
}

test('embedding f16: subnormals, signed zeros, infinities and NaN decode exactly', async () => {
  const k = await kernels({ threads: 1 });
  // 0x0001 smallest subnormal, 0x03ff largest subnormal, 0x0400 smallest normal, 0x8000 -0,
  // 0x7bff 65504, 0x7c00 inf, 0xfc00 -inf, 0x7e01 NaN with payload, 0x3c00 1, 0xbc00 -1, 0x8001.
  const special = [0x0001, 0x03ff, 0x0400, 0x8000, 0x0000, 0x7bff, 0x7c00, 0xfc00, 0x7e01, 0x3c00, 0xbc00, 0x8001, 0x1234, 0x9abc, 0x5555, 0x03fe, 0xfbff];
  const H = special.length; // 17: one 16-value vector path plus a scalar tail
  const bits16 = new Uint16Array(H + 1);
  bits16.set(special);
  const buf = k.upload('weights:special', bits16);
  const table = { name: 'special', dtype: 'f16' as DType, shape: [1, H], parts: [{ buffer: buf, rowStart: 0, rows: 1 }], byteLength: H * 2 };
  const idb = k.upload('act:ids', new Uint32Array([0]));
  const out = k.upload('act:out', new Float32Array(H));
  k.embedding({ ids: idb, T: 1, table, out });
  const got = k.readF32(out);
  for (let i = 0; i < H; i++) {
    const want = f16BitsToNumber(special[i]);
    if (Number.isNaN(want)) {
      assert.ok(Number.isNaN(got[i]), `element ${i} NaN`); // payloads: Wasm arithmetic may canonicalize
    } else {
      assert.ok(Object.is(got[i], want), `element ${i} (0x${special[i].toString(16)}): got ${got[i]}, want ${want}`);
    }
  }
  k.heap.free(buf); k.heap.free(idb); k.heap.free(out);
});

test.after(closeAll);
test.run();
