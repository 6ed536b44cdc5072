// host.wasm block quantization (assembly/host/quant.ts through src/wasm/host.ts) against the
// TypeScript reference (src/quant/reference.ts, itself checked against ggml's C output):
//   - quantizer output byte-identical to the reference on every input kind, row counts with odd
//     block counts, and row offsets inside a larger part (neighbouring rows untouched);
//   - dequantizer bit-identical to the reference's device-layout dequantizer, which equals the
//     GGUF-block one, on random blocks with extreme scales;
//   - repack from any source alignment = the reference repack;
//   - streaming through a QuantScratch (f32, f16 and bf16 chunks) = one-shot;
//   - blocks with NaN / inf: zero blocks, counted; bounds checks at the TS boundary.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../../src/errors.ts';
import { FORMAT_INFO, QUANT_FORMATS, type QuantFormat, deviceLayout } from '../../src/quant/formats.ts';
import { dequantizeBlocks, dequantizeDevice, quantizeBlocks, quantizeToDevice, repackToDevice } from '../../src/quant/reference.ts';
import { bf16BitsToNumber, f16BitsToNumber, f32ToBf16Bits, f32ToF16Bits } from '../../src/quant/half.ts';
import { hostWasm } from '../../src/wasm/host.ts';
import { INPUT_KINDS, quantInputs, randomBlocks } from '../helpers/quant-inputs.ts';

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

test('Wasm quantizers are byte-identical to the TS reference on every input kind', async () => {
  const w = await hostWasm();
  for (const f of QUANT_FORMATS) {
    const qk = FORMAT_INFO[f].qk;
    for (const k of INPUT_KINDS) {
      for (const [rows, bpr] of [[1, 1], [3, 3], [2, 5]] as const) {
        const K = qk * bpr;
        const x = quantInputs(900 + INPUT_KINDS.indexOf(k) * 7 + rows, rows * K, k);
        const got = w.quantize(f, x, rows, K);
        const want = quantizeToDevice(f, x, rows, K);
        const at = firstDiff(got, want);
        if (at >= 0) assert.unreachable(`${f} ${k} ${rows}x${K}: first difference at byte ${at}`);
      }
    }
  }
});

test('Wasm quantizers on extreme magnitudes and mixed blocks (finite f32 from 1e-40 to 1e30)', async () => {
  const w = await hostWasm();
  const x = new Float32Array(256 * 8);
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < x.length; i++) {
    const e = Math.floor(rnd() * 8);
    const mag = [1e-40, 1e-30, 1e-8, 1e-3, 1, 300, 6e4, 1e30][e];
    x[i] = (rnd() - 0.5) * mag * ((i >> 8) % 2 ? 1 : 1 / mag);
  }
  for (const f of QUANT_FORMATS) {
    const K = 256, rows = x.length / K;
    const at = firstDiff(w.quantize(f, x, rows, K), quantizeToDevice(f, x, rows, K));
    assert.is(at, -1, `${f}: first difference at byte ${at}`);
  }
});

test('row offsets: rows land in their blocks of a larger part, other bytes untouched', async () => {
  const w = await hostWasm();
  for (const f of QUANT_FORMATS) {
    const K = FORMAT_INFO[f].qk * 3, partRows = 7;
    const layout = deviceLayout(f, partRows, K);
    const x = quantInputs(77, partRows * K, 'normal');
    const want = quantizeToDevice(f, x, partRows, K);
    const base = w.allocBytes(layout.totalBytes), src = w.allocBytes(3 * K * 4);
    try {
      w.bytesAt(base, layout.totalBytes).fill(0xa5);
      // Rows 2..4 only.
      new Float32Array(w.bytesAt(src, 3 * K * 4).buffer, src, 3 * K).set(x.subarray(2 * K, 5 * K));
      assert.is(w.quantizeRowsInto(src, 3, base, layout, 2), 0);
      const got = w.bytesAt(base, layout.totalBytes);
      const bpr = layout.blocksPerRow, info = FORMAT_INFO[f];
      const sections = [[layout.qs, info.qsBlockBytes], [layout.qh, 4], [layout.d, 2]] as const;
      for (const [sec, per] of sections) {
        if (!sec) continue;
        for (let b = 0; b < layout.nb; b++) {
          const inside = b >= 2 * bpr && b < 5 * bpr;
          for (let i = 0; i < per; i++) {
            const at = sec.offset + b * per + i;
            if (inside) assert.is(got[at], want[at], `${f} block ${b} byte ${i}`);
            else assert.is(got[at], 0xa5, `${f} block ${b} outside the rows was written`);
          }
        }
      }
    } finally {
      w.freeBytes(base);
      w.freeBytes(src);
    }
  }
});

