// Predicts peak device memory for a model before anything is allocated, and picks the largest
// prefill block that fits a budget. The figures are the same sums the runtime allocates:
// weights (per tensor, 4-byte padded), per-layer recurrent state, KV caches rounded up to the
// cache block, and the engine's workspace at the block size (exact names and sizes from the
// model files), plus kernel scratch and the readback staging buffer.
import type { ModelConfig } from '../models/config.ts';
import { plannedWeightBytes } from '../io/loader.ts';
import type { QuantizeMode } from '../quant/formats.ts';
import { convStateBytes, type KvDType, type ScanAlgorithm } from '../backends/backend.ts';
import { CHUNKED_SCAN_MIN_TOKENS, webgpuOpScratch } from '../backends/webgpu/backend.ts';
import { engineScratch } from './engine.ts';
import { ropeTableBytes } from '../models/zamba2.ts';
import { KV_BLOCK } from '../models/state.ts';
import { kvElemBytes } from './cache.ts';
import { OutOfMemoryError } from '../errors.ts';

export { KV_BLOCK } from '../models/state.ts';
/** Most logits rows one readback carries (forward() of a long prompt reads back in such blocks). */
export const LOGITS_ROWS = 64;

export interface PlanOptions {
  /** Tokens one sequence may reach (prompt + generated). */
  maxTokens?: number;
  /** Sequences alive at once (each has its own state and KV cache). */
  batch?: number;
  /** Storage of float matrices and embeddings: 'f32' or 16-bit (vectors are always f32). */
  dtype?: 'f32' | 'f16' | 'bf16';
  /** Quantization recipe applied at load (docs/weight-formats.md). */
  quantize?: QuantizeMode;
  /** Largest buffer one weight part may take (splits are planned as the loader splits; default: no split). */
  maxBindingBytes?: number;
  prefillChunk?: number;
  /** Known weight bytes (e.g. from the checkpoint headers); computed from the config otherwise. */
  weightBytes?: number;
  /** Plan for forward() returning every logits row (64-row readback blocks) rather than generation. */
  allLogits?: boolean;
  /** The scan prefill blocks use (default: the runtime's choice for the block size). */
  scan?: ScanAlgorithm;
  /** Storage of the attention KV cache (default f32). */
  kvDtype?: KvDType;
}

export interface MemoryPlan {
  /** Checkpoint tensors plus what the model derives from them (derivedWeightBytes). */
  weights: number;
  state: number;
  kvCache: number;
  /** Workspace + kernel scratch + staging for one block of prefillChunk tokens. */
  scratch: number;
  total: number;
  prefillChunk: number;
  /** KV bytes per token for all sites (0 for Mamba2). */
  kvBytesPerToken: number;
}

const pad4 = (n: number) => Math.max(4, Math.ceil(n / 4) * 4);
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;
/** View alignment the plan assumes (WebGPU's default minStorageBufferOffsetAlignment). */
const VIEW_ALIGN = 256;

/** Backend bytes of a config's weights stored as `dtype` floats or under a quantize recipe (exact, as the loader stores them). */
export function weightBytesFor(config: ModelConfig, dtype: 'f32' | 'f16' | 'bf16', quantize: QuantizeMode = 'none', maxBindingBytes?: number): number {
  return plannedWeightBytes(config, { dtype, srcDtype: dtype === 'f32' ? 'F32' : dtype === 'f16' ? 'F16' : 'BF16', quantize, maxBindingBytes });
}

/** The WebGPU backend's scratch sizing, as the engine asks it (no device needed). */
const WEBGPU_SIZER = {
  opScratch: webgpuOpScratch,
  scanFor: (T: number): ScanAlgorithm => (T >= CHUNKED_SCAN_MIN_TOKENS ? 'chunked' : 'recurrent'),
};

/**
 * The engine's workspace for blocks of T tokens (every buffer, exactly as engineScratch sizes it)
 * plus the readback staging area: logits rows for forward() (allLogits) or one row otherwise.
 */
