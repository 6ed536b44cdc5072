// The public API: loadModel → MambaModel with forward, generate, sessions, memoryStats, dispose.
import { GpuContext, type DeviceOptions } from './backends/webgpu/context.ts';
import { WebGpuBackend } from './backends/webgpu/backend.ts';
import { WasmBackend, type WasmBackendOptions } from './backends/wasm/backend.ts';
import type { Backend, BackendKind, KvDType, MemoryStats } from './backends/backend.ts';
import type { ModelConfig } from './models/config.ts';
import type { QuantizeMode } from './quant/formats.ts';
import type { ModelRunner } from './models/runner.ts';
import { WeightSet } from './models/weights.ts';
import { Zamba2Runner } from './models/zamba2.ts';
import { Mamba2Runner } from './models/mamba2.ts';
import { Engine, type ScanChoice } from './runtime/engine.ts';
import { Session, type GenerateOptions, type GenerateStats } from './runtime/session.ts';
import { AbortError, DeviceError, InputError, MambaScanError, UnsupportedError } from './errors.ts';
import { loadCheckpoint, type LoadedCheckpoint, type LoadProgress } from './io/loader.ts';
import { openModelSource, type ModelSource, type DownloadProgress } from './io/open-source.ts';
import { Tokenizer } from './tokenizer/index.ts';
import { checkWasmFits, choosePrefillChunk, LOGITS_ROWS, scratchFor } from './runtime/planner.ts';
import { parseSnapshot, restoreSnapshot } from './runtime/snapshot.ts';
import { Batcher, type BatcherOptions } from './runtime/batcher.ts';
import { PrefixCache } from './runtime/prefix-cache.ts';
import { Scheduler } from './runtime/scheduler.ts';

export type { ModelSource } from './io/open-source.ts';
export type { GenerateOptions, GenerateStats } from './runtime/session.ts';
export type { Batcher, BatcherOptions, BatcherStats, SequenceHandle, SequenceRequest, SequenceStats } from './runtime/batcher.ts';
export type { PrefixCache, PrefixCacheStats } from './runtime/prefix-cache.ts';

export interface LoadModelOptions {
  /** Most tokens per forward block; bounds scratch memory (default 256, or what maxMemoryBytes allows). */
  prefillChunk?: number;
  /** GPU storage for 16-bit-capable weights: 'auto' keeps the checkpoint's dtype. */
  dtype?: 'auto' | 'f32' | 'f16' | 'bf16';
  /**
   * Quantize float matrices at load: 'q8_0', 'q4_k' (llama.cpp's Q4_K_M rule: q6_k head, q4_k
   * elsewhere) or 'none' (default). See docs/weight-formats.md for what stays high precision.
   */
  quantize?: QuantizeMode;
  /**
   * Where the model runs: 'webgpu', 'wasm' (CPU), 'auto' (the default: WebGPU when an adapter
   * exists), or an existing Backend (shared, not destroyed by dispose).
   */
  backend?: 'webgpu' | 'wasm' | 'auto' | Backend;
  /** WebGPU only: an existing context (shared, not destroyed by dispose) or options for a new one. */
  device?: GpuContext | DeviceOptions;
  /** Wasm only (backend 'wasm', or 'auto' without an adapter): threads, relaxed SIMD, memory cap. */
  wasm?: WasmBackendOptions;
  /** Storage of the attention KV cache (default: f16 where the backend supports it natively, else f32). */
  kvDtype?: KvDType;
  /** Refuse to load (OutOfMemoryError) unless weights + state + KV + scratch fit in this many bytes. */
  maxMemoryBytes?: number;
  /** Tokens the memory plan reserves for one sequence (default 2048); used with maxMemoryBytes. */
  maxTokens?: number;
  /** Largest sequence length accepted (default: the config's max_position_embeddings for Zamba2, unbounded for Mamba2). */
  maxContext?: number;
  scan?: ScanChoice;
  onProgress?: (p: LoadProgress | DownloadProgress) => void;
  signal?: AbortSignal;
  /** Skip loading tokenizer.json even if the checkpoint has one. */
  noTokenizer?: boolean;
  /**
   * Build every kernel variant the model can need during load (default true), so no shader is
   * compiled while generating. false defers each to its first use (faster loads in tests).
   */
  warmup?: boolean;
}

