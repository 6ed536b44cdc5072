// Runs token sequences through a ModelRunner in bounded blocks. A prompt of any length is cut
// into blocks of at most `prefillChunk` tokens that carry every state across, so scratch memory
// depends on the block size only; the KV caches are reserved once per call, up front.
import type { Backend, Buf, KvDType, ScanAlgorithm } from '../backends/backend.ts';
import type { ModelRunner } from '../models/runner.ts';
import { HybridCache, kvElemBytes } from './cache.ts';
import { StatePool } from './state-pool.ts';
import { Workspace } from './workspace.ts';
import { AbortError, InputError } from '../errors.ts';
import type { ModelConfig } from '../models/config.ts';
import type { Block, BlockSequence } from '../models/state.ts';
import { zamba2Scratch } from '../models/zamba2.ts';
import { mamba2Scratch } from '../models/mamba2.ts';

/**
 * Every workspace buffer (name → bytes) an engine holds for blocks of T tokens: the model's
 * activations, the ops' shared scratch, the ids, a logits block and the argmax slot. The memory
 * planner sums the same figures.
 */
export function engineScratch(config: ModelConfig, T: number, be: Pick<Backend, 'opScratch' | 'scanFor'>,
  opts: Pick<EngineOptions, 'scan' | 'logitsRows'>): { activations: Record<string, number>; ops: Record<string, number> } {
  const activations = config.arch === 'zamba2' ? zamba2Scratch(config, T) : mamba2Scratch(config, T);
  activations.ids = 4 * T;
  activations.logits = 4 * Math.min(opts.logitsRows, T) * config.vocabSize;
  activations.argmax = 4 * Math.min(opts.logitsRows, T);
  // Batched steps: every row's position (RoPE) and the per-sequence table of fused decode kernels.
  activations.positions = 4 * T;
  activations.seqs = 16 * T;
  const chunked = opts.scan === 'chunked' || (opts.scan === 'auto' && be.scanFor(T) === 'chunked');
  const ops = be.opScratch({
    T, nHeads: config.nHeads, chunked,
    attention: config.arch === 'zamba2' && config.hybridLayerIds.length > 0
      ? { nHeads: config.numAttentionHeads, headDim: config.attentionHeadDim } : undefined,
  });
  return { activations, ops };
}

export type ScanChoice = ScanAlgorithm | 'auto';

export interface EngineOptions {
  /** Most tokens per forward block (bounds scratch memory). */
  prefillChunk: number;
  /** Most logits rows computed and read back at once. */
  logitsRows: number;
  scan: ScanChoice;
  /** Largest absolute position a sequence may reach. */
  maxContext: number;
  /** Storage of the attention KV caches. */
  kvDtype: KvDType;
  /** The loaded checkpoint's fingerprint (session snapshots carry it). */
  modelId: string;
}

export type LogitsSink = (row: number, logits: Float32Array) => void;

/** One sequence's part of a batched step (Engine.runBatch). */
export interface BatchRequest {
  cache: HybridCache;
  /** Tokens to feed this step: a prefill chunk, or the one token chosen last step. */
  ids: readonly number[];
  /** What the step returns for this sequence: its last logits row, their argmax, or nothing. */
  want: 'logits' | 'argmax' | 'none';
}

export interface BatchResult {
  logits?: Float32Array;
  token?: number;
}

/** Host-side cost of the last greedy decode step (bench/speed `speed.decodeHost`). */
export interface StepTiming {
  /** Milliseconds from the step's start until its work was submitted (JS and backend calls). */
  encodeMs: number;
  /** Milliseconds then spent waiting for the result. */
  waitMs: number;
  /** Kernel launches the step recorded. */
  dispatches: number;
}

