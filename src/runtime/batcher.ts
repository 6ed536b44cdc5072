// Continuous batching: many sequences advance together, one Engine.runBatch step at a time.
// Between steps requests join (admission, first come first served within the batch size and the
// memory budget) and leave (finished, cancelled); within a step every decoding sequence feeds its
// last token and prefilling ones feed whole blocks of their prompts, within a token budget, so a
// long prompt is interleaved with the others' decode instead of stalling them. The decisions are
// the scheduler core's (./scheduler.ts); this loop carries them out.
//
// A prompt is fed in blocks of the engine's prefillChunk counted from where its prefill starts,
// and greedy sequences take the GPU argmax path, exactly as Session.generate does, so a sequence
// gets the same tokens here as alone (Engine.runBatch returns what separate runs would).
//
// With a PrefixCache, a new sequence starts from the snapshot of its longest cached prompt prefix
// and its prefill stops at save points (the request's, and the prompt minus its last token) to
// snapshot the state for later requests.
import type { Engine, BatchRequest, BatchResult } from './engine.ts';
import { HybridCache } from './cache.ts';
import { Scheduler, checkLimits, type StepCandidate, type StepLimits } from './scheduler.ts';
import type { PrefixCache } from './prefix-cache.ts';
import { parseSnapshot, restoreSnapshot, saveSnapshot } from './snapshot.ts';
import { SeededRandom, isGreedy, resolveSampling, validateSampling } from './sampling.ts';
import { hostWasm, type HostWasm } from '../wasm/host.ts';
import type { GenerateOptions, GenerateStats } from './session.ts';
import { AbortError, DeviceLostError, InputError, MambaScanError, QueueFullError } from '../errors.ts';

export interface BatcherOptions {
  /** Sequences running at once, and per step, at most (default 16). */
  maxBatch?: number;
  /** Requests waiting for a free batch slot at most; submit() beyond it throws QueueFullError (default unbounded). */
  maxQueue?: number;
  /** Tokens per step at most (default prefillChunk + maxBatch − 1, the least allowed). */
  tokenBudget?: number;
  /** Device bytes for the sequences' states and KV caches together (default unbounded). */
  memoryBudget?: number;
  /** Snapshots by prompt prefix: restored at admission, saved at save points. */
  prefixCache?: PrefixCache;
}

export interface SequenceRequest extends GenerateOptions {
  /** Every token to feed before generating (at least one). */
  prompt: readonly number[];
  /** Prompt prefix lengths after which to keep a snapshot in the prefix cache (e.g. the end of a system prompt). */
  savePrefixes?: readonly number[];
}

export interface SequenceStats extends GenerateStats {
  /** Seconds from submit() until the sequence was admitted. */
  queueSeconds: number;
  /** Prompt tokens run through the model. */
  prefilledTokens: number;
  /** Prompt tokens restored from the prefix cache instead (prefilled + restored = promptTokens). */
  restoredTokens: number;
}

export interface BatcherStats {
  steps: number;
  /** Tokens fed over all steps. */
  tokens: number;
  /** Largest number of sequences in one step. */
  peakBatch: number;
  running: number;
  waiting: number;
}

/** One submitted sequence: its tokens as they come (async iteration) and its final stats. */
export class SequenceHandle implements AsyncIterable<number> {
  readonly tokens: number[] = [];
  /** The figures so far (final once the sequence ends, also when it failed or was cancelled). */
  stats!: SequenceStats;
  /** Resolves with the stats when the sequence ends; rejects with its error (AbortError when cancelled). */
  readonly result: Promise<SequenceStats>;
  private settle!: { resolve: (s: SequenceStats) => void; reject: (e: unknown) => void };
  private wake: (() => void)[] = [];
  private ended: { error?: unknown } | undefined;

  constructor(readonly id: number) {
    this.result = new Promise<SequenceStats>((resolve, reject) => { this.settle = { resolve, reject }; });
    // The caller may consume only the iterator; the rejection is delivered there too.
    this.result.catch(() => undefined);
  }

