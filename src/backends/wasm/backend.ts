// The Wasm implementation of the op interface (src/backends/backend.ts): every op validates its
// arguments and runs its kernels of build/kernels*.wasm (assembly/kernels/) through the checked
// wrappers (kernels.ts) on the thread pool, synchronously, so an op's promise is already settled
// when it returns and `read` just copies out of linear memory. Buffers are blocks of the one heap
// (memory.ts) over the module's memory; this file keeps the byte accounting the WebGPU allocator
// keeps (sizes rounded to 4, per label, live and peak), so the memory planner's figures hold on
// both backends. The semantics of every op follow the WebGPU backend's exactly.
import type {
  AddOp, ArgmaxOp, AttentionOp, Backend, BackendLimits, Conv1dOp, ConvScanOp, EmbeddingOp, GatedRmsNormOp, GeluGateOp,
  KvDType, KvWriteOp, MatmulOp, MemoryStats, OpScratchQuery, RmsNormOp, RopeOp, ScanAlgorithm, SsmScanOp,
} from '../backend.ts';
import type { Buf, Strided, WeightTensor } from '../tensor.ts';
import { InputError, MambaScanError } from '../../errors.ts';
import { GEMV_MAX_M, WasmKernels, type KernelVariant, type WasmKernelsOptions, type WasmStrided, type WasmTensor } from './kernels.ts';
import { labelGroup, type WasmBuffer } from './memory.ts';
import { runMatmulInput } from '../matmul-input.ts';

/** Byte offsets of views are multiples of this: 16 keeps every state slot v128-aligned. */
export const WASM_VIEW_ALIGNMENT = 16;

/** Bytes of the GEMM path's scratch for rows of K values on `threads` threads (kernels.ts gemmScratchStride). */
export function wasmGemmScratchBytes(K: number, threads: number): number {
  // assembly/kernels/matmul.ts gemmScratchBytes: a 16-row panel of K (rounded up to 4) f32 values,
  // per thread, each region rounded to 64 bytes.
  return threads * Math.ceil((16 * 4 * Math.ceil(K / 4) * 4) / 64) * 64;
}

/**
 * The Wasm ops' named scratch for a block (OpScratchQuery): none. The scan is recurrent at every
 * length (state in registers, no chunk matrices) and attention runs one online softmax per query
 * row (no split-K partials). The GEMM panels are the backend's own buffer (`scratch:gemm`,
 * wasmGemmScratchBytes for the widest matrix), which the planner counts beside these.
 */
export function wasmOpScratch(_q: OpScratchQuery): Record<string, number> {
  return {};
}

/** A buffer of this backend: a heap block (or a window of one) and its accounted size. */
class WasmBuf implements Buf {
  constructor(
    readonly owner: WasmBackend,
    /** The heap block, or for a view the heap's view of its root's block. */
    readonly block: WasmBuffer,
    /** Bytes as the caller sees them (the request rounded up to 4; a view's exact length). */
    readonly size: number,
    readonly label: string,
    /** For a view: the allocated buffer it is a window of, and its byte offset there. */
    readonly root?: WasmBuf,
    readonly byteOffset = 0,
  ) {}
}

export interface WasmBackendOptions {
  /** Threads including the caller (default: every core in Node, 1 in other hosts). Capped at the core count. */
  threads?: number;
  /** Use the relaxed-SIMD build where the engine validates it (default true). */
  relaxed?: boolean;
  /** Cap on the Wasm memory in bytes (a multiple of 64 KiB, default and at most 4 GiB: wasm32). */
  maxMemoryBytes?: number;
  /** false: plain (unshared) memory and the single-threaded build, as hosts without SharedArrayBuffer run. */
  sharedMemory?: boolean;
  /** Testing: every op on the calling thread as this many simulated threads (kernels.ts simulateThreads). */
  simulateThreads?: number;
  /** Ops with less work than this run on the calling thread (kernels.ts; tests use 0). */
  parallelMinWork?: number;
}

/** Node itself (not Deno's or Bun's Node compatibility), where the worker_threads pool is known to work. */
function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: Record<string, string | undefined>; release?: { name?: string } } }).process;
  return p?.release?.name === 'node' && !p.versions?.bun && !p.versions?.deno;
}

