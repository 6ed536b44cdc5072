// Readable TypeScript reference of the block formats (docs/weight-formats.md): ggml's reference
// quantizers (quantize_row_*_ref in ggml/src/ggml-quants.c) ported operation by operation, the
// GGUF-block dequantizers, the GGUF -> device-layout repack and a device-layout dequantizer.
//
// Byte identity with ggml: every C float operation is one IEEE binary32 operation, reproduced here
// as one double operation followed by Math.fround (exact for + - * / and sqrt of f32 operands:
// binary64 has more than 2 * 24 + 2 bits, so the double result rounds to the same f32). The C
// evaluation order (left to right, no contraction: ggml is built as ISO C11, so GCC does not fuse
// multiply-adds) is kept, as are the integer conversions of x86-64, where float -> int8_t is
// cvttss2si (truncate; INT_MIN, i.e. low byte 0, for NaN and out-of-range values) followed by
// taking the low byte. nearest_int uses ggml's trick (add 1.5 * 2^23, read the low mantissa
// bits), which is round-half-to-even for |x| < 2^22 and a deterministic garbage value beyond; it is
// reproduced bit for bit, not replaced by a rounding function. Inputs are expected to be finite;
// non-finite values produce blocks that are deterministic and identical to the Wasm quantizers'
// (assembly/host/quant.ts) but not meaningful.
//
// This file is the oracle for the Wasm quantizers and the WGSL dequantizers; it is deliberately
// scalar and unoptimized.
import { InputError } from '../errors.ts';
import { type QuantFormat, FORMAT_INFO, deviceLayout } from './formats.ts';
import { f16BitsToNumber, f32Bits, f32ToF16Bits } from './half.ts';

const fr = Math.fround;
const EPS_GROUP_MAX = fr(1e-15); // GROUP_MAX_EPS

/** ggml's nearest_int: (bits(f + 12582912.f) & 0x7fffff) - 0x400000. */
export function nearestInt(f: number): number {
  return (f32Bits(fr(f + 12582912)) & 0x007fffff) - 0x00400000;
}

/** C's (int32_t)f on x86-64 (cvttss2si): truncation; INT_MIN for NaN and values outside int32. */
function cvttToInt32(f: number): number {
  if (!(f > -2147483649 && f < 2147483648)) return -2147483648;
  return Math.trunc(f) | 0;
}

/** C's (int8_t)f on x86-64: the low byte of cvttss2si, sign-extended. */
function cvttToInt8(f: number): number {
  return (cvttToInt32(f) << 24) >> 24;
}

/** C's roundf (half away from zero), exact for f32 arguments. */
function roundf(f: number): number {
  if (!Number.isFinite(f)) return f;
  const r = Math.floor(Math.abs(f) + 0.5); // |f| + 0.5 is exact in binary64 for any f32 below 2^52
  return f < 0 || Object.is(f, -0) ? -r : r;
}

function putF16(out: Uint8Array, at: number, v: number): void {
  const h = f32ToF16Bits(v);
  out[at] = h & 0xff;
  out[at + 1] = h >>> 8;
}

function getF16(b: Uint8Array, at: number): number {
  return f16BitsToNumber(b[at] | (b[at + 1] << 8));
}

// ---------------------------------------------------------------------------------------------
// q8_0 / q4_0 / q5_0 (blocks of 32)

function quantizeQ8_0Block(x: Float32Array, o: number, y: Uint8Array, p: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) {
    const a = Math.abs(x[o + j]);
    amax = amax > a ? amax : a; // MAX(amax, fabsf(v))
  }
  const d = fr(amax / 127);
  const id = d !== 0 ? fr(1 / d) : 0;
  putF16(y, p, d);
  for (let j = 0; j < 32; j++) y[p + 2 + j] = cvttToInt8(roundf(fr(x[o + j] * id))) & 0xff;
}

/** The value of largest magnitude (the first one on ties) and its magnitude, as ggml scans. */
function signedMax(x: Float32Array, o: number): number {
  let amax = 0, max = 0;
  for (let j = 0; j < 32; j++) {
    const v = x[o + j];
    if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
  }
  return max;
}