  get done(): boolean { return this.ended !== undefined; }

  /** @internal */
  push(id: number): void { this.tokens.push(id); this.notify(); }

  /** @internal */
  finish(stats: SequenceStats): void {
    if (this.ended) return;
    this.ended = {};
    this.settle.resolve(stats);
    this.notify();
  }

  /** @internal */
  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = { error };
    this.settle.reject(error);
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = [];
    for (const f of w) f();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<number> {
    let i = 0;
    for (;;) {
      if (i < this.tokens.length) { yield this.tokens[i++]; continue; }
      if (this.ended) {
        if ('error' in this.ended && this.ended.error !== undefined) throw this.ended.error;
        return;
      }
      await new Promise<void>((r) => this.wake.push(r));
    }
  }
}

interface Seq extends StepCandidate {
  handle: SequenceHandle;
  req: SequenceRequest;
  prompt: readonly number[];
  maxNew: number;
  bytes: number;
  greedy: boolean;
  knobs: ReturnType<typeof resolveSampling>;
  rng: SeededRandom;
  eos: Set<number>;
  seen: Set<number>;
  cache?: HybridCache;
  /** Prompt tokens consumed (restored or prefilled). */
  fed: number;
  /** Prompt positions where prefill pauses for a snapshot, ascending. */
  stops: number[];
  last: number;
  out: number[];
  stats: SequenceStats;
  tSubmit: number;
  tAdmit: number;
  tFirst: number;
}

const now = () => performance.now();

export class Batcher {
  readonly limits: StepLimits;
  readonly memoryBudget: number;
  readonly maxQueue: number;
  private readonly waiting: Seq[] = [];
  private readonly running: Seq[] = [];
  private loopRun: Promise<void> | undefined;
  private closing = false;
  private broken: unknown;
  private nextId = 0;
  private memUsed = 0;
  private readonly counters = { steps: 0, tokens: 0, peakBatch: 0 };
  private readonly stateBytes: number;

  private constructor(readonly engine: Engine, private readonly scheduler: Scheduler, private readonly host: HostWasm,
    opts: BatcherOptions, readonly prefixCache: PrefixCache | undefined) {
    const maxBatch = opts.maxBatch ?? 16;
    const block = engine.opts.prefillChunk;
    this.limits = { maxBatch, block, tokenBudget: opts.tokenBudget ?? block + maxBatch - 1 };
    checkLimits(this.limits);
    this.memoryBudget = opts.memoryBudget ?? Infinity;
    if (!(this.memoryBudget > 0)) throw new InputError(`memoryBudget must be > 0 bytes, got ${this.memoryBudget}`);
    this.maxQueue = opts.maxQueue ?? Infinity;
    if (!(this.maxQueue >= 0)) throw new InputError(`maxQueue must be ≥ 0, got ${this.maxQueue}`);
    const d = engine.runner.cacheDims();
    this.stateBytes = d.numMambaLayers * (d.convStateBytes + d.ssmStateBytes);
  }

  static async create(engine: Engine, opts: BatcherOptions = {}): Promise<Batcher> {
    const [scheduler, host] = await Promise.all([Scheduler.create(), hostWasm()]);
    return new Batcher(engine, scheduler, host, opts, opts.prefixCache);
  }

  /** Device bytes a sequence of `tokens` tokens holds while it runs (state + KV capacity). */
  sequenceBytes(tokens: number): number {
    return this.stateBytes + HybridCache.kvBytes(this.engine.runner.cacheDims(), Math.max(1, tokens), this.engine.opts.kvDtype);
  }

  /** Requests submitted but not running yet. */
  get queueDepth(): number { return this.waiting.length; }

  /** Of those, the ones that will not join at the next step (the queue maxQueue bounds). */
  get queued(): number { return this.queuedWith(); }