export function scratchFor(config: ModelConfig, T: number, allLogits = false, scan?: ScanAlgorithm): number {
  const { activations, ops } = engineScratch(config, T, WEBGPU_SIZER, { scan: scan ?? 'auto', logitsRows: LOGITS_ROWS });
  let total = 0;
  for (const v of [...Object.values(activations), ...Object.values(ops)]) total += pad4(v);
  total += pad4(4 * (allLogits ? Math.min(LOGITS_ROWS, T) : 1) * config.vocabSize);
  return total;
}

/**
 * Buffers a loaded model derives from its weights and keeps beside them: each mamba layer's
 * packed scan constants (16 bytes per head) and Zamba2's RoPE frequency table.
 */
export function derivedWeightBytes(config: ModelConfig): number {
  return config.numLayers * pad4(16 * config.nHeads) + (config.arch === 'zamba2' ? ropeTableBytes(config) : 0);
}

export function planMemory(config: ModelConfig, opts: PlanOptions = {}): MemoryPlan {
  const maxTokens = opts.maxTokens ?? 2048;
  const batch = opts.batch ?? 1;
  const prefillChunk = Math.max(1, Math.min(opts.prefillChunk ?? 256, maxTokens));
  const weights = (opts.weightBytes ?? weightBytesFor(config, opts.dtype ?? 'bf16', opts.quantize, opts.maxBindingBytes)) + derivedWeightBytes(config);
  // Each sequence's states are a slot of the state pool (src/runtime/state-pool.ts): slots start on
  // the backends' view alignment (256 bytes on WebGPU's default limits).
  const convBytes = convStateBytes(config.convDim, config.convKernel), ssmBytes = 4 * config.nHeads * config.headDim * config.dState;
  const slot = config.numLayers * (alignUp(convBytes, VIEW_ALIGN) + alignUp(ssmBytes, VIEW_ALIGN));
  // A session's prompt of several blocks keeps a device copy of its states to roll back a failed
  // or aborted run (Engine.run keepOnFailure); forward() runs do not.
  const backup = !opts.allLogits && maxTokens - 1 > prefillChunk ? config.numLayers * (pad4(convBytes) + pad4(ssmBytes)) : 0;
  const state = batch * slot + backup;
  let kvBytesPerToken = 0;
  if (config.arch === 'zamba2') {
    kvBytesPerToken = config.hybridLayerIds.length * 2 * config.numKeyValueHeads * config.attentionHeadDim * kvElemBytes(opts.kvDtype ?? 'f32');
  }
  const kvCache = batch * Math.ceil(maxTokens / KV_BLOCK) * KV_BLOCK * kvBytesPerToken;
  const scratch = scratchFor(config, prefillChunk, opts.allLogits, opts.scan);
  return { weights, state, kvCache, scratch, total: weights + state + kvCache + scratch, prefillChunk, kvBytesPerToken };
}

/**
 * The prefill block size to use under `maxMemoryBytes`: the requested one (or 256) if it fits,
 * else the largest power of two that does. Throws OutOfMemoryError (needed vs available) when
 * even one-token blocks do not fit.
 */
export function choosePrefillChunk(config: ModelConfig, opts: PlanOptions & { maxMemoryBytes: number }): number {
  const want = opts.prefillChunk ?? 256;
  const fits = (chunk: number) => planMemory(config, { ...opts, prefillChunk: chunk }).total <= opts.maxMemoryBytes;
  if (fits(want)) return want;
  for (let chunk = 2 ** Math.floor(Math.log2(want)); chunk >= 1; chunk /= 2) if (fits(chunk)) return chunk;
  const needed = planMemory(config, { ...opts, prefillChunk: 1 }).total;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  throw new OutOfMemoryError(`the model needs at least ${mib(needed)} (weights, state, KV cache for ${opts.maxTokens ?? 2048} tokens, scratch) but maxMemoryBytes allows ${mib(opts.maxMemoryBytes)}; lower maxTokens or use a smaller model`, needed, opts.maxMemoryBytes);
}
