// Typed wrappers over build/kernels*.wasm (assembly/kernels/): one method per op with named
// arguments, every pointer range and size checked here (release Wasm has no asserts), then one
// pool job per op (weights split into parts run as one batch: one barrier). This is the low layer
// the Wasm backend (src/backends/wasm/backend.ts, op interface of src/backends/backend.ts) calls;
// its argument shapes follow that interface, with WasmBuffers for Bufs.
//
//   const k = await WasmKernels.create({ threads: 2 });
//   const x = k.upload('act:x', new Float32Array(...));
//   k.matmul({ x, M: 1, w, y });        // synchronous: returns when every thread is done
//   k.close();
//
// Results never depend on the thread count (each kernel fixes its reduction order), so an op may
// run on the calling thread alone when it is too small to pay for a barrier.
import { InputError, MambaScanError, UnsupportedError } from '../../errors.ts';
import type { Strided, WeightTensor } from '../tensor.ts';
import { FORMAT_CODE, formatBlock, isWeightFormat, partBytes } from './formats.ts';
import { wasmFeatures, type WasmFeatures } from './features.ts';
import { WasmHeap, type WasmBuffer } from './memory.ts';
import { type Executor, type KernelCall, SingleThread, ThreadPool, hostParallelism, workersAvailable } from './pool.ts';
import threadsWasm from '../../../build/kernels.wasm';
import relaxedWasm from '../../../build/kernels-relaxed.wasm';
import singleWasm from '../../../build/kernels-st.wasm';

export type { WasmBuffer } from './memory.ts';
export type WasmTensor = WeightTensor<WasmBuffer>;
export type WasmStrided = Strided<WasmBuffer>;

/** Which build of the kernels runs: threads (shared memory), the same with relaxed-SIMD FMAs, or plain memory. */
export type KernelVariant = 'threads' | 'relaxed' | 'single';

const ABI_VERSION = 1;

/** Export names the pool may call (the kernels; not the info functions). */
export const KERNEL_NAMES = [
  'gemv', 'gemm', 'embedding', 'rmsnorm', 'rmsnormAdd', 'gatedRmsnorm', 'add', 'geluGate', 'storeRows',
  'rope', 'conv1d', 'ssmScan', 'attention', 'argmax',
] as const;

/** Largest M served by the GEMV kernel; above it the panel GEMM runs (bench/kernels-wasm.ts). */
export const GEMV_MAX_M = 4;
/** Below this much work (multiply-adds or element operations) an op runs on the calling thread. */
export const PARALLEL_MIN_WORK = 1 << 15;

export interface WasmKernelsOptions {
  /** Threads including the caller; default: every core the host offers. Capped at the core count. */
  threads?: number;
  /** Use the relaxed-SIMD build when the host supports it (default true). */
  relaxedSimd?: boolean;
  /**
   * Shared memory (and so workers); default: whenever the host has it. false runs the plain-memory
   * build on the calling thread, as hosts without SharedArrayBuffer do.
   */
  sharedMemory?: boolean;
  /** Memory cap in bytes (multiple of 64 KiB, at most 4 GiB). */
  maximumBytes?: number;
  /** Spin iterations before a waiting thread sleeps (pool tuning). */
  spin?: number;
  /**
   * Testing: no workers; every op runs on the calling thread once per thread index of this many
   * simulated threads (checks the work split of any thread count; no speed-up).
   */
  simulateThreads?: number;
  /** Ops with less work than this run on the calling thread (default PARALLEL_MIN_WORK; tests use 0). */
  parallelMinWork?: number;
}

const modules = new Map<KernelVariant, Promise<WebAssembly.Module>>();
function compiled(v: KernelVariant): Promise<WebAssembly.Module> {
  let m = modules.get(v);
  if (!m) {
    const bytes = v === 'threads' ? threadsWasm : v === 'relaxed' ? relaxedWasm : singleWasm;
    m = WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    m.catch(() => modules.delete(v));
    modules.set(v, m);
  }
  return m;
}

// ---- argument checks ----------------------------------------------------------------------

