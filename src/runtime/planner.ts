// Predicts peak device memory for a model before anything is allocated, and picks the largest
// prefill block that fits a budget. The figures are the same sums the runtime allocates:
// weights (per tensor, 4-byte padded), per-layer recurrent state, KV caches rounded up to the
// cache block, and the engine's workspace at the block size (exact names and sizes from the
// model files), plus kernel scratch and the readback staging buffer.
import type { ModelConfig } from '../models/config.ts';
import { plannedWeightBytes } from '../io/loader.ts';
import type { QuantizeMode } from '../quant/formats.ts';
import { convStateBytes, type Backend, type KvDType, type OpScratchQuery, type ScanAlgorithm } from '../backends/backend.ts';
import { CHUNKED_SCAN_MIN_TOKENS, webgpuOpScratch } from '../backends/webgpu/backend.ts';
import { WASM_VIEW_ALIGNMENT, wasmGemmScratchBytes, wasmOpScratch } from '../backends/wasm/backend.ts';
import { GEMV_MAX_M } from '../backends/wasm/kernels.ts';
import { WASM32_MAX_BYTES } from '../backends/wasm/memory.ts';
import { expectedTensors } from '../models/layout.ts';
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
  /**
   * The backend the plan is for: 'webgpu' (default) or 'wasm' by kind, or a live Backend (its view
   * alignment, op scratch and, on Wasm, thread count and memory cap).
   */
  backend?: 'webgpu' | 'wasm' | Backend;
  /** Wasm: threads (each has its own GEMM scratch; default 1, or the Backend's). */
  threads?: number;
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
  /** The most memory the backend can address at all (Wasm: its cap, 4 GiB on wasm32); Infinity when unknown (WebGPU). */
  limitBytes: number;
  /** total <= limitBytes. */
  fits: boolean;
}

const pad4 = (n: number) => Math.max(4, Math.ceil(n / 4) * 4);
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;
/** View alignment the plan assumes (WebGPU's default minStorageBufferOffsetAlignment). */
const VIEW_ALIGN = 256;

/** Backend bytes of a config's weights stored as `dtype` floats or under a quantize recipe (exact, as the loader stores them). */
export function weightBytesFor(config: ModelConfig, dtype: 'f32' | 'f16' | 'bf16', quantize: QuantizeMode = 'none', maxBindingBytes?: number): number {
  return plannedWeightBytes(config, { dtype, srcDtype: dtype === 'f32' ? 'F32' : dtype === 'f16' ? 'F16' : 'BF16', quantize, maxBindingBytes });
}

/** How one backend sizes what the plan counts (no device needed). */
interface Sizer {
  kind: 'webgpu' | 'wasm';
  opScratch(q: OpScratchQuery): Record<string, number>;
  scanFor(T: number): ScanAlgorithm;
  viewAlignment: number;
  /** Wasm: threads with a GEMM scratch region each. */
  threads: number;
  limitBytes: number;
}

/** The WebGPU backend's scratch sizing, as the engine asks it (no device needed). */
const WEBGPU_SIZER: Sizer = {
  kind: 'webgpu',
  opScratch: webgpuOpScratch,
  scanFor: (T: number): ScanAlgorithm => (T >= CHUNKED_SCAN_MIN_TOKENS ? 'chunked' : 'recurrent'),
  viewAlignment: VIEW_ALIGN,
  threads: 1,
  limitBytes: Infinity,
};

function sizerFor(opts: Pick<PlanOptions, 'backend' | 'threads'>): Sizer {
  const b = opts.backend ?? 'webgpu';
  if (b === 'webgpu') return WEBGPU_SIZER;
  if (b === 'wasm') {
    return { kind: 'wasm', opScratch: wasmOpScratch, scanFor: () => 'recurrent', viewAlignment: WASM_VIEW_ALIGNMENT, threads: opts.threads ?? 1, limitBytes: WASM32_MAX_BYTES };
  }
  const be = b as Backend & { threads?: number; maxMemoryBytes?: number };
  return {
    kind: be.kind, opScratch: (q) => be.opScratch(q), scanFor: (T) => be.scanFor(T), viewAlignment: be.limits.viewAlignment,
    threads: opts.threads ?? be.threads ?? 1, limitBytes: be.kind === 'wasm' ? be.maxMemoryBytes ?? WASM32_MAX_BYTES : Infinity,
  };
}

/** The longest row (K) of any matrix of the model: what the Wasm GEMM scratch is sized for. */
function widestMatrixRow(config: ModelConfig): number {
  let K = 0;
  for (const e of expectedTensors(config)) if (e.role !== 'vector' && e.shape.length === 2) K = Math.max(K, e.shape[1]);
  return K;
}

/**
 * The engine's workspace for blocks of T tokens (every buffer, exactly as engineScratch sizes it)
 * plus, on WebGPU, the readback staging area (logits rows for forward() (allLogits) or one row
 * otherwise) and, on Wasm, the GEMM panels of every thread (blocks of more than GEMV_MAX_M rows).
 */
