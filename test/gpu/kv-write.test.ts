// kvWrite (shaders/kv_write.wgsl): rows appended to an attention KV cache in its dtype, one cache
// or (dst2, PAIR) the keys and values halves of each row into two caches in one dispatch. Exact:
// f32 rows are copied bit for bit, f16 rows equal the host's round-to-nearest-even f16 bits; rows
// outside dstRow .. dstRow + T - 1 and the words past them keep their guard values.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray } from '../helpers/gpu.ts';
import { toF16Bits } from '../helpers/tensors.ts';
import { InputError } from '../../src/errors.ts';
import { kvWrite } from '../../src/backends/webgpu/kernels/kv.ts';
import type { KvDType } from '../../src/backends/backend.ts';

// T, width, capacity, dstRow, srcOffset, srcRowStride (undefined: dense), pair
const cases: [number, number, number, number, number, number | undefined, boolean][] = [
  [1, 8, 4, 3, 0, undefined, true],
  [7, 12, 20, 5, 3, 41, true],      // odd T, strided rows with a tail, a source offset
  [300, 6, 310, 9, 0, undefined, true], // more words than one workgroup
  [5, 10, 9, 2, 1, 23, false],
  [1, 64, 2, 1, 10, 200, false],
];

for (const dtype of ['f32', 'f16'] as KvDType[]) {
  for (const [T, W, cap, dstRow, srcOffset, stride, pair] of cases) {
    test(`kvWrite ${dtype} T=${T} W=${W} dstRow=${dstRow} srcOffset=${srcOffset} stride=${stride ?? 'dense'}${pair ? ' k+v pair' : ''}`, async () => {
      const ctx = await testGpu();
      const rowW = pair ? 2 * W : W;
      const rs = stride ?? rowW;
      const src = randomArray(srcOffset + (T - 1) * rs + rowW + 2, 7 + T * W, 3);
      const elemBytes = dtype === 'f16' ? 2 : 4;
      const capBytes = cap * W * elemBytes;
      // Guard pattern everywhere; the kernel must write exactly the T new rows.
      const guard = new Uint8Array(capBytes).map((_, i) => (i * 37 + 11) & 255);
      const bsrc = ctx.upload('t:src', src);
      const bk = ctx.upload('t:k', guard), bv = ctx.upload('t:v', guard);
      try {
        await kvWrite(ctx, { src: bsrc, srcOffset, srcRowStride: stride, T, width: W, dst: bk, dst2: pair ? bv : undefined, dstRow, dtype });
        for (const [which, buf, off] of [['k', bk, 0], ['v', bv, W]] as const) {
          const got = new Uint8Array(await ctx.read(buf));
          const written = which === 'k' || pair;
          const want = new Uint8Array(guard);
          if (written) {
            const rows = new Float32Array(T * W);
            for (let t = 0; t < T; t++) for (let c = 0; c < W; c++) rows[t * W + c] = src[srcOffset + t * rs + off + c];
            const bytes = dtype === 'f16' ? new Uint8Array(toF16Bits(rows).buffer) : new Uint8Array(rows.buffer);
            want.set(bytes, dstRow * W * elemBytes);
          }
          for (let i = 0; i < capBytes; i++) {
            if (got[i] !== want[i]) assert.unreachable(`${which} cache byte ${i} (row ${Math.floor(i / (W * elemBytes))}): got ${got[i]} want ${want[i]}`);
          }
        }
      } finally {
        for (const b of [bsrc, bk, bv]) ctx.alloc.destroy(b);
      }
    });
  }
}

test('kvWrite pair: aliasing, short caches and short sources are InputErrors before any dispatch', async () => {
  const ctx = await testGpu();
  const src = ctx.upload('t:src', new Float32Array(64));
  const k = ctx.upload('t:k', new Float32Array(32)), v = ctx.upload('t:v', new Float32Array(31));
  const k2 = ctx.upload('t:k2', new Float32Array(48)), v2 = ctx.upload('t:v2', new Float32Array(48));
  try {
    const d0 = ctx.dispatchCount;
    const base = { src, T: 2, width: 16, dst: k, dstRow: 0, dtype: 'f32' as const };
    for (const [what, a] of [
      ['dst2 = dst', { ...base, dst2: k }],
      ['dst2 = src', { ...base, dst2: src }],
      ['dst2 one element short', { ...base, dst2: v }],
      ['source rows short (3 rows of k + v need 96 of 64)', { ...base, T: 3, dst: k2, dst2: v2 }],
    ] as const) {
      try {
        await kvWrite(ctx, a);
        assert.unreachable(`${what}: accepted`);
      } catch (e) {
        assert.instance(e, InputError, what);
      }
    }
    assert.is(ctx.dispatchCount, d0, 'nothing dispatched');
  } finally {
    for (const b of [src, k, v, k2, v2]) ctx.alloc.destroy(b);
  }
});

test.run();
