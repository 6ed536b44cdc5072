// The op interface between the models and the machines they run on. src/models/* describe the
// computation once against `Backend`; src/backends/webgpu/ implements it with WGSL kernels and
// src/backends/wasm/ with AssemblyScript SIMD kernels. Every op records (WebGPU) or runs (Wasm)
// in call order: an op sees the results of every op called before it. Results come back to the
// host only through `read`.
//
// Conventions shared by all ops:
//   - activations are f32, addressed in elements (not bytes): `xOffset`, `rowStride`;
//   - shapes are PyTorch order, outermost first, written in the field comments: `x [T, H]`;
//   - an output never aliases an input of the same op unless the op says so;
//   - arguments are validated at the op boundary (typed InputError / UnsupportedError), so a
//     bad call fails before anything is recorded.
import type { Buf, Strided, WeightTensor } from './tensor.ts';

export type { Buf, Strided, WeightTensor } from './tensor.ts';

export type BackendKind = 'webgpu' | 'wasm';
export type ScanAlgorithm = 'recurrent' | 'chunked';
/** Storage of the attention KV cache. Attention always accumulates in f32. */
export type KvDType = 'f32' | 'f16';

export interface MemoryStats {
  /** Bytes in buffers created and not yet freed (pooled scratch included). */
  liveBytes: number;
  /** Highest liveBytes since creation or the last resetPeak(). */
  peakBytes: number;
  /** Live bytes per label prefix (the part before the first ':' or '.'). */
  byLabel: Record<string, number>;
  /** Number of live buffers. */
  liveBuffers: number;
}

export interface BackendLimits {
  /** Largest buffer one op may bind (weights are split into parts at most this large). */
  maxBindingBytes: number;
  /** Largest single buffer. */
  maxBufferBytes: number;
  /** Byte offsets of views (Backend.view) are multiples of this. */
  viewAlignment: number;
}

export interface MatmulOp {
  /** Activations x [M, xRowStride] from element xOffset (a row may be a slice of a wider row). */
  x: Buf;
  xOffset?: number;
  /** Elements between rows of x (default K). */
  xRowStride?: number;
  M: number;
  /** Weight [N, K] in any storage format, possibly split along N. */
  w: WeightTensor;
  /** y[m, n] at yOffset + m * yRowStride + n. Must not be x. */
  y: Buf;
  yOffset?: number;
  /** Elements between rows of y (default N). */
  yRowStride?: number;
  /** y += x · Wᵀ instead of y = x · Wᵀ. */
  accumulate?: boolean;
  /**
   * The op that produces the matmul's real input from x: y = f(x) · Wᵀ. A backend may fuse f into
   * the matmul (the WebGPU decode GEMV normalises x as it reads it, saving a dispatch per
   * projection) or run f into `input.scratch` first; both give the standalone op's results up to
   * the order of the norm's sum of squares. x rows are then dense from xOffset 0 (xRowStride
   * unset), K wide, or 2K wide ([gate | up]) for 'geluGate'.
   */
  input?: MatmulInput;
}

/** MatmulOp.input: the standalone op (rmsNorm, also of x + add; gatedRmsNorm; geluGate) a matmul may absorb. */
export type MatmulInput =
  | { kind: 'rmsNorm'; weight: Buf; eps: number; scratch: Buf; add?: Buf }
  | { kind: 'gatedRmsNorm'; weight: Buf; eps: number; z: Strided; groupSize: number; scratch: Buf }
  | { kind: 'geluGate'; scratch: Buf };

export interface EmbeddingOp {
  /** Token ids u32 [T]; the caller validates ids < V. */
  ids: Buf;
  T: number;
  /** Table [V, H], any storage format. */
  table: WeightTensor;
  /** out [T, H] */
  out: Buf;
}

export interface RmsNormOp {
  /** x [T, H] */
  x: Buf;
  /** x2 [T, H]: when given, rows are concat(x[t], x2[t]) of width 2H (Zamba2 shared block input). */
  x2?: Buf;
  /** add [T, H]: when given, rows are x[t] + add[t] (a hybrid layer's RMSNorm(x + t); the sum is not stored). */
  add?: Buf;
  /** weight [H] or [2H] with x2 */
  weight: Buf;
  /** out [T, H] or [T, 2H]; must not be x or x2 */
  out: Buf;
  T: number;
  H: number;
  eps: number;
}

