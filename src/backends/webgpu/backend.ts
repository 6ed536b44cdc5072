// The WebGPU implementation of the op interface (src/backends/backend.ts): each op validates its
// arguments and records its kernels (src/backends/webgpu/kernels/*) into the context's command
// stream; `read` submits and maps. Buffers are GPUBuffers from the context's one allocator.
import type {
  AddOp, ArgmaxOp, AttentionOp, Backend, BackendLimits, Conv1dOp, ConvScanOp, EmbeddingOp, GatedRmsNormOp, GeluGateOp,
  KvDType, KvWriteOp, MatmulOp, MemoryStats, OpScratchQuery, RmsNormOp, RopeOp, ScanAlgorithm, SsmScanOp,
} from '../backend.ts';
import type { Buf, WeightTensor } from '../tensor.ts';
import { InputError } from '../../errors.ts';
import { GpuContext, type DeviceOptions, type RecordedDispatch } from './context.ts';
import { STORAGE_RW } from './flags.ts';
import type { GpuTensor } from './tensor.ts';
import { argmax, embedding, matmul } from './kernels/matmul.ts';
import { gatedRmsNorm, rmsNorm } from './kernels/norm.ts';
import { add } from './kernels/add.ts';
import { geluGate } from './kernels/elementwise.ts';
import { prologueFits, type GemvPrologue } from './kernels/matmul-quant.ts';
import { runMatmulInput } from '../matmul-input.ts';
import { conv1d } from './kernels/conv1d.ts';
import { chunkedScanScratch, headParams, ssmDecodeStep, ssmScan } from './kernels/scan.ts';
import { rope } from './kernels/rope.ts';
import { attention, maxAttentionScratchBytes } from './kernels/attention.ts';
import { kvWrite } from './kernels/kv.ts';

/** Prefill blocks this long or longer use the chunked scan (measured by bench/speed; see README). */
export const CHUNKED_SCAN_MIN_TOKENS = 64;

/** A window of a GPUBuffer standing for a buffer of its own (Backend.view). */
class GpuView implements Buf {
  constructor(readonly buffer: GPUBuffer, readonly offset: number, readonly size: number) {}
  get label(): string { return this.buffer.label; }
}

/** The binding (a buffer or a window of one) an op passes to the launchers. */
const gpu = (b: Buf): GPUBuffer => (b instanceof GpuView ? ({ buffer: b.buffer, offset: b.offset, size: b.size } as unknown as GPUBuffer) : (b as GPUBuffer));
/** The underlying buffer and the byte offset of `b` in it. */
const at = (b: Buf): [GPUBuffer, number] => (b instanceof GpuView ? [b.buffer, b.offset] : [b as GPUBuffer, 0]);

/**
 * The WebGPU ops' scratch for a block (OpScratchQuery): `ops.a` holds the chunked scan's decayed
 * C·Bᵀ matrices or the split-K attention partials, whichever is larger (they never run at once);
 * `ops.b` the chunk's cumulative decays, which the scan kernels read beside `ops.a` (one dispatch
 * may not bind one buffer both writable and read-only). The scan constants live beside the
 * weights (weights:scan.hp), not here.
 */
export function webgpuOpScratch(q: OpScratchQuery): Record<string, number> {
  const [cum, m] = q.chunked ? chunkedScanScratch(q.T, q.nHeads) : [0, 0];
  const att = q.attention ? maxAttentionScratchBytes(q.T, q.attention.nHeads, q.attention.headDim) : 0;
  const out: Record<string, number> = {};
  if (Math.max(m, att) > 0) out[OPS_A] = Math.max(m, att);
  if (cum > 0) out[OPS_B] = cum;
  return out;
}

/** Matmul call shapes kept per weight (a decode step has a handful; more means stale shapes). */
const MAX_PLANS_PER_WEIGHT = 16;
const OPS_A = 'ops.a';
const OPS_B = 'ops.b';

export class WebGpuBackend implements Backend {
  readonly kind = 'webgpu' as const;
  readonly limits: BackendLimits;

