// Launcher for causal GQA attention over a KV cache: shaders/attention_flash.wgsl for blocks of
// queries (prefill, continuation) and shaders/attention_splitk.wgsl + attention_combine.wgsl for
// a few queries against a long context (decode). Both use an f32 online softmax; neither forms a
// T x T (or T x context) score matrix. Split-K partials come from the scratch pool and go back to
// it right after the combine dispatch is recorded (reuse is safe in stream order). The cache is f32
// or f16 (packed two per u32 by shaders/kv_write.wgsl, read back with unpack2x16float, so it needs
// no shader-f16 feature); scores, softmax and accumulation are f32 either way.
import type { GpuContext } from '../context.ts';
import type { KernelDef } from '../kernel.ts';
import { STORAGE_RW } from '../flags.ts';
import { InputError } from '../../../errors.ts';
import type { KvDType } from '../../backend.ts';
import flashSource from '../../../../shaders/attention_flash.wgsl';
import splitkSource from '../../../../shaders/attention_splitk.wgsl';
import combineSource from '../../../../shaders/attention_combine.wgsl';

const COMMON_PARAMS = [['T', 'u32'], ['pos0', 'u32'], ['nHeads', 'u32'], ['groupSize', 'u32'], ['kvStride', 'u32'],
  ['qOffset', 'u32'], ['qRowStride', 'u32']] as const;