function isBun(): boolean {
  return (globalThis as { process?: { versions?: Record<string, string | undefined> } }).process?.versions?.bun !== undefined;
}

export class WasmBackend implements Backend {
  readonly kind = 'wasm' as const;
  readonly limits: BackendLimits;
  readonly supportsF16Kv = true;
  /**
   * f16: the KV cache is the only memory that grows with the context, and wasm32 has 4 GiB in all.
   * The kernels store rounded halves and attend in f32 (f32 can be asked for).
   */
  readonly defaultKvDtype: KvDType = 'f16';

  private readonly live = new Map<WasmBuf, string>();
  private liveBytes = 0;
  private peakBytes = 0;
  private readonly labelBytes = new Map<string, number>();
  private readonly tensors = new WeakMap<WeightTensor, WasmTensor>();
  private gemm: WasmBuf | undefined;
  private destroyed = false;

  private constructor(readonly k: WasmKernels) {
    const max = k.heap.maximumBytes;
    this.limits = { maxBindingBytes: max, maxBufferBytes: max, viewAlignment: WASM_VIEW_ALIGNMENT };
  }

  /**
   * A backend over a fresh Wasm memory and kernel instances. Threads need SharedArrayBuffer and
   * Node's worker_threads; elsewhere (browsers, Deno, Bun, edge runtimes) it runs on the calling
   * thread. A pool that fails to start falls back to one thread.
   */
  static async create(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
    // Bun 1.x: writes to shared memory are not always visible in workers (oven-sh/bun #25677).
    const threads = isBun() ? 1 : opts.threads ?? (isNode() ? undefined : 1);
    const ko: WasmKernelsOptions = {
      threads, relaxedSimd: opts.relaxed ?? true, sharedMemory: opts.sharedMemory, maximumBytes: opts.maxMemoryBytes,
      simulateThreads: opts.simulateThreads, parallelMinWork: opts.parallelMinWork,
    };
    let k: WasmKernels;
    try {
      k = await WasmKernels.create(ko);
    } catch (e) {
      if (!(e instanceof MambaScanError) || !/worker failed to start/.test(e.message) || threads === 1) throw e;
      k = await WasmKernels.create({ ...ko, threads: 1 });
    }
    return new WasmBackend(k);
  }

  /** `wasm-simd 2 threads`, `wasm-simd-relaxed 1 thread`, `wasm-simd 1 thread (no shared memory)`. */
  get name(): string {
    const v: KernelVariant = this.k.variant;
    const n = this.k.threads;
    return `wasm-simd${v === 'relaxed' ? '-relaxed' : ''} ${n} thread${n === 1 ? '' : 's'}${v === 'single' ? ' (no shared memory)' : ''}`;
  }

  /** Threads every parallel op runs on (the caller included). */
  get threads(): number { return this.k.threads; }

  // ---- memory ----

