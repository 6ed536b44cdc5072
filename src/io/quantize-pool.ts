// Quantizing checkpoint chunks on worker threads while the loading thread reads and uploads.
//
// Each worker owns an instance of build/host.wasm (its own, unshared memory) and runs the same
// quantizeRows as the single-threaded path (src/wasm/host.ts), on whole-row chunks: chunks are
// independent, so the bytes do not depend on which worker quantized what, or on how many there are.
// A chunk travels in one ArrayBuffer that is transferred, not copied: the loading thread reads the
// source bytes into a free buffer and posts it; the worker converts and quantizes in its Wasm
// memory and writes the device sections back into the same buffer, which it posts back. No
// SharedArrayBuffer is involved, so browsers need no cross-origin isolation.
//
// The pipeline is bounded: a fixed set of chunk buffers (threads + 2 by default) circulates, so at
// most that many chunks are read but not yet uploaded; submit() waits for the oldest chunk when
// every buffer is out. Finished chunks are handed to their write callbacks in submission order.
//
// Workers are Node worker_threads, or Web Workers from a Blob URL in browsers; the worker code is
// a string (no file to locate next to a bundle). Where neither can start, create() returns
// undefined and the caller quantizes on its own thread. A failed chunk (a worker error, or an
// error thrown by a write callback) fails the pool: the next submit()/drain() rethrows it; close()
// terminates the workers (an AbortSignal closes the pool too).
import wasmBytes from '../../build/host.wasm';
import { AbortError, MambaScanError, UnsupportedError } from '../errors.ts';
import { FORMAT_INFO, type QuantFormat, deviceLayout } from '../quant/formats.ts';
import type { DeviceChunk, Float16Kind } from '../wasm/host.ts';
import { hostParallelism } from '../backends/wasm/pool.ts';

/** Format codes of assembly/host/quant.ts (as src/wasm/host.ts passes them). */
const FORMAT_CODE: Record<QuantFormat, number> = { q8_0: 0, q4_0: 1, q5_0: 2, q4_k: 3, q6_k: 4 };
const FROM_CODE = { f32: 0, f16: 1, bf16: 2 } as const;
/** Below this many source bytes to quantize, starting workers costs more than it saves. */
const AUTO_MIN_BYTES = 32 << 20;

// The worker: plain JavaScript shared by both platforms (a prelude connects `handle` to the port).
// It keeps three grow-only regions in its Wasm memory (f32 input, 16-bit staging, device output).
const WORKER_BODY = `
let ex = null;
const region = { in: [0, 0], in16: [0, 0], out: [0, 0] };
function reserve(name, bytes) {
  const r = region[name];
  if (r[1] >= bytes) return r[0];
  if (r[0]) ex.free(r[0]);
  r[0] = 0; r[1] = 0;
  r[0] = ex.alloc(Math.max(16, bytes));
  r[1] = bytes;
  return r[0];
}
function handle(m, post) {
  if (m.type === 'init') {
    try {
      ex = new WebAssembly.Instance(m.module, { env: { abort(_m, _f, line, col) { throw new Error('host wasm aborted at ' + line + ':' + col); } } }).exports;
      post({ type: 'ready', wasmBytes: ex.memory.buffer.byteLength });
    } catch (e) {
      post({ type: 'ready', error: String((e && e.message) || e) });
    }
    return;
  }
  const buf = m.buf;
  try {
    const n = m.rows * m.K;
    const inPtr = reserve('in', n * 4);
    const in16Ptr = m.from !== 0 ? reserve('in16', n * 2) : 0;
    const outPtr = reserve('out', m.outBytes);
    new Uint8Array(ex.memory.buffer).set(new Uint8Array(buf, 0, m.inBytes), m.from === 0 ? inPtr : in16Ptr);
    if (m.from === 1) ex.f16ToF32(in16Ptr, inPtr, n);
    else if (m.from === 2) ex.bf16ToF32(in16Ptr, inPtr, n);
    const bad = ex.quantizeRows(m.fmt, inPtr, m.rows, m.K, outPtr + m.qs[0], m.qh ? outPtr + m.qh[0] : 0, m.d ? outPtr + m.d[0] : 0, 0);
    const heap = new Uint8Array(ex.memory.buffer), out = new Uint8Array(buf);
    let o = 0;
    for (const s of [m.qs, m.qh, m.d]) {
      if (!s) continue;
      out.set(heap.subarray(outPtr + s[0], outPtr + s[0] + s[1]), o);
      o += s[1];
    }
    post({ type: 'done', id: m.id, bad, buf, wasmBytes: ex.memory.buffer.byteLength }, [buf]);
  } catch (e) {
    post({ type: 'done', id: m.id, error: String((e && e.message) || e), buf }, [buf]);
  }
}
`;
const NODE_WORKER = `${WORKER_BODY}
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => handle(m, (r, t) => parentPort.postMessage(r, t)));
`;
const WEB_WORKER = `${WORKER_BODY}
self.onmessage = (e) => handle(e.data, (r, t) => self.postMessage(r, t));
`;

