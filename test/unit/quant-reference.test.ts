// The TypeScript reference of the block formats (src/quant/reference.ts) and the format table
// (src/quant/formats.ts):
//   - byte identity with ggml: quantizer outputs and dequantizer outputs hashed against hashes of
//     ggml's own C reference functions on the same inputs (test/fixtures/ggml-quant-golden.json);
//   - hand-computed blocks for each format (worked out in the comments from ggml's rules);
//   - the device layout (section offsets by hand), repacking, and the device-layout dequantizer
//     against the GGUF-block dequantizer on random blocks with extreme scales and odd block counts;
//   - quantize -> dequantize round trips within each format's error bound (derived below).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InputError, UnsupportedError } from '../../src/errors.ts';
import { FORMAT_INFO, QUANT_FORMATS, type QuantFormat, deviceLayout, recipeFormat } from '../../src/quant/formats.ts';
import { dequantizeBlocks, dequantizeDevice, nearestInt, quantizeBlocks, quantizeToDevice, repackToDevice } from '../../src/quant/reference.ts';
import { f16BitsToNumber, f32ToF16Bits, roundToF16 } from '../../src/quant/half.ts';
import { INPUT_KINDS, quantInputs, randomBlocks } from '../helpers/quant-inputs.ts';

const golden = JSON.parse(readFileSync(new URL('../fixtures/ggml-quant-golden.json', import.meta.url), 'utf8')) as {
  quantize: Record<QuantFormat, Record<string, string>>; dequantize: Record<QuantFormat, string>;
};
const sha = (b: Uint8Array | Float32Array) => createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest('hex');
/** fn throws an instance of cls (uvu's assert.throws takes a predicate, not a class). */
function throwsA(fn: () => unknown, cls: new (...a: never[]) => Error, re?: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof cls && (!re || re.test((e as Error).message)));
}
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

test('quantizers are byte-identical to ggml on every input kind (golden hashes of ggml output)', () => {
  QUANT_FORMATS.forEach((f, fi) => {
    INPUT_KINDS.forEach((k, ki) => {
      const x = quantInputs(1000 + 16 * ki + fi, 4096, k);
      assert.is(sha(quantizeBlocks(f, x)), golden.quantize[f][k], `${f} ${k}`);
    });
  });
});

test('GGUF dequantizers are bit-identical to ggml on random blocks with extreme scales', () => {
  QUANT_FORMATS.forEach((f, fi) => {
    const blocks = randomBlocks(f, 64, 77 + fi);
    assert.is(sha(dequantizeBlocks(f, blocks)), golden.dequantize[f], f);
  });
});

test('nearest_int: ggml trick = round half to even in range, low mantissa bits beyond', () => {
  assert.equal([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999998, 3.7, -3.7].map((v) => nearestInt(Math.fround(v))), [0, 2, 2, -0, -2, 2, 4, -4].map((v) => v + 0));
  // 2^23 + 1 (needs 24 bits): f + 1.5*2^23 rounds to an even mantissa; the trick returns its low bits.
  assert.is(nearestInt(4194303), 4194303);
});

test('q8_0 by hand: amax 127 gives d = 1, qs = roundf(x), half away from zero', () => {
  // amax = 127 -> d = 127/127 = 1 (f16 0x3c00), id = 1, qs[j] = roundf(x[j]).
  const x = new Float32Array(32);
  x.set([127, 2.5, -2.5, 0.5, -0.5, Math.fround(1.4999999), 3.7, -126.5, -0.49999997, 64.5]);
  const b = quantizeBlocks('q8_0', x);
  assert.is(hex(b.subarray(0, 2)), '003c');
  const qs = [...new Int8Array(b.buffer, 2, 10)];
  assert.equal(qs, [127, 3, -3, 1, -1, 1, 4, -127, 0, 65]);
  assert.ok(b.subarray(12).every((v) => v === 0));
  assert.equal([...dequantizeBlocks('q8_0', b).subarray(0, 10)], qs);
});

