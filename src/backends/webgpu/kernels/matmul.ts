// Launchers for the weight-reading kernels: matmul y = x · Wᵀ (shaders/gemv.wgsl for decode-sized
// M, shaders/matmul.wgsl tiled GEMM for prefill), the embedding gather (shaders/embedding.wgsl)
// and argmax over logits rows (shaders/argmax.wgsl). Weights are GpuTensors in f32, f16, bf16 or
// a block-quantized format (docs/weight-formats.md; decode through shaders/gemv_q.wgsl, see
// matmul-quant.ts), possibly split along dim 0 into parts: one dispatch per part, each writing
// its own N range. A tied head is matmul with the embedding table, whatever its dtype.
import { InputError, UnsupportedError } from '../../../errors.ts';
import type { Binding, GpuContext, RecordedDispatch } from '../context.ts';
import type { DefineValue, KernelDef } from '../kernel.ts';
import { type DType, type GpuTensor, isQuantDType } from '../tensor.ts';
import type { QuantDType } from '../../tensor.ts';
import {
  MATMUL_PARAMS, type GemvTraversal, type UnitGemvTuning, checkQuantTensor, dequantLibrary, formatDefines, sectionWords, unitGemv,
  type GemvPrologue,
} from './matmul-quant.ts';
import unpack16Lib from '../../../../shaders/lib/unpack16.wgsl';
import wElemLib from '../../../../shaders/lib/w_elem.wgsl';
import load4Lib from '../../../../shaders/lib/load4.wgsl';
import gemvSource from '../../../../shaders/gemv.wgsl';
import gemmSource from '../../../../shaders/matmul.wgsl';
import gemmBlockedSource from '../../../../shaders/matmul_rb.wgsl';
import embeddingSource from '../../../../shaders/embedding.wgsl';
import argmaxSource from '../../../../shaders/argmax.wgsl';