interface Reply {
  type: 'ready' | 'done';
  id?: number;
  bad?: number;
  buf?: ArrayBuffer;
  wasmBytes?: number;
  error?: string;
}

/** What the pool needs of a worker, on either platform. */
interface WorkerPort {
  post(msg: unknown, transfer?: Transferable[]): void;
  terminate(): void;
}

let liveWorkers = 0;

function isNode(): boolean {
  return !!(globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
}

/** Cores: os.availableParallelism in Node, navigator.hardwareConcurrency elsewhere (no node: import off Node). */
async function hostCores(): Promise<number> {
  if (isNode()) return hostParallelism();
  return Math.max(1, (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1);
}

/** Quantization workers alive in this process (tests: a closed pool leaves none). */
export function liveQuantWorkers(): number { return liveWorkers; }

async function spawn(onMessage: (r: Reply) => void, onFailure: (e: Error) => void): Promise<WorkerPort> {
  if (isNode()) {
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(NODE_WORKER, { eval: true });
    liveWorkers++;
    let terminating = false;
    w.on('message', (m: Reply) => onMessage(m));
    w.on('error', (e: Error) => onFailure(e));
    w.on('exit', (code: number) => { liveWorkers--; if (!terminating) onFailure(new Error(`exited with code ${code}`)); });
    return { post: (m, t) => w.postMessage(m, t as never), terminate: () => { terminating = true; void w.terminate(); } };
  }
  const g = globalThis as { Worker?: typeof Worker; Blob?: typeof Blob; URL?: typeof URL };
  if (!g.Worker || !g.Blob || !g.URL?.createObjectURL) throw new MambaScanError('no Worker API on this host');
  const url = g.URL.createObjectURL(new g.Blob([WEB_WORKER], { type: 'text/javascript' }));
  let w: Worker;
  try {
    w = new g.Worker(url);
  } catch (e) {
    g.URL.revokeObjectURL(url);
    throw e;
  }
  liveWorkers++;
  let alive = true;
  w.onmessage = (e: MessageEvent<Reply>) => { if (e.data?.type === 'ready') g.URL!.revokeObjectURL(url); onMessage(e.data); };
  w.onerror = (e: ErrorEvent) => { e.preventDefault?.(); g.URL!.revokeObjectURL(url); onFailure(new Error(e.message || 'worker error')); };
  return {
    post: (m, t) => w.postMessage(m, t ?? []),
    terminate: () => { if (alive) { alive = false; liveWorkers--; w.terminate(); } },
  };
}

class PoolWorker {
  port!: WorkerPort;
  /** Jobs posted and not yet answered. */
  readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: unknown) => void }>();
  wasmBytes = 0;
  private ready?: { resolve: () => void; reject: (e: unknown) => void };

  static async start(module: WebAssembly.Module, onFailure: (w: PoolWorker, e: Error) => void): Promise<PoolWorker> {
    const pw = new PoolWorker();
    const ready = new Promise<void>((resolve, reject) => { pw.ready = { resolve, reject }; });
    pw.port = await spawn((r) => pw.onMessage(r), (e) => {
      if (pw.ready) { pw.ready.reject(e); pw.ready = undefined; }
      onFailure(pw, e);
    });
    pw.port.post({ type: 'init', module });
    try {
      await ready;
    } catch (e) {
      pw.port.terminate();
      throw e;
    }
    return pw;
  }

  private onMessage(r: Reply): void {
    if (r.type === 'ready') {
      const rd = this.ready;
      this.ready = undefined;
      if (r.error) rd?.reject(new MambaScanError(`quantize worker: ${r.error}`));
      else { this.wasmBytes = r.wasmBytes ?? 0; rd?.resolve(); }
      return;
    }
    const p = this.pending.get(r.id!);
    if (!p) return;
    this.pending.delete(r.id!);
    if (r.wasmBytes) this.wasmBytes = r.wasmBytes;
    p.resolve(r);
  }

  rejectAll(e: unknown): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

/** One chunk of whole rows for QuantPool.submit. */
export interface PoolChunk {
  readonly format: QuantFormat;
  /** Values per row (a multiple of the format's block size). */
  readonly K: number;
  readonly rows: number;
  /** Element type of the source bytes. */
  readonly from: 'f32' | Float16Kind;
  /**
   * Reads the chunk's rows * K source elements into `into` (exactly that many bytes) and returns
   * them: `into` itself, or other bytes (then copied into it).
   */
  read(into: Uint8Array): Promise<Uint8Array>;
  /**
   * Receives the chunk's device sections (views valid until the returned promise settles), in
   * submission order. nonFiniteBlocks counts blocks that held NaN/inf (written as zero blocks):
   * the callback decides whether that is an error (throwing fails the pool).
   */
  write(c: DeviceChunk): void | Promise<void>;
}

export interface QuantPoolOptions {
  /** Worker threads wanted; clamped to the host's cores. */
  threads: number;
  /** Bytes of one chunk buffer: the largest chunk's source bytes. */
  chunkBytes: number;
  /** Chunk buffers circulating (read, being quantized, or waiting to be written): default threads + 2. */
  buffers?: number;
  /** Aborting closes the pool: pending and later calls reject with AbortError. */
  signal?: AbortSignal;
  /** Called with the pool's host bytes (chunk buffers + the workers' Wasm memories) whenever they grow. */
  onHostBytes?: (bytes: number) => void;
}

interface Slot {
  readonly chunk: PoolChunk;
  readonly layout: ReturnType<typeof deviceLayout>;
  readonly blocks: number;
  readonly reply: Promise<Reply>;
}

let compiled: Promise<WebAssembly.Module> | undefined;
function hostModule(): Promise<WebAssembly.Module> {
  if (!compiled) {
    compiled = WebAssembly.compile(wasmBytes as Uint8Array<ArrayBuffer>);
    compiled.catch(() => { compiled = undefined; });
  }
  return compiled;
}

export class QuantPool {
  private readonly free: ArrayBuffer[] = [];
  private readonly queue: Slot[] = [];
  private nextId = 0;
  private failure: unknown;
  private closed = false;
  private reported = 0;
  private readonly onAbort?: () => void;

  private constructor(private readonly workers: PoolWorker[], readonly chunkBytes: number, buffers: number,
    private readonly opts: QuantPoolOptions) {
    for (let i = 0; i < buffers; i++) this.free.push(new ArrayBuffer(chunkBytes));
    this.bufferBytes = buffers * chunkBytes;
    const signal = opts.signal;
    if (signal) {
      this.onAbort = () => {
        const r = signal.reason;
        this.close(new AbortError(`checkpoint load aborted${r instanceof Error && r.message ? `: ${r.message}` : ''}`));
      };
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
    this.noteHost();
  }

  private readonly bufferBytes: number;

  /** Worker threads quantizing. */
  get threads(): number { return this.workers.length; }

  /** Host bytes held now: the chunk buffers plus every worker's Wasm memory. */
  get hostBytes(): number {
    return this.bufferBytes + this.workers.reduce((s, w) => s + w.wasmBytes, 0);
  }

  /**
   * A pool of min(threads, cores) workers, or undefined where none can run (threads < 1, no
   * Worker API, a worker that fails to start): the caller then quantizes on its own thread.
   */
  static async create(opts: QuantPoolOptions): Promise<QuantPool | undefined> {
    const threads = Math.min(Math.floor(opts.threads), await hostCores());
    if (!(threads >= 1)) return undefined;
    if (opts.signal?.aborted) return undefined;
    let module: WebAssembly.Module;
    try {
      module = await hostModule();
    } catch {
      return undefined;
    }
    const started: PoolWorker[] = [];
    let pool: QuantPool | undefined;
    const onFailure = (w: PoolWorker, e: Error) => {
      const err = new MambaScanError(`quantize worker failed: ${e.message}`, { cause: e });
      w.rejectAll(err);
      pool?.fail(err);
    };
    const results = await Promise.allSettled(Array.from({ length: threads }, () => PoolWorker.start(module, onFailure)));
    for (const r of results) if (r.status === 'fulfilled') started.push(r.value);
    if (started.length < threads || opts.signal?.aborted) {
      for (const w of started) w.port.terminate();
      return undefined;
    }
    const buffers = Math.max(2, Math.floor(opts.buffers ?? threads + 2));
    pool = new QuantPool(started, Math.max(16, Math.ceil(opts.chunkBytes / 8) * 8), buffers, opts);
    return pool;
  }

  /**
   * The loader's pool (LoadOptions.quantizeThreads): `threads` workers, or by default one per core
   * where there are 2 or more cores and at least 32 MiB of `workBytes` (source bytes to quantize);
   * undefined means quantize on the loading thread.
   */
  static async forLoad(o: { threads?: number; workBytes: number; chunkBytes: number; signal?: AbortSignal; onHostBytes?: (bytes: number) => void }): Promise<QuantPool | undefined> {
    if (o.threads !== undefined && !(Number.isInteger(o.threads) && o.threads >= 0)) {
      throw new UnsupportedError(`quantizeThreads ${JSON.stringify(o.threads)}: expected a whole number >= 0`);
    }
    if (!(o.workBytes > 0)) return undefined;
    let threads = o.threads;
    if (threads === undefined) {
      const cores = await hostCores();
      if (cores < 2 || o.workBytes < AUTO_MIN_BYTES) return undefined;
      threads = cores;
    }
    if (threads < 1) return undefined;
    return QuantPool.create({ threads, chunkBytes: o.chunkBytes, signal: o.signal, onHostBytes: o.onHostBytes });
  }

  /**
   * Reads a chunk into a free buffer (waiting, and writing finished chunks, while none is free) and
   * hands it to the least busy worker. Earlier chunks' write callbacks may run inside this call.
   */
  async submit(c: PoolChunk): Promise<void> {
    this.check();
    const item = c.from === 'f32' ? 4 : 2;
    const inBytes = c.rows * c.K * item;
    if (!Number.isSafeInteger(inBytes) || inBytes <= 0 || inBytes > this.chunkBytes || c.K % FORMAT_INFO[c.format].qk !== 0) {
      throw new RangeError(`quantize pool: chunk of ${c.rows} x ${c.K} ${c.from} (${inBytes} bytes, ${c.format}) does not fit its ${this.chunkBytes}-byte buffers`);
    }
    while (this.queue.length > 0 && this.free.length === 0) await this.writeOldest();
    this.check();
    const buf = this.free.pop()!;
    const view = new Uint8Array(buf, 0, inBytes);
    let raw: Uint8Array;
    try {
      raw = await c.read(view);
    } catch (e) {
      this.free.push(buf);
      throw e;
    }
    if (raw.byteLength !== inBytes) {
      this.free.push(buf);
      throw new RangeError(`quantize pool: read returned ${raw.byteLength} bytes, expected ${inBytes}`);
    }
    if (raw.buffer !== buf || raw.byteOffset !== 0) view.set(raw);
    if (this.closed || this.failure !== undefined) {
      this.free.push(buf);
      this.check();
    }
    const layout = deviceLayout(c.format, c.rows, c.K);
    const blocks = layout.nb, info = FORMAT_INFO[c.format];
    const w = this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = ++this.nextId;
    const reply = new Promise<Reply>((resolve, reject) => w.pending.set(id, { resolve, reject }));
    reply.catch(() => {}); // a pool closed with jobs in flight rejects them: nobody may be waiting
    this.queue.push({ chunk: c, layout, blocks, reply });
    w.port.post({
      type: 'job', id, fmt: FORMAT_CODE[c.format], K: c.K, rows: c.rows, from: FROM_CODE[c.from], inBytes,
      outBytes: layout.totalBytes,
      qs: [layout.qs.offset, blocks * info.qsBlockBytes],
      qh: layout.qh ? [layout.qh.offset, blocks * 4] : null,
      d: layout.d ? [layout.d.offset, blocks * 2] : null,
      buf,
    }, [buf]);
  }

  /** Waits for every submitted chunk and runs its write callback. */
  async drain(): Promise<void> {
    this.check();
    while (this.queue.length > 0) await this.writeOldest();
    this.check();
  }

  /** Terminates the workers (idempotent); pending jobs reject with `reason`. */
  close(reason: unknown = new MambaScanError('quantize pool closed')): void {
    if (this.closed) return;
    this.closed = true;
    if (this.failure === undefined) this.failure = reason;
    if (this.onAbort) this.opts.signal?.removeEventListener('abort', this.onAbort);
    for (const w of this.workers) {
      w.rejectAll(reason);
      w.port.terminate();
    }
    this.queue.length = 0;
  }

  private fail(e: unknown): void {
    if (this.failure === undefined) this.failure = e;
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private noteHost(): void {
    const b = this.hostBytes;
    if (b > this.reported) {
      this.reported = b;
      this.opts.onHostBytes?.(b);
    }
  }

  private async writeOldest(): Promise<void> {
    const s = this.queue[0];
    let r: Reply;
    try {
      r = await s.reply;
    } catch (e) {
      this.fail(e);
      throw e;
    }
    this.queue.shift();
    if (r.error !== undefined) {
      if (r.buf) this.free.push(r.buf);
      const e = new MambaScanError(`quantize worker: ${r.error}`);
      this.fail(e);
      throw e;
    }
    this.noteHost();
    const info = FORMAT_INFO[s.chunk.format];
    const qsBytes = s.blocks * info.qsBlockBytes, qhBytes = s.layout.qh ? s.blocks * 4 : 0, dBytes = s.layout.d ? s.blocks * 2 : 0;
    const u8 = new Uint8Array(r.buf!);
    const chunk: DeviceChunk = {
      rows: s.chunk.rows, blocks: s.blocks, nonFiniteBlocks: r.bad ?? 0,
      qs: u8.subarray(0, qsBytes),
      qh: qhBytes ? u8.subarray(qsBytes, qsBytes + qhBytes) : undefined,
      d: dBytes ? u8.subarray(qsBytes + qhBytes, qsBytes + qhBytes + dBytes) : undefined,
    };
    try {
      await s.chunk.write(chunk);
    } catch (e) {
      this.fail(e);
      throw e;
    } finally {
      this.free.push(r.buf!);
    }
  }
}