export interface GatedRmsNormOp {
  /** y [T, D] */
  y: Buf;
  /** z(t, c) = z.buffer[z.offset + t * z.rowStride + c], c < D */
  z: Strided;
  /** weight [D] */
  weight: Buf;
  /** out [T, D] = RMSNorm per group of groupSize channels (y · silu(z)) · weight */
  out: Buf;
  T: number;
  D: number;
  groupSize: number;
  eps: number;
}

export interface AddOp {
  /** out [n] = a [n] + b [n]; out aliases neither. */
  a: Buf;
  b: Buf;
  out: Buf;
  n: number;
}

export interface GeluGateOp {
  /** gu [T, 2F]: gate half then up half */
  gu: Buf;
  /** out [T, F] = gelu_erf(gate) · up */
  out: Buf;
  T: number;
  F: number;
}

export interface Conv1dOp {
  T: number;
  channels: number;
  kernelSize: number;
  /** xin(t, c) = input.buffer[input.offset + t * input.rowStride + c] */
  input: Strided;
  /** weight [C, K] (conv1d.weight [C, 1, K]) */
  weight: Buf;
  /** bias [C] */
  bias: Buf;
  /** The ring of raw inputs [K, C] (convStateBytes); read, then advanced by T rows. */
  convState: Buf;
  /** Absolute position of input row 0. */
  pos0: number;
  /** out [T, C] = silu(bias + causal depthwise conv) */
  out: Buf;
}

export interface SsmScanOp {
  T: number;
  nHeads: number;
  headDim: number;
  dState: number;
  nGroups: number;
  /** x(t, h, p) at x.offset + t * x.rowStride + h * P + p */
  x: Strided;
  /** raw dt(t, h) (before dt_bias and softplus) */
  dt: Strided;
  /** B(t, g, n), C(t, g, n) */
  B: Strided;
  C: Strided;
  /** [NH] each */
  dtBias: Buf;
  aLog: Buf;
  D: Buf;
  /** ssmState [NH, P, N] f32: initial state in, final state out */
  state: Buf;
  /** y [T, NH * P] (with the D skip) */
  y: Buf;
  dtMin: number;
  /** Upper dt clamp; Infinity for none. */
  dtMax: number;
  algorithm: ScanAlgorithm;
}

/** One sequence's rows in a ConvScanOp. */
export interface ConvScanSequence {
  /** Its first row in xBC / dt / y, and its row count. */
  rowStart: number;
  T: number;
  /** Absolute position of its first row. */
  pos0: number;
  /** Its conv ring [K, convDim] and SSM state [NH, P, N] (read, then advanced). */
  convState: Buf;
  ssmState: Buf;
}

/**
 * The mixer's core between in_proj and the gated norm for one or more sequences whose rows follow
 * each other: conv1d over xBC then the selective scan on its output (docs/model.md §Mixer steps 2-5). One op so a
 * backend can fuse both (and, for decode steps of several sequences, run them in one kernel when
 * their states are slots of one pool). `xbc` receives conv outputs when the backend runs the two
 * separately (its contents are unspecified after the op). x, B and C are the columns [0, di),
 * [di, di + GN), [di + GN, convDim) of the conv output.
 */
export interface ConvScanOp {
  seqs: readonly ConvScanSequence[];
  /** Raw (pre-conv) xBC rows [rows, convDim] and dt rows [rows, NH], usually slices of in_proj's output. */
  xBC: Strided;
  dt: Strided;
  convDim: number;
  kernelSize: number;
  convWeight: Buf;
  convBias: Buf;
  /** Scratch for conv outputs [T, convDim] of the longest sequence. */
  xbc: Buf;
  nHeads: number;
  headDim: number;
  dState: number;
  nGroups: number;
  dtBias: Buf;
  aLog: Buf;
  D: Buf;
  /** y [rows, NH * P] (with the D skip) */
  y: Buf;
  dtMin: number;
  dtMax: number;
  /** The scan to use; undefined: the backend's choice for each sequence's length (scanFor). */
  algorithm?: ScanAlgorithm;
  /** The block's op scratch (Backend.opScratch), for the chunked scan. */
  scratch?: OpScratchBuffers;
  /** A u32 [4 * rows] table the backend may write for batched kernels (engine workspace 'seqs'). */
  seqTable?: Buf;
}