const GEMV: KernelDef = {
  name: 'gemv',
  source: gemvSource,
  libraries: [unpack16Lib, wElemLib],
  bindings: ['x', 'w', 'y'],
  params: MATMUL_PARAMS,
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

const GEMM: KernelDef = {
  name: 'matmul',
  source: gemmSource,
  libraries: [unpack16Lib, wElemLib, load4Lib],
  bindings: ['x', 'w', 'y'],
  params: MATMUL_PARAMS,
  workgroupSize: () => [256, 1, 1],
};

const GEMM_BLOCKED: KernelDef = {
  name: 'matmul_rb',
  source: gemmBlockedSource,
  libraries: [unpack16Lib, wElemLib, load4Lib],
  bindings: ['x', 'w', 'y'],
  params: MATMUL_PARAMS,
  workgroupSize: () => [64, 1, 1],
};

const EMBEDDING_PARAMS = [['T', 'u32'], ['H', 'u32'], ['rowStart', 'u32'], ['rows', 'u32'], ['V', 'u32'], ['zeroInvalid', 'u32'],
  ['K', 'u32'], ['qhWord', 'u32'], ['dWord', 'u32']] as const;

const EMBEDDING: KernelDef = {
  name: 'embedding',
  source: embeddingSource,
  libraries: [unpack16Lib],
  bindings: ['ids', 'table', 'out'],
  params: EMBEDDING_PARAMS,
  workgroupSize: () => [256, 1, 1],
};

/** The quantized variants: the same sources with a dequantizing library (its binding is `wu`). */
const quantDefs = new Map<string, KernelDef>();
function quantDef(base: KernelDef, dtype: QuantDType): KernelDef {
  const lib = dequantLibrary(dtype);
  const key = `${base.name}|${dtype === 'q4_k' || dtype === 'q6_k' ? 'k' : 'q'}`;
  let d = quantDefs.get(key);
  if (!d) {
    const libraries = base === EMBEDDING ? [lib] : [lib, load4Lib];
    d = { ...base, libraries, bindings: base.bindings.map((b) => (b === 'w' || b === 'table' ? 'wu' : b)) };
    quantDefs.set(key, d);
  }
  return d;
}

const ARGMAX: KernelDef = {
  name: 'argmax',
  source: argmaxSource,
  bindings: ['logits', 'out'],
  params: [['M', 'u32'], ['V', 'u32']],
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

/** Output tile per workgroup [BM, BN] (must match shaders/matmul.wgsl and matmul_rb.wgsl). */
const TILE = { 'gemm-tiled': 64, 'gemm-blocked': 32 } as const;

/** Rows of x one GEMV workgroup serves (its largest MB variant); on GPUs the GEMM takes over above it. */
export const GEMV_MAX_M = 8;

/**
 * Largest M for which lavapipe runs the GEMV (x rows in blocks of MB = 8, one slice of the grid's
 * z each) rather than the register-blocked GEMM: per call, out_proj [2048, 4096], lavapipe: bf16
 * 23 vs 70 ms at M = 12, 47 vs 88 at 32, 87 vs 145 at 64; q8_0 15 vs 76, 45 vs 76, 73 vs 166
 * (bench/kernels-matmul.ts); a batch of 9-16 decodes of Zamba2-1.2B shapes runs 2.8-3.9x faster.
 * SwiftShader is the other way round (GEMM 2.2x faster at M = 16, 4.5x at 64): GEMV_MAX_M there.
 */
export const LLVMPIPE_GEMV_MAX_M = 64;

/** Largest M the default path sends to the GEMV on this device. */
export function gemvMaxM(ctx: Pick<GpuContext, 'softwareTuning' | 'adapter'>): number {
  return ctx.softwareTuning && ctx.adapter.name === 'llvmpipe' ? LLVMPIPE_GEMV_MAX_M : GEMV_MAX_M;
}

/** Tuning of the GEMV kernel (threads per workgroup, rows of W per workgroup). */
export interface GemvTuning { wg: number; rows: number }
/**
 * GPUs: 128 threads stream 4 rows (16-byte loads per thread per row, enough workgroups to fill
 * the machine at N = 2048). CPU emulations: every workgroup costs two barriers (coroutine
 * switches per invocation), so fewer, bigger workgroups (32 rows each) win there.
 */
const GEMV_GPU: GemvTuning = { wg: 128, rows: 4 };
const GEMV_SOFTWARE: GemvTuning = { wg: 32, rows: 32 };

/**
 * 'gemv': the device's GEMV (shaders/gemv.wgsl for 16/32-bit weights; shaders/gemv_q.wgsl for
 * quantized ones, and for 16/32-bit ones with K % 32 == 0 under software tuning); 'gemv-split'
 * forces shaders/gemv.wgsl (16/32-bit only), 'gemv-gpu' / 'gemv-lanes' a traversal of
 * shaders/gemv_q.wgsl (its GPU and software variants); 'gemm' the device's GEMM, 'gemm-tiled' /
 * 'gemm-blocked' a forced one.
 */
export type MatmulPath = 'gemv' | 'gemv-split' | 'gemv-gpu' | 'gemv-lanes' | 'gemm' | 'gemm-tiled' | 'gemm-blocked';

export interface MatmulArgs {
  /** Activations f32 [M, xRowStride] starting at element xOffset (a row may be a slice of a wider row). */
  x: GPUBuffer;
  xOffset?: number;
  /** Elements between rows of x (default K). */
  xRowStride?: number;
  M: number;
  /** Weight [N, K], f32/f16/bf16 or block-quantized, possibly split along N. */
  w: GpuTensor;
  /** Output f32: y[m, n] at yOffset + m * yRowStride + n. Must not be the same buffer as x. */
  y: GPUBuffer;
  yOffset?: number;
  /** Elements between rows of y (default N). */
  yRowStride?: number;
  /** y += x · Wᵀ instead of y = x · Wᵀ. */
  accumulate?: boolean;
  /** Read 16-bit weights as packed u32 + unpack even when shader-f16 is available (tests). */
  forcePacked?: boolean;
  /**
   * Force a kernel (tests, benchmarks). Default: 'gemv' for M <= gemvMaxM(ctx) (GEMV_MAX_M;
   * LLVMPIPE_GEMV_MAX_M on lavapipe), else 'gemm', which is 'gemm-tiled'
   * (workgroup-memory tiles, shaders/matmul.wgsl) on GPUs and 'gemm-blocked' (register blocking
   * only, shaders/matmul_rb.wgsl) on CPU emulations. The GEMV kernels take any M (blocks of MB
   * rows along the grid's z).
   */
  path?: MatmulPath;
  /**
   * When given, the dispatches are appended here instead of recorded (the caller replays them with
   * ctx.replay() and may keep them for identical calls). Clears (K = 0) are recorded as usual.
   */
  sink?: RecordedDispatch[];
  /** GEMV tuning override (benchmarks; applies to shaders/gemv.wgsl and to gemv_q's traversals). */
  gemv?: GemvTuning;
  /**
   * Input prologue for decode (M = 1) on the GPU unit GEMV: x is normalised (or gated, or passed
   * through GELU) as it is read (matmul-quant.ts GemvPrologue, prologueFits). With 'gelu', x holds
   * [gate | up] rows of 2K values.
   */
  prologue?: GemvPrologue;
}

function dtypeDefines(dtype: DType, nativeF16: boolean): Record<string, DefineValue> {
  return formatDefines(dtype, nativeF16);
}

/**
 * The unit GEMV traversal for this call, or undefined for shaders/gemv.wgsl: quantized weights
 * always use gemv_q (its GPU traversal on GPUs, the lane-per-row one under software tuning);
 * f16/bf16 weights use the lane-per-row one on software adapters when K % 32 == 0 (whole units),
 * where it takes ~1.7x less CPU time per call than gemv.wgsl (f32: no gain; bench/kernels-matmul.ts).
 */
function unitTraversal(ctx: GpuContext, dtype: DType, K: number, path: MatmulPath): GemvTraversal | undefined {
  if (path === 'gemv-split') {
    if (isQuantDType(dtype)) throw new UnsupportedError(`matmul: shaders/gemv.wgsl reads 16/32-bit weights only, not ${dtype}`);
    return undefined;
  }
  if (path === 'gemv-gpu') return 'gpu';
  if (path === 'gemv-lanes') return 'lanes';
  if (isQuantDType(dtype)) return ctx.softwareTuning ? 'lanes' : 'gpu';
  return ctx.softwareTuning && (dtype === 'f16' || dtype === 'bf16') && K % 32 === 0 ? 'lanes' : undefined;
}

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new InputError(`${name} must be a non-negative integer, got ${v}`);
}

function checkExtent(what: string, buf: GPUBuffer, lastElem: number): void {
  if (lastElem * 4 > buf.size) {
    throw new InputError(`${what}: needs ${lastElem} f32 elements, buffer ${buf.label || '(unlabelled)'} holds ${Math.floor(buf.size / 4)}`);
  }
}

/**
 * Binds only the elements [start, end) of an f32 buffer: a window from `start` rounded down to the
 * storage offset alignment, so a slice of a buffer larger than the storage binding limit (a long
 * KV cache, a big logits buffer) can be used. Returns the element offset of `start` in the window.
 */
function window(ctx: GpuContext, buffer: GPUBuffer, start: number, end: number): { binding: { buffer: GPUBuffer; offset: number; size: number }; offset: number } {
  const align = ctx.limits.minStorageBufferOffsetAlignment;
  const byteStart = Math.floor((start * 4) / align) * align;
  const size = Math.min(buffer.size, end * 4) - byteStart;
  if (size > ctx.limits.maxStorageBufferBindingSize) {
    throw new UnsupportedError(`matmul: the ${size}-byte range of ${buffer.label || 'a buffer'} it touches exceeds the storage binding limit ${ctx.limits.maxStorageBufferBindingSize}`);
  }
  return { binding: { buffer, offset: byteStart, size }, offset: start - byteStart / 4 };
}

/** y[m, n] (= or +=) sum_k x[m, k] * w[n, k]; records one dispatch per weight part. */
export async function matmul(ctx: GpuContext, args: MatmulArgs): Promise<void> {
  const { w, M } = args;
  if (w.shape.length !== 2) throw new InputError(`matmul: weight ${w.name} must be 2-D [N, K], has shape [${w.shape}]`);
  const [N, K] = w.shape;
  checkQuantTensor(`matmul`, w);
  const xOffset = args.xOffset ?? 0, xRowStride = args.xRowStride ?? K;
  const yOffset = args.yOffset ?? 0, yRowStride = args.yRowStride ?? N;
  for (const [n, v] of [['M', M], ['xOffset', xOffset], ['xRowStride', xRowStride], ['yOffset', yOffset], ['yRowStride', yRowStride]] as const) {
    checkCount(`matmul(${w.name}): ${n}`, v);
  }
  if (M === 0 || N === 0) return;
  if (args.x === args.y) throw new InputError(`matmul(${w.name}): x and y must be different buffers`);
  if (M > 1 && xRowStride < K) throw new InputError(`matmul(${w.name}): xRowStride ${xRowStride} < K ${K}`);
  if (M > 1 && yRowStride < N) throw new InputError(`matmul(${w.name}): yRowStride ${yRowStride} < N ${N}`);
  const xWidth = args.prologue?.kind === 'gelu' ? 2 * K : K;
  checkExtent(`matmul(${w.name}) x`, args.x, xOffset + (M - 1) * xRowStride + xWidth);
  if (args.prologue && args.path !== undefined && args.path !== 'gemv' && args.path !== 'gemv-gpu') {
    throw new UnsupportedError(`matmul: an input prologue runs on the GPU unit GEMV only (path ${args.path})`);
  }
  checkExtent(`matmul(${w.name}) y`, args.y, yOffset + (M - 1) * yRowStride + N);
  if (K === 0) {
    // An empty sum: y = 0 (or unchanged when accumulating).
    if (!args.accumulate) {
      for (let m = 0; m < M; m++) ctx.clear(args.y, (yOffset + m * yRowStride) * 4, N * 4);
    }
    return;
  }

  const vec = K % 8 === 0;
  const defines: Record<string, DefineValue> = {
    ...dtypeDefines(w.dtype, ctx.features.shaderF16 && !args.forcePacked),
    VEC: vec,
    XVEC: vec && xOffset % 4 === 0 && xRowStride % 4 === 0,
  };
  let path = args.path ?? (M <= gemvMaxM(ctx) ? 'gemv' : 'gemm');
  if (path === 'gemm') path = ctx.softwareTuning ? 'gemm-blocked' : 'gemm-tiled';
  // Bind only the rows touched (window offsets keep the element offsets' residues mod 4, as XVEC needs).
  const xw = window(ctx, args.x, xOffset, xOffset + (M - 1) * xRowStride + xWidth);
  const yw = window(ctx, args.y, yOffset, yOffset + (M - 1) * yRowStride + N);
  if (path === 'gemv' || path === 'gemv-split' || path === 'gemv-gpu' || path === 'gemv-lanes') {
    const traversal = args.prologue ? 'gpu' : unitTraversal(ctx, w.dtype, K, path);
    if (traversal) {
      await unitGemv(ctx, {
        x: xw.binding, xOffset: xw.offset, xRowStride, y: yw.binding, yOffset: yw.offset, yRowStride, M, K, w,
        accumulate: args.accumulate === true, traversal, tuning: args.gemv as UnitGemvTuning | undefined,
        nativeF16: ctx.features.shaderF16 && !args.forcePacked, prologue: args.prologue, sink: args.sink,
      });
      return;
    }
    path = 'gemv';
  }
  let k;
  let mb = 1, rows = 0;
  if (args.prologue) throw new UnsupportedError('matmul: an input prologue needs the unit GEMV (M = 1)');
  if (path === 'gemv') {
    const t = args.gemv ?? (ctx.softwareTuning ? GEMV_SOFTWARE : GEMV_GPU);
    // MB in {1, 4, 8}: M = 2 shares the M = 3..4 variant (one compile fewer; the unused row is skipped).
    mb = M === 1 ? 1 : M <= 4 ? 4 : 8;
    rows = t.rows;
    // Workgroup memory is WG * R * MB + WG floats (shaders/gemv.wgsl): halve R until it fits the device.
    const gemvBytes = (r: number) => 4 * t.wg * (r * mb + 1);
    while (rows > 1 && (rows * mb > 32 || gemvBytes(rows) > ctx.limits.maxComputeWorkgroupStorageSize)) rows /= 2;
    const pow2 = (v: number) => Number.isInteger(v) && v > 0 && (v & (v - 1)) === 0;
    if (!pow2(t.wg) || !pow2(rows) || t.wg < rows * mb || t.wg > ctx.limits.maxComputeInvocationsPerWorkgroup) {
      throw new UnsupportedError(`matmul: GEMV tuning wg ${t.wg}, rows ${t.rows} must be powers of two with wg >= rows * MB (${rows * mb}) and within the workgroup limit`);
    }
    k = await ctx.kernel(GEMV, { ...defines, WG: t.wg, R: rows, MB: mb });
  } else {
    const def = path === 'gemm-tiled' ? GEMM : GEMM_BLOCKED;
    k = await ctx.kernel(isQuantDType(w.dtype) ? quantDef(def, w.dtype) : def, defines);
  }
  const base = { M, K, xOffset: xw.offset, xRowStride, yOffset: yw.offset, yRowStride, accumulate: args.accumulate ? 1 : 0 };
  for (const part of w.parts) {
    if (part.rows === 0) continue;
    const params = { ...base, N: part.rows, nBase: part.rowStart, ...sectionWords(w.dtype, part, K) };
    const bindings: Record<string, Binding> = { x: xw.binding, [isQuantDType(w.dtype) ? 'wu' : 'w']: part.buffer, y: yw.binding };
    const grid: [number, number, number] = path === 'gemv' ? [Math.ceil(part.rows / rows), 1, Math.ceil(M / mb)]
      : [Math.ceil(part.rows / TILE[path]), 1, Math.ceil(M / TILE[path])];
    if (args.sink) args.sink.push({ k, bindings, params, grid });
    else ctx.dispatch(k, bindings, params, grid);
  }
}

export interface EmbeddingArgs {
  /** Token ids u32 [T]; the caller validates ids < V (an out-of-range id yields a zero row). */
  ids: GPUBuffer;
  T: number;
  /** Table [V, H], any dtype, possibly split along V. */
  table: GpuTensor;
  /** f32 [T, H]. */
  out: GPUBuffer;
  forcePacked?: boolean;
}

/** out[t, :] = table[ids[t], :] as f32; one dispatch per table part. */
export async function embedding(ctx: GpuContext, args: EmbeddingArgs): Promise<void> {
  const { table, T } = args;
  if (table.shape.length !== 2) throw new InputError(`embedding: table ${table.name} must be 2-D [V, H], has shape [${table.shape}]`);
  const [V, H] = table.shape;
  checkCount('embedding: T', T);
  if (T === 0 || H === 0) return;
  if (T * 4 > args.ids.size) throw new InputError(`embedding: ids buffer holds fewer than T = ${T} ids`);
  checkExtent('embedding out', args.out, T * H);
  if (T * H > 0xffffffff) throw new UnsupportedError(`embedding: T * H = ${T * H} exceeds the u32 index range`);
  checkQuantTensor('embedding', table);
  const quant = isQuantDType(table.dtype);
  const def = quant ? quantDef(EMBEDDING, table.dtype as QuantDType) : EMBEDDING;
  const k = await ctx.kernel(def, dtypeDefines(table.dtype, ctx.features.shaderF16 && !args.forcePacked));
  // Quantized tables: four values per thread (H is a multiple of 32).
  const groups = Math.ceil((T * H) / (quant ? 1024 : 256));
  table.parts.forEach((part, i) => {
    ctx.dispatch(k, { ids: args.ids, [quant ? 'wu' : 'table']: part.buffer, out: args.out },
      { T, H, rowStart: part.rowStart, rows: part.rows, V, zeroInvalid: i === 0 ? 1 : 0, K: H, ...sectionWords(table.dtype, part, H) }, [groups]);
  });
}

export interface ArgmaxArgs {
  /** f32 [M, V]. */
  logits: GPUBuffer;
  M: number;
  V: number;
  /** u32 [M]. */
  out: GPUBuffer;
}

/** out[m] = argmax_v logits[m, v] (lowest index on ties, NaN counts as the maximum, like torch). */
export async function argmax(ctx: GpuContext, args: ArgmaxArgs): Promise<void> {
  const { M, V } = args;
  checkCount('argmax: M', M);
  checkCount('argmax: V', V);
  if (M === 0) return;
  if (V === 0) throw new InputError('argmax: V must be at least 1');
  checkExtent('argmax logits', args.logits, M * V);
  if (M * 4 > args.out.size) throw new InputError(`argmax: out buffer holds fewer than M = ${M} values`);
  const k = await ctx.kernel(ARGMAX, { WG: 256 });
  ctx.dispatch(k, { logits: args.logits, out: args.out }, { M, V }, [M]);
}