export function scratchFor(config: ModelConfig, T: number, allLogits = false, scan?: ScanAlgorithm, backend: Pick<PlanOptions, 'backend' | 'threads'> = {}): number {
  const sizer = sizerFor(backend);
  const { activations, ops } = engineScratch(config, T, sizer, { scan: scan ?? 'auto', logitsRows: LOGITS_ROWS });
  let total = 0;
  for (const v of [...Object.values(activations), ...Object.values(ops)]) total += pad4(v);
  if (sizer.kind === 'webgpu') total += pad4(4 * (allLogits ? Math.min(LOGITS_ROWS, T) : 1) * config.vocabSize);
  else if (T > GEMV_MAX_M) total += wasmGemmScratchBytes(widestMatrixRow(config), sizer.threads);
  return total;
}

/**
 * Buffers a loaded model derives from its weights and keeps beside them: on WebGPU each mamba
 * layer's packed scan constants (16 bytes per head); on both, Zamba2's RoPE frequency table.
 */
export function derivedWeightBytes(config: ModelConfig, backend: Pick<PlanOptions, 'backend'> = {}): number {
  const hp = sizerFor(backend).kind === 'webgpu' ? config.numLayers * pad4(16 * config.nHeads) : 0;
  return hp + (config.arch === 'zamba2' ? ropeTableBytes(config) : 0);
}

export function planMemory(config: ModelConfig, opts: PlanOptions = {}): MemoryPlan {
  const maxTokens = opts.maxTokens ?? 2048;
  const batch = opts.batch ?? 1;
  const prefillChunk = Math.max(1, Math.min(opts.prefillChunk ?? 256, maxTokens));
  const sizer = sizerFor(opts);
  const weights = (opts.weightBytes ?? weightBytesFor(config, opts.dtype ?? 'bf16', opts.quantize, opts.maxBindingBytes)) + derivedWeightBytes(config, opts);
  // Each sequence's states are a slot of the state pool (src/runtime/state-pool.ts): slots start on
  // the backend's view alignment (256 bytes on WebGPU's default limits, 16 on Wasm).
  const convBytes = convStateBytes(config.convDim, config.convKernel), ssmBytes = 4 * config.nHeads * config.headDim * config.dState;
  const va = sizer.viewAlignment;
  const slot = config.numLayers * (alignUp(convBytes, va) + alignUp(ssmBytes, va));
  // A session's prompt of several blocks keeps a device copy of its states to roll back a failed
  // or aborted run (Engine.run keepOnFailure); forward() runs do not.
  const backup = !opts.allLogits && maxTokens - 1 > prefillChunk ? config.numLayers * (pad4(convBytes) + pad4(ssmBytes)) : 0;
  const state = batch * slot + backup;
  let kvBytesPerToken = 0;
  if (config.arch === 'zamba2') {
    kvBytesPerToken = config.hybridLayerIds.length * 2 * config.numKeyValueHeads * config.attentionHeadDim * kvElemBytes(opts.kvDtype ?? 'f32');
  }
  const kvCache = batch * Math.ceil(maxTokens / KV_BLOCK) * KV_BLOCK * kvBytesPerToken;
  const scratch = scratchFor(config, prefillChunk, opts.allLogits, opts.scan, opts);
  const total = weights + state + kvCache + scratch;
  return { weights, state, kvCache, scratch, total, prefillChunk, kvBytesPerToken, limitBytes: sizer.limitBytes, fits: total <= sizer.limitBytes };
}

/**
 * Throws OutOfMemoryError (needed vs available) when the plan for `opts` does not fit the Wasm
 * memory (4 GiB on wasm32, or the backend's cap less what is already in use), naming the first
 * quantization (q8_0, then q4_k) under which it would, if any. Does nothing on WebGPU.
 */
export function checkWasmFits(config: ModelConfig, opts: PlanOptions & { availableBytes?: number; srcDtype?: 'f32' | 'f16' | 'bf16' }): void {
  const sizer = sizerFor(opts);
  if (sizer.kind !== 'wasm') return;
  const available = Math.min(sizer.limitBytes, opts.availableBytes ?? Infinity);
  // The smallest plan: one-token blocks (loadModel then picks the largest block that fits).
  const plan = planMemory(config, { ...opts, prefillChunk: 1 });
  if (plan.total <= available) return;
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
  const src = opts.srcDtype ?? opts.dtype ?? 'bf16';
  const current = opts.quantize ?? 'none';
  let hint = '';
  for (const q of ['q8_0', 'q4_k'] as const) {
    if (q === current || (current === 'q4_k' && q === 'q8_0')) continue;
    let w: number;
    try { w = weightBytesFor(config, src, q, opts.maxBindingBytes); } catch { continue; }
    if (planMemory(config, { ...opts, weightBytes: w, quantize: q, prefillChunk: plan.prefillChunk }).total <= available) {
      hint = `; it fits with quantize: '${q}'`;
      break;
    }
  }
  if (!hint) hint = current === 'q4_k' ? '' : '; it does not fit even with quantize: \'q4_k\'';
  throw new OutOfMemoryError(`the model needs ${gib(plan.total)} (weights ${gib(plan.weights)}, state, KV cache for ${opts.maxTokens ?? 2048} tokens, scratch) ` +
    `but the Wasm backend can address ${gib(available)} (wasm32 linear memory is at most 4 GiB)${hint}; lower maxTokens or use the WebGPU backend`,
  plan.total, available);
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