export interface ForwardOutput {
  dims: [number, number, number];
  /** logits [B, T, V] row-major. */
  data: Float32Array;
}

function makeRunner(be: Backend, config: ModelConfig, ckpt: LoadedCheckpoint): ModelRunner {
  const w = new WeightSet(ckpt.tensors);
  return config.arch === 'zamba2' ? new Zamba2Runner(be, config, w) : new Mamba2Runner(be, config, w);
}

export class MambaModel {
  private disposed = false;
  private readonly sessions = new Set<Session>();
  private readonly batchers = new Set<Batcher>();

  /** @internal use loadModel */
  constructor(
    /** The backend the model runs on (its buffers, ops and memory accounting). */
    readonly be: Backend,
    private readonly ownsBackend: boolean,
    private readonly checkpoint: LoadedCheckpoint,
    readonly engine: Engine,
    readonly tokenizer: Tokenizer | undefined,
    /** Bytes in use on the device before this model was loaded. */
    readonly baselineBytes: number,
  ) {}

  get config(): ModelConfig { return this.engine.runner.config; }
  /** Which backend runs the model. */
  get backend(): BackendKind { return this.be.kind; }
  /** The adapter or CPU the backend runs on, for reports (`llvmpipe`, `wasm-simd 2 threads`). */
  get deviceName(): string { return this.be.name; }
  /** The WebGPU context (WebGPU backend only). */
  get ctx(): GpuContext {
    if (this.be instanceof WebGpuBackend) return this.be.ctx;
    throw new UnsupportedError(`model.ctx: this model runs on the ${this.be.kind} backend, which has no WebGPU context`);
  }
  get weightBytes(): number { return this.checkpoint.weightBytes; }
  /** The distinct storage formats of the model's matrices and embedding, sorted. */
  matrixDtypes(): string[] {
    const kinds = new Set<string>();
    for (const [name, t] of this.checkpoint.tensors) if (this.checkpoint.roles.get(name) !== 'vector') kinds.add(t.dtype);
    return [...kinds].sort();
  }

  /** Storage dtype of the output head matrix ('f32', 'f16', 'bf16' or a quantized format). */
  get dtype(): string { return this.engine.runner.headWeight.dtype; }

  /** logits for every position of each row (rows run one after another with their own state). */
  async forward(inputIds: readonly (readonly number[])[] | readonly number[], opts: { signal?: AbortSignal } = {}): Promise<ForwardOutput> {
    this.check();
    const rows = normaliseBatch(inputIds, true);
    const T = rows[0].length;
    const V = this.config.vocabSize;
    for (const r of rows) this.engine.checkIds(r);
    const data = new Float32Array(rows.length * T * V);
    for (let b = 0; b < rows.length; b++) {
      const cache = this.engine.createCache();
      try {
        await this.engine.run(cache, rows[b], 'all', (t, logits) => data.set(logits, (b * T + t) * V), opts.signal);
      } finally {
        cache.dispose();
      }
    }
    return { dims: [rows.length, T, V], data };
  }

  /**
   * Prompt ids followed by the new ids, as transformers' generate returns. A batch (number[][])
   * returns one sequence per row; rows may differ in length and run together (continuous
   * batching, Engine.runBatch), each with its own state and its own generator seeded with
   * `seed`, so every row equals its own single run. `onToken(id, row)` sees every row's tokens.
   */
  async generate(promptIds: readonly number[], opts?: GenerateOptions): Promise<number[]>;
  async generate(promptIds: readonly (readonly number[])[], opts?: GenerateOptions): Promise<number[][]>;
  async generate(promptIds: readonly number[] | readonly (readonly number[])[], opts: GenerateOptions = {}): Promise<number[] | number[][]> {
    this.check();
    const batched = Array.isArray(promptIds[0]);
    const rows = normaliseBatch(promptIds, false);
    const o = { ...opts };
    if (o.stopStrings?.length && !o.decode && this.tokenizer) o.decode = (ids) => this.tokenizer!.decode(ids as number[], { skipSpecialTokens: true });
    if (!batched || rows.length === 1) {
      const session = this.createSession();
      try {
        const fresh = await session.generate(rows[0], o);
        const out = [...rows[0], ...fresh];
        return batched ? [out] : out;
      } finally {
        session.dispose();
      }
    }
    for (const r of rows) this.engine.checkIds(r);
    const batcher = await this.createBatcher({ maxBatch: Math.min(rows.length, 64) });
    try {
      const handles = rows.map((row, i) => batcher.submit({ ...o, prompt: row, onToken: o.onToken ? (id) => o.onToken!(id, i) : undefined }));
      const settled = await Promise.allSettled(handles.map((h) => h.result));
      const failed = settled.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      if (failed) throw failed.reason instanceof AbortError ? new AbortError('generation cancelled') : failed.reason;
      return rows.map((row, i) => [...row, ...handles[i].tokens]);
    } finally {
      await batcher.close({ abort: true });
      this.batchers.delete(batcher);
    }
  }