  private queuedWith(extraBytes?: number): number {
    const bytes = this.waiting.map((s) => s.bytes);
    if (extraBytes !== undefined) bytes.push(extraBytes);
    if (bytes.length === 0) return 0;
    let k: number;
    try {
      k = this.scheduler.admit(bytes, this.running.length, this.limits.maxBatch, this.memUsed, this.memoryBudget);
    } catch {
      k = 0;
    }
    return bytes.length - k;
  }
  get runningCount(): number { return this.running.length; }
  /** Device bytes reserved by running sequences. */
  get reservedBytes(): number { return this.memUsed; }

  stats(): BatcherStats {
    return { ...this.counters, running: this.running.length, waiting: this.waiting.length };
  }

  /**
   * Queues a sequence. Input errors (ids, lengths, sampling knobs, a sequence that alone exceeds
   * the memory budget) throw here, before anything runs; so do QueueFullError and, after a lost
   * device, its DeviceLostError.
   */
  submit(req: SequenceRequest): SequenceHandle {
    if (this.broken) throw this.broken;
    if (this.closing) throw new QueueFullError('this batcher is shutting down and takes no new requests');
    validateSampling(req);
    const prompt = req.prompt;
    if (!Array.isArray(prompt) || prompt.length === 0) throw new InputError('a sequence needs at least one prompt token');
    const maxNew = req.maxNewTokens ?? 32;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw new InputError(`maxNewTokens must be a non-negative integer, got ${maxNew}`);
    this.engine.checkIds(prompt);
    this.engine.checkLength({ position: 0 }, prompt.length + Math.max(0, maxNew - 1));
    const bytes = this.sequenceBytes(prompt.length + maxNew);
    if (bytes > this.memoryBudget) {
      throw new InputError(`a sequence of ${prompt.length + maxNew} tokens needs ${bytes} bytes of state and KV cache, above the memory budget of ${this.memoryBudget} bytes`);
    }
    // The queue holds the requests that cannot join at the next step (batch full or no memory).
    if (this.queuedWith(bytes) > this.maxQueue) throw new QueueFullError(`the queue is full (${this.maxQueue} requests waiting beside ${this.running.length} running); retry later`);
    const handle = new SequenceHandle(this.nextId++);
    const t = now();
    const seq: Seq = {
      handle, req, prompt: [...prompt], maxNew, bytes,
      greedy: isGreedy(req), knobs: resolveSampling(req), rng: new SeededRandom(req.seed ?? Date.now()),
      eos: new Set(req.eosTokenIds ?? this.engine.runner.config.eosTokenIds), seen: new Set(prompt),
      fed: 0, stops: [], last: -1, out: [], need: 0, prefill: true, age: 0, order: handle.id,
      stats: { promptTokens: prompt.length, newTokens: 0, timeToFirstToken: 0, prefillSeconds: 0, decodeSeconds: 0, stoppedBy: 'length', queueSeconds: 0, prefilledTokens: 0, restoredTokens: 0 },
      tSubmit: t, tAdmit: t, tFirst: t,
    };
    handle.stats = seq.stats;
    if (maxNew === 0) {
      // Nothing to generate: the prompt is not even fed (as Session.generate does).
      handle.finish(seq.stats);
      return handle;
    }
    this.waiting.push(seq);
    this.kick();
    return handle;
  }

  /** Cancels every waiting and running sequence (their handles reject with AbortError). */
  abortAll(reason = 'cancelled'): void {
    for (const s of [...this.waiting, ...this.running]) this.fail(s, new AbortError(reason), 'abort');
  }

  /**
   * Takes no new requests and resolves once every queued and running sequence has ended. With
   * `abort`, cancels them first.
   */
  async close(opts: { abort?: boolean } = {}): Promise<void> {
    this.closing = true;
    if (opts.abort) this.abortAll('the batcher was closed');
    while (this.loopRun) await this.loopRun;
  }