test('q4_0 by hand: signed max -8 gives d = 1, q = min(15, trunc(x + 8.5))', () => {
  // Largest magnitude is x[0] = -8 -> d = -8 / -8 = 1, id = 1.
  const x = new Float32Array(32);
  x.set([-8, 7, 7.4, -0.5, 0.49, 0.5, 1.5, -7.5, -7.51], 0);
  x.set([3, -3], 16);
  const b = quantizeBlocks('q4_0', x);
  assert.is(hex(b.subarray(0, 2)), '003c');
  // q: -8->0, 7->15, 7.4->15 (trunc 15.9), -0.5->8, 0.49->8, 0.5->9, 1.5->10, -7.5->1, -7.51->0
  // (trunc 0.99), zeros -> 8; values 16.. : 3->11, -3->5, zeros->8. Byte j = q[j] | q[j+16] << 4.
  const q = [0, 15, 15, 8, 8, 9, 10, 1, 0, 8, 8, 8, 8, 8, 8, 8];
  const qh = [11, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8];
  assert.equal([...b.subarray(2)], q.map((v, j) => v | (qh[j] << 4)));
  const y = dequantizeBlocks('q4_0', b);
  assert.equal([...y.subarray(0, 9)], [-8, 7, 7, 0, 0, 1, 2, -7, -8]);
});

test('q5_0 by hand: positive max 16 gives d = -1, fifth bits in qh', () => {
  // max = 16 -> d = 16 / -16 = -1 (f16 0xbc00), id = -1, q = min(31, trunc(-x + 16.5)).
  const x = new Float32Array(32);
  x.set([16, -15, -15.4, 0, 0.5, -0.5, 1], 0);
  x.set([-4], 16);
  const b = quantizeBlocks('q5_0', x);
  assert.is(hex(b.subarray(0, 2)), '00bc');
  // q: 16->0, -15->31, -15.4->31, 0->16, 0.5->16, -0.5->17, 1->15, zeros->16; x[16] = -4 -> 20.
  const q = Array<number>(32).fill(16);
  [0, 31, 31, 16, 16, 17, 15].forEach((v, j) => { q[j] = v; });
  q[16] = 20;
  let qh = 0;
  q.forEach((v, j) => { qh |= ((v >> 4) & 1) << j; });
  assert.is(new DataView(b.buffer).getUint32(2, true), qh >>> 0);
  assert.equal([...b.subarray(6)], q.slice(0, 16).map((v, j) => (v & 15) | ((q[j + 16] & 15) << 4)));
  const y = dequantizeBlocks('q5_0', b);
  assert.equal([...y.subarray(0, 7)], [16, -15, -15, 0, 0, -1, 1]); // y = (q - 16) * -1
  assert.is(y[16], -4);
});

test('q4_k dequantize by hand: 6-bit scales and mins, nibble groups', () => {
  // d = 1 (0x3c00), dmin = 0.5 (0x3800). Sub-block 0: sc 2, m 4; sub-block 1: sc 3, m 1;
  // sub-block 4 (packed form): sc 33 = 0b10_0001, m 20 = 0b01_0100 -> scales[8] = 1 | 4 << 4,
  // scales[0] gets (33 >> 4) << 6, scales[4] gets (20 >> 4) << 6.
  const b = new Uint8Array(144);
  b.set([0x00, 0x3c, 0x00, 0x38]);
  const s = b.subarray(4, 16);
  s[0] = 2 | (2 << 6); s[4] = 4 | (1 << 6); s[1] = 3; s[5] = 1; s[8] = 0x41;
  b[16] = 0x5a;      // value 0: low nibble 10 (sub-block 0); value 32: high nibble 5 (sub-block 1)
  b[16 + 64] = 0x07; // value 128: low nibble 7 (sub-block 4, group 2)
  const y = dequantizeBlocks('q4_k', b);
  assert.is(y[0], 1 * 2 * 10 - 0.5 * 4);  // 18
  assert.is(y[1], -2);                     // q = 0: -dmin * m
  assert.is(y[32], 1 * 3 * 5 - 0.5 * 1);  // 14.5
  assert.is(y[128], 1 * 33 * 7 - 0.5 * 20); // 221
  assert.is(y[2 * 32], 0);                 // sub-block 2: sc = m = 0
});

test('q6_k dequantize by hand: ql/qh split and signed scales', () => {
  // d = 0.25 (0x3400) at byte 208; scales at 192: sc[0] = -3, sc[2] = 5, sc[4] = 1.
  const b = new Uint8Array(210);
  b[208] = 0x00; b[209] = 0x34;
  b[192] = 0xfd; b[194] = 5; b[196] = 1;
  b[0] = 0x21;   // value 0 low bits 1, value 64 low bits 2
  b[32] = 0x0f;  // value 32 low bits 15
  b[128] = 0x06; // qh[0]: value 0 high 2 (bits 0-1), value 32 high 1 (bits 2-3), value 64 high 0
  const y = dequantizeBlocks('q6_k', b);
  assert.is(y[0], 0.25 * -3 * ((1 | (2 << 4)) - 32));  // -0.75
  assert.is(y[32], 0.25 * 5 * ((15 | (1 << 4)) - 32)); // -1.25
  assert.is(y[64], 0.25 * 1 * (2 - 32));               // -7.5
});

