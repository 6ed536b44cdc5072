// Launcher for appending rows to an attention KV cache (shaders/kv_write.wgsl), in the cache's
// storage dtype (f32, or f16 packed in u32 words).
import type { GpuContext } from '../context.ts';
import type { KernelDef } from '../kernel.ts';
import type { KvDType } from '../../backend.ts';
import { InputError } from '../../../errors.ts';
import source from '../../../../shaders/kv_write.wgsl';

const KV_WRITE: KernelDef = {
  name: 'kv_write',
  source,
  bindings: ['src', 'dst'],
  params: [['T', 'u32'], ['W', 'u32'], ['srcOffset', 'u32'], ['srcRowStride', 'u32'], ['dstRow', 'u32']],
  workgroupSize: () => [256, 1, 1],
};

/** Bytes per cached element for a KV dtype. */
export function kvElemBytes(dtype: KvDType): number {
  return dtype === 'f16' ? 2 : 4;
}

export interface KvWriteArgs {
  src: GPUBuffer;
  srcOffset?: number;
  srcRowStride?: number;
  T: number;
  width: number;
  dst: GPUBuffer;
  dstRow: number;
  dtype: KvDType;
}

/** dst rows dstRow .. dstRow + T - 1 = src rows, converted to the cache dtype. One dispatch. */
export async function kvWrite(ctx: GpuContext, a: KvWriteArgs): Promise<void> {
  const srcOffset = a.srcOffset ?? 0;
  const srcRowStride = a.srcRowStride ?? a.width;
  for (const [n, v, min] of [['T', a.T, 0], ['width', a.width, 1], ['dstRow', a.dstRow, 0], ['srcOffset', srcOffset, 0], ['srcRowStride', srcRowStride, 0]] as const) {
    if (!Number.isInteger(v) || v < min) throw new InputError(`kvWrite: ${n} must be an integer >= ${min}, got ${v}`);
  }
  if (a.dtype !== 'f32' && a.dtype !== 'f16') throw new InputError(`kvWrite: unknown KV dtype ${String(a.dtype)}`);
  if (a.dtype === 'f16' && a.width % 2 !== 0) throw new InputError(`kvWrite: an f16 cache needs an even row width, got ${a.width}`);
  if (a.T > 1 && srcRowStride < a.width) throw new InputError(`kvWrite: srcRowStride ${srcRowStride} < width ${a.width}`);
  if (a.src === a.dst) throw new InputError('kvWrite: src must not be the cache');
  if (a.T === 0) return;
  const srcEnd = srcOffset + (a.T - 1) * srcRowStride + a.width;
  if (a.src.size < srcEnd * 4) throw new InputError(`kvWrite: src holds ${a.src.size} bytes, rows reach element ${srcEnd}`);
  const dstEnd = (a.dstRow + a.T) * a.width * kvElemBytes(a.dtype);
  if (a.dst.size < dstEnd) throw new InputError(`kvWrite: cache holds ${a.dst.size} bytes, rows up to ${a.dstRow + a.T} need ${dstEnd}`);
  const k = await ctx.kernel(KV_WRITE, { KV_F16: a.dtype === 'f16' });
  const words = a.T * a.width / (a.dtype === 'f16' ? 2 : 1);
  ctx.dispatch(k, { src: a.src, dst: a.dst }, { T: a.T, W: a.width, srcOffset, srcRowStride, dstRow: a.dstRow }, [Math.ceil(words / 256)]);
}
