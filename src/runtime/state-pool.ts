// The recurrent states of every live sequence of a model, as slots of one buffer per layer and
// kind (conv ring, SSM state): a batched kernel reaches all sequences of a step through one
// binding. A sequence holds a slot; its HybridCache sees its states as views (Backend.view) of the
// pool buffers. The pool grows to exactly the slots in use (reserve() sizes it ahead for a known
// batch), reusing freed slots; growing moves every slot into new buffers and re-points the views.
import type { Backend, Buf } from '../backends/backend.ts';
import type { CacheDims } from '../models/state.ts';

export interface StateSlot {
  readonly index: number;
  /** Called when the pool moved the slot's states (after a grow). */
  readonly onMove: () => void;
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

export class StatePool {
  /** Bytes between consecutive slots of a conv pool buffer / an SSM pool buffer. */
  readonly convStride: number;
  readonly ssmStride: number;
  private capacity = 0;
  private conv: Buf[] = [];
  private ssm: Buf[] = [];
  private readonly used = new Map<number, StateSlot>();
  private readonly free: number[] = [];

  constructor(private readonly be: Backend, readonly dims: CacheDims) {
    const a = be.limits.viewAlignment;
    this.convStride = alignUp(dims.convStateBytes, a);
    this.ssmStride = alignUp(dims.ssmStateBytes, a);
  }

  /** Bytes the pool holds per slot (all layers). */
  get bytesPerSlot(): number { return this.dims.numMambaLayers * (this.convStride + this.ssmStride); }
  get slots(): number { return this.capacity; }
  get inUse(): number { return this.used.size; }

  /** Makes room for `n` sequences at once (one move of the existing slots at most). */
  reserve(n: number): void {
    if (n > this.capacity) this.grow(n);
  }

  /** A zeroed slot (a fresh sequence). */
  acquire(onMove: () => void): StateSlot {
    if (this.free.length === 0) this.grow(this.capacity + 1);
    const index = this.free.pop()!;
    const slot: StateSlot = { index, onMove };
    this.used.set(index, slot);
    for (let l = 0; l < this.dims.numMambaLayers; l++) {
      this.be.clear(this.conv[l], index * this.convStride, this.convStride);
      this.be.clear(this.ssm[l], index * this.ssmStride, this.ssmStride);
    }
    return slot;
  }

  release(slot: StateSlot): void {
    if (this.used.get(slot.index) !== slot) return;
    this.used.delete(slot.index);
    this.free.push(slot.index);
    if (this.used.size === 0) this.dispose();
  }

  /** Layer l's conv and SSM state of `slot` as views. */
  views(slot: StateSlot, l: number): { convState: Buf; ssmState: Buf } {
    return {
      convState: this.be.view(this.conv[l], slot.index * this.convStride, this.dims.convStateBytes),
      ssmState: this.be.view(this.ssm[l], slot.index * this.ssmStride, this.dims.ssmStateBytes),
    };
  }

  /** Frees the pool buffers (only when no slot is in use). */
  dispose(): void {
    if (this.used.size > 0) return;
    for (const b of [...this.conv, ...this.ssm]) this.be.free(b);
    this.conv = [];
    this.ssm = [];
    this.capacity = 0;
    this.free.length = 0;
  }

  private grow(n: number): void {
    const L = this.dims.numMambaLayers;
    const conv: Buf[] = [], ssm: Buf[] = [];
    try {
      for (let l = 0; l < L; l++) {
        conv.push(this.be.alloc(`state:conv.${l}`, n * this.convStride));
        ssm.push(this.be.alloc(`state:ssm.${l}`, n * this.ssmStride));
      }
    } catch (e) {
      for (const b of [...conv, ...ssm]) this.be.free(b);
      throw e;
    }
    for (let l = 0; l < this.conv.length; l++) {
      this.be.copy(this.conv[l], 0, conv[l], 0, this.capacity * this.convStride);
      this.be.copy(this.ssm[l], 0, ssm[l], 0, this.capacity * this.ssmStride);
      this.be.free(this.conv[l]);
      this.be.free(this.ssm[l]);
    }
    for (let i = n - 1; i >= this.capacity; i--) this.free.push(i);
    this.conv = conv;
    this.ssm = ssm;
    this.capacity = n;
    for (const slot of this.used.values()) slot.onMove();
  }
}