test('deviceLayout: section offsets by hand', () => {
  // q8_0 3 x 64: nb 6; qs 192 B at 0; d at 192 (a multiple of 16), 12 B; end 204.
  let L = deviceLayout('q8_0', 3, 64);
  assert.equal([L.nb, L.qs.offset, L.qs.bytes, L.d!.offset, L.d!.bytes, L.totalBytes, L.qh], [6, 0, 192, 192, 12, 204, undefined]);
  // q4_0 3 x 96: nb 9; qs 144 at 0; d at 144, 18 B; end 162 -> 164.
  L = deviceLayout('q4_0', 3, 96);
  assert.equal([L.nb, L.qs.bytes, L.d!.offset, L.totalBytes], [9, 144, 144, 164]);
  // q5_0 1 x 32: qs 16 at 0; qh at 16, 4 B; d at align16(20) = 32; end 34 -> 36.
  L = deviceLayout('q5_0', 1, 32);
  assert.equal([L.qs.bytes, L.qh!.offset, L.qh!.bytes, L.d!.offset, L.totalBytes], [16, 16, 4, 32, 36]);
  // q5_0 3 x 32: qs 48; qh at 48, 12 B; d at align16(60) = 64, 6 B; end 70 -> 72.
  L = deviceLayout('q5_0', 3, 32);
  assert.equal([L.qh!.offset, L.d!.offset, L.totalBytes], [48, 64, 72]);
  // q4_k 2 x 512: 4 verbatim 144-byte blocks, no d section.
  L = deviceLayout('q4_k', 2, 512);
  assert.equal([L.nb, L.qs.bytes, L.d, L.totalBytes], [4, 576, undefined, 576]);
  // q6_k 1 x 256: 208 B at 0; d at 208 (13 * 16); end 210 -> 212.
  L = deviceLayout('q6_k', 1, 256);
  assert.equal([L.qs.bytes, L.d!.offset, L.totalBytes], [208, 208, 212]);
  assert.is(deviceLayout('q8_0', 0, 32).totalBytes, 0);
  throwsA(() => deviceLayout('q4_k', 1, 32), InputError, /multiple of 256/);
  throwsA(() => deviceLayout('q8_0', -1, 32), InputError);
  throwsA(() => deviceLayout('q9' as QuantFormat, 1, 32), InputError);
});

test('recipeFormat: q8_0 and Q4_K_M rules with fallbacks; high precision never quantized', () => {
  const r = (role: Parameters<typeof recipeFormat>[0], K: number, m: Parameters<typeof recipeFormat>[2]) => recipeFormat(role, K, m);
  assert.is(r('matrix', 2048, 'none'), 'keep');
  assert.is(r('matrix', 2048, 'q8_0'), 'q8_0');
  assert.is(r('output', 2048, 'q8_0'), 'q8_0');
  assert.is(r('matrix', 48, 'q8_0'), 'keep');
  assert.is(r('matrix', 2048, 'q4_k'), 'q4_k');
  assert.is(r('embedding', 2048, 'q4_k'), 'q4_k');
  assert.is(r('output', 2048, 'q4_k'), 'q6_k');
  assert.is(r('tied-embedding', 2048, 'q4_k'), 'q6_k');
  assert.is(r('matrix', 2080, 'q4_k'), 'q5_0');   // 2080 = 65 * 32, not a multiple of 256
  assert.is(r('output', 2080, 'q4_k'), 'q8_0');
  assert.is(r('tied-embedding', 40, 'q4_k'), 'keep');
  assert.is(r('high-precision', 4096, 'q4_k'), 'keep');
  assert.is(r('high-precision', 4096, 'q8_0'), 'keep');
  throwsA(() => recipeFormat('matrix', 256, 'q3_k' as 'q8_0'), UnsupportedError);
});