  private kick(): void {
    if (this.loopRun) return;
    this.loopRun = this.loop().finally(() => {
      this.loopRun = undefined;
      if (this.waiting.length > 0 || this.running.length > 0) this.kick();
    });
  }

  private async loop(): Promise<void> {
    for (;;) {
      this.reap();
      this.admit();
      if (this.running.length === 0) return;
      const grants = this.plan();
      const step: { seq: Seq; n: number; req: BatchRequest }[] = [];
      this.running.forEach((seq, i) => {
        const n = grants[i];
        if (n === 0) return;
        const prefill = seq.fed < seq.prompt.length;
        const ids = prefill ? seq.prompt.slice(seq.fed, seq.fed + n) : [seq.last];
        const produces = !prefill || seq.fed + n === seq.prompt.length;
        const want = !produces ? 'none' : seq.greedy ? 'argmax' : 'logits';
        step.push({ seq, n, req: { cache: seq.cache!, ids, want } });
      });
      let results: BatchResult[];
      try {
        results = await this.engine.runBatch(step.map((s) => s.req));
      } catch (e) {
        this.stepFailed(step.map((s) => s.seq), e);
        continue;
      }
      this.counters.steps++;
      this.counters.tokens += step.reduce((a, s) => a + s.n, 0);
      this.counters.peakBatch = Math.max(this.counters.peakBatch, step.length);
      const saves: Seq[] = [];
      for (let i = 0; i < step.length; i++) {
        const { seq, n, req } = step[i];
        if (seq.handle.done) continue; // cancelled while the step ran (abortAll)
        try {
          if (seq.fed < seq.prompt.length) {
            seq.fed += n;
            seq.stats.prefilledTokens += n;
            if (seq.stops[0] === seq.fed) { seq.stops.shift(); saves.push(seq); }
            if (req.want === 'none') continue;
          }
          const r = results[i];
          const token = seq.greedy ? r.token! : this.host.sample(r.logits!, [...seq.seen], seq.knobs, seq.knobs.doSample ? seq.rng.next() : 0);
          this.emit(seq, token);
        } catch (e) {
          this.fail(seq, e);
        }
      }
      for (const seq of saves) await this.save(seq);
      // Let I/O (new requests, disconnects) in between steps.
      await yieldToEventLoop();
    }
  }

  /** Drops cancelled sequences (queued or running). */
  private reap(): void {
    for (const s of [...this.waiting, ...this.running]) {
      if (s.req.signal?.aborted) this.fail(s, new AbortError('generation cancelled'), 'abort');
    }
  }

  private admit(): void {
    if (this.waiting.length === 0) return;
    let k: number;
    try {
      k = this.scheduler.admit(this.waiting.map((s) => s.bytes), this.running.length, this.limits.maxBatch, this.memUsed, this.memoryBudget);
    } catch (e) {
      // Only a head that can never fit (refused at submit, so not expected): it alone fails.
      this.fail(this.waiting[0], e);
      return;
    }
    for (const seq of this.waiting.splice(0, k)) {
      try {
        this.start(seq);
        this.running.push(seq);
        this.memUsed += seq.bytes;
      } catch (e) {
        this.fail(seq, e);
      }
    }
  }

