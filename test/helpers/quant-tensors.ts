// Test helpers for block-quantized weights: a GpuTensor in the device layout of
// docs/weight-formats.md, built either by quantizing host f32 data with the TS reference quantizer
// (src/quant/reference.ts) or from random raw GGUF blocks (random quants, chosen scales: extreme
// magnitudes, subnormal and zero scales, zero blocks), split into parts of whole rows; plus the
// exact dequantized values (the reference's device-layout dequantizer, written independently of
// the WGSL) for float64 CPU references.
//
//   const w = makeQuantTensor(ctx, 'w', [N, K], 'q4_k', { data, rowsPerPart: 7 });
//   ... matmul(ctx, { w: w.tensor, ... }) ... reference uses w.values (Float64Array, N*K) ...
//   w.dispose();
import type { GpuContext } from '../../src/backends/webgpu/context.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import type { GpuTensor, TensorPart } from '../../src/backends/webgpu/tensor.ts';
import type { QuantDType } from '../../src/backends/tensor.ts';
import { FORMAT_INFO, deviceLayout } from '../../src/quant/formats.ts';
import { dequantizeDevice, quantizeToDevice, repackToDevice } from '../../src/quant/reference.ts';
import { f32ToF16Bits } from '../../src/quant/half.ts';
import { rng } from './gpu.ts';
import type { TestTensor } from './tensors.ts';

export const QUANT_DTYPES: QuantDType[] = ['q8_0', 'q4_0', 'q5_0', 'q4_k', 'q6_k'];

/** Byte offsets of the f16 scale fields inside one GGUF block of each format. */
const SCALE_FIELDS: Record<QuantDType, number[]> = {
  q8_0: [0], q4_0: [0], q5_0: [0], q4_k: [0, 2], q6_k: [208],
};

/** Scales that stress the decoders: the largest finite f16, a subnormal, zero, signs, tiny normals. */
const EXTREME_SCALES = [65504, -65504, 2 ** -24, -(2 ** -24), 0, 6.1e-5, 1, -1];

export interface RawBlockOptions {
  /** Typical scale magnitude (default 1 / (8 sqrt(K)) scaled per format). */
  scale: number;
  /** Fraction of blocks given an extreme scale from EXTREME_SCALES (default 0). */
  extremeFraction?: number;
  /** Fraction of blocks that are all zero bytes (default 0). */
  zeroFraction?: number;
  seed: number;
}

/** `nb` random GGUF blocks of `dtype`: random quants and sub-scales, f16 scales as asked. */
export function randomBlocks(dtype: QuantDType, nb: number, o: RawBlockOptions): Uint8Array {
  const B = FORMAT_INFO[dtype].ggufBlockBytes;
  const r = rng(o.seed);
  const out = new Uint8Array(nb * B);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  for (let b = 0; b < nb; b++) {
    const p = b * B;
    const u = r();
    if (u < (o.zeroFraction ?? 0)) { out.fill(0, p, p + B); continue; }
    const extreme = r() < (o.extremeFraction ?? 0);
    for (const f of SCALE_FIELDS[dtype]) {
      const v = extreme ? EXTREME_SCALES[Math.floor(r() * EXTREME_SCALES.length)] : o.scale * (0.25 + r()) * (r() < 0.5 ? -1 : 1);
      const h = f32ToF16Bits(v);
      out[p + f] = h & 0xff;
      out[p + f + 1] = h >>> 8;
    }
  }
  return out;
}

export interface MakeQuantOptions {
  /** Quantize these f32 values [N, K] with the reference quantizer... */
  data?: Float32Array;
  /** ...or use these raw GGUF blocks (N * K / QK of them). */
  blocks?: Uint8Array;
  /** Force a split along dim 0 with this many rows per part (the last part gets the rest). */
  rowsPerPart?: number;
}

/** Uploads a [N, K] quantized weight; `values` are its exact dequantized elements. */
export function makeQuantTensor(ctx: GpuContext, name: string, shape: readonly [number, number], dtype: QuantDType,
  opts: MakeQuantOptions): TestTensor {
  const [N, K] = shape;
  const { qk, ggufBlockBytes } = FORMAT_INFO[dtype];
  if (K % qk !== 0) throw new Error(`makeQuantTensor ${name}: K = ${K} is not a multiple of ${qk}`);
  const per = Math.min(opts.rowsPerPart ?? N, N);
  const values = new Float64Array(N * K);
  const parts: TensorPart[] = [];
  let byteLength = 0;
  try {
    for (let r0 = 0; r0 < N; r0 += per) {
      const nr = Math.min(per, N - r0);
      let dev: Uint8Array;
      if (opts.blocks) {
        const bpr = K / qk;
        dev = repackToDevice(dtype, opts.blocks.subarray(r0 * bpr * ggufBlockBytes, (r0 + nr) * bpr * ggufBlockBytes), nr, K);
      } else if (opts.data) {
        dev = quantizeToDevice(dtype, opts.data.subarray(r0 * K, (r0 + nr) * K), nr, K);
      } else {
        throw new Error('makeQuantTensor: give data or blocks');
      }
      if (dev.byteLength !== deviceLayout(dtype, nr, K).totalBytes) throw new Error('makeQuantTensor: layout size mismatch');
      values.set(dequantizeDevice(dtype, dev, nr, K), r0 * K);
      const buffer = ctx.alloc.create(`weights:${name}${parts.length ? `.${parts.length}` : ''}`, dev.byteLength, STORAGE_RW);
      ctx.write(buffer, 0, dev);
      parts.push({ buffer, rowStart: r0, rows: nr });
      byteLength += dev.byteLength;
    }
  } catch (e) {
    for (const p of parts) ctx.alloc.destroy(p.buffer);
    throw e;
  }
  const tensor: GpuTensor = { name, dtype, shape: [N, K], parts, byteLength };
  let disposed = false;
  return {
    tensor,
    values,
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const p of parts) ctx.alloc.destroy(p.buffer);
    },
  };
}
