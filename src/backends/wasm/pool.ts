// Runs kernels of build/kernels*.wasm on every thread: a persistent pool of worker_threads, each
// with its own instance of the kernel module over the one shared WebAssembly.Memory, and the
// calling thread taking part as thread 0. One barrier per job (a job is one kernel call, or a batch
// of independent calls): the caller writes the calls into a small control SharedArrayBuffer, bumps
// a generation counter, runs chunks of the job alongside the workers, and waits until every chunk
// is done. Waiting is a short spin on an atomic, then Atomics.wait (the spin covers back-to-back
// kernels; the wait stops idle workers from burning a core).
//
// Workers run only the kernels: no allocation, no JS objects per call beyond an argument array.
// Without SharedArrayBuffer or worker_threads (or with threads: 1) the same interface runs every
// kernel on the calling thread (SingleThread).
import { MambaScanError } from '../../errors.ts';

export interface KernelCall {
  /** Export name of the kernel in the module. */
  readonly fn: string;
  /** Its arguments except the trailing (threadIndex, threadCount). */
  readonly args: readonly number[];
  /**
   * A per-thread scratch argument: args[arg] is the base of one region per thread, `stride` bytes
   * apart; thread t passes base + t * stride (chunks run by one thread reuse its region in turn).
   */
  readonly scratch?: { readonly arg: number; readonly stride: number };
}

export interface Executor {
  /** Threads a parallel job runs on (the caller included). */
  readonly threads: number;
  /**
   * Runs the calls (independent of each other: no barrier between them) on every thread, or on
   * the calling thread alone when `parallel` is false (results are the same either way: every
   * kernel's output is independent of the thread count).
   */
  run(calls: readonly KernelCall[], parallel?: boolean): void;
  /** Jobs and barriers so far (benchmarks). */
  readonly stats: { jobs: number; parallelJobs: number };
  close(): void;
}

type Fn = (...args: number[]) => unknown;

/** Runs part ti of tc of call c on the calling thread (thread 0: the first scratch region). */
function callOn(exports: Record<string, unknown>, c: KernelCall, ti: number, tc: number): void {
  const f = exports[c.fn] as Fn | undefined;
  if (typeof f !== 'function') throw new MambaScanError(`wasm kernels: no export ${c.fn}`);
  f(...c.args, ti, tc);
}

/**
 * Every kernel on the calling thread. With split > 1 each call runs once per thread index (the
 * highest first) as `split` threads would run it: the same results, for testing the work split of
 * any thread count without that many cores.
 */
export class SingleThread implements Executor {
  readonly threads: number;
  readonly stats = { jobs: 0, parallelJobs: 0 };
  constructor(private readonly exports: Record<string, unknown>, split = 1) {
    this.threads = split;
  }
  run(calls: readonly KernelCall[], parallel = true): void {
    this.stats.jobs++;
    const tc = parallel ? this.threads : 1;
    if (tc > 1) this.stats.parallelJobs++;
    for (let ti = tc - 1; ti >= 0; ti--) for (const c of calls) callOn(this.exports, c, ti, tc);
  }
  close(): void {}
}

// Control block layout (Int32 indices), then the argument slots (Float64). A job is a list of
// calls, each cut into chunks: chunk s of a call with c chunks runs the kernel with (ti, tc) =
// (s, c). Threads grab chunks from one atomic counter until none are left, so a thread the OS does
// not schedule (2 cores shared with other work) delays only the chunk it already holds: the others
// take its share. Each chunk is a fixed part of the op computed whole by one thread, so results do
// not depend on who runs what. The counter word is tag (16 bits: job number) | total chunks (8) |
// next chunk (8); compare-and-swap on the whole word grabs a chunk of exactly that job.
const GEN = 0, DONE = 1, NCALLS = 2, ERROR = 3, QUIT = 4, COUNTER = 5;
const CALLS = 16;            // per call: function id, argument count, chunks, scratch argument (-1: none)
const CALL_INTS = 4;
export const MAX_CALLS = 64;
export const MAX_ARGS = 24;  // the last slot holds the per-thread scratch stride
const ARGS_BYTE = 1024;      // Float64Array [MAX_CALLS, MAX_ARGS]
const CONTROL_BYTES = ARGS_BYTE + MAX_CALLS * MAX_ARGS * 8;
const MAX_CHUNKS = 255;
/** Chunks per call and thread: enough to even out a late thread, few enough to stay cheap. */
const CHUNKS_PER_THREAD = 8;

/** Spins (iterations of an atomic load) before a waiting thread sleeps in Atomics.wait. */
const DEFAULT_SPIN = 20000;

type ChunkFn = (...a: number[]) => unknown;