export class Engine {
  readonly opts: EngineOptions;
  /** Activation buffers, kept across calls (bounded by the block size). */
  readonly ws: Workspace;
  /** Timing of the most recent runArgmax step. */
  lastStep: StepTiming | undefined;
  /** Serialises forwards: they share the workspace and record into one command stream. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly be: Backend, readonly runner: ModelRunner, opts: EngineOptions) {
    if (!Number.isInteger(opts.prefillChunk) || opts.prefillChunk < 1) throw new InputError(`prefillChunk must be a positive integer, got ${opts.prefillChunk}`);
    this.opts = { ...opts };
    this.ws = new Workspace(be);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Frees the workspace (it is re-created on the next call) and the state pool if no sequence is alive. */
  trim(): void {
    this.ws.release();
    this.pool?.dispose();
  }

  /**
   * Sizes the workspace for a full block of prefillChunk tokens, once: every later block (and
   * decode) fits in it, so scratch is one fixed figure whatever the prompt lengths are.
   */
  private sizeWorkspace(): void {
    const { activations, ops } = engineScratch(this.runner.config, this.opts.prefillChunk, this.be, this.opts);
    for (const [name, bytes] of Object.entries(activations)) this.ws.get(name, bytes);
    this.ws.sizeOpScratch(ops);
    // One logits row for sampling; forward() of every row grows this.
    this.be.reserveReadback(4 * this.vocabSize);
  }

  get vocabSize(): number { return this.runner.config.vocabSize; }

  /** The slots every sequence's recurrent states live in (created on first use). */
  private pool: StatePool | undefined;

  /** A fresh sequence, its states a slot of the engine's pool. */
  createCache(): HybridCache {
    this.pool ??= new StatePool(this.be, this.runner.cacheDims());
    return new HybridCache(this.be, this.runner.cacheDims(), this.opts.kvDtype, this.pool);
  }

  /** Sizes the state pool for `n` live sequences at once (so adding them moves no state). */
  reserveSequences(n: number): void {
    this.pool ??= new StatePool(this.be, this.runner.cacheDims());
    this.pool.reserve(n);
  }

  scanFor(T: number): ScanAlgorithm {
    if (this.opts.scan !== 'auto') return this.opts.scan;
    return this.be.scanFor(T);
  }

  /** The scan every block uses when the caller chose one; undefined leaves it to the backend per sequence. */
  private get forcedScan(): ScanAlgorithm | undefined { return this.opts.scan === 'auto' ? undefined : this.opts.scan; }

  /** A block over `seqs` (rows one after another); several sequences get a positions table for RoPE. */
  private blockOf(seqs: BlockSequence[], rows: number): Block {
    const ws = this.ws;
    let positions: Buf | undefined;
    if (seqs.length > 1) {
      const pos = new Uint32Array(rows);
      for (const q of seqs) for (let t = 0; t < q.T; t++) pos[q.rowStart + t] = q.state.position + t;
      positions = ws.get('positions', 4 * rows);
      this.be.write(positions, 0, pos);
    }
    return { rows, seqs, positions, seqTable: ws.get('seqs', 16 * rows) };
  }

  /**
   * Builds every kernel variant this model's calls can need, with nothing executed: blocks of the
   * sizes that select different kernels (1 decode token; 2-4 and 5-8 rows of GEMV; short blocks
   * with the recurrent scan; long ones with the chunked scan and tiled GEMM), every logits path, and
   * a decode step past 64 tokens of context (split-K attention with its combine pass).
   */
  async warmup(): Promise<void> {
    await this.be.compileOnly(async () => {
      const cache = this.createCache();
      try {
        const T = this.opts.prefillChunk;
        for (const t of new Set([1, 2, 5, 9, 16, 64, T].filter((n) => n <= T))) {
          cache.reset();
          await this.run(cache, new Array<number>(t).fill(0), 'all');
          cache.reset();
          await this.run(cache, new Array<number>(t).fill(0), 'last');
        }
        cache.reset();
        if (this.opts.maxContext > 70 && this.kvTokenLimit > 70) {
          cache.position = 70;
          await this.runArgmax(cache, [0]);
        }
        // A batched step of several sequences (positions table, fused multi-sequence decode).
        cache.reset();
        const other = this.createCache();
        try {
          await this.runBatch([{ cache, ids: [0], want: 'argmax' }, { cache: other, ids: [0, 0], want: 'logits' }]);
        } finally {
          other.dispose();
        }
      } finally {
        cache.dispose();
      }
    });
    // The warm-up's readbacks reserved staging for every row; later calls reserve what they use.
    this.be.trimPool();
  }

