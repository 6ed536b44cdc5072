// Wasm pointwise and row kernels against the float64 references of test/reference/layers.ts:
// RMSNorm (plain and concat), gated grouped RMSNorm, exact-erf GELU gate, add, argmax, NeoX RoPE and
// the KV-cache row store (f32 and f16), on odd sizes; each case runs under every thread
// configuration of CONFIG_GROUPS and must be bit-identical across them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../../src/errors.ts';
import { f16BitsToNumber, f32ToF16Bits } from '../../src/quant/half.ts';
import { gatedRmsNormRef, geluGateRef, rmsNormRef, ropeRef } from '../reference/layers.ts';
import { U, acrossConfigs, closeAll, expectClose, kernels, randomArray } from './helpers.ts';

// Tolerances (elementwise |got - ref| <= rel |ref| + abs):
//  - RMSNorm: out = (x inv) w, two roundings plus the error of inv = 1/sqrt(ss/W + eps): ss is an f32
//    sum of W squares (first-order bound (W/2 + 2) 2^-24 relative on inv after the square root),
//    then sqrt and divide are correctly rounded (+2 ulp). Hence rel = (W/2 + 6) 2^-24; abs covers
//    outputs that are exactly 0.
//  - gated RMSNorm: as above over the group, plus silu(z) = z / (1 + e^-z) with our exp within
//    3 ulp and one divide: rel = (groupSize/2 + 12) 2^-24.
//  - GELU gate: the GPU test's bound (test/gpu/norm-gelu.test.ts; the same fitted erf pieces,
//    unfused): 2.5e-7 |g u| + 3e-7 |ref|.
//  - RoPE: 1e-6 (|x1| + |x2|) of the pair, as the GPU test: sin/cos within 7e-8 of the f64 values
//    of the same f32 angle, two products and a sum in f32; elements outside the rows bit-identical.
//  - add, argmax, KV f32 store: exact; KV f16 store: the round-to-nearest-even f16 bits exactly.

for (const [T, H, both] of [[1, 1, false], [3, 7, false], [5, 33, true], [2, 1031, false], [9, 64, true]] as const) {
  test(`rmsNorm T=${T} H=${H}${both ? ' concat(x, x2)' : ''}`, async () => {
    const W = both ? 2 * H : H;
    const x = randomArray(T * H, 11 + H, 2), x2 = randomArray(T * H, 12 + H, 0.5), w = randomArray(W, 13 + H, 1);
    const eps = 1e-5;
    const ref = rmsNormRef(x, w, T, H, eps, both ? x2 : undefined);
    await acrossConfigs('rmsNorm', (k) => {
      const bx = k.upload('test:x', x), bx2 = k.upload('test:x2', x2), bw = k.upload('test:w', w);
      const out = k.heap.alloc('test:out', T * W * 4);
      k.rmsNorm({ x: bx, x2: both ? bx2 : undefined, weight: bw, out, T, H, eps });
      const got = k.readF32(out, 0, T * W);
      for (const b of [bx, bx2, bw, out]) k.heap.free(b);
      return got;
    }, (got) => expectClose(got, ref, (W / 2 + 6) * U, 1e-30, 'rmsNorm'));
  });
}

for (const [T, D, gs, zStride, zOff] of [[1, 8, 8, 0, 0], [3, 12, 4, 20, 3], [4, 77, 11, 80, 1], [2, 1032, 258, 1100, 40]] as const) {
  test(`gatedRmsNorm T=${T} D=${D} groupSize=${gs} z stride ${zStride || D} offset ${zOff}`, async () => {
    const rowStride = zStride || D;
    const y = randomArray(T * D, 21 + D, 1), z = randomArray(zOff + T * rowStride, 22 + D, 3), w = randomArray(D, 23 + D, 1);
    const eps = 1e-5;
    const ref = gatedRmsNormRef(y, z, zOff, rowStride, w, T, D, gs, eps);
    await acrossConfigs('gatedRmsNorm', (k) => {
      const by = k.upload('test:y', y), bz = k.upload('test:z', z), bw = k.upload('test:w', w);
      const out = k.heap.alloc('test:out', T * D * 4);
      k.gatedRmsNorm({ y: by, z: { buffer: bz, offset: zOff, rowStride }, weight: bw, out, T, D, groupSize: gs, eps });
      const got = k.readF32(out, 0, T * D);
      for (const b of [by, bz, bw, out]) k.heap.free(b);
      return got;
    }, (got) => expectClose(got, ref, (gs / 2 + 12) * U, 1e-30, 'gatedRmsNorm'));
  });
}