  /**
   * A continuous-batching loop over this model (what the server runs): submit() sequences at any
   * time; they join and leave between steps. Close it (or dispose the model) when done.
   */
  async createBatcher(opts: BatcherOptions = {}): Promise<Batcher> {
    this.check();
    const b = await Batcher.create(this.engine, opts);
    this.batchers.add(b);
    return b;
  }

  /** A prefix cache of session snapshots within `budgetBytes` of host memory, for createBatcher's prefixCache. */
  async createPrefixCache(budgetBytes: number): Promise<PrefixCache> {
    return new PrefixCache(await Scheduler.create(), budgetBytes);
  }

  /** Streams new tokens for one prompt; the generator's return value carries timing stats. */
  async *generateStream(promptIds: readonly number[], opts: GenerateOptions = {}): AsyncGenerator<number, GenerateStats> {
    this.check();
    const session = this.createSession();
    try {
      const o = { ...opts };
      if (o.stopStrings?.length && !o.decode && this.tokenizer) o.decode = (ids) => this.tokenizer!.decode(ids as number[], { skipSpecialTokens: true });
      return yield* session.stream(promptIds, o);
    } finally {
      this.sessions.delete(session);
      session.dispose();
    }
  }

  /** A sequence whose state persists across calls (chat). Dispose it when done. */
  createSession(): Session {
    this.check();
    const session = new Session(this.engine, this.engine.createCache());
    this.sessions.add(session);
    const dispose = session.dispose.bind(session);
    session.dispose = () => { this.sessions.delete(session); dispose(); };
    return session;
  }

  /**
   * A session continuing from saveState() bytes. Bytes from another model (or another KV dtype),
   * truncated or damaged ones are a SnapshotError, and nothing is allocated for them.
   */
  async restoreSession(bytes: Uint8Array): Promise<Session> {
    this.check();
    const { header, dataOffset } = parseSnapshot(bytes, this.engine.opts.modelId, this.engine.runner.cacheDims(), this.engine.opts.kvDtype);
    this.engine.checkLength({ position: 0 }, header.position + header.pending.length);
    const session = this.createSession();
    try {
      restoreSnapshot(this.be, session.cache, bytes, header, dataOffset);
      session.setPending(header.pending);
      this.engine.checkIds(header.pending);
    } catch (e) {
      session.dispose();
      throw e;
    }
    return session;
  }

  /** The identity of the loaded checkpoint (session snapshots carry it). */
  get fingerprint(): string { return this.engine.opts.modelId; }

  memoryStats(): MemoryStats & { weightBytes: number; baselineBytes: number } {
    return { ...this.be.memoryStats(), weightBytes: this.checkpoint.weightBytes, baselineBytes: this.baselineBytes };
  }

  resetPeak(): void { this.be.resetPeak(); }