  alloc(label: string, bytes: number): Buf {
    this.checkOpen();
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`wasm backend: bad size ${bytes} for ${label}`);
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const block = this.k.heap.alloc(label, size);
    const b = new WasmBuf(this, block, size, label);
    const group = labelGroup(label);
    this.live.set(b, group);
    this.liveBytes += size;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    this.labelBytes.set(group, (this.labelBytes.get(group) ?? 0) + size);
    return b;
  }

  view(buf: Buf, byteOffset: number, byteLength: number): Buf {
    const b = this.own(buf, 'view');
    const root = b.root ?? b;
    const o = b.byteOffset + byteOffset;
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || o % WASM_VIEW_ALIGNMENT !== 0) {
      throw new InputError(`view: offset ${o} is not a multiple of ${WASM_VIEW_ALIGNMENT}`);
    }
    if (!Number.isInteger(byteLength) || byteLength < 4 || byteLength % 4 !== 0 || byteOffset + byteLength > buf.size) {
      throw new InputError(`view: [${byteOffset}, ${byteOffset + byteLength}) does not fit a buffer of ${buf.size} bytes`);
    }
    if (!this.live.has(root)) throw new InputError(`view: ${buf.label} was freed`);
    return new WasmBuf(this, this.k.heap.view(root.block, o, byteLength), byteLength, root.label, root, o);
  }

  viewOf(b: Buf): { buffer: Buf; byteOffset: number } {
    const w = this.own(b, 'viewOf');
    return w.root ? { buffer: w.root, byteOffset: w.byteOffset } : { buffer: w, byteOffset: 0 };
  }

  free(buf: Buf): void {
    if (!(buf instanceof WasmBuf) || buf.owner !== this || buf.root) return;
    const group = this.live.get(buf);
    if (group === undefined) return; // freeing twice is harmless, as on WebGPU
    this.live.delete(buf);
    this.liveBytes -= buf.size;
    this.labelBytes.set(group, (this.labelBytes.get(group) ?? 0) - buf.size);
    if (this.gemm === buf) this.gemm = undefined;
    this.k.heap.free(buf.block);
  }

  isLive(buf: Buf): boolean {
    return buf instanceof WasmBuf && buf.owner === this && this.live.has(buf.root ?? buf);
  }

  memoryStats(): MemoryStats {
    const byLabel: Record<string, number> = {};
    for (const [k, v] of this.labelBytes) if (v) byLabel[k] = v;
    return { liveBytes: this.liveBytes, peakBytes: this.peakBytes, byLabel, liveBuffers: this.live.size };
  }

  resetPeak(): void { this.peakBytes = this.liveBytes; }

  /** Frees the backend's own scratch (the GEMM panels); the next prefill allocates it again. */
  trimPool(): void {
    if (this.gemm) this.free(this.gemm);
  }

  /** Bytes the Wasm memory could still hand out in one block (below its cap: 4 GiB on wasm32). */
  availableBytes(): number { return this.k.heap.available(); }

  /** The memory cap in force (4 GiB unless a smaller one was asked for or is all the host could reserve). */
  get maxMemoryBytes(): number { return this.k.heap.maximumBytes; }

  // ---- data movement (immediate: there is no queue) ----

  write(buf: Buf, byteOffset: number, data: ArrayBufferView): void {
    const b = this.range('write', buf, byteOffset, data.byteLength);
    this.k.heap.bytes(b.block, byteOffset, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  copy(src: Buf, srcOffset: number, dst: Buf, dstOffset: number, bytes: number): void {
    const s = this.range('copy source', src, srcOffset, bytes);
    const d = this.range('copy destination', dst, dstOffset, bytes);
    if (bytes === 0) return;
    const from = s.block.ptr + srcOffset, to = d.block.ptr + dstOffset;
    if (s.root === d.root || (s.root ?? s) === (d.root ?? d)) {
      if (from < to + bytes && to < from + bytes) throw new InputError('copy: source and destination ranges overlap');
    }
    new Uint8Array(this.k.heap.memory.buffer).copyWithin(to, from, from + bytes);
  }

  clear(buf: Buf, byteOffset = 0, bytes?: number): void {
    const n = bytes ?? buf.size - byteOffset;
    const b = this.range('clear', buf, byteOffset, n);
    this.k.heap.bytes(b.block, byteOffset, n).fill(0);
  }

  async read(buf: Buf, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
    const b = this.range('read', buf, byteOffset, bytes);
    return this.k.heap.bytes(b.block, byteOffset, bytes).slice().buffer;
  }

  async readF32(buf: Buf, offsetElems: number, count: number): Promise<Float32Array> { return new Float32Array(await this.read(buf, 4 * offsetElems, 4 * count)); }
  async readU32(buf: Buf, offsetElems: number, count: number): Promise<Uint32Array> { return new Uint32Array(await this.read(buf, 4 * offsetElems, 4 * count)); }

  flush(): void {}
  async sync(): Promise<void> {}
  check(): void { this.checkOpen(); }

  /** Runs `fn` with every op validated (and scratch sized) but no kernel run: results are garbage, allocations real. */
  async compileOnly<T>(fn: () => Promise<T>): Promise<T> {
    const was = this.k.dryRun;
    this.k.dryRun = true;
    try { return await fn(); } finally { this.k.dryRun = was; }
  }

  /** dispatches: kernel calls (per op and weight part); submits: jobs run on the pool (one barrier each). */
  counters(): { dispatches: number; submits: number } {
    return { dispatches: this.k.calls.kernels, submits: this.k.calls.jobs };
  }

  // ---- ops ----

  async embedding(op: EmbeddingOp): Promise<void> {
    this.k.embedding({ ids: this.h(op.ids), T: op.T, table: this.tensor(op.table), out: this.h(op.out) });
  }

  async matmul(op: MatmulOp): Promise<void> {
    if (op.input) op = await runMatmulInput(this, op);
    const w = this.tensor(op.w);
    const K = w.shape[1];
    const gemm = Number.isInteger(op.M) && op.M > GEMV_MAX_M && Number.isInteger(K) && K > 0 ? this.gemmScratch(K) : undefined;
    this.k.matmul({
      x: this.h(op.x), xOffset: op.xOffset, xRowStride: op.xRowStride, M: op.M, w, y: this.h(op.y), yOffset: op.yOffset,
      yRowStride: op.yRowStride, accumulate: op.accumulate, gemmScratch: gemm,
    });
  }

  async rmsNorm(op: RmsNormOp): Promise<void> {
    const add = (op as RmsNormOp & { add?: Buf }).add;
    this.k.rmsNorm({ x: this.h(op.x), x2: op.x2 && this.h(op.x2), add: add && this.h(add), weight: this.h(op.weight), out: this.h(op.out), T: op.T, H: op.H, eps: op.eps });
  }

  async gatedRmsNorm(op: GatedRmsNormOp): Promise<void> {
    this.k.gatedRmsNorm({ y: this.h(op.y), z: this.s(op.z), weight: this.h(op.weight), out: this.h(op.out), T: op.T, D: op.D, groupSize: op.groupSize, eps: op.eps });
  }

  async add(op: AddOp): Promise<void> {
    if (op.out === op.a || op.out === op.b) throw new InputError('add: out must not alias a or b');
    this.k.add({ a: this.h(op.a), b: this.h(op.b), out: this.h(op.out), n: op.n });
  }

  async geluGate(op: GeluGateOp): Promise<void> {
    this.k.geluGate({ gu: this.h(op.gu), out: this.h(op.out), T: op.T, F: op.F });
  }

  async conv1d(op: Conv1dOp): Promise<void> {
    this.k.conv1d({
      T: op.T, channels: op.channels, kernelSize: op.kernelSize, input: this.s(op.input), weight: this.h(op.weight), bias: this.h(op.bias),
      convState: this.h(op.convState), pos0: op.pos0, out: this.h(op.out),
    });
  }

  async ssmScan(op: SsmScanOp): Promise<void> {
    checkAlgorithm(op.algorithm);
    this.k.ssmScan({
      T: op.T, nHeads: op.nHeads, headDim: op.headDim, dState: op.dState, nGroups: op.nGroups,
      x: this.s(op.x), dt: this.s(op.dt), B: this.s(op.B), C: this.s(op.C), dtBias: this.h(op.dtBias), aLog: this.h(op.aLog), D: this.h(op.D),
      state: this.h(op.state), y: this.h(op.y), dtMin: op.dtMin, dtMax: op.dtMax,
    });
  }

  /**
   * conv1d then the recurrent scan for each sequence (one algorithm at every length: 'chunked'
   * computes the same recurrence here). The conv outputs of all sequences go to their own rows of
   * `xbc` when it has room for every row, so all sequences' convs run as one job and all their
   * scans as another (two barriers per layer however many sequences decode together); otherwise
   * the sequences run one after another through row 0.
   */
  async convScan(op: ConvScanOp): Promise<void> {
    checkAlgorithm(op.algorithm);
    if (!Array.isArray(op.seqs) || op.seqs.length === 0) throw new InputError('convScan: no sequences');
    const di = op.nHeads * op.headDim, GN = op.nGroups * op.dState;
    const C = op.convDim;
    if (!Number.isInteger(di) || !Number.isInteger(GN) || di + 2 * GN !== C) {
      throw new InputError(`convScan: convDim ${C} != nHeads * headDim + 2 * nGroups * dState (${di} + 2 * ${GN})`);
    }
    const xbc = this.h(op.xbc), xBC = this.s(op.xBC), dt = this.s(op.dt), y = this.h(op.y);
    const weight = this.h(op.convWeight), bias = this.h(op.convBias);
    const dtBias = this.h(op.dtBias), aLog = this.h(op.aLog), D = this.h(op.D);
    let rows = 0;
    const states = new Set<number>();
    for (const q of op.seqs) {
      if (!Number.isInteger(q.rowStart) || q.rowStart < 0 || !Number.isInteger(q.T) || q.T < 0) {
        throw new InputError(`convScan: bad sequence rows (rowStart ${q.rowStart}, T ${q.T})`);
      }
      rows = Math.max(rows, q.rowStart + q.T);
      states.add(this.h(q.convState).ptr);
      states.add(this.h(q.ssmState).ptr);
    }
    const together = states.size === 2 * op.seqs.length && 4 * rows * C <= xbc.size;
    const conv = (q: ConvScanOp['seqs'][number], row: number) => this.k.conv1d({
      T: q.T, channels: C, kernelSize: op.kernelSize, weight, bias, pos0: q.pos0, convState: this.h(q.convState), out: xbc,
      input: { buffer: xBC.buffer, offset: xBC.offset + q.rowStart * xBC.rowStride, rowStride: xBC.rowStride }, outRow: row,
    });
    const scan = (q: ConvScanOp['seqs'][number], row: number) => {
      const at = (off: number): WasmStrided => ({ buffer: xbc, offset: row * C + off, rowStride: C });
      this.k.ssmScan({
        T: q.T, nHeads: op.nHeads, headDim: op.headDim, dState: op.dState, nGroups: op.nGroups,
        x: at(0), B: at(di), C: at(di + GN), dt: { buffer: dt.buffer, offset: dt.offset + q.rowStart * dt.rowStride, rowStride: dt.rowStride },
        dtBias, aLog, D, state: this.h(q.ssmState), y, yOffset: q.rowStart * di, dtMin: op.dtMin, dtMax: op.dtMax,
      });
    };
    const seqs = op.seqs.filter((q) => q.T > 0);
    if (together) {
      this.k.batch(() => { for (const q of seqs) conv(q, q.rowStart); });
      this.k.batch(() => { for (const q of seqs) scan(q, q.rowStart); });
    } else {
      for (const q of seqs) { conv(q, 0); scan(q, 0); }
    }
  }

  async rope(op: RopeOp): Promise<void> {
    const x = this.h(op.x), invFreq = this.h(op.invFreq);
    const base = { x, rowStride: op.rowStride, nHeads: op.nHeads, headDim: op.headDim, invFreq };
    if (!op.positions) {
      this.k.rope({ ...base, offset: op.offset, T: op.T, pos0: op.pos0 });
      return;
    }
    // Every row at its own position: runs of consecutive positions (one per sequence of a
    // batched block) each go as one call, all in one job (their rows are disjoint).
    if (!Number.isInteger(op.T) || op.T < 0) throw new InputError(`rope: T must be an integer >= 0, got ${op.T}`);
    const pos = this.k.heap.u32(this.h(op.positions), 0, op.T);
    const offset = op.offset ?? 0;
    this.k.batch(() => {
      for (let t = 0; t < op.T;) {
        let e = t + 1;
        while (e < op.T && pos[e] === pos[e - 1] + 1) e++;
        this.k.rope({ ...base, offset: offset + t * op.rowStride, T: e - t, pos0: pos[t] });
        t = e;
      }
    });
  }

  async kvWrite(op: KvWriteOp): Promise<void> {
    const srcRowStride = op.srcRowStride ?? (op.dst2 ? 2 * op.width : op.width);
    this.k.kvWrite({ src: this.h(op.src), srcOffset: op.srcOffset, srcRowStride, T: op.T, width: op.width, dst: this.h(op.dst), dstRow: op.dstRow, dtype: op.dtype });
    // The values half of each row (KvWriteOp.dst2): the kernel's second pass.
    if (op.dst2) this.k.kvWrite({ src: this.h(op.src), srcOffset: (op.srcOffset ?? 0) + op.width, srcRowStride, T: op.T, width: op.width, dst: this.h(op.dst2), dstRow: op.dstRow, dtype: op.dtype });
  }

  async attention(op: AttentionOp): Promise<void> {
    this.k.attention({
      q: this.h(op.q), qOffset: op.qOffset, qRowStride: op.qRowStride, kCache: this.h(op.kCache), vCache: this.h(op.vCache), kvDtype: op.kvDtype,
      out: this.h(op.out), T: op.T, pos0: op.pos0, nHeads: op.nHeads, nKvHeads: op.nKvHeads, headDim: op.headDim, scale: op.scale,
    });
  }

  async argmax(op: ArgmaxOp): Promise<void> {
    this.k.argmax({ logits: this.h(op.logits), M: op.M, V: op.V, out: this.h(op.out) });
  }

  scanFor(_T: number): ScanAlgorithm { return 'recurrent'; }

  opScratch(q: OpScratchQuery): Record<string, number> { return wasmOpScratch(q); }

  /** Nothing to reserve: reads copy straight out of linear memory. */
  reserveReadback(_bytes: number): void {}

  async destroy(): Promise<{ label: string; size: number }[]> {
    if (this.destroyed) return [];
    this.trimPool();
    const leaks = [...this.live.keys()].map((b) => ({ label: b.label, size: b.size }));
    for (const b of [...this.live.keys()]) this.free(b);
    this.destroyed = true;
    this.k.close();
    return leaks;
  }

  // ---- helpers ----

  private checkOpen(): void {
    if (this.destroyed) throw new MambaScanError('wasm backend: used after destroy()');
  }

  private own(b: Buf, what: string): WasmBuf {
    if (!(b instanceof WasmBuf) || b.owner !== this) throw new InputError(`${what}: ${b?.label ?? String(b)} is not a buffer of this wasm backend`);
    return b;
  }

  /** The heap block behind a buffer of this backend (the wrappers check that it is live). */
  private h(b: Buf): WasmBuffer {
    return this.own(b, 'wasm op').block;
  }

  private s(v: Strided): WasmStrided {
    return { buffer: this.h(v.buffer), offset: v.offset, rowStride: v.rowStride };
  }

  private range(what: string, buf: Buf, byteOffset: number, bytes: number): WasmBuf {
    this.checkOpen();
    const b = this.own(buf, what);
    if (!this.isLive(b)) throw new InputError(`${what}: ${b.label} was freed`);
    if (!Number.isInteger(byteOffset) || !Number.isInteger(bytes) || byteOffset < 0 || bytes < 0 || byteOffset + bytes > b.size) {
      throw new InputError(`${what}: [${byteOffset}, ${byteOffset + bytes}) is outside ${b.label} (${b.size} bytes)`);
    }
    return b;
  }

  /** The tensor with heap blocks for parts (one conversion per tensor object). */
  private tensor(t: WeightTensor): WasmTensor {
    let w = this.tensors.get(t);
    if (!w) {
      if (!t || !Array.isArray(t.parts)) throw new InputError(`wasm op: ${String((t as { name?: string })?.name)} is not a weight tensor`);
      w = { ...t, name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength,
        parts: t.parts.map((p) => ({ buffer: this.h(p.buffer), rowStart: p.rowStart, rows: p.rows })) };
      this.tensors.set(t, w);
    }
    return w;
  }

  /** The GEMM panels' scratch for K (grown by free-then-allocate, so the peak never holds two). */
  private gemmScratch(K: number): WasmBuffer {
    const need = this.k.gemmScratchStride(K) * this.k.threads;
    if (this.gemm && this.gemm.size >= need) return this.gemm.block;
    if (this.gemm) this.free(this.gemm);
    this.gemm = this.alloc('scratch:gemm', need) as WasmBuf;
    return this.gemm.block;
  }
}

function checkAlgorithm(a: ScanAlgorithm | undefined): void {
  if (a !== undefined && a !== 'recurrent' && a !== 'chunked') throw new InputError(`scan algorithm must be 'recurrent' or 'chunked', got ${JSON.stringify(a)}`);
}