test('gatedRmsNorm: z far negative gives -0 gates (silu limit), not NaN', async () => {
  const k = await kernels({ threads: 1 });
  const y = k.upload('test:y', new Float32Array([1, 2, 3, 4, 5])), z = k.upload('test:z', new Float32Array([-200, -100, 1, 2, 3]));
  const w = k.upload('test:w', new Float32Array([1, 1, 1, 1, 1])), out = k.heap.alloc('test:out', 20);
  k.gatedRmsNorm({ y, z: { buffer: z, offset: 0, rowStride: 5 }, weight: w, out, T: 1, D: 5, groupSize: 5, eps: 1e-5 });
  const got = k.readF32(out, 0, 5);
  assert.ok(got.every((v) => Number.isFinite(v)), `finite: ${[...got]}`);
  assert.ok(Object.is(got[0], -0) && Object.is(got[1], -0), `${got[0]}, ${got[1]}`);
  for (const b of [y, z, w, out]) k.heap.free(b);
});

for (const [T, F] of [[1, 1], [3, 5], [2, 67], [4, 300]] as const) {
  test(`geluGate T=${T} F=${F}`, async () => {
    const gu = randomArray(T * 2 * F, 31 + F, 3);
    const ref = geluGateRef(gu, T, F);
    await acrossConfigs('geluGate', (k) => {
      const bgu = k.upload('test:gu', gu), out = k.heap.alloc('test:out', T * F * 4);
      k.geluGate({ gu: bgu, out, T, F });
      const got = k.readF32(out, 0, T * F);
      k.heap.free(bgu); k.heap.free(out);
      return got;
    }, (got) => expectClose(got, ref, 3e-7, (i) => 2.5e-7 * Math.abs(gu[Math.floor(i / F) * 2 * F + (i % F)] * gu[Math.floor(i / F) * 2 * F + F + (i % F)]) + 1e-38, 'geluGate'));
  });
}

test('geluGate: dense sweep of the gate over [-12, 12] (both erf pieces, the negative tail)', async () => {
  const F = 24001;
  const gu = new Float32Array(2 * F);
  for (let f = 0; f < F; f++) { gu[f] = -12 + f * 1e-3; gu[F + f] = 1; }
  const ref = geluGateRef(gu, 1, F);
  await acrossConfigs('geluGate sweep', (k) => {
    const bgu = k.upload('test:gu', gu), out = k.heap.alloc('test:out', F * 4);
    k.geluGate({ gu: bgu, out, T: 1, F });
    const got = k.readF32(out, 0, F);
    k.heap.free(bgu); k.heap.free(out);
    return got;
  }, (got) => expectClose(got, ref, 3e-7, (i) => 2.5e-7 * Math.abs(gu[i]) + 1e-38, 'geluGate sweep'));
});

test('add: out = a + b exactly, in place allowed, odd n', async () => {
  for (const n of [1, 3, 17, 1001]) {
    const a = randomArray(n, 41 + n), b = randomArray(n, 42 + n);
    const want = new Float32Array(n);
    for (let i = 0; i < n; i++) want[i] = a[i] + b[i];
    await acrossConfigs(`add n=${n}`, (k) => {
      const ba = k.upload('test:a', a), bb = k.upload('test:b', b);
      k.add({ a: ba, b: bb, out: ba, n });
      const got = k.readF32(ba, 0, n);
      k.heap.free(ba); k.heap.free(bb);
      return got;
    }, (got) => assert.equal([...got], [...want]));
  }
});