  /** `ownsContext`: destroy() also destroys the context (false for a caller's shared context). */
  constructor(readonly ctx: GpuContext, private readonly ownsContext = true) {
    this.limits = {
      maxBindingBytes: Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize),
      maxBufferBytes: ctx.limits.maxBufferSize,
      viewAlignment: ctx.limits.minStorageBufferOffsetAlignment,
    };
  }

  static async create(opts?: DeviceOptions): Promise<WebGpuBackend> {
    return new WebGpuBackend(await GpuContext.create(opts), true);
  }

  get name(): string { return this.ctx.adapter.name; }
  get supportsF16Kv(): boolean { return true; }
  /**
   * f16 where the device has shader-f16 (halves the only memory that grows with the prompt;
   * attention still accumulates in f32). The kernels read an f16 cache on any device
   * (unpack2x16float), so 'f16' can also be asked for explicitly elsewhere.
   */
  get defaultKvDtype(): KvDType { return this.ctx.features.shaderF16 ? 'f16' : 'f32'; }

  alloc(label: string, bytes: number): Buf { return this.ctx.alloc.create(label, bytes, STORAGE_RW); }
  free(buf: Buf): void { if (!(buf instanceof GpuView)) this.ctx.alloc.destroy(buf as GPUBuffer); }
  isLive(buf: Buf): boolean { return this.ctx.alloc.isLive(at(buf)[0]); }

  view(buf: Buf, byteOffset: number, byteLength: number): Buf {
    const [base, off] = at(buf);
    const o = off + byteOffset;
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || o % this.limits.viewAlignment !== 0) {
      throw new InputError(`view: offset ${o} is not a multiple of ${this.limits.viewAlignment}`);
    }
    if (!Number.isInteger(byteLength) || byteLength < 4 || byteLength % 4 !== 0 || byteOffset + byteLength > buf.size) {
      throw new InputError(`view: [${byteOffset}, ${byteOffset + byteLength}) does not fit a buffer of ${buf.size} bytes`);
    }
    return new GpuView(base, o, byteLength);
  }

  viewOf(b: Buf): { buffer: Buf; byteOffset: number } {
    const [buffer, byteOffset] = at(b);
    return { buffer, byteOffset };
  }
  memoryStats(): MemoryStats { return this.ctx.memoryStats(); }
  resetPeak(): void { this.ctx.alloc.resetPeak(); }
  trimPool(): void {
    this.ctx.alloc.trimPool();
    this.ctx.trimStaging();
    if (this.ownSeqTable) { this.ctx.alloc.destroy(this.ownSeqTable); this.ownSeqTable = undefined; }
  }

  write(buf: Buf, byteOffset: number, data: ArrayBufferView): void {
    const [b, o] = at(buf);
    this.ctx.write(b, o + byteOffset, data);
  }
  copy(src: Buf, srcOffset: number, dst: Buf, dstOffset: number, bytes: number): void {
    const [s, so] = at(src), [d, dO] = at(dst);
    this.ctx.copy(s, so + srcOffset, d, dO + dstOffset, bytes);
  }
  clear(buf: Buf, byteOffset = 0, bytes?: number): void {
    const [b, o] = at(buf);
    this.ctx.clear(b, o + byteOffset, bytes ?? buf.size - byteOffset);
  }
  read(buf: Buf, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
    const [b, o] = at(buf);
    return this.ctx.read(b, o + byteOffset, bytes);
  }
  async readF32(buf: Buf, offsetElems: number, count: number): Promise<Float32Array> { return new Float32Array(await this.read(buf, 4 * offsetElems, 4 * count)); }
  async readU32(buf: Buf, offsetElems: number, count: number): Promise<Uint32Array> { return new Uint32Array(await this.read(buf, 4 * offsetElems, 4 * count)); }
  flush(): void { this.ctx.flush(); }
  sync(): Promise<void> { return this.ctx.sync(); }
  check(): void { this.ctx.check(); }
  async compileOnly<T>(fn: () => Promise<T>): Promise<T> {
    const was = this.ctx.allocationOnly;
    this.ctx.allocationOnly = true;
    try { return await fn(); } finally { this.ctx.allocationOnly = was; }
  }

  counters(): { dispatches: number; submits: number } { return { dispatches: this.ctx.dispatchCount, submits: this.ctx.submitCount }; }

  embedding(op: EmbeddingOp): Promise<void> {
    return embedding(this.ctx, { ids: gpu(op.ids), T: op.T, table: op.table as GpuTensor, out: gpu(op.out) });
  }

  async matmul(op: MatmulOp): Promise<void> {
    const w = op.w as GpuTensor;
    const prologue = op.input && this.fusedInput(op);
    if (op.input && !prologue) op = await runMatmulInput(this, op);
    // A decode step makes the same matmul calls every token: the dispatches of a call are kept per
    // weight and call shape (buffers, offsets, prologue) and replayed, skipping validation,
    // variant lookup and params building. Buffers never change size, so a call that validated once
    // stays valid; a destroyed buffer is caught by the bind group cache as on the first call.
    const key = this.matmulKey(op, prologue);
    let plans = this.matmulPlans.get(w);
    const plan = plans?.get(key);
    if (plan) { this.ctx.replay(plan); return; }
    const args = prologue
      ? { ...op, input: undefined, x: gpu(op.x), y: gpu(op.y), w, prologue }
      : { ...op, x: gpu(op.x), y: gpu(op.y), w };
    // The launcher appends its dispatches to `recorded` instead of recording them: recorded here in
    // one piece, after its awaits, so a concurrent op on this context cannot land in between.
    const recorded: RecordedDispatch[] = [];
    await matmul(this.ctx, { ...args, sink: recorded });
    this.ctx.replay(recorded);
    if (recorded.length === 0) return; // M, N or K = 0: nothing (or a clear) to repeat
    if (!plans) this.matmulPlans.set(w, (plans = new Map()));
    if (plans.size >= MAX_PLANS_PER_WEIGHT) plans.clear(); // stale shapes of a resized workspace
    plans.set(key, recorded);
  }

  private readonly matmulPlans = new WeakMap<WeightTensor, Map<string, RecordedDispatch[]>>();

  private idOf(b: Buf): string {
    const [buffer] = at(b);
    const id = this.ctx.bufferId(buffer);
    return b instanceof GpuView ? `${id}@${b.offset}+${b.size}` : `${id}`;
  }

  private matmulKey(op: MatmulOp, p: GemvPrologue | undefined): string {
    let key = `${op.M}|${op.xOffset ?? ''}|${op.xRowStride ?? ''}|${op.yOffset ?? ''}|${op.yRowStride ?? ''}|${op.accumulate ? 1 : 0}|${this.idOf(op.x)}|${this.idOf(op.y)}`;
    if (p) {
      const f = op.input!;
      key += `|${p.kind}`;
      if (f.kind !== 'geluGate') key += `|${this.idOf(f.weight)}|${f.eps}`;
      if (f.kind === 'rmsNorm' && f.add) key += `|${this.idOf(f.add)}`;
      if (f.kind === 'gatedRmsNorm') key += `|${this.idOf(f.z.buffer)}|${f.z.offset}|${f.groupSize}`;
    }
    return key;
  }

  /**
   * The GEMV prologue for `op.input`, where the fused kernel pays: one x row (decode) with GPU
   * tuning. Software adapters keep the separate norm, whose lane-per-row GEMV is the cheaper one
   * there (the prologue needs the workgroup traversal).
   */
  private fusedInput(op: MatmulOp): GemvPrologue | undefined {
    const f = op.input;
    if (!f || op.M !== 1 || this.ctx.softwareTuning || (op.xOffset ?? 0) !== 0 || op.xRowStride !== undefined) return undefined;
    const p: GemvPrologue = f.kind === 'rmsNorm'
      ? (f.add ? { kind: 'norm-add', weight: gpu(f.weight), eps: f.eps, add: gpu(f.add) } : { kind: 'norm', weight: gpu(f.weight), eps: f.eps })
      : f.kind === 'gatedRmsNorm' ? { kind: 'gated', weight: gpu(f.weight), eps: f.eps, z: { buffer: gpu(f.z.buffer), offset: f.z.offset }, groupSize: f.groupSize }
      : { kind: 'gelu' };
    return prologueFits(op.w as GpuTensor, 1, p) ? p : undefined;
  }

  rmsNorm(op: RmsNormOp): Promise<void> {
    return rmsNorm(this.ctx, { ...op, x: gpu(op.x), x2: op.x2 && gpu(op.x2), add: op.add && gpu(op.add), weight: gpu(op.weight), out: gpu(op.out) });
  }

  gatedRmsNorm(op: GatedRmsNormOp): Promise<void> {
    return gatedRmsNorm(this.ctx, { ...op, y: gpu(op.y), z: { ...op.z, buffer: gpu(op.z.buffer) }, weight: gpu(op.weight), out: gpu(op.out) });
  }

  add(op: AddOp): Promise<void> { return add(this.ctx, gpu(op.a), gpu(op.b), gpu(op.out), op.n); }

  geluGate(op: GeluGateOp): Promise<void> { return geluGate(this.ctx, { ...op, gu: gpu(op.gu), out: gpu(op.out) }); }

  conv1d(op: Conv1dOp): Promise<void> {
    return conv1d(this.ctx, {
      ...op, input: { ...op.input, buffer: gpu(op.input.buffer) }, weight: gpu(op.weight), bias: gpu(op.bias),
      convState: gpu(op.convState), out: gpu(op.out),
    });
  }

  ssmScan(op: SsmScanOp): Promise<void> {
    const s = (v: SsmScanOp['x']) => ({ ...v, buffer: gpu(v.buffer) });
    return ssmScan(this.ctx, {
      ...op, x: s(op.x), dt: s(op.dt), B: s(op.B), C: s(op.C), dtBias: gpu(op.dtBias), aLog: gpu(op.aLog), D: gpu(op.D),
      state: gpu(op.state), y: gpu(op.y), scratch: undefined,
    });
  }

  async convScan(op: ConvScanOp): Promise<void> {
    const hp = await this.headParams(op);
    const zx = op.xBC.buffer;
    const di = op.nHeads * op.headDim, GN = op.nGroups * op.dState;
    // Decode tokens of sequences whose states are slots of one pool: one fused dispatch for all.
    const [convPool] = at(op.seqs[0].convState), [ssmPool] = at(op.seqs[0].ssmState);
    const fused = op.seqs.every((q, i) => q.T === 1 && q.rowStart === i && at(q.convState)[0] === convPool && at(q.ssmState)[0] === ssmPool)
      && op.dt.buffer === zx && op.dt.rowStride === op.xBC.rowStride && (op.seqs.length === 1 || op.seqTable !== undefined);
    if (fused) {
      const seqs = this.seqTable(op);
      return ssmDecodeStep(this.ctx, {
        B: op.seqs.length, nHeads: op.nHeads, headDim: op.headDim, dState: op.dState, nGroups: op.nGroups, convDim: op.convDim,
        kernelSize: op.kernelSize, zx: gpu(zx), xbcOffset: op.xBC.offset, dtOffset: op.dt.offset, zxStride: op.xBC.rowStride,
        convWeight: gpu(op.convWeight), convBias: gpu(op.convBias), convState: convPool, hp, state: ssmPool, y: gpu(op.y),
        seqs, dtMin: op.dtMin, dtMax: op.dtMax,
      });
    }
    const view = (offset: number) => ({ buffer: gpu(op.xbc), offset, rowStride: op.convDim });
    const scratch = op.scratch?.[OPS_A] && op.scratch[OPS_B] ? { m: gpu(op.scratch[OPS_A]), cum: gpu(op.scratch[OPS_B]) } : undefined;
    for (const q of op.seqs) {
      // Each sequence on its own: its rows of xBC and dt, its states; y rows in place.
      await this.conv1d({
        T: q.T, channels: op.convDim, kernelSize: op.kernelSize, weight: op.convWeight, bias: op.convBias,
        input: { ...op.xBC, offset: op.xBC.offset + q.rowStart * op.xBC.rowStride }, convState: q.convState, out: op.xbc, pos0: q.pos0,
      });
      await ssmScan(this.ctx, {
        T: q.T, nHeads: op.nHeads, headDim: op.headDim, dState: op.dState, nGroups: op.nGroups,
        x: view(0), B: view(di), C: view(di + GN),
        dt: { buffer: gpu(op.dt.buffer), offset: op.dt.offset + q.rowStart * op.dt.rowStride, rowStride: op.dt.rowStride },
        dtBias: gpu(op.dtBias), aLog: gpu(op.aLog), D: gpu(op.D), state: gpu(q.ssmState), y: gpu(op.y), yOffset: q.rowStart * di,
        dtMin: op.dtMin, dtMax: op.dtMax, algorithm: op.algorithm ?? this.scanFor(q.T), hp, scratch,
      });
    }
  }

  private lastSeqTable: { buffer: Buf; key: string } | undefined;

  /**
   * The fused decode kernel's per-sequence table (ring offset, state offset, position) in `op.seqTable`
   * (or a one-row buffer of the backend's own for a single sequence). Every layer of a step passes the
   * same table, so it is written once per step.
   */
  private seqTable(op: ConvScanOp): GPUBuffer {
    const rows = new Uint32Array(4 * op.seqs.length);
    op.seqs.forEach((q, i) => {
      rows[4 * i] = at(q.convState)[1] / 4;
      rows[4 * i + 1] = at(q.ssmState)[1] / 4;
      rows[4 * i + 2] = q.pos0;
    });
    const key = rows.join(',');
    const buffer = op.seqTable ?? (this.ownSeqTable ??= this.ctx.alloc.create('runtime:seqs', 16, STORAGE_RW));
    if (this.lastSeqTable?.buffer !== buffer || this.lastSeqTable.key !== key || !this.isLive(buffer)) {
      this.write(buffer, 0, rows);
      this.lastSeqTable = { buffer, key };
    }
    return gpu(buffer);
  }

  private ownSeqTable: GPUBuffer | undefined;

  /**
   * The packed per-head scan constants of a layer, computed once from its weights and kept beside
   * them (freed with them): decode then needs no dispatch to rebuild them every token.
   */
  private async headParams(op: Pick<ConvScanOp, 'dtBias' | 'aLog' | 'D' | 'nHeads'>): Promise<GPUBuffer> {
    let fresh: GPUBuffer | undefined;
    const hp = this.ctx.derived(gpu(op.aLog), 'scan.hp', () => (fresh = this.ctx.alloc.create('weights:scan.hp', 16 * op.nHeads, STORAGE_RW)));
    if (fresh) {
      // Kept for the model's life, so computed for real even while compiling only.
      const was = this.ctx.allocationOnly;
      this.ctx.allocationOnly = false;
      try { await headParams(this.ctx, gpu(op.dtBias), gpu(op.aLog), gpu(op.D), op.nHeads, hp); } finally { this.ctx.allocationOnly = was; }
    }
    return hp;
  }

  rope(op: RopeOp): Promise<void> { return rope(this.ctx, { ...op, x: gpu(op.x), theta: 1, invFreq: gpu(op.invFreq), positions: op.positions && gpu(op.positions) }); }

  kvWrite(op: KvWriteOp): Promise<void> { return kvWrite(this.ctx, { ...op, src: gpu(op.src), dst: gpu(op.dst), dst2: op.dst2 && gpu(op.dst2) }); }

  attention(op: AttentionOp): Promise<void> {
    return attention(this.ctx, { ...op, q: gpu(op.q), kCache: gpu(op.kCache), vCache: gpu(op.vCache), out: gpu(op.out), scratch: op.scratch?.[OPS_A] && gpu(op.scratch[OPS_A]) });
  }

  argmax(op: ArgmaxOp): Promise<void> { return argmax(this.ctx, { ...op, logits: gpu(op.logits), out: gpu(op.out) }); }

  scanFor(T: number): ScanAlgorithm { return T >= CHUNKED_SCAN_MIN_TOKENS ? 'chunked' : 'recurrent'; }

  opScratch(q: OpScratchQuery): Record<string, number> { return webgpuOpScratch(q); }

  reserveReadback(bytes: number): void { this.ctx.reserveStaging(bytes); }

  async destroy(): Promise<{ label: string; size: number }[]> {
    if (!this.ownsContext) {
      await this.ctx.sync().catch(() => undefined);
      this.ctx.alloc.trimPool();
      return [];
    }
    return this.ctx.destroy();
  }
}
