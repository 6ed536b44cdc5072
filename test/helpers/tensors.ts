// Test helpers: build a GpuTensor from host f32 data in any storage dtype, with the exact values the
// GPU will see (after round-to-nearest-even to f16/bf16) for float64 CPU references, and an optional
// forced split into parts along dim 0 (to exercise the split-tensor paths at small sizes).
//
//   const w = makeTensor(ctx, 'w', data, [N, K], 'bf16', { rowsPerPart: 7 });
//   ... matmul(ctx, { w: w.tensor, ... }) ... reference uses w.values (Float64Array, N*K) ...
//   w.dispose();
import type { GpuContext } from '../../src/backends/webgpu/context.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import type { DType, GpuTensor, TensorPart } from '../../src/backends/webgpu/tensor.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of one f32 value, rounded to nearest even (overflow -> inf, NaN kept). */
export function f32ToF16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value = m * 2^(exp-150), in units of 2^-24 that is m >> (14 - e).
    const shift = 14 - e;
    if (shift > 24) return sign; // below half the smallest subnormal: rounds to zero
    const m = mant | 0x800000;
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1))) q++;
    return sign | q; // q may reach 0x400: the smallest normal, which is correct
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1))) q++; // a carry into the exponent is right (up to inf)
  return sign | q;
}

/** bfloat16 bits of one f32 value, rounded to nearest even (NaN stays NaN). */
export function f32ToBf16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f16BitsToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function bf16BitsToNumber(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

export function toF16Bits(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f32ToF16Bits(data[i]);
  return out;
}

export function toBf16Bits(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = f32ToBf16Bits(data[i]);
  return out;
}

/** The values `data` takes once stored as `dtype` (f32 rounding included), as float64. */
export function roundTo(data: ArrayLike<number>, dtype: DType): Float64Array {
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    out[i] = dtype === 'f32' ? Math.fround(data[i])
      : dtype === 'f16' ? f16BitsToNumber(f32ToF16Bits(data[i]))
        : bf16BitsToNumber(f32ToBf16Bits(data[i]));
  }
  return out;
}

export interface TestTensor {
  tensor: GpuTensor;
  /** Exact element values after rounding to the storage dtype, row-major like `data`. */
  values: Float64Array;
  /** Destroys the part buffers (idempotent). */
  dispose(): void;
}

export interface MakeTensorOptions {
  /**
   * Force a split along dim 0 with this many rows per part (the last part gets the rest). For
   * 16-bit dtypes with an odd row size, an odd value is rounded up to even so every part starts on
   * an even element, as the runtime's tensor loader guarantees.
   */
  rowsPerPart?: number;
}

/** Uploads `data` (row-major, `shape` in PyTorch order) as a GpuTensor of `dtype`. */
export function makeTensor(ctx: GpuContext, name: string, data: Float32Array, shape: readonly number[],
  dtype: DType, opts: MakeTensorOptions = {}): TestTensor {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`makeTensor ${name}: shape [${shape}] needs ${count} values, got ${data.length}`);
  const rows = shape.length === 0 ? 1 : shape[0];
  const rowLen = rows === 0 ? 0 : count / rows;
  let per = opts.rowsPerPart ?? rows;
  if (!(per >= 1) || !Number.isInteger(per)) throw new Error(`makeTensor ${name}: rowsPerPart must be a positive integer`);
  if (dtype !== 'f32' && rowLen % 2 === 1 && per % 2 === 1 && per < rows) per++;
  per = Math.min(per, Math.max(rows, 1));

  const bits = dtype === 'f16' ? toF16Bits(data) : dtype === 'bf16' ? toBf16Bits(data) : undefined;
  const parts: TensorPart[] = [];
  for (let r0 = 0; r0 < rows || (rows === 0 && parts.length === 0); r0 += per) {
    const nr = Math.min(per, rows - r0);
    const e0 = r0 * rowLen, e1 = e0 + nr * rowLen;
    const bytes = bits ? new Uint8Array(bits.buffer, e0 * 2, (e1 - e0) * 2) : new Uint8Array(data.buffer, data.byteOffset + e0 * 4, (e1 - e0) * 4);
    const buffer = ctx.alloc.create(`weights:${name}${parts.length ? `.${parts.length}` : ''}`, bytes.byteLength, STORAGE_RW);
    ctx.write(buffer, 0, bytes); // write() pads to 4 bytes
    parts.push({ buffer, rowStart: r0, rows: nr });
    if (rows === 0) break;
  }
  const tensor: GpuTensor = { name, dtype, shape: [...shape], parts, byteLength: count * (dtype === 'f32' ? 4 : 2) };
  let disposed = false;
  return {
    tensor,
    values: roundTo(data, dtype),
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const p of parts) ctx.alloc.destroy(p.buffer);
    },
  };
}