test('Wasm dequantizer = TS device-layout dequantizer = GGUF-block dequantizer (extreme scales, bit-exact)', async () => {
  const w = await hostWasm();
  for (const f of QUANT_FORMATS) {
    const qk = FORMAT_INFO[f].qk;
    for (const [rows, bpr] of [[1, 1], [3, 5], [5, 3]] as const) {
      const K = qk * bpr;
      const blocks = randomBlocks(f, rows * bpr, 100 * rows + bpr);
      const dev = repackToDevice(f, blocks, rows, K);
      const got = w.dequantize(f, dev, rows, K);
      const ref = dequantizeDevice(f, dev, rows, K);
      const gguf = dequantizeBlocks(f, blocks);
      for (let i = 0; i < got.length; i++) {
        if (!Object.is(got[i], ref[i]) || !Object.is(ref[i], gguf[i])) {
          assert.unreachable(`${f} ${rows}x${K} value ${i}: wasm ${got[i]}, device ref ${ref[i]}, gguf ref ${gguf[i]}`);
        }
      }
    }
  }
});

test('Wasm repack from any source alignment = TS repack; dequantize(repack) = GGUF dequantize', async () => {
  const w = await hostWasm();
  for (const f of QUANT_FORMATS) {
    const K = FORMAT_INFO[f].qk * 3, rows = 3;
    const layout = deviceLayout(f, rows, K);
    const B = FORMAT_INFO[f].ggufBlockBytes;
    const blocks = randomBlocks(f, layout.nb, 9);
    const want = repackToDevice(f, blocks, rows, K);
    for (const shift of [0, 1, 2, 3, 5]) {
      const src = w.allocBytes(blocks.byteLength + 8), base = w.allocBytes(layout.totalBytes);
      try {
        w.bytesAt(src + shift, blocks.byteLength).set(blocks);
        w.bytesAt(base, layout.totalBytes).fill(0);
        w.repackBlocksInto(src + shift, layout.nb, base, layout, 0);
        assert.is(firstDiff(w.bytesAt(base, layout.totalBytes).slice(), want), -1, `${f} shift ${shift}`);
      } finally {
        w.freeBytes(src);
        w.freeBytes(base);
      }
    }
    assert.equal(w.repack(f, blocks, rows, K), want);
    const y = w.dequantize(f, w.repack(f, blocks, rows, K), rows, K);
    const g = dequantizeBlocks(f, blocks.subarray(0, layout.nb * B));
    for (let i = 0; i < y.length; i++) if (!Object.is(y[i], g[i])) assert.unreachable(`${f} value ${i}`);
  }
});

test('streaming scratch: f32, f16 and bf16 chunks assemble to the one-shot buffer', async () => {
  const w = await hostWasm();
  for (const f of QUANT_FORMATS) {
    const K = FORMAT_INFO[f].qk * 2, rows = 11, chunk = 4;
    const x = quantInputs(5, rows * K, 'normal');
    for (const from of ['f32', 'f16', 'bf16'] as const) {
      // The exact f32 values a 16-bit checkpoint holds.
      const bits = from === 'f32' ? undefined : Uint16Array.from(x, (v) => (from === 'f16' ? f32ToF16Bits(v) : f32ToBf16Bits(v)));
      const values = bits ? Float32Array.from(bits, (h) => (from === 'f16' ? f16BitsToNumber(h) : bf16BitsToNumber(h))) : x;
      const want = quantizeToDevice(f, values, rows, K);
      const part = new Uint8Array(want.length);
      const L = deviceLayout(f, rows, K);
      const s = w.quantScratch(f, K, chunk);
      try {
        for (let r0 = 0; r0 < rows; r0 += chunk) {
          const n = Math.min(chunk, rows - r0);
          if (bits) w.quantInput16(s, n * K * 2).set(new Uint8Array(bits.buffer, r0 * K * 2, n * K * 2));
          else w.quantInput(s, n * K * 4).set(new Uint8Array(x.buffer, r0 * K * 4, n * K * 4));
          const c = w.quantizeChunk(s, n, from);
          assert.is(c.nonFiniteBlocks, 0);
          const b0 = r0 * L.blocksPerRow;
          part.set(c.qs, L.qs.offset + b0 * FORMAT_INFO[f].qsBlockBytes);
          if (c.qh) part.set(c.qh, L.qh!.offset + 4 * b0);
          if (c.d) part.set(c.d, L.d!.offset + 2 * b0);
        }
      } finally {
        w.freeQuantScratch(s);
      }
      assert.is(firstDiff(part, want), -1, `${f} from ${from}`);
    }
  }
});

test('streaming scratch: GGUF chunks repack to the one-shot buffer', async () => {
  const w = await hostWasm();
  for (const f of QUANT_FORMATS) {
    const K = FORMAT_INFO[f].qk * 3, rows = 5, chunk = 2;
    const L = deviceLayout(f, rows, K);
    const B = FORMAT_INFO[f].ggufBlockBytes;
    const blocks = randomBlocks(f, L.nb, 3);
    const want = repackToDevice(f, blocks, rows, K);
    const part = new Uint8Array(want.length);
    const s = w.quantScratch(f, K, chunk);
    try {
      for (let r0 = 0; r0 < rows; r0 += chunk) {
        const n = Math.min(chunk, rows - r0);
        const b0 = r0 * L.blocksPerRow, nb = n * L.blocksPerRow;
        w.quantInput(s, nb * B).set(blocks.subarray(b0 * B, (b0 + nb) * B));
        const c = w.repackChunk(s, n);
        part.set(c.qs, L.qs.offset + b0 * FORMAT_INFO[f].qsBlockBytes);
        if (c.qh) part.set(c.qh, L.qh!.offset + 4 * b0);
        if (c.d) part.set(c.d, L.d!.offset + 2 * b0);
      }
    } finally {
      w.freeQuantScratch(s);
    }
    assert.is(firstDiff(part, want), -1, f);
  }
});