function int(what: string, v: unknown, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 0xffffffff) {
    throw new InputError(`${what} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

interface Span { ptr: number; lo: number; hi: number }

function overlaps(a: Span, b: Span): boolean { return a.lo < b.hi && b.lo < a.hi; }

export class WasmKernels {
  readonly heap: WasmHeap;
  readonly variant: KernelVariant;
  readonly features: WasmFeatures;
  private readonly x: Record<string, unknown>;
  private scratch: WasmBuffer | undefined;
  private scratchStride = 0;
  private readonly ropeTables = new Map<string, WasmBuffer>();
  private closed = false;
  private readonly minWork: number;
  /** Calls collected by batch() (run as one job when it ends). */
  private pending: KernelCall[] | undefined;
  private pendingWork = 0;
  /**
   * Validate every op but run no kernel (the backend's compileOnly): arguments are checked and
   * scratch is sized as for a real call, outputs are left as they are.
   */
  dryRun = false;
  /** Kernel calls (per op and part, not per thread) and jobs (one barrier each) run so far. */
  readonly calls = { kernels: 0, jobs: 0 };

  private constructor(heap: WasmHeap, variant: KernelVariant, features: WasmFeatures,
    exports: Record<string, unknown>, readonly executor: Executor, minWork: number) {
    this.minWork = minWork;
    this.heap = heap;
    this.variant = variant;
    this.features = features;
    this.x = exports;
  }

  static async create(opts: WasmKernelsOptions = {}): Promise<WasmKernels> {
    const features = wasmFeatures();
    if (!features.simd) throw new UnsupportedError('wasm kernels: this host has no WebAssembly SIMD128, which every kernel needs');
    const cores = await hostParallelism();
    if (opts.threads !== undefined) int('WasmKernels threads', opts.threads, 1);
    const want = Math.min(opts.threads ?? cores, cores);
    const shared = features.threads && opts.sharedMemory !== false;
    const variant: KernelVariant = !shared ? 'single' : (opts.relaxedSimd ?? true) && features.relaxedSimd ? 'relaxed' : 'threads';
    const threads = want > 1 && shared && await workersAvailable() ? want : 1;
    const module = await compiled(variant);
    const heap = new WasmHeap({ shared, maximumBytes: opts.maximumBytes });
    const instance = await WebAssembly.instantiate(module, { env: { memory: heap.memory } });
    const ex = instance.exports as Record<string, unknown>;
    const abi = (ex.abiVersion as () => number)();
    if (abi !== ABI_VERSION) throw new MambaScanError(`wasm kernels: module ABI ${abi}, this wrapper speaks ${ABI_VERSION}`);
    const base = (ex.heapBase as () => number)() >>> 0;
    if (base > 1024) throw new MambaScanError(`wasm kernels: module heap base ${base} is above the allocator's base 1024`);
    if (opts.simulateThreads !== undefined) int('WasmKernels simulateThreads', opts.simulateThreads, 1);
    const executor = opts.simulateThreads ? new SingleThread(ex, opts.simulateThreads)
      : threads > 1 ? await ThreadPool.create({ module, memory: heap.memory, exports: ex, names: KERNEL_NAMES, threads, spin: opts.spin })
        : new SingleThread(ex);
    return new WasmKernels(heap, variant, features, ex, executor, opts.parallelMinWork ?? PARALLEL_MIN_WORK);
  }

  get threads(): number { return this.executor.threads; }

  /** Stops the workers and frees the wrappers' own buffers (scratch, RoPE tables). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.executor.close();
    if (this.scratch) this.heap.free(this.scratch);
    for (const b of this.ropeTables.values()) this.heap.free(b);
    this.ropeTables.clear();
    this.scratch = undefined;
  }

  // ---- data movement helpers ----

  /** A new buffer holding a copy of `data`. */
  upload(label: string, data: ArrayBufferView): WasmBuffer {
    const buf = this.heap.alloc(label, data.byteLength);
    this.heap.bytes(buf, 0, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return buf;
  }

  /** A copy of `count` f32 from element `offset` of buf. */
  readF32(buf: WasmBuffer, offset = 0, count = Math.floor(buf.size / 4) - offset): Float32Array {
    return this.heap.f32(buf, offset, count).slice();
  }

  readU32(buf: WasmBuffer, offset = 0, count = Math.floor(buf.size / 4) - offset): Uint32Array {
    return this.heap.u32(buf, offset, count).slice();
  }

  // ---- checks ----

  private live(what: string, buf: WasmBuffer): void {
    if (this.closed) throw new MambaScanError('wasm kernels: used after close()');
    if (!buf || !this.heap.isLive(buf)) throw new InputError(`${what}: buffer ${buf?.label ?? String(buf)} is not a live buffer of this heap`);
  }

  /** Byte span of `rows` rows of `width` elements of `esz` bytes at element offset/stride in buf. */
  private span(what: string, buf: WasmBuffer, offset: number, rows: number, rowStride: number, width: number, esz = 4): Span {
    this.live(what, buf);
    int(`${what} offset`, offset);
    int(`${what} row stride`, rowStride);
    if (rows > 1 && rowStride < width) throw new InputError(`${what}: row stride ${rowStride} < row width ${width}`);
    const endElem = rows === 0 ? offset : offset + (rows - 1) * rowStride + width;
    if (endElem * esz > buf.size) {
      throw new InputError(`${what}: needs ${endElem * esz} bytes of ${buf.label}, which holds ${buf.size}`);
    }
    const ptr = buf.ptr + offset * esz;
    return { ptr, lo: ptr, hi: buf.ptr + endElem * esz };
  }

  private whole(what: string, buf: WasmBuffer, elems: number, esz = 4): Span {
    return this.span(what, buf, 0, 1, elems, elems, esz);
  }

  private disjoint(op: string, out: [string, Span], ...ins: [string, Span][]): void {
    for (const [n, s] of ins) {
      if (s.hi > s.lo && out[1].hi > out[1].lo && overlaps(out[1], s)) throw new InputError(`${op}: ${out[0]} overlaps ${n}`);
    }
  }

  private run(calls: KernelCall[], work: number): void {
    if (this.dryRun || calls.length === 0) return;
    if (this.pending) {
      this.pending.push(...calls);
      this.pendingWork += work;
      return;
    }
    this.calls.kernels += calls.length;
    this.calls.jobs++;
    this.executor.run(calls, work >= this.minWork);
  }

  /**
   * Runs the ops `fn` issues as one job (one barrier): they must be independent of each other
   * (no op reads what another one writes), e.g. the conv1d of several sequences. Nested calls join
   * the outer batch. If `fn` throws, nothing it collected runs.
   */
  batch(fn: () => void): void {
    if (this.pending) { fn(); return; }
    this.pending = [];
    this.pendingWork = 0;
    let calls: KernelCall[];
    try {
      fn();
      calls = this.pending;
    } finally {
      this.pending = undefined;
    }
    this.run(calls, this.pendingWork);
  }

  /** Bytes of GEMM scratch one thread needs for rows of K values (the `gemmScratch` buffer holds threads × this). */
  gemmScratchStride(K: number): number {
    return Math.ceil((this.x.gemmScratchBytes as (k: number) => number)(K) / 64) * 64;
  }

  private weight(op: string, w: WasmTensor, K?: number): { N: number; K: number; fmt: number } {
    if (this.closed) throw new MambaScanError('wasm kernels: used after close()');
    if (!w || !Array.isArray(w.shape) || w.shape.length !== 2) throw new InputError(`${op}: weight ${w?.name} must be 2-D [N, K], has shape [${w?.shape}]`);
    const [N, Kw] = w.shape;
    int(`${op}(${w.name}) N`, N);
    int(`${op}(${w.name}) K`, Kw);
    if (K !== undefined && K !== Kw) throw new InputError(`${op}(${w.name}): K ${Kw} != ${K}`);
    if (!isWeightFormat(w.dtype)) throw new UnsupportedError(`${op}(${w.name}): dtype ${String(w.dtype)} is not supported by the wasm kernels`);
    const qk = formatBlock(w.dtype);
    if (Kw % qk !== 0) throw new InputError(`${op}(${w.name}): row length ${Kw} is not a multiple of the ${w.dtype} block (${qk})`);
    let next = 0;
    for (const p of w.parts) {
      this.live(`${op}(${w.name}) part`, p.buffer);
      if (p.rowStart !== next || !Number.isInteger(p.rows) || p.rows < 0) {
        throw new InputError(`${op}(${w.name}): parts must cover rows 0..N in order (part at ${p.rowStart}, expected ${next})`);
      }
      const need = partBytes(w.dtype, p.rows, Kw);
      if (p.buffer.size < need) throw new InputError(`${op}(${w.name}): part at row ${p.rowStart} holds ${p.buffer.size} bytes, ${p.rows} rows of ${w.dtype} need ${need}`);
      next += p.rows;
    }
    if (next !== N) throw new InputError(`${op}(${w.name}): parts hold ${next} rows, shape says ${N}`);
    return { N, K: Kw, fmt: FORMAT_CODE[w.dtype] };
  }

  private gemmScratch(K: number, given?: WasmBuffer): { ptr: number; stride: number } {
    const stride = this.gemmScratchStride(K);
    if (given) {
      this.live('matmul gemmScratch', given);
      if (given.size < stride * this.threads) throw new InputError(`matmul: gemmScratch holds ${given.size} bytes, K ${K} on ${this.threads} threads needs ${stride * this.threads}`);
      return { ptr: given.ptr, stride };
    }
    if (!this.scratch || stride > this.scratchStride) {
      if (this.scratch) this.heap.free(this.scratch);
      this.scratch = this.heap.alloc('scratch:gemm', stride * this.threads);
      this.scratchStride = stride;
    }
    return { ptr: this.scratch.ptr, stride: this.scratchStride };
  }

  // ---- ops ----

  /** y[m, n] (= or +=) sum_k x[m, k] W[n, k] (MatmulOp). path: force 'gemv' or 'gemm' (tests, bench). */
  matmul(a: {
    x: WasmBuffer; xOffset?: number; xRowStride?: number; M: number; w: WasmTensor;
    y: WasmBuffer; yOffset?: number; yRowStride?: number; accumulate?: boolean; path?: 'gemv' | 'gemm';
    /** The GEMM path's per-thread scratch (threads × gemmScratchStride(K) bytes); default: the wrapper's own. */
    gemmScratch?: WasmBuffer;
  }): void {
    const op = `matmul(${a.w?.name})`;
    const { N, K, fmt } = this.weight(op, a.w);
    const M = int(`${op} M`, a.M);
    const xRowStride = a.xRowStride ?? K, yRowStride = a.yRowStride ?? N;
    const xs = this.span(`${op} x`, a.x, a.xOffset ?? 0, M, xRowStride, K);
    const ys = this.span(`${op} y`, a.y, a.yOffset ?? 0, M, yRowStride, N);
    if (M === 0 || N === 0) return;
    this.disjoint(op, ['y', ys], ['x', xs]);
    if (K === 0) {
      if (!a.accumulate && !this.dryRun) for (let m = 0; m < M; m++) this.heap.f32(a.y, (a.yOffset ?? 0) + m * yRowStride, N).fill(0);
      return;
    }
    const path = a.path ?? (M <= GEMV_MAX_M ? 'gemv' : 'gemm');
    if (path !== 'gemv' && path !== 'gemm') throw new InputError(`${op}: unknown path ${String(path)}`);
    const acc = a.accumulate ? 1 : 0;
    const calls: KernelCall[] = [];
    if (path === 'gemv') {
      for (const p of a.w.parts) {
        if (p.rows === 0) continue;
        calls.push({ fn: 'gemv', args: [fmt, xs.ptr, xRowStride, M, p.buffer.ptr, p.rows, K, ys.ptr + 4 * p.rowStart, yRowStride, acc] });
      }
    } else {
      const s = this.gemmScratch(K, a.gemmScratch);
      for (const p of a.w.parts) {
        if (p.rows === 0) continue;
        calls.push({ fn: 'gemm', args: [fmt, xs.ptr, xRowStride, M, p.buffer.ptr, p.rows, K, ys.ptr + 4 * p.rowStart, yRowStride, acc, s.ptr],
          scratch: { arg: 10, stride: s.stride } });
      }
    }
    this.run(calls, M * N * K);
  }

  /** out[t, :] = table[ids[t], :] as f32 (EmbeddingOp); ids >= V give a zero row. */
  embedding(a: { ids: WasmBuffer; T: number; table: WasmTensor; out: WasmBuffer }): void {
    const op = `embedding(${a.table?.name})`;
    const { N: V, K: H, fmt } = this.weight(op, a.table);
    const T = int(`${op} T`, a.T);
    const ids = this.whole(`${op} ids`, a.ids, T);
    const out = this.whole(`${op} out`, a.out, T * H);
    if (T === 0 || H === 0) return;
    this.disjoint(op, ['out', out], ['ids', ids]);
    const calls = a.table.parts.map((p, i) => ({
      fn: 'embedding', args: [fmt, ids.ptr, T, p.buffer.ptr, p.rowStart, p.rows, V, H, out.ptr, i === 0 ? 1 : 0],
    }));
    this.run(calls, T * H * 4);
  }

  /** out = RMSNorm(x or concat(x, x2)) * weight, row by row (RmsNormOp). */
  rmsNorm(a: { x: WasmBuffer; x2?: WasmBuffer; add?: WasmBuffer; weight: WasmBuffer; out: WasmBuffer; T: number; H: number; eps: number }): void {
    const T = int('rmsNorm T', a.T), H = int('rmsNorm H', a.H, 1);
    if (!(a.eps >= 0)) throw new InputError(`rmsNorm: eps must be >= 0, got ${a.eps}`);
    if (a.add) {
      if (a.x2) throw new InputError('rmsNorm: x2 (concat) and add (sum) exclude each other');
      const x = this.whole('rmsNorm x', a.x, T * H);
      const ad = this.whole('rmsNorm add', a.add, T * H);
      const w = this.whole('rmsNorm weight', a.weight, H);
      const out = this.whole('rmsNorm out', a.out, T * H);
      if (T === 0) return;
      this.disjoint('rmsNorm', ['out', out], ['x', x], ['add', ad]);
      this.run([{ fn: 'rmsnormAdd', args: [x.ptr, ad.ptr, w.ptr, out.ptr, T, H, a.eps] }], T * H * 4);
      return;
    }
    const W = a.x2 ? 2 * H : H;
    const x = this.whole('rmsNorm x', a.x, T * H);
    const x2 = a.x2 ? this.whole('rmsNorm x2', a.x2, T * H) : x;
    const w = this.whole('rmsNorm weight', a.weight, W);
    const out = this.whole('rmsNorm out', a.out, T * W);
    if (T === 0) return;
    this.disjoint('rmsNorm', ['out', out], ['x', x], ['x2', x2]);
    this.run([{ fn: 'rmsnorm', args: [x.ptr, x2.ptr, w.ptr, out.ptr, T, H, W, a.eps] }], T * W * 3);
  }

  /** out = RMSNorm_per_group(y * silu(z)) * weight (GatedRmsNormOp). */
  gatedRmsNorm(a: { y: WasmBuffer; z: WasmStrided; weight: WasmBuffer; out: WasmBuffer; T: number; D: number; groupSize: number; eps: number }): void {
    const T = int('gatedRmsNorm T', a.T), D = int('gatedRmsNorm D', a.D, 1), gs = int('gatedRmsNorm groupSize', a.groupSize, 1);
    if (D % gs !== 0) throw new InputError(`gatedRmsNorm: D ${D} is not a multiple of groupSize ${gs}`);
    if (!(a.eps >= 0)) throw new InputError(`gatedRmsNorm: eps must be >= 0, got ${a.eps}`);
    const y = this.whole('gatedRmsNorm y', a.y, T * D);
    const z = this.span('gatedRmsNorm z', a.z.buffer, a.z.offset, T, a.z.rowStride, D);
    const w = this.whole('gatedRmsNorm weight', a.weight, D);
    const out = this.whole('gatedRmsNorm out', a.out, T * D);
    if (T === 0) return;
    this.disjoint('gatedRmsNorm', ['out', out], ['y', y], ['z', z]);
    this.run([{ fn: 'gatedRmsnorm', args: [y.ptr, z.ptr, a.z.rowStride, w.ptr, out.ptr, T, D, gs, a.eps] }], T * D * 12);
  }

  /** out [n] = a [n] + b [n] (AddOp); out may be a or b (elementwise, same index). */
  add(a: { a: WasmBuffer; b: WasmBuffer; out: WasmBuffer; n: number; aOffset?: number; bOffset?: number; outOffset?: number }): void {
    const n = int('add n', a.n);
    const x = this.span('add a', a.a, a.aOffset ?? 0, 1, n, n);
    const y = this.span('add b', a.b, a.bOffset ?? 0, 1, n, n);
    const o = this.span('add out', a.out, a.outOffset ?? 0, 1, n, n);
    if (n === 0) return;
    for (const [name, s] of [['a', x], ['b', y]] as const) {
      if (overlaps(o, s) && o.lo !== s.lo) throw new InputError(`add: out overlaps ${name} at a different offset`);
    }
    this.run([{ fn: 'add', args: [x.ptr, y.ptr, o.ptr, n] }], n);
  }

  /** out [T, F] = gelu_erf(gu[:, :F]) * gu[:, F:] (GeluGateOp). */
  geluGate(a: { gu: WasmBuffer; out: WasmBuffer; T: number; F: number }): void {
    const T = int('geluGate T', a.T), F = int('geluGate F', a.F, 1);
    const gu = this.whole('geluGate gu', a.gu, T * 2 * F);
    const out = this.whole('geluGate out', a.out, T * F);
    if (T === 0) return;
    this.disjoint('geluGate', ['out', out], ['gu', gu]);
    this.run([{ fn: 'geluGate', args: [gu.ptr, out.ptr, T, F] }], T * F * 20);
  }

  /** Causal depthwise conv1d + bias + SiLU over T inputs, advancing the conv state ring (Conv1dOp). */
  conv1d(a: { T: number; channels: number; kernelSize: number; input: WasmStrided; weight: WasmBuffer; bias: WasmBuffer;
    convState: WasmBuffer; pos0: number; out: WasmBuffer;
    /** out rows start at this row of `out` (default 0). */
    outRow?: number }): void {
    const T = int('conv1d T', a.T, 1), C = int('conv1d channels', a.channels, 1), K = int('conv1d kernelSize', a.kernelSize, 1);
    if (K < 2 || K > 8) throw new UnsupportedError(`conv1d: kernel size ${K} is not supported (2..8)`);
    const pos0 = int('conv1d pos0', a.pos0);
    const inp = this.span('conv1d input', a.input.buffer, a.input.offset, T, a.input.rowStride, C);
    const w = this.whole('conv1d weight', a.weight, C * K);
    const b = this.whole('conv1d bias', a.bias, C);
    const st = this.whole('conv1d convState', a.convState, K * C);
    const out = this.span('conv1d out', a.out, int('conv1d outRow', a.outRow ?? 0) * C, 1, T * C, T * C);
    this.disjoint('conv1d', ['out', out], ['input', inp], ['convState', st], ['weight', w], ['bias', b]);
    this.disjoint('conv1d', ['convState', st], ['input', inp], ['weight', w], ['bias', b]);
    this.run([{ fn: 'conv1d', args: [T, C, K, inp.ptr, a.input.rowStride, w.ptr, b.ptr, st.ptr, pos0, out.ptr] }], T * C * K * 2);
  }

  /** The recurrent selective scan (SsmScanOp, algorithm 'recurrent'): y [T, NH P], state advanced. */
  ssmScan(a: { T: number; nHeads: number; headDim: number; dState: number; nGroups: number;
    x: WasmStrided; dt: WasmStrided; B: WasmStrided; C: WasmStrided; dtBias: WasmBuffer; aLog: WasmBuffer; D: WasmBuffer;
    state: WasmBuffer; y: WasmBuffer; yOffset?: number; dtMin: number; dtMax: number }): void {
    const T = int('ssmScan T', a.T, 1), NH = int('ssmScan nHeads', a.nHeads, 1), P = int('ssmScan headDim', a.headDim, 1);
    const N = int('ssmScan dState', a.dState, 1), G = int('ssmScan nGroups', a.nGroups, 1);
    if (NH % G !== 0) throw new InputError(`ssmScan: nHeads ${NH} is not a multiple of nGroups ${G}`);
    if (!(a.dtMin >= 0) || !(a.dtMax >= a.dtMin)) throw new InputError(`ssmScan: bad dt clamp [${a.dtMin}, ${a.dtMax}]`);
    const x = this.span('ssmScan x', a.x.buffer, a.x.offset, T, a.x.rowStride, NH * P);
    const dt = this.span('ssmScan dt', a.dt.buffer, a.dt.offset, T, a.dt.rowStride, NH);
    const B = this.span('ssmScan B', a.B.buffer, a.B.offset, T, a.B.rowStride, G * N);
    const C = this.span('ssmScan C', a.C.buffer, a.C.offset, T, a.C.rowStride, G * N);
    const dtBias = this.whole('ssmScan dtBias', a.dtBias, NH), aLog = this.whole('ssmScan aLog', a.aLog, NH), D = this.whole('ssmScan D', a.D, NH);
    const state = this.whole('ssmScan state', a.state, NH * P * N);
    const y = this.span('ssmScan y', a.y, a.yOffset ?? 0, 1, T * NH * P, T * NH * P);
    const ins: [string, Span][] = [['x', x], ['dt', dt], ['B', B], ['C', C], ['dtBias', dtBias], ['aLog', aLog], ['D', D]];
    this.disjoint('ssmScan', ['y', y], ...ins, ['state', state]);
    this.disjoint('ssmScan', ['state', state], ...ins);
    this.run([{ fn: 'ssmScan', args: [T, NH, P, N, G, x.ptr, a.x.rowStride, dt.ptr, a.dt.rowStride, B.ptr, a.B.rowStride,
      C.ptr, a.C.rowStride, dtBias.ptr, aLog.ptr, D.ptr, state.ptr, y.ptr, a.dtMin, a.dtMax] }],
    NH > 1 ? T * NH * P * N * 3 : 0);
  }

  /** inv_freq table for (headDim, theta), formed as torch does in f32 (src kernels' ropeInvFreq). */
  private ropeTable(headDim: number, theta: number): WasmBuffer {
    const key = `${headDim}:${theta}`;
    let b = this.ropeTables.get(key);
    if (!b) {
      const half = headDim >> 1;
      const inv = new Float32Array(half);
      for (let i = 0; i < half; i++) inv[i] = Math.fround(1 / Math.fround(Math.pow(Math.fround(theta), Math.fround((2 * i) / headDim))));
      b = this.upload('weights:rope_inv_freq', inv);
      this.ropeTables.set(key, b);
    }
    return b;
  }

  /** NeoX rotate-half RoPE in place at positions pos0 .. pos0 + T - 1 (RopeOp). */
  rope(a: { x: WasmBuffer; offset?: number; rowStride: number; T: number; nHeads: number; headDim: number; pos0: number;
    /** The table inv_freq [headDim / 2] (ropeInvFreq), or theta to form (and keep) one here. */
    theta?: number; invFreq?: WasmBuffer }): void {
    const T = int('rope T', a.T), nH = int('rope nHeads', a.nHeads, 1), hd = int('rope headDim', a.headDim, 2), pos0 = int('rope pos0', a.pos0);
    if (hd % 2 !== 0) throw new InputError(`rope: headDim ${hd} must be even (rotate-half pairs i with i + hd/2)`);
    if (!a.invFreq && !((a.theta ?? NaN) > 0)) throw new InputError(`rope: theta must be > 0, got ${a.theta}`);
    const table = a.invFreq ? this.whole('rope invFreq', a.invFreq, hd >> 1) : undefined;
    if (pos0 + T > 1 << 24) throw new InputError(`rope: position ${pos0 + T} is beyond f32's exact integers (2^24)`);
    const x = this.span('rope x', a.x, a.offset ?? 0, T, a.rowStride, nH * hd);
    if (T === 0) return;
    if (table) this.disjoint('rope', ['x', x], ['invFreq', table]);
    const inv = table ? table.ptr : this.ropeTable(hd, a.theta!).ptr;
    this.run([{ fn: 'rope', args: [x.ptr, a.rowStride, T, nH, hd, pos0, inv] }], T * nH * hd * 4);
  }

  /** New K/V rows into a cache [capacity, width] stored as f32 or f16 (KvWriteOp). */
  kvWrite(a: { src: WasmBuffer; srcOffset?: number; srcRowStride?: number; T: number; width: number; dst: WasmBuffer; dstRow: number; dtype: 'f32' | 'f16' }): void {
    const T = int('kvWrite T', a.T), width = int('kvWrite width', a.width, 1), row = int('kvWrite dstRow', a.dstRow);
    if (a.dtype !== 'f32' && a.dtype !== 'f16') throw new UnsupportedError(`kvWrite: KV dtype ${String(a.dtype)} is not supported`);
    const esz = a.dtype === 'f16' ? 2 : 4;
    const stride = a.srcRowStride ?? width;
    const src = this.span('kvWrite src', a.src, a.srcOffset ?? 0, T, stride, width);
    const dst = this.span('kvWrite dst', a.dst, row * width, T, width, width, esz);
    if (T === 0) return;
    this.disjoint('kvWrite', ['dst', dst], ['src', src]);
    this.run([{ fn: 'storeRows', args: [src.ptr, stride, T, width, dst.ptr, width, esz === 2 ? 1 : 0] }], T * width);
  }

  /** Causal GQA attention over a KV cache (AttentionOp), f32 online softmax. */
  attention(a: { q: WasmBuffer; qOffset?: number; qRowStride: number; kCache: WasmBuffer; vCache: WasmBuffer; kvDtype: 'f32' | 'f16';
    out: WasmBuffer; T: number; pos0: number; nHeads: number; nKvHeads: number; headDim: number; scale: number }): void {
    const T = int('attention T', a.T), pos0 = int('attention pos0', a.pos0), nH = int('attention nHeads', a.nHeads, 1);
    const nKv = int('attention nKvHeads', a.nKvHeads, 1), hd = int('attention headDim', a.headDim, 1);
    if (nH % nKv !== 0) throw new InputError(`attention: nHeads ${nH} is not a multiple of nKvHeads ${nKv}`);
    if (!Number.isFinite(a.scale)) throw new InputError(`attention: scale must be finite, got ${a.scale}`);
    if (a.kvDtype !== 'f32' && a.kvDtype !== 'f16') throw new UnsupportedError(`attention: KV dtype ${String(a.kvDtype)} is not supported`);
    const esz = a.kvDtype === 'f16' ? 2 : 4;
    const keys = pos0 + T;
    const q = this.span('attention q', a.q, a.qOffset ?? 0, T, a.qRowStride, nH * hd);
    const k = this.whole('attention kCache', a.kCache, keys * nKv * hd, esz);
    const v = this.whole('attention vCache', a.vCache, keys * nKv * hd, esz);
    const out = this.whole('attention out', a.out, T * nH * hd);
    if (T === 0) return;
    this.disjoint('attention', ['out', out], ['q', q], ['kCache', k], ['vCache', v]);
    this.run([{ fn: 'attention', args: [q.ptr, a.qRowStride, a.kCache.ptr, a.vCache.ptr, esz === 2 ? 1 : 0, out.ptr, T, pos0, nH, nKv, hd, a.scale] }],
      T * nH * hd * (pos0 + (T + 1) / 2) * 2);
  }

  /** out[m] = argmax_v logits[m, v] as u32 (ArgmaxOp): lowest index on ties, NaN wins. */
  argmax(a: { logits: WasmBuffer; M: number; V: number; out: WasmBuffer }): void {
    const M = int('argmax M', a.M), V = int('argmax V', a.V, 1);
    const l = this.whole('argmax logits', a.logits, M * V);
    const out = this.whole('argmax out', a.out, M);
    if (M === 0) return;
    this.disjoint('argmax', ['out', out], ['logits', l]);
    this.run([{ fn: 'argmax', args: [l.ptr, M, V, out.ptr] }], M > 1 ? M * V : 0);
  }
}
