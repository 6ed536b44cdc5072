// A sequence being generated: its recurrent cache plus the tokens already chosen but not yet fed
// to the model. Chat keeps one Session across turns so each turn only prefills its new tokens.
import type { Engine } from './engine.ts';
import type { HybridCache } from './cache.ts';
import { AbortError, InputError, MambaScanError } from '../errors.ts';
import { SeededRandom, isGreedy, resolveSampling, validateSampling, type SamplingOptions } from './sampling.ts';
import { hostWasm } from '../wasm/host.ts';
import { saveSnapshot } from './snapshot.ts';

export interface GenerateOptions extends SamplingOptions {
  /** New tokens at most (default 32). */
  maxNewTokens?: number;
  /** Stop after any of these ids (default: the model's eos ids). The stop id is included in the output. */
  eosTokenIds?: readonly number[];
  /** Stop once the decoded new text contains one of these (needs `decode`). */
  stopStrings?: readonly string[];
  /** Decoder for stop strings: new ids → text. */
  decode?: (ids: readonly number[]) => string;
  /** Called with each new token as soon as it is chosen, and its batch row (0 for a single prompt). */
  onToken?: (id: number, row: number) => void;
  signal?: AbortSignal;
}

export interface GenerateStats {
  promptTokens: number;
  newTokens: number;
  /** Seconds from the call to the first new token (prefill included). */
  timeToFirstToken: number;
  prefillSeconds: number;
  decodeSeconds: number;
  stoppedBy: 'eos' | 'stop-string' | 'length' | 'abort';
}

export class Session {
  /** Chosen tokens that the model has not consumed yet (the last sampled one). */
  private pending: number[] = [];
  private busy = false;
  lastStats: GenerateStats | undefined;

  constructor(readonly engine: Engine, readonly cache: HybridCache) {}

  /** Tokens the model has consumed, plus pending ones. */
  get length(): number { return this.cache.position + this.pending.length; }

  /**
   * Feeds ids without generating (e.g. a system prompt). If it fails or is aborted, the session is
   * as it was before the call.
   */
  async append(ids: readonly number[], signal?: AbortSignal): Promise<void> {
    await this.exclusive(async () => {
      const all = [...this.pending, ...ids];
      if (all.length === 0) return;
      await this.engine.run(this.cache, all, 'none', undefined, signal, true);
      this.pending = [];
    });
  }

  /**
   * The session's whole state as bytes (conv and SSM states, KV rows, position, pending tokens,
   * and the model's identity): restore it with MambaModel.restoreSession. Its size is constant in
   * the sequence length except for the KV rows of Zamba2's attention layers.
   */
  async saveState(): Promise<Uint8Array> {
    if (this.busy) throw new MambaScanError('this session is busy');
    return saveSnapshot(this.engine.be, this.cache, this.engine.opts.modelId, this.pending);
  }

  /** @internal MambaModel.restoreSession: the pending tokens of a restored snapshot. */
  setPending(ids: readonly number[]): void { this.pending = [...ids]; }

  /** Appends `ids` and yields new tokens one by one. */
  async *stream(ids: readonly number[], opts: GenerateOptions = {}): AsyncGenerator<number, GenerateStats> {
    validateSampling(opts);
    const maxNew = opts.maxNewTokens ?? 32;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw new InputError(`maxNewTokens must be a non-negative integer, got ${maxNew}`);
    const feed = [...this.pending, ...ids];
    if (feed.length === 0) throw new InputError('generation needs at least one input token');
    this.engine.checkIds(feed);
    this.engine.checkLength(this.cache, feed.length + Math.max(0, maxNew - 1));
    if (this.busy) throw new MambaScanError('this session is already generating; wait for it or use another session');
    this.busy = true;
    const eos = new Set(opts.eosTokenIds ?? this.engine.runner.config.eosTokenIds);
    const greedy = isGreedy(opts);
    const knobs = resolveSampling(opts);
    const rng = new SeededRandom(opts.seed ?? Date.now());
    const seen = new Set<number>(feed);
    const out: number[] = [];
    const t0 = performance.now();
    let tFirst = t0;
    const stats: GenerateStats = { promptTokens: feed.length, newTokens: 0, timeToFirstToken: 0, prefillSeconds: 0, decodeSeconds: 0, stoppedBy: 'length' };
    // KV capacity for the whole generation, once: growing it per token would copy the caches.
    this.cache.reserve(this.cache.position + feed.length + maxNew);
    const pendingBefore = this.pending;
    this.pending = [];
    try {
      let input = feed;
      while (out.length < maxNew) {
        if (opts.signal?.aborted) {
          stats.stoppedBy = 'abort';
          // Aborted before the prompt was fed: nothing happened to the session.
          if (out.length === 0) this.pending = pendingBefore;
          throw new AbortError('generation cancelled');
        }
        let next: number;
        // The first step feeds the prompt: if it fails or is aborted, the session is put back.
        const first = out.length === 0;
        try {
          if (greedy) {
            next = await this.engine.runArgmax(this.cache, input, opts.signal, first);
          } else {
            const logits = await this.engine.run(this.cache, input, 'last', undefined, opts.signal, first);
            next = (await hostWasm()).sample(logits!, [...seen], knobs, knobs.doSample ? rng.next() : 0);
          }
        } catch (e) {
          if (first) this.pending = pendingBefore;
          throw e;
        }
        if (out.length === 0) { tFirst = performance.now(); stats.prefillSeconds = (tFirst - t0) / 1000; stats.timeToFirstToken = stats.prefillSeconds; }
        out.push(next);
        seen.add(next);
        this.pending = [next];
        stats.newTokens = out.length;
        opts.onToken?.(next, 0);
        yield next;
        if (eos.has(next)) { stats.stoppedBy = 'eos'; break; }
        if (opts.stopStrings?.length && opts.decode) {
          const text = opts.decode(out);
          if (opts.stopStrings.some((s) => s.length > 0 && text.includes(s))) { stats.stoppedBy = 'stop-string'; break; }
        }
        input = [next];
      }
      return stats;
    } finally {
      stats.decodeSeconds = out.length > 1 ? (performance.now() - tFirst) / 1000 : 0;
      this.lastStats = stats;
      this.busy = false;
    }
  }

  /** Appends `ids` and generates; returns the new ids. */
  async generate(ids: readonly number[], opts: GenerateOptions = {}): Promise<number[]> {
    const out: number[] = [];
    const it = this.stream(ids, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      out.push(r.value);
    }
    return out;
  }

  dispose(): void { this.cache.dispose(); }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw new MambaScanError('this session is busy');
    this.busy = true;
    try { return await fn(); } finally { this.busy = false; }
  }
}