function quantizeQ4_0Block(x: Float32Array, o: number, y: Uint8Array, p: number): void {
  const d = fr(signedMax(x, o) / -8);
  const id = d !== 0 ? fr(1 / d) : 0;
  putF16(y, p, d);
  for (let j = 0; j < 16; j++) {
    const x0 = fr(x[o + j] * id), x1 = fr(x[o + 16 + j] * id);
    const xi0 = Math.min(15, cvttToInt8(fr(x0 + 8.5))) & 0xff;
    const xi1 = Math.min(15, cvttToInt8(fr(x1 + 8.5))) & 0xff;
    y[p + 2 + j] = (xi0 | (xi1 << 4)) & 0xff;
  }
}

function quantizeQ5_0Block(x: Float32Array, o: number, y: Uint8Array, p: number): void {
  const d = fr(signedMax(x, o) / -16);
  const id = d !== 0 ? fr(1 / d) : 0;
  putF16(y, p, d);
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const x0 = fr(x[o + j] * id), x1 = fr(x[o + 16 + j] * id);
    const xi0 = Math.min(31, cvttToInt8(fr(x0 + 16.5))) & 0xff;
    const xi1 = Math.min(31, cvttToInt8(fr(x1 + 16.5))) & 0xff;
    y[p + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
    qh |= ((xi0 & 0x10) >>> 4) << j;
    qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
  }
  y[p + 2] = qh & 0xff;
  y[p + 3] = (qh >>> 8) & 0xff;
  y[p + 4] = (qh >>> 16) & 0xff;
  y[p + 5] = (qh >>> 24) & 0xff;
}

// ---------------------------------------------------------------------------------------------
// q4_k (super-blocks of 256: 8 sub-blocks of 32 with 6-bit scale and min)

/**
 * make_qkx2_quants: fits x[o..o+n) ~ scale * L + min (min <= 0) with L in [0, nmax], trying nstep+1
 * candidate scales and keeping the lowest weighted squared error. Writes L[lo..lo+n); returns
 * [scale, -min].
 */
function makeQkx2Quants(n: number, nmax: number, x: Float32Array, o: number, weights: Float32Array,
  L: Uint8Array, lo: number, Laux: Uint8Array, rmin: number, rdelta: number, nstep: number): [number, number] {
  let min = x[o], max = x[o];
  let sumW = weights[0];
  let sumX = fr(sumW * x[o]);
  for (let i = 1; i < n; i++) {
    const xi = x[o + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i];
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(fr(iscale * fr(x[o + i] - min)));
    L[lo + i] = Math.max(0, Math.min(nmax, l));
    const diff = fr(fr(fr(scale * L[lo + i]) + min) - x[o + i]);
    bestError = fr(bestError + fr(weights[i] * fr(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    // max - min is re-evaluated: min moves to the best fit's min as the search improves.
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[o + i];
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
      Laux[i] = l;
      const w = weights[i];
      const wl = fr(w * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * Laux[i]) + thisMin) - x[o + i]);
        curError = fr(curError + fr(weights[i] * fr(diff * diff)));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i];
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes at s[o..]. */
export function scaleMinK4(j: number, s: Uint8Array, o: number): [number, number] {
  if (j < 4) return [s[o + j] & 63, s[o + j + 4] & 63];
  return [(s[o + j + 4] & 0xf) | ((s[o + j - 4] >> 6) << 4), (s[o + j + 4] >> 4) | ((s[o + j] >> 6) << 4)];
}

function quantizeQ4KBlock(x: Float32Array, o: number, y: Uint8Array, p: number): void {
  const L = new Uint8Array(256);
  const Laux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const mins = new Float32Array(8);
  const scales = new Float32Array(8);
  let maxScale = 0, maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const s = o + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[s + l] * x[s + l]));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[s + l]));
    const [scale, min] = makeQkx2Quants(32, 15, x, s, weights, L, 32 * j, Laux, -1, fr(0.1), 20);
    scales[j] = scale;
    mins[j] = min;
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const sc = p + 4; // scales[12] after d and dmin
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j])) & 0xff); // uint8_t, then MIN(63, .)
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j])) & 0xff);
    if (j < 4) {
      y[sc + j] = ls;
      y[sc + j + 4] = lm;
    } else {
      y[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      y[sc + j - 4] |= (ls >> 4) << 6;
      y[sc + j] |= (lm >> 4) << 6;
    }
  }
  putF16(y, p, fr(maxScale / 63));
  putF16(y, p + 2, fr(maxMin / 63));
  const dAll = getF16(y, p), dminAll = getF16(y, p + 2);
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(j, y, sc);
    const d = fr(dAll * s);
    if (d === 0) continue; // L keeps the search's values for this sub-block
    const dm = fr(dminAll * m);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(fr(fr(x[o + 32 * j + ii] + dm) / d));
      L[32 * j + ii] = Math.max(0, Math.min(15, l));
    }
  }
  const q = p + 16;
  for (let j = 0; j < 256; j += 64) {
    for (let l = 0; l < 32; l++) y[q + j / 2 + l] = L[j + l] | (L[j + l + 32] << 4);
  }
}