test('add: an out that overlaps an input at another offset is refused', async () => {
  const k = await kernels({ threads: 1 });
  const a = k.upload('test:a', new Float32Array(16)), b = k.upload('test:b', new Float32Array(16));
  assert.throws(() => k.add({ a, b, out: a, outOffset: 1, n: 8 }), (e: unknown) => e instanceof InputError && /overlaps/.test((e as Error).message));
  k.heap.free(a); k.heap.free(b);
});

test('argmax: lowest index on ties, NaN wins (first NaN), -inf rows, odd V, several rows', async () => {
  const V = 37;
  const rows: number[][] = [
    Array.from({ length: V }, (_, i) => Math.sin(i * 1.7)),
    Array.from({ length: V }, (_, i) => (i === 5 || i === 30 ? 9 : i === 36 ? 9 : 0)), // ties: 5
    Array.from({ length: V }, (_, i) => (i === 33 || i === 20 ? NaN : i)),            // first NaN: 20
    Array.from({ length: V }, () => -Infinity),                                        // 0
    Array.from({ length: V }, (_, i) => (i === 36 ? 1 : -1)),                          // tail element: 36
    Array.from({ length: V }, (_, i) => (i === 2 ? NaN : 100)),                        // NaN in the first vector
    Array.from({ length: V }, (_, i) => (i % 4 === 3 ? 0 : -0)),                       // -0 == 0: 0
  ];
  const want = [rows[0].indexOf(Math.max(...rows[0])), 5, 20, 0, 36, 2, 0];
  const logits = Float32Array.from(rows.flat());
  await acrossConfigs('argmax', (k) => {
    const l = k.upload('test:logits', logits), out = k.heap.alloc('test:out', rows.length * 4);
    k.argmax({ logits: l, M: rows.length, V, out });
    const got = new Float32Array(k.readU32(out, 0, rows.length).buffer);
    k.heap.free(l); k.heap.free(out);
    return got;
  }, (got) => assert.equal([...new Uint32Array(got.buffer)], want));
  for (const v of [1, 2, 3, 5]) {
    const k = await kernels({ threads: 1 });
    const vals = Float32Array.from({ length: v }, (_, i) => (i === v - 1 ? 2 : 1));
    const l = k.upload('test:l', vals), out = k.heap.alloc('test:out', 4);
    k.argmax({ logits: l, M: 1, V: v, out });
    assert.is(k.readU32(out)[0], v - 1, `V=${v}`);
    k.heap.free(l); k.heap.free(out);
  }
});

// T, nHeads, headDim, pos0, offset, rowStride (0 = packed), theta
const ropeCases: [number, number, number, number, number, number, number][] = [
  [1, 3, 8, 0, 0, 0, 10000],
  [5, 3, 12, 17, 0, 0, 10000],      // half = 6: one vector and a 2-lane tail
  [37, 2, 128, 17, 5, 2 * 128 + 33, 10000],
  [130, 1, 8, 4000, 0, 0, 10000],
  [3, 32, 128, 60000, 11, 0, 10000],
  [6, 2, 160, 9, 0, 0, 500000],
  [4, 3, 10, 3, 2, 41, 10000],      // half = 5
];