test('blocks holding NaN or inf are zero blocks and counted; one-shot quantize refuses them', async () => {
  const w = await hostWasm();
  for (const f of QUANT_FORMATS) {
    const qk = FORMAT_INFO[f].qk, K = qk * 3;
    const x = quantInputs(8, K, 'normal');
    x[qk + 5] = NaN;
    x[2 * qk + qk - 1] = -Infinity;
    const layout = deviceLayout(f, 1, K);
    const src = w.allocBytes(K * 4), base = w.allocBytes(layout.totalBytes);
    try {
      new Float32Array(w.bytesAt(src, K * 4).buffer, src, K).set(x);
      w.bytesAt(base, layout.totalBytes).fill(0xee);
      assert.is(w.quantizeRowsInto(src, 1, base, layout, 0), 2, f);
      const got = w.bytesAt(base, layout.totalBytes).slice();
      // Block 0 is the reference's; blocks 1 and 2 are all zero in every section.
      const ref = quantizeToDevice(f, x.map((v, i) => (i < qk ? v : 0)), 1, K);
      const blockBytes = (sec: { offset: number } | undefined, per: number, b: number) => (sec ? [...got.subarray(sec.offset + b * per, sec.offset + (b + 1) * per)] : []);
      const refBytes = (sec: { offset: number } | undefined, per: number, b: number) => (sec ? [...ref.subarray(sec.offset + b * per, sec.offset + (b + 1) * per)] : []);
      const info = FORMAT_INFO[f];
      for (const [sec, per] of [[layout.qs, info.qsBlockBytes], [layout.qh, 4], [layout.d, 2]] as const) {
        assert.equal(blockBytes(sec, per, 0), refBytes(sec, per, 0), `${f} finite block`);
        for (const b of [1, 2]) assert.ok(blockBytes(sec, per, b).every((v) => v === 0), `${f} block ${b} not zeroed`);
      }
    } finally {
      w.freeBytes(src);
      w.freeBytes(base);
    }
    assert.throws(() => w.quantize(f, x, 1, K), (e: unknown) => e instanceof InputError && /NaN or infinite/.test((e as Error).message));
    assert.equal(w.dequantize(f, w.quantize(f, x, 1, K, { nonFinite: 'zero' }), 1, K).subarray(qk), new Float32Array(2 * qk));
  }
});

test('bounds are checked at the TS boundary', async () => {
  const w = await hostWasm();
  const L = deviceLayout('q8_0', 4, 64);
  const mem = w.bytesAt(0, 0).buffer.byteLength;
  const isRange = (e: unknown) => e instanceof RangeError;
  assert.throws(() => w.quantizeRowsInto(16, 2, 1024, L, 3), isRange);          // rows past the part
  assert.throws(() => w.quantizeRowsInto(mem - 8, 1, 1024, L, 0), isRange);      // input past memory
  assert.throws(() => w.quantizeRowsInto(16, 1, mem - 16, L, 0), isRange);       // buffer past memory
  assert.throws(() => w.repackBlocksInto(16, L.nb + 1, 1024, L, 0), isRange);
  assert.throws(() => w.dequantizeBlocksAt(1024, L, 7, 2, 4096), isRange);
  assert.throws(() => w.quantScratch('q4_k', 100, 1), (e: unknown) => e instanceof InputError);
  const s = w.quantScratch('q8_0', 64, 2);
  try {
    assert.throws(() => w.quantizeChunk(s, 3), isRange);
    assert.throws(() => w.quantInput(s, s.inBytes + 1), isRange);
  } finally {
    w.freeQuantScratch(s);
  }
  assert.throws(() => w.quantize('q8_0', new Float32Array(10), 1, 32), (e: unknown) => e instanceof InputError);
});

test('Wasm quantize -> dequantize equals the reference round trip (GGUF path)', async () => {
  const w = await hostWasm();
  for (const f of QUANT_FORMATS as readonly QuantFormat[]) {
    const K = 512, rows = 2;
    const x = quantInputs(31, rows * K, 'outliers');
    const y = w.dequantize(f, w.quantize(f, x, rows, K), rows, K);
    const r = dequantizeBlocks(f, quantizeBlocks(f, x));
    for (let i = 0; i < y.length; i++) if (!Object.is(y[i], r[i])) assert.unreachable(`${f} value ${i}`);
  }
});

test.run();
