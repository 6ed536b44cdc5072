// NeoX RoPE in place on strided rows against the float64 reference (test/reference/layers.ts),
// including KV-cache-like rows at high positions and padding between rows that must stay untouched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray } from '../helpers/gpu.ts';
import { InputError } from '../../src/errors.ts';
import { rope, ropeInvFreq } from '../../src/backends/webgpu/kernels/rope.ts';
import { ropeRef, ropeInvFreqF32 } from '../reference/layers.ts';

// T, nHeads, headDim, pos0, offset, rowStride (0 = packed nHeads * headDim), theta
const cases: [number, number, number, number, number, number, number][] = [
  [1, 3, 8, 0, 0, 0, 10000],
  [5, 3, 12, 17, 0, 0, 10000],
  [37, 2, 128, 17, 5, 2 * 128 + 33, 10000], // q columns inside a wider qkv row
  [130, 1, 8, 4000, 0, 0, 10000],           // high positions: angles up to ~4100 rad
  [3, 32, 128, 60000, 11, 0, 10000],        // far positions: angles ~6e4 rad, near the exact-reduction range
  [6, 2, 160, 9, 0, 0, 500000],             // other head dim and base
];

test('inverse frequencies: launcher table equals the reference formula', () => {
  for (const [hd, th] of [[8, 10000], [128, 10000], [224, 1e6]]) {
    assert.equal(Array.from(ropeInvFreq(hd, th)), Array.from(ropeInvFreqF32(hd, th)));
  }
});

for (const [T, nHeads, hd, pos0, offset, stride0, theta] of cases) {
  const rowStride = stride0 || nHeads * hd;
  test(`rope T=${T} heads=${nHeads} hd=${hd} pos0=${pos0} offset=${offset} rowStride=${rowStride} theta=${theta}`, async () => {
    const ctx = await testGpu();
    const n = offset + T * rowStride + 3;
    const x = randomArray(n, 61 + T * hd + pos0, 1);
    const bx = ctx.upload('t:x', x);
    await rope(ctx, { x: bx, offset, rowStride, T, nHeads, headDim: hd, pos0, theta });
    const got = await ctx.readF32(bx, 0, n);
    const ref = ropeRef(x, offset, rowStride, T, nHeads, hd, pos0, theta);
    // Tolerance per element: 1e-6 * (|x1| + |x2|) of its rotated pair. Our sin/cos are within 7e-8
    // of the f64 values of the same f32 angle; each output is two products and a sum in f32
    // (~2 ulp); 1e-6 leaves room. One ulp of the angle at position 4000 moves an output by ~2e-4,
    // so a wrong frequency table or sin/cos builtin with WGSL's 2^-11 slack would fail.
    const half = hd / 2;
    let worst = 0, at = -1;
    for (let i = 0; i < n; i++) {
      let scale = 0; // 0 outside the rotated rows: those elements must be bit-identical
      const rel = i - offset;
      if (rel >= 0 && rel < T * rowStride && rel % rowStride < nHeads * hd) {
        const j = rel % rowStride % hd, pair = j < half ? i + half : i - half;
        scale = 1e-6 * (Math.abs(x[i]) + Math.abs(x[pair]));
      }
      const d = Math.abs(got[i] - ref[i]);
      const e = scale === 0 ? (d === 0 ? 0 : Infinity) : d / scale;
      if (!(e <= worst)) { worst = e; at = i; }
    }
    assert.ok(worst <= 1, `element ${at}: got ${got[at]} want ${ref[at]} (${worst.toFixed(2)}x tolerance)`);
    ctx.alloc.destroy(bx);
  });
}

test('rope: odd head dim and overlapping rows are InputErrors', async () => {
  const ctx = await testGpu();
  const bx = ctx.upload('t:x', new Float32Array(64));
  for (const bad of [{ headDim: 7, rowStride: 7 }, { headDim: 8, rowStride: 4 }]) {
    let err: unknown;
    try { await rope(ctx, { x: bx, T: 2, nHeads: 1, pos0: 0, theta: 10000, ...bad }); } catch (e) { err = e; }
    assert.instance(err, InputError);
  }
  ctx.alloc.destroy(bx);
});

test.run();