  /** Frees every GPU buffer this model holds (liveBytes returns to the pre-load value). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of [...this.batchers]) await b.close({ abort: true }).catch(() => undefined);
    this.batchers.clear();
    for (const s of [...this.sessions]) s.dispose();
    this.engine.trim();
    this.engine.runner.dispose();
    this.checkpoint.dispose();
    this.tokenizer?.dispose();
    await this.be.sync().catch(() => undefined);
    this.be.trimPool();
    if (this.ownsBackend) await this.be.destroy();
  }

  private check(): void {
    if (this.disposed) throw new MambaScanError('this model was disposed');
    this.be.check();
  }
}

function normaliseBatch(ids: readonly number[] | readonly (readonly number[])[], equalLengths: boolean): number[][] {
  if (!Array.isArray(ids) || ids.length === 0) throw new InputError('input ids must be a non-empty array');
  const rows = (Array.isArray(ids[0]) ? ids : [ids]) as number[][];
  const T = rows[0].length;
  for (const r of rows) {
    if (!Array.isArray(r)) throw new InputError('input ids must be number[] or number[][]');
    if (r.length === 0) throw new InputError('input rows must not be empty');
    if (equalLengths && r.length !== T) throw new InputError(`forward: batch rows must have equal length (${T} vs ${r.length}); pad them or run them separately`);
  }
  return rows;
}

/** Loads a checkpoint (directory, URL, Hub id, File list or in-memory files) onto the GPU. */
export async function loadModel(source: ModelSource, opts: LoadModelOptions = {}): Promise<MambaModel> {
  // The source first: a wrong path or model id fails before any GPU work starts.
  const src = await openModelSource(source, { onDownloadProgress: opts.onProgress, signal: opts.signal });
  const closeSource = async () => {
    // Sources given by the caller stay open; the ones opened here (file handles) are closed.
    if (src !== source) await src.close?.().catch(() => undefined);
  };
  let be: Backend;
  let ownsBackend: boolean;
  try {
    ({ be, ownsBackend } = await openBackend(opts));
  } catch (e) {
    await closeSource();
    throw e;
  }
  const baselineBytes = be.memoryStats().liveBytes;
  const kvDtype = opts.kvDtype ?? be.defaultKvDtype;
  /** Bytes the Wasm memory has left for this model (its cap less what is live before the weights). */
  const wasmRoom = () => (be instanceof WasmBackend ? be.maxMemoryBytes - baselineBytes : Infinity);
  let ckpt: LoadedCheckpoint | undefined;
  let runner: ModelRunner | undefined;
  let engine: Engine | undefined;
  let tokenizer: Tokenizer | undefined;
  try {
    ckpt = await loadCheckpoint(be, src, { dtype: opts.dtype, quantize: opts.quantize, onProgress: opts.onProgress, signal: opts.signal,
      // Refuse before the first weight is uploaded: OutOfMemoryError says needed vs available.
      beforeAllocate: (config, weightBytes) => {
        // Wasm: the whole plan must fit its linear memory (4 GiB on wasm32), else a typed refusal
        // that names a quantization under which it would.
        if (be.kind === 'wasm') {
          checkWasmFits(config, { backend: be, maxTokens: opts.maxTokens ?? 2048, weightBytes, kvDtype, quantize: opts.quantize,
            srcDtype: opts.dtype === 'f32' || opts.dtype === 'f16' || opts.dtype === 'bf16' ? opts.dtype : undefined, availableBytes: wasmRoom() });
        }
        if (opts.maxMemoryBytes === undefined) return;
        choosePrefillChunk(config, { maxTokens: opts.maxTokens ?? 2048, weightBytes, kvDtype, maxMemoryBytes: opts.maxMemoryBytes, prefillChunk: opts.prefillChunk, backend: be });
      } });
    const config = ckpt.config;
    let prefillChunk = opts.prefillChunk ?? 256;
    if (be.kind === 'wasm' && opts.prefillChunk !== undefined) {
      // A block size the caller chose must fit what the Wasm memory has left (as WebGPU's must fit a binding).
      const need = (T: number) => ckpt!.weightBytes + scratchFor(config, T, false, undefined, { backend: be });
      let fits = opts.prefillChunk;
      while (fits > 1 && need(fits) > wasmRoom()) fits = Math.floor(fits / 2);
      if (fits < opts.prefillChunk) throw new InputError(`prefillChunk ${opts.prefillChunk} needs more memory than the Wasm backend has left (${(wasmRoom() / 2 ** 20).toFixed(0)} MiB with weights, state and KV cache); use prefillChunk ${fits} or less`);
    }
    const budget = be.kind === 'wasm' ? Math.min(opts.maxMemoryBytes ?? Infinity, wasmRoom()) : opts.maxMemoryBytes;
    if (budget !== undefined) {
      prefillChunk = choosePrefillChunk(config, { maxTokens: opts.maxTokens ?? 2048, weightBytes: ckpt.weightBytes, kvDtype, maxMemoryBytes: budget, prefillChunk: opts.prefillChunk, backend: be });
    }
    runner = makeRunner(be, config, ckpt);
    checkBlockFits(be, runner, prefillChunk, opts.prefillChunk !== undefined);
    const maxContext = opts.maxContext ?? (config.arch === 'zamba2' && config.useMemRope ? config.maxPositionEmbeddings : Number.MAX_SAFE_INTEGER);
    if (kvDtype !== 'f32' && kvDtype !== 'f16') throw new InputError(`kvDtype must be 'f32' or 'f16', got ${JSON.stringify(kvDtype)}`);
    if (kvDtype === 'f16' && !be.supportsF16Kv) throw new UnsupportedError(`kvDtype 'f16' is not supported on the ${be.kind} backend`);
    engine = new Engine(be, runner, { prefillChunk, logitsRows: LOGITS_ROWS, scan: opts.scan ?? 'auto', maxContext, kvDtype, modelId: ckpt.fingerprint });
    if (opts.warmup ?? true) await engine.warmup();
    if (!opts.noTokenizer) {
      // tokenizer.json beside the weights wins; a GGUF file may carry its own in its metadata.
      const tokJson = await src.readTextIfExists('tokenizer.json');
      if (tokJson !== undefined) {
        const tokConfig = await src.readTextIfExists('tokenizer_config.json');
        tokenizer = await Tokenizer.fromJSON(tokJson, tokConfig);
      } else if (ckpt.tokenizer) {
        tokenizer = await Tokenizer.fromJSON(ckpt.tokenizer.json, ckpt.tokenizer.config);
      }
    }
    return new MambaModel(be, ownsBackend, ckpt, engine, tokenizer, baselineBytes);
  } catch (e) {
    engine?.trim();
    runner?.dispose();
    ckpt?.dispose();
    tokenizer?.dispose();
    if (ownsBackend) await be.destroy();
    throw e;
  } finally {
    await closeSource();
  }
}

/** The backend `opts` asks for; `ownsBackend` is false when the caller passed one in. */
async function openBackend(opts: LoadModelOptions): Promise<{ be: Backend; ownsBackend: boolean }> {
  const choice = opts.backend ?? 'auto';
  if (typeof choice === 'object') return { be: choice, ownsBackend: false };
  if (choice !== 'webgpu' && choice !== 'wasm' && choice !== 'auto') {
    throw new InputError(`backend must be 'webgpu', 'wasm', 'auto' or a Backend, got ${JSON.stringify(choice)}`);
  }
  if (choice === 'wasm') return { be: await WasmBackend.create(opts.wasm), ownsBackend: true };
  if (opts.device instanceof GpuContext) return { be: new WebGpuBackend(opts.device, false), ownsBackend: true };
  if (choice === 'webgpu') return { be: await WebGpuBackend.create(opts.device), ownsBackend: true };
  // auto: WebGPU when an adapter and a device can be had; otherwise (no navigator.gpu, no Dawn
  // module, no Vulkan driver, a refused device) the CPU.
  try {
    return { be: await WebGpuBackend.create(opts.device), ownsBackend: true };
  } catch (e) {
    // A typed error of ours other than DeviceError is the caller's (bad device options); anything
    // else came from the platform's WebGPU (a native module failing to load or to start).
    if (e instanceof MambaScanError && !(e instanceof DeviceError)) throw e;
    return { be: await WasmBackend.create(opts.wasm), ownsBackend: true };
  }
}

/**
 * Every activation buffer of a block must fit one binding. A prefillChunk the caller chose that
 * does not fit is an InputError naming the largest that does.
 */
function checkBlockFits(be: Backend, runner: ModelRunner, prefillChunk: number, explicit: boolean): void {
  const limit = be.limits.maxBindingBytes;
  const largest = (T: number) => Math.max(...Object.values(runner.scratch(T)), 4 * Math.min(LOGITS_ROWS, T) * runner.config.vocabSize);
  if (largest(prefillChunk) <= limit) return;
  let ok = prefillChunk;
  while (ok > 1 && largest(ok) > limit) ok = Math.floor(ok / 2);
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  throw new InputError(`prefillChunk ${prefillChunk}${explicit ? '' : ' (default)'} needs a ${mib(largest(prefillChunk))} activation buffer, above this device's ${mib(limit)} binding limit; use prefillChunk ${ok} or less`);
}