export interface RopeOp {
  /** Rows x[offset + t * rowStride + h * headDim + i], rotated in place (NeoX rotate-half). */
  x: Buf;
  offset?: number;
  rowStride: number;
  T: number;
  nHeads: number;
  headDim: number;
  /** Absolute position of row 0. */
  pos0: number;
  /** inv_freq [headDim / 2] f32 (ropeInvFreq), held by the model. */
  invFreq: Buf;
  /** u32 [T]: each row's absolute position (rows of several sequences); pos0 is then ignored. */
  positions?: Buf;
}

/**
 * inv_freq[i] = 1 / theta^(2i / hd) as torch forms it in float32 (each op rounded to f32), so the
 * angles pos * inv_freq match transformers' to the bit. Every backend's RoPE reads this table.
 */
export function ropeInvFreq(headDim: number, theta: number): Float32Array {
  const half = headDim >> 1;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    out[i] = Math.fround(1 / Math.fround(Math.pow(Math.fround(theta), Math.fround((2 * i) / headDim))));
  }
  return out;
}

export interface KvWriteOp {
  /** src rows [T, width] f32 at srcOffset + t * srcRowStride */
  src: Buf;
  srcOffset?: number;
  srcRowStride?: number;
  T: number;
  width: number;
  /** A KV cache [capacity, width] in `dtype`; rows dstRow .. dstRow + T - 1 are written. */
  dst: Buf;
  /** A second cache like dst that receives the next `width` values of each src row (src rows of 2 width: keys then values, one op). */
  dst2?: Buf;
  dstRow: number;
  dtype: KvDType;
}

export interface AttentionOp {
  /** q(t, h, d) = q[qOffset + t * qRowStride + h * headDim + d] (RoPE applied) */
  q: Buf;
  qOffset?: number;
  qRowStride: number;
  /** KV caches [capacity, nKvHeads * headDim] in kvDtype; rows 0 .. pos0 + T - 1 hold keys/values */
  kCache: Buf;
  vCache: Buf;
  kvDtype: KvDType;
  /** out [T, nHeads * headDim] */
  out: Buf;
  T: number;
  /** Query t sits at absolute position pos0 + t and attends keys 0 .. pos0 + t. */
  pos0: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  scale: number;
  /** The block's op scratch (Backend.opScratch), for split-K partials. */
  scratch?: OpScratchBuffers;
}

export interface ArgmaxOp {
  /** logits [M, V] */
  logits: Buf;
  M: number;
  V: number;
  /** out u32 [M]: lowest index on ties, NaN counts as the maximum */
  out: Buf;
}

/**
 * What sizes the scratch a model's ops need in a block of at most T tokens. The engine keeps the
 * buffers Backend.opScratch names in its workspace and passes them to the ops as `scratch` (ops
 * run one after another, so they share them); the memory planner counts the same figures.
 */
export interface OpScratchQuery {
  /** Most tokens in a block. */
  T: number;
  /** SSM heads. */
  nHeads: number;
  /** Whether any block may use the chunked scan. */
  chunked: boolean;
  /** Attention heads and head dim (Zamba2), if the model has attention. */
  attention?: { nHeads: number; headDim: number };
}

/**
 * Bytes of a conv state: a ring f32 [K, C] whose row (a mod K) holds the raw (pre-conv) input of
 * absolute position a, for the last K positions; zeros for a fresh sequence. A ring of K rows (one
 * more than the conv reads) lets a decode step write position a's row while other threads still
 * read rows a-1 .. a-K+1, so the conv and its state update fit one dispatch. Every backend uses
 * this layout, so states move between them unchanged.
 */
export function convStateBytes(channels: number, kernelSize: number): number {
  return 4 * kernelSize * channels;
}

/** Op scratch buffers by the names Backend.opScratch gave them. */
export type OpScratchBuffers = Readonly<Record<string, Buf>>;

