// The request loop: every generation request becomes one sequence of a single continuous-batching
// loop over the model (MambaModel.createBatcher), with a prefix cache of session snapshots shared
// by all requests. Here tokens become text (the streaming decoder, stop sequences), limits are
// checked against the context, figures are gathered for the response's `timings`, and one log
// line is written per request.
import type { MambaModel } from '../api.ts';
import type { Batcher, PrefixCache, SequenceStats } from '../api.ts';
import { DeviceLostError } from '../errors.ts';
import { badParam, HttpError, toHttpError } from './errors.ts';
import type { SamplingParams } from './params.ts';
import { StopMatcher } from './stop.ts';

export interface LoopOptions {
  /** Sequences decoded together at most (default 16). */
  maxBatch?: number;
  /** Requests waiting beyond the running batch at most; more get 429 (default 64). */
  maxQueue?: number;
  /** Host bytes for prefix snapshots (default 256 MiB; 0 disables the prefix cache). */
  prefixCacheBytes?: number;
  /** Largest max_tokens a request may ask for (default 4096). */
  maxTokensLimit?: number;
  /** One line per request and the server's notices (default: stderr). */
  log?: (line: string) => void;
  /** Write the line per request (default true; notices are always written). */
  logRequests?: boolean;
}

export interface GenerationJob {
  id: string;
  route: string;
  promptIds: number[];
  /** The request parameter the prompt came from, for errors ('messages' or 'prompt'). */
  promptParam: string;
  /** Prompt prefix lengths worth a snapshot (the end of the system prompt). */
  savePrefixes: number[];
  /** undefined: the rest of the context, up to maxTokensLimit. */
  maxTokens: number | undefined;
  sampling: SamplingParams;
  stop: string[];
  signal: AbortSignal;
  /** performance.now() when the request arrived. */
  tReceived: number;
  /** Streaming: called with each piece of new text (awaited, so a slow client slows only itself). */
  onText?: (delta: string) => Promise<void>;
}

export interface Timings {
  prompt_tokens: number;
  /** Prompt tokens run through the model for this request. */
  prompt_tokens_prefilled: number;
  /** Prompt tokens restored from the prefix cache instead. */
  prompt_tokens_cached: number;
  completion_tokens: number;
  queue_ms: number;
  /** Request arrival to the first new token. */
  ttft_ms: number;
  prefill_ms: number;
  decode_ms: number;
  decode_tokens_per_second: number | null;
  total_ms: number;
}

export interface GenerationResult {
  text: string;
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
  timings: Timings;
}

const ms = (s: number) => Math.round(s * 1e4) / 10;

export class RequestLoop {
  readonly maxTokensLimit: number;
  private draining = false;
  private lost: DeviceLostError | undefined;
  private inFlight = 0;
  private readonly counters = { requests: 0, errors: 0, cancelled: 0 };
  readonly log: (line: string) => void;
  private readonly logRequests: boolean;

  private constructor(readonly model: MambaModel, readonly batcher: Batcher, readonly prefixCache: PrefixCache | undefined, opts: LoopOptions) {
    this.maxTokensLimit = opts.maxTokensLimit ?? 4096;
    this.log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.logRequests = opts.logRequests ?? true;
  }

  static async create(model: MambaModel, opts: LoopOptions = {}): Promise<RequestLoop> {
    const bytes = opts.prefixCacheBytes ?? 256 * 2 ** 20;
    const prefixCache = bytes > 0 ? await model.createPrefixCache(bytes) : undefined;
    const batcher = await model.createBatcher({ maxBatch: opts.maxBatch ?? 16, maxQueue: opts.maxQueue ?? 64, prefixCache });
    return new RequestLoop(model, batcher, prefixCache, opts);
  }

  /** Longest sequence (prompt + completion) a request may reach. */
  get contextLimit(): number {
    return Math.min(this.model.engine.opts.maxContext, this.model.engine.kvTokenLimit);
  }

  get isDraining(): boolean { return this.draining; }
  get deviceLost(): DeviceLostError | undefined { return this.lost; }

  stats(): { requests: number; errors: number; cancelled: number; inFlight: number } {
    return { ...this.counters, inFlight: this.inFlight };
  }

  /** Generates for one request; throws HttpError-mappable errors (see errors.ts). */
  async run(job: GenerationJob): Promise<GenerationResult> {
    this.counters.requests++;
    this.inFlight++;
    let stats: SequenceStats | undefined;
    let status = 200;
    let finish = '';
    try {
      if (this.lost) throw this.lost;
      if (this.draining) throw new HttpError(503, 'the server is shutting down', 'service_unavailable', null, 'shutting_down');
      const result = await this.generate(job, (s) => { stats = s; });
      finish = result.finishReason;
      return result;
    } catch (e) {
      const err = toHttpError(e);
      status = err.status;
      if (e instanceof DeviceLostError && !this.lost) {
        this.lost = e;
        this.log(`device lost: ${e.message}; every request now gets 503 until the server is restarted`);
      }
      if (status === 499) this.counters.cancelled++;
      else this.counters.errors++;
      finish = status === 499 ? 'client-gone' : err.code ?? 'error';
      throw err;
    } finally {
      this.inFlight--;
      if (this.logRequests) this.log(this.logLine(job, status, finish, stats));
    }
  }