test('repackToDevice: sections hold the block parts, padding is zero', () => {
  const blocks = randomBlocks('q5_0', 3, 5);
  const dev = repackToDevice('q5_0', blocks, 3, 32);
  const L = deviceLayout('q5_0', 3, 32);
  for (let b = 0; b < 3; b++) {
    assert.equal([...dev.subarray(16 * b, 16 * b + 16)], [...blocks.subarray(22 * b + 6, 22 * b + 22)]);
    assert.equal([...dev.subarray(L.qh!.offset + 4 * b, L.qh!.offset + 4 * b + 4)], [...blocks.subarray(22 * b + 2, 22 * b + 6)]);
    assert.equal([...dev.subarray(L.d!.offset + 2 * b, L.d!.offset + 2 * b + 2)], [...blocks.subarray(22 * b, 22 * b + 2)]);
  }
  assert.ok(dev.subarray(L.qh!.offset + 12, L.d!.offset).every((v) => v === 0));
  assert.ok(dev.subarray(L.d!.offset + 6).every((v) => v === 0));
});

test('device-layout dequantizer equals the GGUF-block dequantizer (random blocks, odd block counts)', () => {
  for (const f of QUANT_FORMATS) {
    const qk = FORMAT_INFO[f].qk;
    for (const [rows, bpr] of [[1, 1], [3, 5], [7, 3]] as const) {
      const K = qk * bpr;
      const blocks = randomBlocks(f, rows * bpr, 31 * rows + bpr);
      const a = dequantizeBlocks(f, blocks);
      const b = dequantizeDevice(f, repackToDevice(f, blocks, rows, K), rows, K);
      assert.is(b.length, rows * K);
      for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.unreachable(`${f} ${rows}x${K} value ${i}: ${a[i]} vs ${b[i]}`);
    }
  }
});

test('zero and constant blocks', () => {
  for (const f of QUANT_FORMATS) {
    const n = FORMAT_INFO[f].qk * 2;
    const z = dequantizeBlocks(f, quantizeBlocks(f, new Float32Array(n)));
    assert.ok(z.every((v) => v === 0), `${f} zeros`);
    const c = dequantizeBlocks(f, quantizeBlocks(f, new Float32Array(n).fill(-0.375)));
    // A constant block is its own largest magnitude: the grid has it exactly up to the f16 scale.
    for (const v of c) assert.ok(Math.abs(v + 0.375) <= 0.375 * 2 ** -10, `${f} constant: ${v}`);
  }
});

// Round-trip bounds. d16 = the f16 scale; its rounding moves a level q by |q| * (half an f16 ulp
// of d): at most |q| (d 2^-11 + 2^-25) (2^-25 = half the f16 subnormal spacing).
//   q8_0: q = round(x / d), d = amax / 127, |q| <= 127: |x - q d16| <= d / 2 + 127 (d 2^-11 + 2^-25).
//   q4_0 / q5_0 (B = 8 / 16): d = max / -B, t = x / d in [-B, B]; q = trunc(t + B + 0.5) clamped to
//     2B - 1, so |t - q + B| <= 1/2 except t > B - 1/2 (values opposite in sign to max, close to
//     -max), which clip to B - 1: error <= |d| there. Plus B (|d| 2^-11 + 2^-25) for the f16 scale.
//   q4_k / q6_k: the searched scales are not a closed form (a weighted least-squares fit that may
//     clip an extreme value); the fitted grid steps are within a few percent of range / 15 (q4_k:
//     range = max - min(min, 0) of the 32-value sub-block) and amax / 31.1 (q6_k, 16 values), the
//     requantization rounds to the nearest level, and the 6-bit (q4_k) / 8-bit (q6_k) scale codes
//     move each level by at most 1/126 (q4_k) / 1/256 (q6_k) of the super-block's largest scale
//     per level. We hold every value to two steps of its own sub-block plus those scale-code
//     errors: a gross coding error (wrong nibble, wrong sub-block scale) breaks it by far.
function bound(f: QuantFormat, x: Float32Array, i: number): number {
  const qk = FORMAT_INFO[f].qk;
  const b0 = i - (i % qk);
  const blk = x.subarray(b0, b0 + qk);
  const f16 = (d: number, levels: number) => levels * (Math.abs(d) * 2 ** -11 + 2 ** -25);
  if (f === 'q8_0') {
    const amax = Math.max(...blk.map(Math.abs));
    const d = amax / 127;
    return (d / 2 + f16(d, 127)) * (1 + 1e-6);
  }
  if (f === 'q4_0' || f === 'q5_0') {
    const B = f === 'q4_0' ? 8 : 16;
    let max = 0;
    for (const v of blk) if (Math.abs(v) > Math.abs(max)) max = v;
    const d = max / -B;
    const t = d === 0 ? 0 : x[i] / d;
    return ((t > B - 0.5 ? Math.abs(d) : Math.abs(d) / 2) + f16(d, B)) * (1 + 1e-6);
  }
  const sub = f === 'q4_k' ? 32 : 16;
  const stepOf = (s: Float32Array) => {
    if (f === 'q6_k') return Math.max(...s.map(Math.abs)) / 31.1;
    let mn = Infinity, mx = -Infinity;
    for (const v of s) { mn = Math.min(mn, v); mx = Math.max(mx, v); }
    return (mx - Math.min(mn, 0)) / 15;
  };
  let maxStep = 0, maxMin = 0;
  for (let s = 0; s < qk; s += sub) {
    const part = blk.subarray(s, s + sub);
    maxStep = Math.max(maxStep, stepOf(part));
    maxMin = Math.max(maxMin, -Math.min(0, ...part));
  }
  const own = stepOf(blk.subarray(i - b0 - ((i - b0) % sub), i - b0 - ((i - b0) % sub) + sub));
  const code = f === 'q4_k' ? (15 * maxStep + maxMin) / 126 : 32 * maxStep / 256;
  return 2 * own + code + f16(maxStep, 32 * 128) + 1e-30;
}