for (const [T, nHeads, hd, pos0, offset, stride0, theta] of ropeCases) {
  const rowStride = stride0 || nHeads * hd;
  test(`rope T=${T} heads=${nHeads} hd=${hd} pos0=${pos0} offset=${offset} rowStride=${rowStride} theta=${theta}`, async () => {
    const n = offset + T * rowStride + 3;
    const x = randomArray(n, 61 + T * hd + pos0, 1);
    const ref = ropeRef(x, offset, rowStride, T, nHeads, hd, pos0, theta);
    await acrossConfigs('rope', (k) => {
      const bx = k.upload('test:x', x);
      k.rope({ x: bx, offset, rowStride, T, nHeads, headDim: hd, pos0, theta });
      const got = k.readF32(bx, 0, n);
      k.heap.free(bx);
      return got;
    }, (got) => {
      const half = hd / 2;
      let worst = 0, at = -1;
      for (let i = 0; i < n; i++) {
        let scale = 0;
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
    });
  });
}

test('rope: odd head dim, overlapping rows and positions past 2^24 are InputErrors', async () => {
  const k = await kernels({ threads: 1 });
  const x = k.upload('test:x', new Float32Array(64));
  assert.throws(() => k.rope({ x, rowStride: 9, T: 2, nHeads: 1, headDim: 9, pos0: 0, theta: 1e4 }), /even/);
  assert.throws(() => k.rope({ x, rowStride: 4, T: 2, nHeads: 1, headDim: 8, pos0: 0, theta: 1e4 }), /row stride/);
  assert.throws(() => k.rope({ x, rowStride: 8, T: 2, nHeads: 1, headDim: 8, pos0: 2 ** 24, theta: 1e4 }), /2\^24/);
  assert.throws(() => k.rope({ x, rowStride: 8, T: 9, nHeads: 1, headDim: 8, pos0: 0, theta: 1e4 }), /needs 288 bytes/);
  k.heap.free(x);
});

for (const dtype of ['f32', 'f16'] as const) {
  test(`kvWrite ${dtype}: strided rows into cache rows dstRow.., the rest untouched`, async () => {
    const T = 5, width = 13, srcStride = 19, cap = 11, dstRow = 4;
    const src = randomArray(3 + T * srcStride, 71, 100);
    src[3 + 2] = 1e-6; src[3 + 3] = 70000; src[3 + 4] = -0; src[3 + 5] = NaN; src[3 + 6] = 65519; src[3 + 7] = 65520; // f16 edge values
    const esz = dtype === 'f16' ? 2 : 4;
    await acrossConfigs(`kvWrite ${dtype}`, (k) => {
      const bs = k.upload('test:src', src);
      const cache = k.heap.alloc('test:cache', cap * width * esz);
      k.heap.bytes(cache).fill(0xab);
      k.kvWrite({ src: bs, srcOffset: 3, srcRowStride: srcStride, T, width, dst: cache, dstRow, dtype });
      const got = new Float32Array(k.heap.bytes(cache).slice().buffer);
      k.heap.free(bs); k.heap.free(cache);
      return got;
    }, (got) => {
      const bytes = new Uint8Array(got.buffer);
      for (let r = 0; r < cap; r++) {
        for (let c = 0; c < width; c++) {
          const at = (r * width + c) * esz;
          const inRows = r >= dstRow && r < dstRow + T;
          if (!inRows) {
            for (let b = 0; b < esz; b++) if (bytes[at + b] !== 0xab) assert.unreachable(`row ${r} col ${c} was written`);
            continue;
          }
          const v = src[3 + (r - dstRow) * srcStride + c];
          if (dtype === 'f32') {
            const g = new Float32Array(got.buffer, at, 1)[0];
            assert.ok(Object.is(g, Math.fround(v)) || (Number.isNaN(g) && Number.isNaN(v)), `row ${r} col ${c}: ${g} vs ${v}`);
          } else {
            const h = bytes[at] | (bytes[at + 1] << 8);
            const want = f32ToF16Bits(v);
            if (Number.isNaN(v)) assert.ok(Number.isNaN(f16BitsToNumber(h)), 'NaN stays NaN');
            else assert.is(h, want, `row ${r} col ${c}: f16 bits 0x${h.toString(16)} want 0x${want.toString(16)} for ${v}`);
          }
        }
      }
    });
  });
}

test.after(closeAll);
test.run();