/**
 * Runs chunks of the current job until none are left (main thread and workers alike; the worker
 * gets this function's source, so it uses nothing from its surroundings but the constants the
 * worker prelude defines). Returns the first kernel error (after counting its chunk as done).
 */
function runChunks(ctl: Int32Array, argv: Float64Array, fns: ChunkFn[], thread: number, call: number[]): unknown {
  let failure: unknown;
  for (;;) {
    const v = Atomics.load(ctl, COUNTER);
    const next = v & 0xff, total = (v >>> 8) & 0xff;
    if (next >= total) return failure;
    if (Atomics.compareExchange(ctl, COUNTER, v, v + 1) !== v) continue;
    // This job cannot finish before our chunk does: its calls and arguments are stable.
    const ncalls = ctl[NCALLS];
    let j = 0, first = 0;
    for (; j < ncalls - 1; j++) {
      const c = ctl[CALLS + CALL_INTS * j + 2];
      if (next < first + c) break;
      first += c;
    }
    const o = CALLS + CALL_INTS * j;
    const na = ctl[o + 1], chunks = ctl[o + 2], sArg = ctl[o + 3];
    call.length = na + 2;
    for (let i = 0; i < na; i++) call[i] = argv[j * MAX_ARGS + i];
    if (sArg >= 0) call[sArg] = argv[j * MAX_ARGS + sArg] + thread * argv[j * MAX_ARGS + MAX_ARGS - 1];
    call[na] = next - first;
    call[na + 1] = chunks;
    try {
      fns[ctl[o]].apply(null, call);
    } catch (e) {
      Atomics.compareExchange(ctl, ERROR, 0, thread + 1);
      if (failure === undefined) failure = e;
    }
    if (Atomics.add(ctl, DONE, 1) + 1 === total) Atomics.notify(ctl, DONE);
  }
}