test('quantize -> dequantize round trips stay within each format\'s bound', () => {
  const kinds = ['normal', 'uniform', 'positive', 'negative', 'outliers', 'tiny', 'huge', 'sparse', 'ints', 'halves'] as const;
  for (const f of QUANT_FORMATS) {
    for (const k of kinds) {
      const x = quantInputs(500 + kinds.indexOf(k), 256 * 8, k);
      const y = dequantizeBlocks(f, quantizeBlocks(f, x));
      let worst = 0;
      for (let i = 0; i < x.length; i++) {
        const e = Math.abs(x[i] - y[i]), b = bound(f, x, i);
        if (!(e <= b)) assert.unreachable(`${f} ${k}: value ${i} = ${x[i]} -> ${y[i]}, error ${e} > bound ${b}`);
        worst = Math.max(worst, e / b);
      }
      assert.ok(worst > 0 || k === 'ints' || k === 'halves', `${f} ${k}: bound check saw no error at all`);
    }
  }
});

test('relative RMS error on Gaussian weights, per format (regression guard, measured values +50%)', () => {
  const x = quantInputs(42, 256 * 64, 'normal');
  const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
  // Measured: q8_0 0.0053, q4_0 0.0855, q5_0 0.0421, q4_k 0.0707, q6_k 0.0175.
  const limits: Record<QuantFormat, number> = { q8_0: 0.008, q4_0: 0.13, q5_0: 0.063, q4_k: 0.106, q6_k: 0.026 };
  for (const f of QUANT_FORMATS) {
    const y = dequantizeBlocks(f, quantizeBlocks(f, x));
    const rel = rms(y.map((v, i) => v - x[i])) / rms(x);
    assert.ok(rel < limits[f], `${f}: relative RMS error ${rel}`);
  }
});

test('quantizeToDevice = repack(quantizeBlocks); input validation', () => {
  const x = quantInputs(3, 2 * 512, 'normal');
  for (const f of QUANT_FORMATS) {
    assert.equal(quantizeToDevice(f, x, 2, 512), repackToDevice(f, quantizeBlocks(f, x), 2, 512));
  }
  throwsA(() => quantizeBlocks('q8_0', new Float32Array(33)), InputError);
  throwsA(() => quantizeToDevice('q8_0', new Float32Array(64), 3, 32), InputError);
  throwsA(() => dequantizeBlocks('q4_k', new Uint8Array(100), 1), InputError);
});

test('half helpers: f16 rounding to nearest even, subnormals, overflow', () => {
  assert.is(f32ToF16Bits(1), 0x3c00);
  assert.is(f32ToF16Bits(65504), 0x7bff);
  assert.is(f32ToF16Bits(65520), 0x7c00);           // halfway to 2^16 rounds to even -> inf
  assert.is(f32ToF16Bits(2 ** -24), 0x0001);
  assert.is(f32ToF16Bits(2 ** -25), 0x0000);        // tie to even (0)
  assert.is(f32ToF16Bits(3 * 2 ** -25), 0x0002);    // tie 1.5 -> 2
  assert.is(f32ToF16Bits(-0), 0x8000);
  assert.is(f32ToF16Bits(NaN) & 0x7fff, 0x7e00);
  assert.is(f16BitsToNumber(0x3555), 0.333251953125);
  assert.is(roundToF16(1 + 2 ** -11), 1);           // tie -> even mantissa
  assert.is(roundToF16(1 + 3 * 2 ** -11), 1 + 2 ** -9);
});

test.run();
