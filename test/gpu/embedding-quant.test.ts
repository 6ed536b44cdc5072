// The WGSL dequantizers against the TypeScript reference (src/quant/reference.ts dequantizeDevice):
// an embedding gather of every row of a block-quantized table (random raw blocks: random quants
// and sub-scales, extreme, subnormal and zero scales, zero blocks; and blocks quantized from normal
// data) must equal the reference dequantization exactly, on split tables, with out-of-range ids
// giving zero rows. Also the tied head: the same quantized table as a matmul weight, and the
// typed errors for malformed quantized tensors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray, rng } from '../helpers/gpu.ts';
import { QUANT_DTYPES, makeQuantTensor, randomBlocks } from '../helpers/quant-tensors.ts';
import { runMatmulCase } from '../helpers/matmul-check.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import { FORMAT_INFO, deviceLayout } from '../../src/quant/formats.ts';
import { InputError } from '../../src/errors.ts';
import { embedding, matmul } from '../../src/backends/webgpu/kernels/matmul.ts';
import type { GpuTensor } from '../../src/backends/webgpu/tensor.ts';

for (const dtype of QUANT_DTYPES) {
  const qk = FORMAT_INFO[dtype].qk;
  for (const [V, H, rowsPerPart, raw] of [[37, qk === 256 ? 512 : 96, 10, true], [29, qk === 256 ? 256 : 160, undefined, true], [23, qk === 256 ? 256 : 64, 7, false]] as const) {
    test(`embedding ${dtype} V=${V} H=${H}${rowsPerPart ? ` rowsPerPart=${rowsPerPart}` : ''} ${raw ? 'raw blocks (extreme/zero scales)' : 'quantized normal data'}: every row equals the reference dequantization`, async () => {
      const ctx = await testGpu();
      const tab = makeQuantTensor(ctx, 'emb', [V, H], dtype, raw
        ? { blocks: randomBlocks(dtype, (V * H) / qk, { scale: 0.01, extremeFraction: 0.25, zeroFraction: 0.1, seed: V * H }), rowsPerPart }
        : { data: randomArray(V * H, V + H), rowsPerPart });
      // Every row once (shuffled), a repeat and an invalid id.
      const r = rng(V);
      const order = Array.from({ length: V }, (_, i) => i).sort(() => r() - 0.5);
      const ids = new Uint32Array([...order, order[0], V + 3]);
      const T = ids.length;
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

// The tied head: one quantized table serves the gather and the logits matmul.
for (const dtype of ['q6_k', 'q8_0'] as const) {
  test(`tied head ${dtype}: gather and matmul read the same tensor`, async () => {
    const ctx = await testGpu();
    const V = 53, H = 256;
    const tab = makeQuantTensor(ctx, 'emb', [V, H], dtype, { data: randomArray(V * H, 9), rowsPerPart: 20 });
    const ids = ctx.upload('scratch:ids', new Uint32Array([5, 52, 0]));
    const hidden = ctx.alloc.create('scratch:h', 3 * H * 4, STORAGE_RW);
    const logits = ctx.alloc.create('scratch:l', 3 * V * 4, STORAGE_RW);
    try {
      await embedding(ctx, { ids, T: 3, table: tab.tensor, out: hidden });
      await matmul(ctx, { x: hidden, M: 3, w: tab.tensor, y: logits });
      const h = await ctx.readF32(hidden), l = await ctx.readF32(logits);
      const U = 2 ** -24;
      for (let t = 0; t < 3; t++) {
        for (let v = 0; v < V; v++) {
          let s = 0, mag = 0;
          for (let k = 0; k < H; k++) { const p = h[t * H + k] * tab.values[v * H + k]; s += p; mag += Math.abs(p); }
          assert.ok(Math.abs(l[t * V + v] - s) <= (H + 2) * U * mag, `t=${t} v=${v}: ${l[t * V + v]} vs ${s}`);
        }
      }
    } finally {
      for (const b of [ids, hidden, logits]) ctx.alloc.destroy(b);
      tab.dispose();
    }
  });
}

test('quantized tensors: malformed shapes and short buffers are InputErrors', async () => {
  const ctx = await testGpu();
  const x = ctx.alloc.create('scratch:x', 4096, STORAGE_RW), y = ctx.alloc.create('scratch:y', 4096, STORAGE_RW);
  const ids = ctx.upload('scratch:ids', new Uint32Array([0]));
  const good = deviceLayout('q4_k', 2, 256).totalBytes;
  const short = ctx.alloc.create('weights:short', good - 4, STORAGE_RW);
  const ok = ctx.alloc.create('weights:ok', good, STORAGE_RW);
  const bad: [string, GpuTensor][] = [
    ['K not a multiple of the block', { name: 'w', dtype: 'q4_k', shape: [2, 96], parts: [{ buffer: ok, rowStart: 0, rows: 2 }], byteLength: good }],
    ['short part buffer', { name: 'w', dtype: 'q4_k', shape: [2, 256], parts: [{ buffer: short, rowStart: 0, rows: 2 }], byteLength: good }],
    ['parts do not cover N', { name: 'w', dtype: 'q4_k', shape: [3, 256], parts: [{ buffer: ok, rowStart: 0, rows: 2 }], byteLength: good }],
  ];
  try {
    for (const [what, w] of bad) {
      for (const call of [() => matmul(ctx, { x, M: 1, w, y }), () => embedding(ctx, { ids, T: 1, table: w, out: y })]) {
        let err: unknown;
        try { await call(); } catch (e) { err = e; }
        assert.instance(err, InputError, what);
      }
    }
  } finally {
    for (const b of [x, y, ids, short, ok]) ctx.alloc.destroy(b);
  }
});

// A matmul on raw blocks at a realistic width (one part per 128 rows), default path.
test('matmul q4_0 raw blocks M=1 N=300 K=2048 (default path)', async () => {
  await runMatmulCase(await testGpu(), { dtype: 'q4_0', M: 1, N: 300, K: 2048, raw: true, rowsPerPart: 128 });
});

test.run();