// ---------------------------------------------------------------------------------------------
// q6_k (super-blocks of 256: 16 sub-blocks of 16 with an int8 scale)

/**
 * make_qx_quants with rmse_type 1 and no importance weights (what quantize_row_q6_K_ref uses):
 * symmetric fit x ~ scale * (L - nmax), L in [0, 2 nmax), weights x^2, 19 candidate scales.
 */
function makeQxQuants(n: number, nmax: number, x: Float32Array, o: number, L: Int8Array, lo: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[o + i]);
    if (ax > amax) { amax = ax; max = x[o + i]; }
  }
  if (amax < EPS_GROUP_MAX) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[o + i];
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
    L[lo + i] = l + nmax;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[o + i];
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
      const w = fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(fr(iscale * x[o + i]));
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

function quantizeQ6KBlock(x: Float32Array, o: number, y: Uint8Array, p: number): void {
  const L = new Int8Array(256);
  const scales = new Float32Array(16);
  let maxScale = 0, maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const scale = makeQxQuants(16, 32, x, o + 16 * ib, L, 16 * ib);
    scales[ib] = scale;
    const abs = Math.abs(scale);
    if (abs > maxAbsScale) { maxAbsScale = abs; maxScale = scale; }
  }
  y.fill(0, p, p + 210);
  if (maxAbsScale < EPS_GROUP_MAX) return; // all-zero block, d = 0
  const iscale = fr(-128 / maxScale);
  putF16(y, p + 208, fr(1 / iscale));
  const sc = p + 192;
  for (let ib = 0; ib < 16; ib++) y[sc + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]))) & 0xff;
  const dAll = getF16(y, p + 208);
  for (let j = 0; j < 16; j++) {
    const d = fr(dAll * ((y[sc + j] << 24) >> 24));
    if (d === 0) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = Math.max(-32, Math.min(31, nearestInt(fr(x[o + 16 * j + ii] / d))));
      L[16 * j + ii] = l + 32;
    }
  }
  for (let j = 0, ql = p, qh = p + 128; j < 256; j += 128, ql += 64, qh += 32) {
    for (let l = 0; l < 32; l++) {
      const a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], e = L[j + l + 96];
      y[ql + l] = ((a & 0xf) | ((c & 0xf) << 4)) & 0xff;
      y[ql + l + 32] = ((b & 0xf) | ((e & 0xf) << 4)) & 0xff;
      y[qh + l] = ((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)) & 0xff;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Public API

const QUANTIZE_BLOCK: Record<QuantFormat, (x: Float32Array, o: number, y: Uint8Array, p: number) => void> = {
  q8_0: quantizeQ8_0Block, q4_0: quantizeQ4_0Block, q5_0: quantizeQ5_0Block, q4_k: quantizeQ4KBlock, q6_k: quantizeQ6KBlock,
};

function checkCount(format: QuantFormat, n: number): number {
  const { qk } = FORMAT_INFO[format];
  if (!Number.isSafeInteger(n) || n < 0 || n % qk !== 0) throw new InputError(`${format}: ${n} values is not a whole number of ${qk}-value blocks`);
  return n / qk;
}

/**
 * GGUF blocks of `x` (length a multiple of the block size; values are used as f32), byte-identical
 * to ggml's quantize_row_<format>_ref.
 */
export function quantizeBlocks(format: QuantFormat, x: Float32Array | ArrayLike<number>): Uint8Array {
  const xs = x instanceof Float32Array ? x : Float32Array.from(x);
  const nb = checkCount(format, xs.length);
  const { qk, ggufBlockBytes } = FORMAT_INFO[format];
  const y = new Uint8Array(nb * ggufBlockBytes);
  const q = QUANTIZE_BLOCK[format];
  for (let b = 0; b < nb; b++) q(xs, b * qk, y, b * ggufBlockBytes);
  return y;
}

/** f32 values of `nb` GGUF blocks (ggml's dequantize_row_<format>, bit for bit). */
export function dequantizeBlocks(format: QuantFormat, blocks: Uint8Array, nb = blocks.byteLength / FORMAT_INFO[format].ggufBlockBytes): Float32Array {
  const { qk, ggufBlockBytes: B } = FORMAT_INFO[format];
  if (!Number.isSafeInteger(nb) || nb < 0 || nb * B > blocks.byteLength) {
    throw new InputError(`${format}: ${blocks.byteLength} bytes do not hold ${nb} blocks of ${B} bytes`);
  }
  const y = new Float32Array(nb * qk);
  for (let b = 0; b < nb; b++) {
    const p = b * B, o = b * qk;
    switch (format) {
      case 'q8_0': {
        const d = getF16(blocks, p);
        for (let j = 0; j < 32; j++) y[o + j] = fr(((blocks[p + 2 + j] << 24) >> 24) * d);
        break;
      }
      case 'q4_0': {
        const d = getF16(blocks, p);
        for (let j = 0; j < 16; j++) {
          const q = blocks[p + 2 + j];
          y[o + j] = fr(((q & 0xf) - 8) * d);
          y[o + j + 16] = fr(((q >> 4) - 8) * d);
        }
        break;
      }
      case 'q5_0': {
        const d = getF16(blocks, p);
        const qh = (blocks[p + 2] | (blocks[p + 3] << 8) | (blocks[p + 4] << 16) | (blocks[p + 5] << 24)) >>> 0;
        for (let j = 0; j < 16; j++) {
          const q = blocks[p + 6 + j];
          const h0 = ((qh >>> j) << 4) & 0x10, h1 = (qh >>> (j + 12)) & 0x10;
          y[o + j] = fr((((q & 0xf) | h0) - 16) * d);
          y[o + j + 16] = fr((((q >> 4) | h1) - 16) * d);
        }
        break;
      }
      case 'q4_k': {
        const d = getF16(blocks, p), dmin = getF16(blocks, p + 2);
        let q = p + 16, out = o;
        for (let j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
          const [s1, m1] = scaleMinK4(is, blocks, p + 4);
          const [s2, m2] = scaleMinK4(is + 1, blocks, p + 4);
          const d1 = fr(d * s1), mm1 = fr(dmin * m1), d2 = fr(d * s2), mm2 = fr(dmin * m2);
          for (let l = 0; l < 32; l++) y[out++] = fr(fr(d1 * (blocks[q + l] & 0xf)) - mm1);
          for (let l = 0; l < 32; l++) y[out++] = fr(fr(d2 * (blocks[q + l] >> 4)) - mm2);
        }
        break;
      }
      case 'q6_k': {
        const d = getF16(blocks, p + 208);
        for (let n = 0, ql = p, qh = p + 128, sc = p + 192; n < 256; n += 128, ql += 64, qh += 32, sc += 8) {
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const h = blocks[qh + l];
            const q1 = ((blocks[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
            const q2 = ((blocks[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
            const q3 = ((blocks[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
            const q4 = ((blocks[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
            const s = (k: number) => (blocks[sc + is + k] << 24) >> 24;
            y[o + n + l] = fr(fr(d * s(0)) * q1);
            y[o + n + l + 32] = fr(fr(d * s(2)) * q2);
            y[o + n + l + 64] = fr(fr(d * s(4)) * q3);
            y[o + n + l + 96] = fr(fr(d * s(6)) * q4);
          }
        }
        break;
      }
    }
  }
  return y;
}

/**
 * The device buffer (docs/weight-formats.md) of `rows` rows of K values held as GGUF blocks:
 * quants, high bits and scales moved into their sections; padding bytes are zero.
 */
export function repackToDevice(format: QuantFormat, blocks: Uint8Array, rows: number, K: number): Uint8Array {
  const lay = deviceLayout(format, rows, K);
  const B = FORMAT_INFO[format].ggufBlockBytes;
  if (blocks.byteLength < lay.nb * B) throw new InputError(`${format}: ${blocks.byteLength} bytes < ${lay.nb} blocks of ${B}`);
  const out = new Uint8Array(lay.totalBytes);
  for (let b = 0; b < lay.nb; b++) {
    const p = b * B;
    switch (format) {
      case 'q8_0':
        out.set(blocks.subarray(p + 2, p + 34), lay.qs.offset + 32 * b);
        out.set(blocks.subarray(p, p + 2), lay.d!.offset + 2 * b);
        break;
      case 'q4_0':
        out.set(blocks.subarray(p + 2, p + 18), lay.qs.offset + 16 * b);
        out.set(blocks.subarray(p, p + 2), lay.d!.offset + 2 * b);
        break;
      case 'q5_0':
        out.set(blocks.subarray(p + 6, p + 22), lay.qs.offset + 16 * b);
        out.set(blocks.subarray(p + 2, p + 6), lay.qh!.offset + 4 * b);
        out.set(blocks.subarray(p, p + 2), lay.d!.offset + 2 * b);
        break;
      case 'q4_k':
        out.set(blocks.subarray(p, p + 144), lay.qs.offset + 144 * b);
        break;
      case 'q6_k':
        out.set(blocks.subarray(p, p + 208), lay.qs.offset + 208 * b);
        out.set(blocks.subarray(p + 208, p + 210), lay.d!.offset + 2 * b);
        break;
    }
  }
  return out;
}

/** Quantizes x [rows, K] straight to the device buffer (quantizeBlocks then repackToDevice). */
export function quantizeToDevice(format: QuantFormat, x: Float32Array | ArrayLike<number>, rows: number, K: number): Uint8Array {
  if (x.length !== rows * K) throw new InputError(`${format}: ${x.length} values, expected rows * K = ${rows * K}`);
  return repackToDevice(format, quantizeBlocks(format, x), rows, K);
}

/**
 * f32 values [rows, K] of a device buffer, decoded from the sections as the device kernels read
 * them (written independently of dequantizeBlocks so each checks the other).
 */
export function dequantizeDevice(format: QuantFormat, buf: Uint8Array, rows: number, K: number): Float32Array {
  const lay = deviceLayout(format, rows, K);
  if (buf.byteLength < lay.totalBytes) throw new InputError(`${format}: device buffer of ${buf.byteLength} bytes < ${lay.totalBytes}`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const qk = FORMAT_INFO[format].qk;
  const y = new Float32Array(lay.nb * qk);
  const scaleOf = (b: number) => f16BitsToNumber(dv.getUint16(lay.d!.offset + 2 * b, true));
  for (let b = 0; b < lay.nb; b++) {
    const base = b * qk;
    if (format === 'q8_0') {
      const d = scaleOf(b);
      for (let j = 0; j < 32; j++) y[base + j] = fr(dv.getInt8(lay.qs.offset + 32 * b + j) * d);
    } else if (format === 'q4_0' || format === 'q5_0') {
      const d = scaleOf(b);
      const qh = format === 'q5_0' ? dv.getUint32(lay.qh!.offset + 4 * b, true) : 0;
      const bias = format === 'q5_0' ? 16 : 8;
      for (let j = 0; j < 32; j++) {
        const byte = dv.getUint8(lay.qs.offset + 16 * b + (j & 15));
        const lowBits = j < 16 ? byte & 15 : byte >> 4;
        const q = lowBits | (format === 'q5_0' ? ((qh >>> j) & 1) << 4 : 0);
        y[base + j] = fr((q - bias) * d);
      }
    } else if (format === 'q4_k') {
      const blk = lay.qs.offset + 144 * b;
      const d = f16BitsToNumber(dv.getUint16(blk, true));
      const dmin = f16BitsToNumber(dv.getUint16(blk + 2, true));
      for (let j = 0; j < 256; j++) {
        const sub = j >> 5;             // sub-block 0..7
        const group = sub >> 1;         // 32-byte group of qs
        const byte = dv.getUint8(blk + 16 + 32 * group + (j & 31));
        const q = sub & 1 ? byte >> 4 : byte & 15;
        const [sc, m] = scaleMinK4(sub, buf, blk + 4);
        y[base + j] = fr(fr(fr(d * sc) * q) - fr(dmin * m));
      }
    } else {
      const blk = lay.qs.offset + 208 * b;
      const d = scaleOf(b);
      for (let j = 0; j < 256; j++) {
        const half = j >> 7, within = j & 127;
        const l = within & 31, quarter = within >> 5; // value = half*128 + quarter*32 + l
        const qlByte = dv.getUint8(blk + 64 * half + l + (quarter & 1 ? 32 : 0));
        const low = quarter < 2 ? qlByte & 15 : qlByte >> 4;
        const high = (dv.getUint8(blk + 128 + 32 * half + l) >> (2 * quarter)) & 3;
        const sc = dv.getInt8(blk + 192 + 8 * half + (l >> 4) + 2 * quarter);
        y[base + j] = fr(fr(d * sc) * ((low | (high << 4)) - 32));
      }
    }
  }
  return y;
}