  private async generate(job: GenerationJob, onStats: (s: SequenceStats) => void): Promise<GenerationResult> {
    const tok = this.model.tokenizer!;
    const promptTokens = job.promptIds.length;
    const limit = this.contextLimit;
    if (job.maxTokens !== undefined && job.maxTokens > this.maxTokensLimit) {
      throw badParam('max_tokens', `max_tokens ${job.maxTokens} is above this server's limit of ${this.maxTokensLimit} (--max-tokens-limit)`, 'max_tokens_exceeded');
    }
    const room = limit - promptTokens;
    const maxTokens = job.maxTokens ?? Math.min(this.maxTokensLimit, room);
    if (maxTokens > room || room <= 0) {
      throw badParam(job.promptParam, `this model's maximum context length is ${limit} tokens, but ${promptTokens + maxTokens} were requested ` +
        `(${promptTokens} in the prompt, ${maxTokens} for the completion): shorten the prompt or lower max_tokens`, 'context_length_exceeded');
    }
    const eos = [...new Set([...this.model.config.eosTokenIds, ...tok.eosTokenIds])];
    // Stops early when the stop matcher has seen a stop sequence the batcher's check missed.
    const own = new AbortController();
    const decode = (ids: readonly number[]) => tok.decode(ids as number[], { skipSpecialTokens: true });
    const handle = this.batcher.submit({
      prompt: job.promptIds, maxNewTokens: maxTokens, eosTokenIds: eos, savePrefixes: job.savePrefixes,
      doSample: job.sampling.doSample, temperature: job.sampling.temperature, topP: job.sampling.topP, topK: job.sampling.topK,
      repetitionPenalty: job.sampling.repetitionPenalty, seed: job.sampling.seed,
      stopStrings: job.stop.length ? job.stop : undefined, decode,
      signal: AbortSignal.any([job.signal, own.signal]),
    });
    onStats(handle.stats);
    const decoder = tok.createStreamDecoder({ skipSpecialTokens: true });
    const matcher = new StopMatcher(job.stop);
    let text = '';
    let tFirst: number | undefined;
    let consumed = 0;
    const emit = async (piece: string) => {
      if (piece === '') return;
      text += piece;
      await job.onText?.(piece);
    };
    try {
      for await (const id of handle) {
        tFirst ??= performance.now();
        consumed++;
        await emit(matcher.push(decoder.push(id)));
        if (matcher.stopped) { own.abort(); break; }
      }
    } catch (e) {
      // Our own early stop is a normal end; anything else (the client left, the device) is not.
      if (!own.signal.aborted) throw e;
    }
    if (!matcher.stopped) await emit(matcher.push(decoder.flush()) + matcher.end());
    const s = handle.stats;
    const stopped = matcher.stopped || s.stoppedBy === 'eos' || s.stoppedBy === 'stop-string';
    const tEnd = performance.now();
    const ttft = tFirst !== undefined ? (tFirst - job.tReceived) / 1000 : 0;
    return {
      text,
      finishReason: stopped ? 'stop' : 'length',
      promptTokens,
      completionTokens: consumed,
      timings: {
        prompt_tokens: promptTokens,
        prompt_tokens_prefilled: s.prefilledTokens,
        prompt_tokens_cached: s.restoredTokens,
        completion_tokens: consumed,
        queue_ms: ms(s.queueSeconds),
        ttft_ms: ms(ttft),
        prefill_ms: ms(s.prefillSeconds),
        decode_ms: ms(s.decodeSeconds),
        decode_tokens_per_second: s.newTokens > 1 && s.decodeSeconds > 0 ? Math.round(((s.newTokens - 1) / s.decodeSeconds) * 10) / 10 : null,
        total_ms: ms((tEnd - job.tReceived) / 1000),
      },
    };
  }

  private logLine(job: GenerationJob, status: number, finish: string, s: SequenceStats | undefined): string {
    const parts = [job.id, job.route, String(status), `prompt=${job.promptIds.length}`];
    if (s) {
      parts.push(`cached=${s.restoredTokens}`, `new=${s.newTokens}`, `queue=${ms(s.queueSeconds)}ms`,
        `ttft=${s.newTokens > 0 ? `${ms(s.timeToFirstToken)}ms` : '-'}`,
        `decode=${s.newTokens > 1 && s.decodeSeconds > 0 ? ((s.newTokens - 1) / s.decodeSeconds).toFixed(1) : '-'}tok/s`);
    }
    parts.push(finish);
    return parts.join(' ');
  }

  /** Takes no new requests, lets the running and queued ones finish, then resolves. */
  async drain(): Promise<void> {
    this.draining = true;
    await this.batcher.close();
  }

  /** Cancels everything at once (a second Ctrl-C). */
  abortAll(): void {
    this.draining = true;
    this.batcher.abortAll('the server is shutting down');
  }

  /** Whether a request would be refused with 429 now (for /health). */
  get queueFull(): boolean { return this.batcher.queued >= this.batcher.maxQueue; }
}
