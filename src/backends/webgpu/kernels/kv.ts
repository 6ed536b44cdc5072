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
/** Keys and values of each row into two caches (PAIR). */
const KV_WRITE_PAIR: KernelDef = { ...KV_WRITE, name: 'kv_write.pair', bindings: ['src', 'dst', 'dst2'] };

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
  /** A second cache [capacity, width] that receives each src row's next `width` values (keys and values in one dispatch). */
  dst2?: GPUBuffer;
  dstRow: number;
  dtype: KvDType;
}

/** dst rows dstRow .. dstRow + T - 1 = src rows (and dst2's the next `width` values), converted to the cache dtype. One dispatch. */
export async function kvWrite(ctx: GpuContext, a: KvWriteArgs): Promise<void> {
  const srcOffset = a.srcOffset ?? 0;
  const srcRowStride = a.srcRowStride ?? (a.dst2 ? 2 * a.width : a.width);
  for (const [n, v, min] of [['T', a.T, 0], ['width', a.width, 1], ['dstRow', a.dstRow, 0], ['srcOffset', srcOffset, 0], ['srcRowStride', srcRowStride, 0]] as const) {
    if (!Number.isInteger(v) || v < min) throw new InputError(`kvWrite: ${n} must be an integer >= ${min}, got ${v}`);
  }
  if (a.dtype !== 'f32' && a.dtype !== 'f16') throw new InputError(`kvWrite: unknown KV dtype ${String(a.dtype)}`);
  if (a.dtype === 'f16' && a.width % 2 !== 0) throw new InputError(`kvWrite: an f16 cache needs an even row width, got ${a.width}`);
  const pair = a.dst2 !== undefined;
  const rowWidth = pair ? 2 * a.width : a.width;
  if (a.T > 1 && srcRowStride < rowWidth) throw new InputError(`kvWrite: srcRowStride ${srcRowStride} < width ${rowWidth}`);
  if (a.src === a.dst || a.src === a.dst2) throw new InputError('kvWrite: src must not be a cache');
  if (pair && a.dst2 === a.dst) throw new InputError('kvWrite: dst2 must not be dst');
  if (a.T === 0) return;
  const srcEnd = srcOffset + (a.T - 1) * srcRowStride + rowWidth;
  if (a.src.size < srcEnd * 4) throw new InputError(`kvWrite: src holds ${a.src.size} bytes, rows reach element ${srcEnd}`);
  const dstEnd = (a.dstRow + a.T) * a.width * kvElemBytes(a.dtype);
  for (const d of pair ? [a.dst, a.dst2!] : [a.dst]) {
    if (d.size < dstEnd) throw new InputError(`kvWrite: cache holds ${d.size} bytes, rows up to ${a.dstRow + a.T} need ${dstEnd}`);
  }
  const k = await ctx.kernel(pair ? KV_WRITE_PAIR : KV_WRITE, { KV_F16: a.dtype === 'f16', PAIR: pair });
  const words = (a.T * a.width / (a.dtype === 'f16' ? 2 : 1)) * (pair ? 2 : 1);
  const bindings: Record<string, GPUBuffer> = { src: a.src, dst: a.dst };
  if (pair) bindings.dst2 = a.dst2!;
  ctx.dispatch(k, bindings, { T: a.T, W: a.width, srcOffset, srcRowStride, dstRow: a.dstRow }, [Math.ceil(words / 256)]);
}
