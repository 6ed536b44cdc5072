// Runs kernels of build/kernels*.wasm on every thread: a persistent pool of worker_threads, each
// with its own instance of the kernel module over the one shared WebAssembly.Memory, and the
// calling thread taking part as thread 0. One barrier per job (a job is one kernel call, or a batch
// of independent calls): the caller writes the calls into a small control SharedArrayBuffer, bumps
// a generation counter, runs its share, and waits until every worker has run its share. Waiting is
// a short spin on an atomic, then Atomics.wait (the spin covers back-to-back kernels; the wait
// stops idle workers from burning a core).
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

// Control block layout (Int32 indices), then the argument slots (Float64).
const GEN = 0, DONE = 1, NCALLS = 2, ERROR = 3, QUIT = 4;
const CALLS = 16;            // per call: function id, argument count
export const MAX_CALLS = 64;
export const MAX_ARGS = 24;
const ARGS_BYTE = 1024;      // Float64Array [MAX_CALLS, MAX_ARGS]
const CONTROL_BYTES = ARGS_BYTE + MAX_CALLS * MAX_ARGS * 8;

/** Spins (iterations of an atomic load) before a waiting thread sleeps in Atomics.wait. */
const DEFAULT_SPIN = 20000;

// The worker, as source (eval'd): no file to locate next to a bundle.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { module, memory, control, names, index, threads, spin } = workerData;
const ex = new WebAssembly.Instance(module, { env: { memory } }).exports;
const fns = names.map((n) => ex[n]);
const ctl = new Int32Array(control);
const argv = new Float64Array(control, ${ARGS_BYTE}, ${MAX_CALLS * MAX_ARGS});
const call = [];
parentPort.postMessage('ready');
let seen = 0;
for (;;) {
  let s = 0;
  while (Atomics.load(ctl, ${GEN}) === seen) {
    if (++s >= spin) { Atomics.wait(ctl, ${GEN}, seen); s = 0; }
  }
  seen = Atomics.load(ctl, ${GEN});
  if (Atomics.load(ctl, ${QUIT})) break;
  const n = ctl[${NCALLS}];
  try {
    for (let j = 0; j < n; j++) {
      const fn = fns[ctl[${CALLS} + 2 * j]];
      const na = ctl[${CALLS} + 2 * j + 1];
      call.length = na + 2;
      for (let i = 0; i < na; i++) call[i] = argv[j * ${MAX_ARGS} + i];
      call[na] = index;
      call[na + 1] = threads;
      fn.apply(null, call);
    }
  } catch (e) {
    Atomics.compareExchange(ctl, ${ERROR}, 0, index + 1);
    parentPort.postMessage({ error: String(e && e.stack || e) });
  }
  if (Atomics.add(ctl, ${DONE}, 1) === threads - 2) Atomics.notify(ctl, ${DONE});
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
  private closed = false;
  private lastError = '';

  private constructor(readonly threads: number, private readonly exports: Record<string, unknown>,
    control: SharedArrayBuffer, names: readonly string[], private readonly workers: NodeWorker[], private readonly spin: number) {
    this.ctl = new Int32Array(control);
    this.argv = new Float64Array(control, ARGS_BYTE, MAX_CALLS * MAX_ARGS);
    this.ids = new Map(names.map((n, i) => [n, i]));
    for (const w of workers) w.on('message', (m) => { if (m && typeof m === 'object' && 'error' in m) this.lastError = String((m as { error: unknown }).error); });
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
          workerData: { module: o.module, memory: o.memory, control, names: [...o.names], index: i, threads: o.threads, spin },
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
    calls.forEach((c, j) => {
      const id = this.ids.get(c.fn);
      if (id === undefined) throw new MambaScanError(`wasm thread pool: ${c.fn} is not a pool kernel`);
      if (c.args.length > MAX_ARGS) throw new MambaScanError(`wasm thread pool: ${c.fn} has ${c.args.length} > ${MAX_ARGS} arguments`);
      ctl[CALLS + 2 * j] = id;
      ctl[CALLS + 2 * j + 1] = c.args.length;
      this.argv.set(c.args, j * MAX_ARGS);
    });
    ctl[NCALLS] = calls.length;
    Atomics.store(ctl, DONE, 0);
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
    let failure: unknown;
    try {
      for (const c of calls) callOn(this.exports, c, 0, this.threads);
    } catch (e) {
      failure = e;
    }
    // Join: every worker has run its share (even after a failure here, so no worker still writes
    // into memory the caller is about to reuse).
    const want = this.threads - 1;
    let spins = 0;
    for (;;) {
      const d = Atomics.load(ctl, DONE);
      if (d >= want) break;
      if (++spins >= this.spin) { Atomics.wait(ctl, DONE, d, 50); spins = 0; }
    }
    const err = Atomics.exchange(ctl, ERROR, 0);
    if (failure) throw failure;
    if (err) {
      throw new MambaScanError(`wasm kernel ${calls.map((c) => c.fn).join(', ')} failed on worker ${err - 1}` +
        (this.lastError ? `: ${this.lastError}` : ''));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, QUIT, 1);
    Atomics.add(this.ctl, GEN, 1);
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