// The worker, as source (eval'd): no file to locate next to a bundle.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { module, memory, control, names, index, spin } = workerData;
const GEN = ${GEN}, DONE = ${DONE}, NCALLS = ${NCALLS}, ERROR = ${ERROR}, QUIT = ${QUIT}, COUNTER = ${COUNTER};
const CALLS = ${CALLS}, CALL_INTS = ${CALL_INTS}, MAX_ARGS = ${MAX_ARGS};
const runChunks = ${runChunks.toString()};
const ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
const fns = names.map((n) => ex[n]);
const ctl = new Int32Array(control);
const argv = new Float64Array(control, ${ARGS_BYTE}, ${MAX_CALLS * MAX_ARGS});
const call = [];
parentPort.postMessage('ready');
let seen = 0;
for (;;) {
  let s = 0;
  while (Atomics.load(ctl, GEN) === seen) {
    if (++s >= spin) { Atomics.wait(ctl, GEN, seen); s = 0; }
  }
  seen = Atomics.load(ctl, GEN);
  if (Atomics.load(ctl, QUIT)) break;
  const e = runChunks(ctl, argv, fns, index, call);
  if (e !== undefined) parentPort.postMessage({ error: String(e && e.stack || e) });
}
`;

interface NodeWorker {
  once(event: 'message' | 'error', cb: (v: unknown) => void): void;
  on(event: 'message' | 'error', cb: (v: unknown) => void): void;
  unref(): void;
  terminate(): Promise<number>;
}

export interface ThreadPoolOptions {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** The calling thread's instance of module (thread 0). */
  exports: Record<string, unknown>;
  /** Export names workers may call. */
  names: readonly string[];
  /** Total threads including the caller, >= 2. */
  threads: number;
  spin?: number;
}

/** worker_threads pool (Node). Create with ThreadPool.create; close() when done. */
export class ThreadPool implements Executor {
  readonly stats = { jobs: 0, parallelJobs: 0 };
  private readonly ctl: Int32Array;
  private readonly argv: Float64Array;
  private readonly ids: Map<string, number>;
  private readonly fns: ChunkFn[];
  private readonly call: number[] = [];
  private gen = 0;
  private closed = false;
  private lastError = '';

  private constructor(readonly threads: number, private readonly exports: Record<string, unknown>,
    control: SharedArrayBuffer, names: readonly string[], private readonly workers: NodeWorker[], private readonly spin: number) {
    this.ctl = new Int32Array(control);
    this.argv = new Float64Array(control, ARGS_BYTE, MAX_CALLS * MAX_ARGS);
    this.ids = new Map(names.map((n, i) => [n, i]));
    this.fns = names.map((n) => exports[n] as ChunkFn);
    for (const w of workers) w.on('message', (m) => { if (m && typeof m === 'object' && 'error' in m) this.lastError = String((m as { error: unknown }).error); });
    // Adding a 'message' listener refs a worker again: unref after it, or an idle pool keeps the
    // process from exiting.
    for (const w of workers) w.unref();
  }

  static async create(o: ThreadPoolOptions): Promise<ThreadPool> {
    if (!(o.threads >= 2)) throw new MambaScanError(`ThreadPool needs >= 2 threads, got ${o.threads}`);
    const { Worker } = await import('node:worker_threads');
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const spin = o.spin ?? DEFAULT_SPIN;
    const workers: NodeWorker[] = [];
    try {
      for (let i = 1; i < o.threads; i++) {
        const w = new Worker(WORKER_SOURCE, {
          eval: true,
          workerData: { module: o.module, memory: o.memory, control, names: [...o.names], index: i, spin },
        }) as unknown as NodeWorker;
        workers.push(w);
        await new Promise<void>((resolve, reject) => {
          w.once('message', () => resolve());
          w.once('error', (e) => reject(e));
        });
        // An idle pool must not keep the process alive.
        w.unref();
      }
    } catch (e) {
      for (const w of workers) void w.terminate();
      throw new MambaScanError(`wasm thread pool: a worker failed to start: ${(e as Error).message}`, { cause: e });
    }
    return new ThreadPool(o.threads, o.exports, control, o.names, workers, spin);
  }

  run(calls: readonly KernelCall[], parallel = true): void {
    if (this.closed) throw new MambaScanError('wasm thread pool: used after close()');
    this.stats.jobs++;
    if (!parallel) {
      for (const c of calls) callOn(this.exports, c, 0, 1);
      return;
    }
    if (calls.length > MAX_CALLS) {
      for (let i = 0; i < calls.length; i += MAX_CALLS) this.run(calls.slice(i, i + MAX_CALLS), true);
      return;
    }
    this.stats.parallelJobs++;
    const ctl = this.ctl;
    const per = Math.max(1, Math.min(CHUNKS_PER_THREAD * this.threads, Math.floor(MAX_CHUNKS / calls.length)));
    let total = 0;
    calls.forEach((c, j) => {
      const id = this.ids.get(c.fn);
      if (id === undefined) throw new MambaScanError(`wasm thread pool: ${c.fn} is not a pool kernel`);
      if (c.args.length > MAX_ARGS - 1) throw new MambaScanError(`wasm thread pool: ${c.fn} has ${c.args.length} > ${MAX_ARGS - 1} arguments`);
      const o = CALLS + CALL_INTS * j;
      ctl[o] = id;
      ctl[o + 1] = c.args.length;
      ctl[o + 2] = per;
      ctl[o + 3] = c.scratch ? c.scratch.arg : -1;
      this.argv.set(c.args, j * MAX_ARGS);
      if (c.scratch) this.argv[j * MAX_ARGS + MAX_ARGS - 1] = c.scratch.stride;
      total += per;
    });
    ctl[NCALLS] = calls.length;
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, ERROR, 0);
    this.gen = (this.gen + 1) | 0;
    Atomics.store(ctl, COUNTER, ((this.gen & 0xffff) << 16) | (total << 8));
    Atomics.store(ctl, GEN, this.gen);
    Atomics.notify(ctl, GEN);
    const failure = runChunks(ctl, this.argv, this.fns, 0, this.call);
    // Join: every chunk has run (even after a failure, so no worker still writes into memory the
    // caller is about to reuse).
    let spins = 0;
    for (;;) {
      const d = Atomics.load(ctl, DONE);
      if (d >= total) break;
      if (++spins >= this.spin) { Atomics.wait(ctl, DONE, d, 50); spins = 0; }
    }
    const err = Atomics.load(ctl, ERROR);
    if (failure !== undefined) throw failure;
    if (err) {
      throw new MambaScanError(`wasm kernel ${calls.map((c) => c.fn).join(', ')} failed on worker ${err - 1}` +
        (this.lastError ? `: ${this.lastError}` : ''));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, QUIT, 1);
    Atomics.store(this.ctl, GEN, (this.gen + 1) | 0);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) void w.terminate();
  }
}

/** Cores this host offers (os.availableParallelism in Node, navigator.hardwareConcurrency elsewhere). */
export async function hostParallelism(): Promise<number> {
  try {
    const os = await import('node:os');
    return Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
  } catch {
    const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
    return Math.max(1, nav?.hardwareConcurrency ?? 1);
  }
}

/** Whether this host can run the pool: SharedArrayBuffer, Atomics.wait and Node's worker_threads. */
export async function workersAvailable(): Promise<boolean> {
  if (typeof SharedArrayBuffer === 'undefined' || typeof Atomics?.wait !== 'function') return false;
  try {
    await import('node:worker_threads');
    return true;
  } catch {
    return false;
  }
}