export interface Backend {
  readonly kind: BackendKind;
  /** Adapter or CPU description for reports: `llvmpipe`, `NVIDIA H200`, `wasm-simd 2 threads`. */
  readonly name: string;
  readonly limits: BackendLimits;
  /** The KV dtype used when the caller does not choose (f16 where it is supported natively). */
  readonly defaultKvDtype: KvDType;
  /** True when f16 KV caches are supported at all. */
  readonly supportsF16Kv: boolean;

  // Memory. Every buffer goes through the backend's one accounting allocator.
  /** A new zero-filled buffer of `bytes` (rounded up to 4). */
  alloc(label: string, bytes: number): Buf;
  /**
   * A window [byteOffset, byteOffset + byteLength) of `buf` that every op, read, write, copy and
   * clear accepts as a buffer of its own (sequence states live as slots of one pool buffer, so a
   * batched kernel can reach all of them). byteOffset must be a multiple of limits.viewAlignment.
   * Freeing a view does nothing; the view is valid while `buf` is.
   */
  view(buf: Buf, byteOffset: number, byteLength: number): Buf;
  /** If `b` is a view: the buffer it is a window of and its byte offset there; else b itself at 0. */
  viewOf(b: Buf): { buffer: Buf; byteOffset: number };
  /** Frees a buffer (after work already recorded that uses it); freeing twice is harmless. */
  free(buf: Buf): void;
  isLive(buf: Buf): boolean;
  memoryStats(): MemoryStats;
  resetPeak(): void;
  /** Frees pooled scratch buffers. */
  trimPool(): void;

  // Data movement, in stream order with the ops.
  write(buf: Buf, byteOffset: number, data: ArrayBufferView): void;
  copy(src: Buf, srcOffset: number, dst: Buf, dstOffset: number, bytes: number): void;
  clear(buf: Buf, byteOffset?: number, bytes?: number): void;
  read(buf: Buf, byteOffset: number, bytes: number): Promise<ArrayBuffer>;
  readF32(buf: Buf, offsetElems: number, count: number): Promise<Float32Array>;
  readU32(buf: Buf, offsetElems: number, count: number): Promise<Uint32Array>;
  /** Starts work recorded so far (WebGPU submits; Wasm has nothing pending). */
  flush(): void;
  /** Waits until all work has finished. */
  sync(): Promise<void>;
  /** Throws the backend's pending failure (device lost, uncaptured error), if any. */
  check(): void;
  /**
   * Runs `fn` with every op validated and its kernels compiled but nothing executed (results are
   * garbage, allocations are real): how a model builds every kernel variant at load. A backend
   * without compilation just skips the work.
   */
  compileOnly<T>(fn: () => Promise<T>): Promise<T>;
  /** Kernel launches (WebGPU dispatches, Wasm kernel calls) and submits since creation. */
  counters(): { dispatches: number; submits: number };

  // Ops (see the op types above).
  embedding(op: EmbeddingOp): Promise<void>;
  matmul(op: MatmulOp): Promise<void>;
  rmsNorm(op: RmsNormOp): Promise<void>;
  gatedRmsNorm(op: GatedRmsNormOp): Promise<void>;
  add(op: AddOp): Promise<void>;
  geluGate(op: GeluGateOp): Promise<void>;
  conv1d(op: Conv1dOp): Promise<void>;
  ssmScan(op: SsmScanOp): Promise<void>;
  convScan(op: ConvScanOp): Promise<void>;
  rope(op: RopeOp): Promise<void>;
  kvWrite(op: KvWriteOp): Promise<void>;
  attention(op: AttentionOp): Promise<void>;
  argmax(op: ArgmaxOp): Promise<void>;

  /** The scan a prefill block of T tokens should use when the caller leaves it to the backend. */
  scanFor(T: number): ScanAlgorithm;
  /** The op scratch buffers (name → bytes) for blocks described by `q` (exact; see OpScratchQuery). */
  opScratch(q: OpScratchQuery): Record<string, number>;
  /**
   * Keeps a host-readable staging area of at least `bytes` for `read`, so readbacks allocate
   * nothing per call (and the memory plan is exact); it grows only when asked for more.
   */
  reserveReadback(bytes: number): void;

  /** Frees everything; returns buffers still held (leaks). */
  destroy(): Promise<{ label: string; size: number }[]>;
}
