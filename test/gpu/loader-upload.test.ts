// uploadTensor / planParts: host data in GPU format lands in split parts exactly as given.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testModelBackend, randomArray, rng } from '../helpers/gpu.ts';
import { destroyTensor, planParts, uploadTensor } from '../../src/io/upload.ts';

test('uploadTensor: odd shapes, forced splits, exact readback, exact accounting', async () => {
  const be = await testModelBackend(); const ctx = be;
  const cases: [string, 'f32' | 'bf16' | 'f16', number[], number][] = [
    ['f32 [37,5] split', 'f32', [37, 5], 100],
    ['bf16 [29,3] split', 'bf16', [29, 3], 40],
    ['f16 [7] whole', 'f16', [7], 1 << 20],
    ['bf16 [11,1,3] split', 'bf16', [11, 1, 3], 24],
  ];
  for (const [label, dtype, shape, limit] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = dtype === 'f32' ? randomArray(n, n) : Uint16Array.from({ length: n }, (() => { const r = rng(n); return () => Math.floor(r() * 0x7f00); })());
    const before = ctx.memoryStats().liveBytes;
    const t = uploadTensor(be, `test.${label}`, dtype, shape, data, { maxBindingBytes: limit });
    const plan = planParts(label, shape, dtype === 'f32' ? 4 : 2, limit);
    assert.is(t.parts.length, plan.length, label);
    assert.ok(limit > 1000 || t.parts.length > 1, `${label}: split`);
    const allocated = plan.reduce((s, p) => s + Math.max(4, Math.ceil(p.bytes / 4) * 4), 0);
    assert.is(ctx.memoryStats().liveBytes - before, allocated, `${label}: live bytes`);
    const rowElems = shape.slice(1).reduce((a, b) => a * b, 1);
    const want = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let off = 0;
    for (const p of t.parts) {
      assert.is((p.rowStart * rowElems) % 2, 0, `${label}: even start`);
      assert.ok(p.buffer.size <= limit, `${label}: part within limit`);
      const len = p.rows * rowElems * (dtype === 'f32' ? 4 : 2);
      const got = new Uint8Array(await be.read(p.buffer, 0, len));
      assert.ok(got.every((b, i) => b === want[off + i]), `${label}: part at row ${p.rowStart} exact`);
      off += len;
    }
    assert.is(off, want.length);
    const mid = ctx.memoryStats().liveBytes;
    destroyTensor(be, t);
    assert.is(mid - ctx.memoryStats().liveBytes, allocated, `${label}: destroy frees all parts`);
  }
  assert.throws(() => uploadTensor(be, 'bad', 'f32', [3], new Float32Array(4)), /needs 12/);
});

test.run();
