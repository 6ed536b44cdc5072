// The recurrent cache of one sequence: conv and SSM state per mamba layer, and the attention KV
// cache of each hybrid call site. Constant size except the KV caches, which grow with the context
// (their capacity is reserved up front per call, so growth happens at most once per forward).
import type { Backend, Buf, KvDType } from '../backends/backend.ts';
import type { CacheDims, MambaLayerState, SequenceState } from '../models/state.ts';
import type { StatePool, StateSlot } from './state-pool.ts';

export type { CacheDims, MambaLayerState } from '../models/state.ts';

export interface KvCache {
  /** k [capacity, NKV * hd] in the cache dtype */
  k: Buf;
  /** v [capacity, NKV * hd] */
  v: Buf;
  capacity: number;
}

/** Bytes per cached K or V element. */
export function kvElemBytes(dtype: KvDType): number {
  return dtype === 'f16' ? 2 : 4;
}

export interface StateBackup { bufs: Buf[]; position: number }

export class HybridCache implements SequenceState {
  readonly mamba: MambaLayerState[] = [];
  readonly kv: KvCache[] = [];
  /** Tokens consumed so far (the absolute position of the next token). */
  position = 0;
  private disposed = false;

  private readonly slot: StateSlot | undefined;

  /**
   * A fresh sequence (zero states). With `pool` its states are a slot of the pool's buffers (what
   * batched steps need); without, buffers of its own.
   */
  constructor(private readonly be: Backend, readonly dims: CacheDims, readonly kvDtype: KvDType, private readonly pool?: StatePool) {
    try {
      if (pool) {
        this.slot = pool.acquire(() => this.pointAtSlot());
        this.pointAtSlot();
      } else {
        for (let i = 0; i < dims.numMambaLayers; i++) {
          // alloc zero-fills: a fresh sequence starts from zero states.
          const convState = be.alloc(`state:conv.${i}`, dims.convStateBytes);
          const ssmState = be.alloc(`state:ssm.${i}`, dims.ssmStateBytes);
          this.mamba.push({ convState, ssmState });
        }
      }
      for (let i = 0; i < dims.numKvSites; i++) this.kv.push({ k: undefined!, v: undefined!, capacity: 0 });
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** The pool the states live in, if any (batched kernels bind its buffers). */
  get statePool(): StatePool | undefined { return this.pool; }

  private pointAtSlot(): void {
    this.mamba.length = 0;
    for (let l = 0; l < this.dims.numMambaLayers; l++) this.mamba.push(this.pool!.views(this.slot!, l));
  }

  /** Bytes of KV cache for a capacity of `tokens`, for all sites (k and v). */
  static kvBytes(dims: CacheDims, tokens: number, dtype: KvDType): number {
    const cap = Math.ceil(tokens / dims.kvBlock) * dims.kvBlock;
    return dims.numKvSites * 2 * cap * dims.kvWidth * kvElemBytes(dtype);
  }

  /** Makes every KV cache hold at least `tokens` positions, keeping the first `position` ones. */
  reserve(tokens: number): void {
    if (this.dims.numKvSites === 0) return;
    const cap = Math.ceil(tokens / this.dims.kvBlock) * this.dims.kvBlock;
    const rowBytes = this.dims.kvWidth * kvElemBytes(this.kvDtype);
    this.kv.forEach((site, i) => {
      if (site.capacity >= cap) return;
      if (this.position === 0 && site.capacity > 0) {
        // Nothing to keep: free first so the peak never holds both.
        this.be.free(site.k);
        this.be.free(site.v);
        site.capacity = 0;
      }
      const k = this.be.alloc(`kv:k.${i}`, cap * rowBytes);
      const v = this.be.alloc(`kv:v.${i}`, cap * rowBytes);
      if (site.capacity > 0) {
        this.be.copy(site.k, 0, k, 0, this.position * rowBytes);
        this.be.copy(site.v, 0, v, 0, this.position * rowBytes);
        this.be.flush();
        this.be.free(site.k);
        this.be.free(site.v);
      }
      site.k = k;
      site.v = v;
      site.capacity = cap;
    });
  }

  /**
   * A device copy of the recurrent states (not the KV rows: a run only appends rows past
   * `position`, so restoring the position restores them) to roll back a run that fails midway.
   */
  backup(): StateBackup {
    const bufs: Buf[] = [];
    try {
      for (const m of this.mamba) {
        const c = this.be.alloc('state:backup.conv', this.dims.convStateBytes);
        bufs.push(c);
        const s = this.be.alloc('state:backup.ssm', this.dims.ssmStateBytes);
        bufs.push(s);
        this.be.copy(m.convState, 0, c, 0, this.dims.convStateBytes);
        this.be.copy(m.ssmState, 0, s, 0, this.dims.ssmStateBytes);
      }
    } catch (e) {
      for (const b of bufs) this.be.free(b);
      throw e;
    }
    return { bufs, position: this.position };
  }

  /** Puts the states of `b` back (the cache then is as it was when the backup was taken). */
  restore(b: StateBackup): void {
    this.mamba.forEach((m, i) => {
      this.be.copy(b.bufs[2 * i], 0, m.convState, 0, this.dims.convStateBytes);
      this.be.copy(b.bufs[2 * i + 1], 0, m.ssmState, 0, this.dims.ssmStateBytes);
    });
    this.position = b.position;
  }

  freeBackup(b: StateBackup): void {
    for (const buf of b.bufs) this.be.free(buf);
    b.bufs.length = 0;
  }

  /** Zeroes all state: the cache then describes an empty sequence (KV capacity is kept). */
  reset(): void {
    for (const m of this.mamba) { this.be.clear(m.convState); this.be.clear(m.ssmState); }
    this.position = 0;
  }

  /** Copies another cache's contents into this one (same dims), e.g. to fork a conversation. */
  copyFrom(other: HybridCache): void {
    if (other.kvDtype !== this.kvDtype) throw new Error(`copyFrom: KV dtype ${other.kvDtype} vs ${this.kvDtype}`);
    this.mamba.forEach((m, i) => {
      this.be.copy(other.mamba[i].convState, 0, m.convState, 0, this.dims.convStateBytes);
      this.be.copy(other.mamba[i].ssmState, 0, m.ssmState, 0, this.dims.ssmStateBytes);
    });
    this.position = 0;
    this.reserve(other.position);
    this.kv.forEach((site, i) => {
      const bytes = other.position * this.dims.kvWidth * kvElemBytes(this.kvDtype);
      this.be.copy(other.kv[i].k, 0, site.k, 0, bytes);
      this.be.copy(other.kv[i].v, 0, site.v, 0, bytes);
    });
    this.position = other.position;
  }

  get isDisposed(): boolean { return this.disposed; }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.slot) this.pool!.release(this.slot);
    else for (const m of this.mamba) { this.be.free(m.convState); this.be.free(m.ssmState); }
    for (const s of this.kv) if (s.capacity > 0) { this.be.free(s.k); this.be.free(s.v); }
    this.mamba.length = 0;
    this.kv.length = 0;
  }
}
