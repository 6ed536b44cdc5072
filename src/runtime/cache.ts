// The recurrent cache of one sequence: conv and SSM state per mamba layer, and the attention KV
// cache of each hybrid call site. Constant size except the KV caches, which grow with the context
// (their capacity is reserved up front per call, so growth happens at most once per forward).
import type { GpuContext } from '../backends/webgpu/context.ts';
import { STORAGE_RW } from '../backends/webgpu/flags.ts';

export interface MambaLayerState {
  /** convState: the last K-1 raw pre-conv xBC columns, layout per src/backends/webgpu/kernels/conv1d.ts. */
  readonly convState: GPUBuffer;
  /** ssmState [NH, P, N] f32. */
  readonly ssmState: GPUBuffer;
}

export interface KvCache {
  /** k [capacity, NKV * hd] f32 */
  k: GPUBuffer;
  /** v [capacity, NKV * hd] f32 */
  v: GPUBuffer;
  capacity: number;
}

export interface CacheDims {
  numMambaLayers: number;
  convStateBytes: number;
  ssmStateBytes: number;
  numKvSites: number;
  /** NKV * hd */
  kvWidth: number;
  /** Tokens the KV capacity is rounded up to. */
  kvBlock: number;
}

export class HybridCache {
  readonly mamba: MambaLayerState[] = [];
  readonly kv: KvCache[] = [];
  /** Tokens consumed so far (the absolute position of the next token). */
  position = 0;
  private disposed = false;

  constructor(private readonly ctx: GpuContext, readonly dims: CacheDims) {
    try {
      for (let i = 0; i < dims.numMambaLayers; i++) {
        const convState = ctx.alloc.create(`state:conv.${i}`, dims.convStateBytes, STORAGE_RW);
        const ssmState = ctx.alloc.create(`state:ssm.${i}`, dims.ssmStateBytes, STORAGE_RW);
        ctx.clear(convState);
        ctx.clear(ssmState);
        this.mamba.push({ convState, ssmState });
      }
      for (let i = 0; i < dims.numKvSites; i++) this.kv.push({ k: undefined!, v: undefined!, capacity: 0 });
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** Bytes of KV cache for a capacity of `tokens`, for all sites (k and v). */
  static kvBytes(dims: CacheDims, tokens: number): number {
    const cap = Math.ceil(tokens / dims.kvBlock) * dims.kvBlock;
    return dims.numKvSites * 2 * cap * dims.kvWidth * 4;
  }

  /** Makes every KV cache hold at least `tokens` positions, keeping the first `position` ones. */
  reserve(tokens: number): void {
    if (this.dims.numKvSites === 0) return;
    const cap = Math.ceil(tokens / this.dims.kvBlock) * this.dims.kvBlock;
    const rowBytes = this.dims.kvWidth * 4;
    this.kv.forEach((site, i) => {
      if (site.capacity >= cap) return;
      if (this.position === 0 && site.capacity > 0) {
        // Nothing to keep: free first so the peak never holds both.
        this.ctx.alloc.destroy(site.k);
        this.ctx.alloc.destroy(site.v);
        site.capacity = 0;
      }
      const k = this.ctx.alloc.create(`kv:k.${i}`, cap * rowBytes, STORAGE_RW);
      const v = this.ctx.alloc.create(`kv:v.${i}`, cap * rowBytes, STORAGE_RW);
      if (site.capacity > 0) {
        this.ctx.copy(site.k, 0, k, 0, this.position * rowBytes);
        this.ctx.copy(site.v, 0, v, 0, this.position * rowBytes);
        this.ctx.flush();
        this.ctx.alloc.destroy(site.k);
        this.ctx.alloc.destroy(site.v);
      }
      site.k = k;
      site.v = v;
      site.capacity = cap;
    });
  }

  /** Zeroes all state: the cache then describes an empty sequence (KV capacity is kept). */
  reset(): void {
    for (const m of this.mamba) { this.ctx.clear(m.convState); this.ctx.clear(m.ssmState); }
    this.position = 0;
  }

  /** Copies another cache's contents into this one (same dims), e.g. to fork a conversation. */
  copyFrom(other: HybridCache): void {
    this.mamba.forEach((m, i) => {
      this.ctx.copy(other.mamba[i].convState, 0, m.convState, 0, this.dims.convStateBytes);
      this.ctx.copy(other.mamba[i].ssmState, 0, m.ssmState, 0, this.dims.ssmStateBytes);
    });
    this.position = 0;
    this.reserve(other.position);
    this.kv.forEach((site, i) => {
      const bytes = other.position * this.dims.kvWidth * 4;
      this.ctx.copy(other.kv[i].k, 0, site.k, 0, bytes);
      this.ctx.copy(other.kv[i].v, 0, site.v, 0, bytes);
    });
    this.position = other.position;
  }

  get isDisposed(): boolean { return this.disposed; }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of this.mamba) { this.ctx.alloc.destroy(m.convState); this.ctx.alloc.destroy(m.ssmState); }
    for (const s of this.kv) if (s.capacity > 0) { this.ctx.alloc.destroy(s.k); this.ctx.alloc.destroy(s.v); }
    this.mamba.length = 0;
    this.kv.length = 0;
  }
}