  /** Allocates the sequence's cache (restored from the prefix cache when it can be) and its save points. */
  private start(seq: Seq): void {
    seq.tAdmit = now();
    seq.stats.queueSeconds = (seq.tAdmit - seq.tSubmit) / 1000;
    const cache = this.engine.createCache();
    seq.cache = cache;
    // KV capacity for the whole sequence, once (restoring below writes into it).
    cache.reserve(seq.prompt.length + seq.maxNew);
    const pc = this.prefixCache;
    if (pc) {
      // At least the last prompt token is fed: its logits give the first new token.
      const hit = pc.lookup(seq.prompt, seq.prompt.length - 1);
      if (hit) {
        try {
          const { header, dataOffset } = parseSnapshot(hit.bytes, this.engine.opts.modelId, cache.dims, this.engine.opts.kvDtype);
          if (header.pending.length > 0 || header.position !== hit.length) throw new MambaScanError('prefix snapshot does not end at its prefix');
          restoreSnapshot(this.engine.be, cache, hit.bytes, header, dataOffset);
          seq.fed = hit.length;
          seq.stats.restoredTokens = hit.length;
        } catch {
          // A snapshot that does not restore is a miss: start from the empty state.
          cache.reset();
          seq.fed = 0;
          seq.stats.restoredTokens = 0;
        }
      }
      const points = new Set([...(seq.req.savePrefixes ?? []), seq.prompt.length - 1]);
      seq.stops = [...points]
        .filter((p) => Number.isInteger(p) && p > seq.fed && p < seq.prompt.length && !pc.has(seq.prompt.slice(0, p)))
        .sort((a, b) => a - b);
    }
  }

  private plan(): number[] {
    for (const seq of this.running) {
      seq.prefill = seq.fed < seq.prompt.length;
      seq.need = seq.prefill ? (seq.stops[0] ?? seq.prompt.length) - seq.fed : 1;
    }
    return this.scheduler.plan(this.running, this.limits);
  }

  private emit(seq: Seq, token: number): void {
    const t = now();
    if (seq.out.length === 0) {
      seq.tFirst = t;
      seq.stats.timeToFirstToken = (t - seq.tSubmit) / 1000;
      seq.stats.prefillSeconds = (t - seq.tAdmit) / 1000;
    }
    seq.out.push(token);
    seq.seen.add(token);
    seq.last = token;
    seq.stats.newTokens = seq.out.length;
    seq.handle.push(token);
    seq.req.onToken?.(token, 0);
    let stop: GenerateStats['stoppedBy'] | undefined;
    if (seq.eos.has(token)) stop = 'eos';
    else if (seq.req.stopStrings?.length && seq.req.decode) {
      const text = seq.req.decode(seq.out);
      if (seq.req.stopStrings.some((s) => s.length > 0 && text.includes(s))) stop = 'stop-string';
    }
    if (stop === undefined && seq.out.length >= seq.maxNew) stop = 'length';
    if (stop !== undefined) {
      seq.stats.stoppedBy = stop;
      this.retire(seq);
      seq.handle.finish(seq.stats);
    }
  }

  private async save(seq: Seq): Promise<void> {
    const pc = this.prefixCache;
    if (!pc || seq.handle.done || !seq.cache) return;
    try {
      const bytes = await saveSnapshot(this.engine.be, seq.cache, this.engine.opts.modelId, []);
      pc.put(seq.prompt.slice(0, seq.fed), bytes);
    } catch (e) {
      if (e instanceof DeviceLostError) this.stepFailed([seq], e);
      // Otherwise a snapshot that could not be taken is only a missed cache entry.
    }
  }

  private stepFailed(seqs: Seq[], e: unknown): void {
    if (e instanceof DeviceLostError) {
      // Nothing will run again: every request fails with the same clear error.
      this.broken = e;
      for (const s of [...this.waiting, ...this.running]) this.fail(s, e);
      return;
    }
    // Those in the step have an unknown state now; the others go on.
    for (const s of seqs) this.fail(s, e);
  }

  /** Removes a running or waiting sequence and frees its cache. */
  private retire(seq: Seq): void {
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    const r = this.running.indexOf(seq);
    if (r >= 0) {
      this.running.splice(r, 1);
      this.memUsed -= seq.bytes;
    }
    if (seq.cache) {
      seq.cache.dispose();
      seq.cache = undefined;
    }
    if (seq.out.length > 1) seq.stats.decodeSeconds = (now() - seq.tFirst) / 1000;
  }

  private fail(seq: Seq, e: unknown, stoppedBy?: GenerateStats['stoppedBy']): void {
    if (stoppedBy) seq.stats.stoppedBy = stoppedBy;
    this.retire(seq);
    seq.handle.fail(e);
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
}