const FLASH: KernelDef = {
  name: 'attention_flash',
  source: flashSource,
  bindings: ['q', 'kCache', 'vCache', 'out'],
  params: [...COMMON_PARAMS, ['scale', 'f32']],
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

const SPLITK: KernelDef = {
  name: 'attention_splitk',
  source: splitkSource,
  bindings: ['q', 'kCache', 'vCache', 'dst'],
  params: [...COMMON_PARAMS, ['nSplits', 'u32'], ['splitLen', 'u32'], ['direct', 'u32'], ['scale', 'f32']],
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

const COMBINE: KernelDef = {
  name: 'attention_combine',
  source: combineSource,
  bindings: ['part', 'out'],
  params: [['rows', 'u32'], ['nSplits', 'u32']],
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

/** Flash kernel: queries per workgroup (a multiple of 4) and keys per tile. */
const FLASH_BQ = 16;
const FLASH_BK = 32;
/** Threads (= keys per tile) of the split-K kernel and of the combine pass. */
const SPLITK_WG = 64;
/** Split-K aims for at least this many workgroups, so a single decode query fills the device. */
const SPLITK_TARGET_WORKGROUPS = 256;
const SPLITK_MAX_SPLITS = 64;
/** Below this many queries the split-K path is used: a flash tile of BQ queries would be mostly idle. */
const SPLITK_MAX_T = 16;

export type AttentionAlgorithm = 'flash' | 'splitk';

export interface AttentionArgs {
  /** f32; q(t, h, d) = q[qOffset + t * qRowStride + h * headDim + d] (RoPE already applied) */
  q: GPUBuffer;
  /** elements; default 0 */
  qOffset?: number;
  /** elements between tokens' q rows (>= nHeads * headDim) */
  qRowStride: number;
  /** kvDtype [capacity, nKvHeads * headDim]; rows 0 .. pos0 + T - 1 hold keys (the new ones included) */
  kCache: GPUBuffer;
  /** kvDtype [capacity, nKvHeads * headDim], same rows as kCache */
  vCache: GPUBuffer;
  /** f32 [T, nHeads * headDim]; must not alias q or the caches */
  out: GPUBuffer;
  T: number;
  /** absolute position of query 0; query t attends keys 0 .. pos0 + t */
  pos0: number;
  nHeads: number;
  /** divides nHeads; head h reads kv head floor(h / (nHeads / nKvHeads)) */
  nKvHeads: number;
  headDim: number;
  /** score multiplier (Zamba2: (headDim / 2)^-0.5) */
  scale: number;
  /** Storage of kCache / vCache (default f32). */
  kvDtype?: KvDType;
  /**
   * Scratch for split-K partials, at least attentionScratchBytes(this call) (e.g. a workspace
   * buffer sized by maxAttentionScratchBytes); without it the partials come from the pool.
   */
  scratch?: GPUBuffer;
  /** Forces a kernel (tests, benchmarks); default: split-K below 16 queries, flash otherwise. */
  algorithm?: AttentionAlgorithm;
}

interface SplitPlan { nSplits: number; splitLen: number }

function chooseAlgorithm(a: Pick<AttentionArgs, 'T' | 'algorithm'>): AttentionAlgorithm {
  return a.algorithm ?? (a.T < SPLITK_MAX_T ? 'splitk' : 'flash');
}

/** Splits the longest query's key range [0, pos0 + T) into nSplits ranges of splitLen (a multiple of the tile). */
function splitPlan(T: number, pos0: number, nHeads: number): SplitPlan {
  const keys = pos0 + T;
  const tiles = Math.ceil(keys / SPLITK_WG);
  const want = Math.max(1, Math.min(SPLITK_MAX_SPLITS, tiles, Math.ceil(SPLITK_TARGET_WORKGROUPS / (T * nHeads))));
  const splitLen = Math.ceil(tiles / want) * SPLITK_WG;
  return { nSplits: Math.ceil(keys / splitLen), splitLen };
}

/**
 * Scratch bytes attention() takes from the pool for these arguments: 0 unless the split-K path runs
 * with more than one split, else T * nHeads * maxSplits * (headDim + 2) f32, where maxSplits (<= 64)
 * depends on T and nHeads only, so the figure does not grow with the context.
 */
export function attentionScratchBytes(a: Pick<AttentionArgs, 'T' | 'pos0' | 'nHeads' | 'headDim' | 'algorithm'>): number {
  if (a.T === 0 || chooseAlgorithm(a) !== 'splitk') return 0;
  const { nSplits } = splitPlan(a.T, a.pos0, a.nHeads);
  return nSplits > 1 ? partialsBytes(a.T, a.nHeads, a.headDim) : 0;
}

/**
 * The largest attentionScratchBytes of any call with at most `maxT` queries, whatever the context:
 * one buffer of this size serves every attention call of a block of up to maxT tokens.
 */
export function maxAttentionScratchBytes(maxT: number, nHeads: number, headDim: number): number {
  let most = 0;
  for (let t = 1; t <= Math.min(maxT, SPLITK_MAX_T - 1); t++) most = Math.max(most, partialsBytes(t, nHeads, headDim));
  return most;
}

/**
 * The partials buffer is sized for the most splits this T and head count can ever use, not for
 * the current context length, so the pooled buffer is the same at every position: scratch stays
 * flat as the context grows.
 */
function partialsBytes(T: number, nHeads: number, headDim: number): number {
  const maxSplits = Math.max(1, Math.min(SPLITK_MAX_SPLITS, Math.ceil(SPLITK_TARGET_WORKGROUPS / (T * nHeads))));
  return T * nHeads * maxSplits * (headDim + 2) * 4;
}

/** Flash kernel threads: one per head dim where possible (HD rounded up to 32, within 64..256). */
function flashThreads(headDim: number): number {
  return Math.max(64, Math.min(256, Math.ceil(headDim / 32) * 32));
}

function need(kernel: string, name: string, buf: GPUBuffer, elems: number, dtype: KvDType = 'f32'): void {
  const eb = dtype === 'f16' ? 2 : 4;
  if (buf.size < elems * eb) throw new InputError(`${kernel}: ${name} holds ${buf.size} bytes, needs ${elems * eb} (${elems} ${dtype})`);
}

/**
 * Causal attention of T queries at positions pos0 .. pos0 + T - 1 over cache rows 0 .. pos0 + T - 1.
 * Records one dispatch (flash, or split-K with one split) or two (split-K + combine).
 */
export async function attention(ctx: GpuContext, a: AttentionArgs): Promise<void> {
  const qOffset = a.qOffset ?? 0;
  for (const [n, v, min] of [['T', a.T, 0], ['pos0', a.pos0, 0], ['nHeads', a.nHeads, 1], ['nKvHeads', a.nKvHeads, 1],
    ['headDim', a.headDim, 1], ['qOffset', qOffset, 0], ['qRowStride', a.qRowStride, 0]] as const) {
    if (!Number.isInteger(v) || v < min) throw new InputError(`attention: ${n} must be an integer >= ${min}, got ${v}`);
  }
  if (a.nHeads % a.nKvHeads !== 0) throw new InputError(`attention: nHeads ${a.nHeads} is not a multiple of nKvHeads ${a.nKvHeads}`);
  if (!Number.isFinite(a.scale)) throw new InputError(`attention: scale must be finite, got ${a.scale}`);
  if (a.T > 1 && a.qRowStride < a.nHeads * a.headDim) throw new InputError(`attention: qRowStride ${a.qRowStride} < nHeads * headDim ${a.nHeads * a.headDim}`);
  if (a.out === a.q || a.out === a.kCache || a.out === a.vCache) throw new InputError('attention: out must not alias q, kCache or vCache');
  if (a.algorithm !== undefined && a.algorithm !== 'flash' && a.algorithm !== 'splitk') throw new InputError(`attention: unknown algorithm ${String(a.algorithm)}`);
  const kvDtype = a.kvDtype ?? 'f32';
  if (kvDtype !== 'f32' && kvDtype !== 'f16') throw new InputError(`attention: unknown KV dtype ${String(kvDtype)}`);
  const kvStride = a.nKvHeads * a.headDim;
  // Packed halves: a row must not end inside a u32 (shaders/kv_write.wgsl writes pairs).
  if (kvDtype === 'f16' && kvStride % 2 !== 0) throw new InputError(`attention: an f16 cache needs an even row width, got ${kvStride}`);
  if (a.T === 0) return;
  const keys = a.pos0 + a.T;
  need('attention', 'q', a.q, qOffset + (a.T - 1) * a.qRowStride + a.nHeads * a.headDim);
  need('attention', 'kCache', a.kCache, keys * kvStride, kvDtype);
  need('attention', 'vCache', a.vCache, keys * kvStride, kvDtype);
  need('attention', 'out', a.out, a.T * a.nHeads * a.headDim);
  if (keys * kvStride > 0xffffffff || a.T * a.nHeads * a.headDim > 0xffffffff) throw new InputError('attention: sizes exceed the u32 index range');

  // vec4 reads of q and K whenever every row start is 16-byte aligned (all real head dims).
  const VEC4 = a.headDim % 4 === 0 && qOffset % 4 === 0 && a.qRowStride % 4 === 0;
  const common = { T: a.T, pos0: a.pos0, nHeads: a.nHeads, groupSize: a.nHeads / a.nKvHeads, kvStride, qOffset, qRowStride: a.qRowStride };
  if (chooseAlgorithm(a) === 'flash') {
    const WG = flashThreads(a.headDim);
    const k = await ctx.kernel(FLASH, { VEC4, KV_F16: kvDtype === 'f16', HD: a.headDim, WG, BQ: FLASH_BQ, BK: FLASH_BK, DPT: Math.ceil(a.headDim / WG) });
    ctx.dispatch(k, { q: a.q, kCache: a.kCache, vCache: a.vCache, out: a.out }, { ...common, scale: a.scale },
      [Math.ceil(a.T / FLASH_BQ) * a.nHeads]);
    return;
  }
  const { nSplits, splitLen } = splitPlan(a.T, a.pos0, a.nHeads);
  const defines = { VEC4, KV_F16: kvDtype === 'f16', HD: a.headDim, WG: SPLITK_WG, DPT: Math.ceil(a.headDim / SPLITK_WG) };
  const k = await ctx.kernel(SPLITK, defines);
  const rows = a.T * a.nHeads;
  if (nSplits === 1) {
    ctx.dispatch(k, { q: a.q, kCache: a.kCache, vCache: a.vCache, dst: a.out },
      { ...common, nSplits, splitLen, direct: 1, scale: a.scale }, [rows]);
    return;
  }
  const combine = await ctx.kernel(COMBINE, { HD: a.headDim, WG: SPLITK_WG });
  const bytes = partialsBytes(a.T, a.nHeads, a.headDim);
  if (a.scratch && a.scratch.size < bytes) throw new InputError(`attention: scratch holds ${a.scratch.size} bytes, split-K partials need ${bytes}`);
  const part = a.scratch ?? ctx.alloc.scratch('scratch:attention_splits', bytes, STORAGE_RW);
  try {
    ctx.dispatch(k, { q: a.q, kCache: a.kCache, vCache: a.vCache, dst: part },
      { ...common, nSplits, splitLen, direct: 0, scale: a.scale }, [rows * nSplits]);
    ctx.dispatch(combine, { part, out: a.out }, { rows, nSplits }, [rows]);
  } finally {
    if (!a.scratch) ctx.alloc.release(part);
  }
}