  /** Throws InputError unless every id is an integer token id of this model. */
  checkIds(ids: readonly number[]): void {
    const V = this.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new InputError(`token id ${id} at index ${i} is outside the vocabulary [0, ${V})`);
    }
  }

  /**
   * Longest sequence whose KV cache buffer (one per site, k or v) still fits one storage binding
   * (capacity rounds up to the cache block); Infinity without attention layers.
   */
  get kvTokenLimit(): number {
    const d = this.runner.cacheDims();
    if (d.numKvSites === 0) return Infinity;
    const perToken = d.kvWidth * kvElemBytes(this.opts.kvDtype);
    return Math.floor(this.be.limits.maxBindingBytes / perToken / d.kvBlock) * d.kvBlock;
  }

  /** Throws InputError if `cache` cannot take `extra` more tokens. */
  checkLength(cache: Pick<HybridCache, 'position'>, extra: number): void {
    const end = cache.position + extra;
    if (end > this.opts.maxContext) {
      throw new InputError(`sequence of ${end} tokens exceeds the context limit of ${this.opts.maxContext} (maxContext option)`);
    }
    if (end > this.kvTokenLimit) {
      throw new InputError(`sequence of ${end} tokens needs a KV cache buffer above this device's storage binding limit ` +
        `(${(this.be.limits.maxBindingBytes / 2 ** 20).toFixed(0)} MiB); at most ${this.kvTokenLimit} tokens fit`);
    }
  }

  /**
   * Feeds `ids` at cache.position and advances it. `want` says which logits rows are produced:
   * every row (passed to `sink` in order), only the last (returned), or none.
   */
  run(cache: HybridCache, ids: readonly number[], want: 'all' | 'last' | 'none', sink?: LogitsSink,
    signal?: AbortSignal, keepOnFailure = false): Promise<Float32Array | undefined> {
    return this.exclusive(async () => {
      // A run of several blocks that fails or is aborted midway would leave the state advanced by
      // the blocks already done: with keepOnFailure the cache is put back as it was.
      const backup = keepOnFailure && ids.length > this.opts.prefillChunk ? cache.backup() : undefined;
      try {
        return await this.runLocked(cache, ids, want, sink, signal);
      } catch (e) {
        if (backup && !cache.isDisposed) cache.restore(backup);
        throw e;
      } finally {
        if (backup) cache.freeBackup(backup);
      }
    });
  }

  private async runLocked(cache: HybridCache, ids: readonly number[], want: 'all' | 'last' | 'none', sink?: LogitsSink,
    signal?: AbortSignal): Promise<Float32Array | undefined> {
    if (ids.length === 0) throw new InputError('cannot run an empty token sequence');
    this.checkIds(ids);
    this.checkLength(cache, ids.length);
    cache.reserve(cache.position + ids.length);
    this.sizeWorkspace();
    const ws = this.ws;
    const V = this.vocabSize;
    let last: Float32Array | undefined;
    {
      for (let start = 0; start < ids.length; start += this.opts.prefillChunk) {
        if (signal?.aborted) throw new AbortError('cancelled');
        const T = Math.min(this.opts.prefillChunk, ids.length - start);
        const idsBuf = ws.get('ids', 4 * T);
        this.be.write(idsBuf, 0, Uint32Array.from(ids.slice(start, start + T)));
        const hn = await this.runner.block(idsBuf, this.blockOf([{ state: cache, rowStart: 0, T }], T), ws, { scan: this.forcedScan });
        cache.position += T;
        const isLastBlock = start + T === ids.length;
        if (want === 'all') {
          this.be.reserveReadback(4 * Math.min(this.opts.logitsRows, T) * V);
          for (let r = 0; r < T; r += this.opts.logitsRows) {
            const rows = Math.min(this.opts.logitsRows, T - r);
            const logits = ws.get('logits', 4 * rows * V);
            await this.runner.head(hn, r, rows, logits);
            const data = await this.be.readF32(logits, 0, rows * V);
            for (let i = 0; i < rows; i++) sink?.(start + r + i, data.subarray(i * V, (i + 1) * V));
            if (isLastBlock && r + rows === T) last = data.slice((rows - 1) * V, rows * V);
          }
        } else if (want === 'last' && isLastBlock) {
          const logits = ws.get('logits', 4 * V);
          await this.runner.head(hn, T - 1, 1, logits);
          last = await this.be.readF32(logits, 0, V);
        } else {
          // Bound the work in flight: without a readback nothing else waits for the GPU.
          this.be.flush();
        }
      }
      return last;
    }
  }

  /**
   * One step over several sequences: each request's ids are fed at its cache's position (states
   * advance) and its result computed. Requests must use distinct caches. Results equal running the
   * requests one by one.
   */
  async runBatch(reqs: readonly BatchRequest[], signal?: AbortSignal): Promise<BatchResult[]> {
    const seen = new Set<HybridCache>();
    for (const r of reqs) {
      if (seen.has(r.cache)) throw new InputError('runBatch: two requests use the same sequence');
      seen.add(r.cache);
      if (r.ids.length === 0) throw new InputError('runBatch: a request has no tokens');
      if (r.want !== 'logits' && r.want !== 'argmax' && r.want !== 'none') throw new InputError(`runBatch: unknown want ${String(r.want)}`);
      this.checkIds(r.ids);
      this.checkLength(r.cache, r.ids.length);
    }
    return this.exclusive(() => this.runBatchLocked(reqs, signal));
  }

  /**
   * Steps of at most prefillChunk rows: each takes the next piece (≤ prefillChunk tokens) of every
   * request that still has tokens, as long as the rows fit; a request's result comes from the step
   * that feeds its last token. Every step is one forward: the weights are read once for its rows.
   */
  private async runBatchLocked(reqs: readonly BatchRequest[], signal?: AbortSignal): Promise<BatchResult[]> {
    const chunk = this.opts.prefillChunk;
    const V = this.vocabSize;
    const out: BatchResult[] = reqs.map(() => ({}));
    const fed = reqs.map(() => 0);
    for (const r of reqs) r.cache.reserve(r.cache.position + r.ids.length);
    this.sizeWorkspace();
    const ws = this.ws;
    while (fed.some((f, i) => f < reqs[i].ids.length)) {
      if (signal?.aborted) throw new AbortError('cancelled');
      const seqs: BlockSequence[] = [];
      const pieces: { i: number; n: number }[] = [];
      let rows = 0;
      for (let i = 0; i < reqs.length && rows < chunk; i++) {
        const left = reqs[i].ids.length - fed[i];
        if (left === 0) continue;
        const n = Math.min(left, chunk - rows);
        seqs.push({ state: reqs[i].cache, rowStart: rows, T: n });
        pieces.push({ i, n });
        rows += n;
      }
      const ids = new Uint32Array(rows);
      for (const [k, p] of pieces.entries()) ids.set(reqs[p.i].ids.slice(fed[p.i], fed[p.i] + p.n), seqs[k].rowStart);
      const idsBuf = ws.get('ids', 4 * rows);
      this.be.write(idsBuf, 0, ids);
      const hn = await this.runner.block(idsBuf, this.blockOf(seqs, rows), ws, { scan: this.forcedScan });
      // Rows whose logits this step owes: the last row of every request it finishes.
      const finishing: { i: number; row: number }[] = [];
      for (const [k, p] of pieces.entries()) {
        reqs[p.i].cache.position += p.n;
        fed[p.i] += p.n;
        if (fed[p.i] === reqs[p.i].ids.length && reqs[p.i].want !== 'none') finishing.push({ i: p.i, row: seqs[k].rowStart + p.n - 1 });
      }
      if (finishing.length === 0) { this.be.flush(); continue; }
      const readsLogits = (start: number, n: number) => finishing.slice(start, start + n).some((f) => reqs[f.i].want === 'logits');
      await this.headRows(hn, finishing.map((f) => f.row), readsLogits, async (start, n, logits) => {
        const group = finishing.slice(start, start + n);
        if (group.some((f) => reqs[f.i].want === 'argmax')) {
          const am = ws.get('argmax', 4 * n);
          await this.be.argmax({ logits, M: n, V, out: am });
          const tok = await this.be.readU32(am, 0, n);
          group.forEach((f, j) => { if (reqs[f.i].want === 'argmax') out[f.i].token = tok[j]; });
        }
        if (group.some((f) => reqs[f.i].want === 'logits')) {
          const data = await this.be.readF32(logits, 0, n * V);
          group.forEach((f, j) => { if (reqs[f.i].want === 'logits') out[f.i].logits = data.slice(j * V, (j + 1) * V); });
        }
      });
    }
    return out;
  }

  /**
   * The logits of hn's rows `rows`, in groups of at most logitsRows: contiguous rows are read in
   * place, others are first gathered into the workspace, so the head reads its weights once per group.
   * `readsLogits(start, n)` says whether the group's logits come back to the host (else only argmax).
   */
  private async headRows(
    hn: Buf, rows: readonly number[], readsLogits: (start: number, n: number) => boolean,
    use: (start: number, n: number, logits: Buf) => Promise<void>,
  ): Promise<void> {
    const H = this.runner.config.hiddenSize;
    const V = this.vocabSize;
    for (let start = 0; start < rows.length; start += this.opts.logitsRows) {
      const n = Math.min(this.opts.logitsRows, rows.length - start);
      const group = rows.slice(start, start + n);
      let src = hn, first = group[0];
      if (!group.every((r, j) => r === first + j)) {
        // The residual stream x is dead once hn = RMSNorm_final(x) exists.
        src = this.ws.get('x', 4 * n * H);
        group.forEach((r, j) => this.be.copy(hn, 4 * r * H, src, 4 * j * H, 4 * H));
        first = 0;
      }
      const logits = this.ws.get('logits', 4 * n * V);
      // Staging for what comes back: the group's logits, or only its argmax ids (a batch of greedy
      // decodes keeps the one-row staging reserved at load instead of growing with the batch).
      this.be.reserveReadback(readsLogits(start, n) ? 4 * n * V : 4 * n);
      await this.runner.head(src, first, n, logits);
      await use(start, n, logits);
    }
  }

  /** Feeds `ids` and returns argmax of the last logits row, computed on the GPU (greedy path). */
  async runArgmax(cache: HybridCache, ids: readonly number[], signal?: AbortSignal, keepOnFailure = false): Promise<number> {
    this.checkIds(ids);
    this.checkLength(cache, ids.length);
    if (ids.length > 1) await this.run(cache, ids.slice(0, -1), 'none', undefined, signal, keepOnFailure);
    return this.exclusive(() => this.argmaxLocked(cache, ids[ids.length - 1]));
  }

  private async argmaxLocked(cache: HybridCache, id: number): Promise<number> {
    const t0 = performance.now();
    const d0 = this.be.counters().dispatches;
    cache.reserve(cache.position + 1);
    this.sizeWorkspace();
    const ws = this.ws;
    const idsBuf = ws.get('ids', 4);
    this.be.write(idsBuf, 0, Uint32Array.of(id));
    const hn = await this.runner.block(idsBuf, this.blockOf([{ state: cache, rowStart: 0, T: 1 }], 1), ws, { scan: this.forcedScan });
    cache.position += 1;
    const logits = ws.get('logits', 4 * this.vocabSize);
    await this.runner.head(hn, 0, 1, logits);
    const out = ws.get('argmax', 4);
    await this.be.argmax({ logits, M: 1, V: this.vocabSize, out });
    this.be.flush();
    const t1 = performance.now();
    const next = (await this.be.readU32(out, 0, 1))[0];
    this.lastStep = { encodeMs: t1 - t0, waitMs: performance.now() - t1, dispatches: this.be.counters().dispatches - d0 };
    return next;
  }
}
