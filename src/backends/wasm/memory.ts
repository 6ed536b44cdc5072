// The one allocator over the Wasm backend's linear memory (a WebAssembly.Memory shared with the
// kernel workers). Kernels never allocate: every weight, activation, state and scratch region is a
// WasmBuffer from here, with exact live/peak byte accounting per label (the counterpart of
// src/gpu/allocator.ts for GPU buffers). Memory grows on demand and never shrinks (Wasm cannot);
// wasm32 caps it at 4 GiB, and a request past the cap is refused with an OutOfMemoryError that
// says what was needed and what is available, before anything is allocated.
import { MambaScanError, OutOfMemoryError } from '../../errors.ts';

export const WASM_PAGE = 65536;
/** wasm32 addresses 2^32 bytes: 65536 pages. */
export const WASM32_MAX_BYTES = 65536 * WASM_PAGE;
/** Every block starts on (and is sized in multiples of) 16 bytes: v128 alignment. */
export const ALIGN = 16;

export interface WasmBuffer {
  /** Byte address in the Wasm memory. */
  readonly ptr: number;
  /** Bytes reserved (the requested size rounded up to 16). */
  readonly size: number;
  readonly label: string;
}

export interface WasmMemoryStats {
  /** Bytes in live blocks. */
  liveBytes: number;
  /** Highest liveBytes since creation or the last resetPeak(). */
  peakBytes: number;
  /** Live bytes per label prefix (the part before the first ':' or '.'). */
  byLabel: Record<string, number>;
  liveBuffers: number;
  /** Bytes the Wasm memory has committed (it never shrinks). */
  committedBytes: number;
  /** The cap: maximumBytes of the heap (4 GiB by default). */
  maximumBytes: number;
}

interface Block { start: number; size: number }

function roundUp(v: number, a: number): number { return Math.ceil(v / a) * a; }

/** `weights:model.layers.3.mamba.in_proj.weight` -> `weights`. */
export function labelGroup(label: string): string {
  const m = /^[^:.]+/.exec(label);
  return m ? m[0] : label;
}

export interface WasmHeapOptions {
  /** Share the memory with workers (needs SharedArrayBuffer); default true when available. */
  shared?: boolean;
  /** Cap on the memory size in bytes (a multiple of 64 KiB, at most 4 GiB); default 4 GiB. */
  maximumBytes?: number;
  /** First byte the allocator may hand out (the kernel module's heapBase()); default 1024. */
  base?: number;
  /** Pages committed up front (default 16 = 1 MiB). */
  initialPages?: number;
}

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  /** The cap actually in force (the requested one, or what the host could reserve). */
  readonly maximumBytes: number;
  private readonly base: number;
  /** End of the highest live block: everything from here to maximumBytes is free. */
  private brk: number;
  /** Free blocks below brk, sorted by start, never adjacent to each other or to brk. */
  private readonly holes: Block[] = [];
  /** Everything at or above this address has never been handed out (still zero from grow). */
  private pristine: number;
  private readonly live = new Map<number, { size: number; label: string; counted: string }>();
  private readonly buffers = new Map<number, WasmBuffer>();
  /** Views (windows of a block) -> the block and the byte offset in it. */
  private readonly views = new WeakMap<WasmBuffer, { parent: WasmBuffer; byteOffset: number }>();
  private liveBytes = 0;
  private peakBytes = 0;
  private readonly labelBytes = new Map<string, number>();

  constructor(opts: WasmHeapOptions = {}) {
    const maximumBytes = opts.maximumBytes ?? WASM32_MAX_BYTES;
    if (!Number.isInteger(maximumBytes) || maximumBytes <= 0 || maximumBytes > WASM32_MAX_BYTES || maximumBytes % WASM_PAGE !== 0) {
      throw new MambaScanError(`wasm heap: maximumBytes must be a multiple of 64 KiB in (0, 4 GiB], got ${maximumBytes}`);
    }
    this.shared = opts.shared ?? typeof SharedArrayBuffer !== 'undefined';
    this.base = roundUp(opts.base ?? 1024, ALIGN);
    this.brk = this.base;
    this.pristine = this.base;
    // A shared memory reserves its maximum up front; a host that cannot reserve 4 GiB of address
    // space (32-bit or constrained browsers) gets the largest of 4, 2, 1 GiB, 512, 256 MiB it can.
    let maxPages = maximumBytes / WASM_PAGE;
    const initial = (p: number) => Math.min(p, Math.max(opts.initialPages ?? 16, Math.ceil(this.base / WASM_PAGE)));
    let memory: WebAssembly.Memory | undefined;
    for (;;) {
      try {
        memory = new WebAssembly.Memory({ initial: initial(maxPages), maximum: maxPages, shared: this.shared } as WebAssembly.MemoryDescriptor);
        break;
      } catch (e) {
        if (maxPages <= 4096 || opts.maximumBytes !== undefined) {
          throw new OutOfMemoryError(`wasm heap: the host refused a ${this.shared ? 'shared ' : ''}memory of up to ${maxPages * WASM_PAGE} bytes: ${(e as Error).message}`,
            maxPages * WASM_PAGE, 0);
        }
        maxPages >>= 1;
      }
    }
    this.memory = memory;
    this.maximumBytes = maxPages * WASM_PAGE;
  }

  /**
   * A block of at least `bytes` bytes (rounded up to 16), 16-byte aligned, zero-filled. Throws
   * OutOfMemoryError (nothing allocated) when it cannot fit below maximumBytes.
   */
  alloc(label: string, bytes: number): WasmBuffer {
    if (!Number.isFinite(bytes) || bytes < 0 || !Number.isInteger(bytes)) {
      throw new MambaScanError(`wasm heap: bad size ${bytes} for ${label}`);
    }
    const size = Math.max(ALIGN, roundUp(bytes, ALIGN));
    let start = -1;
    // Best fit among the holes keeps big holes for big tensors.
    let bestI = -1;
    for (let i = 0; i < this.holes.length; i++) {
      const h = this.holes[i];
      if (h.size >= size && (bestI < 0 || h.size < this.holes[bestI].size)) bestI = i;
    }
    if (bestI >= 0) {
      const h = this.holes[bestI];
      start = h.start;
      if (h.size === size) this.holes.splice(bestI, 1);
      else { h.start += size; h.size -= size; }
    } else {
      if (this.brk + size > this.maximumBytes) {
        throw new OutOfMemoryError(
          `wasm heap: ${label} needs ${size} bytes; ${this.available()} bytes are available below the ` +
          `${this.maximumBytes === WASM32_MAX_BYTES ? 'wasm32 4 GiB limit' : `${this.maximumBytes}-byte cap`} ` +
          `(${this.liveBytes} live)`, size, this.available());
      }
      this.ensureCommitted(this.brk + size, label, size);
      start = this.brk;
      this.brk += size;
    }
    if (start < this.pristine) new Uint8Array(this.memory.buffer, start, Math.min(size, this.pristine - start)).fill(0);
    this.pristine = Math.max(this.pristine, start + size);
    const buf: WasmBuffer = Object.freeze({ ptr: start, size, label });
    const counted = labelGroup(label);
    this.live.set(start, { size, label, counted });
    this.buffers.set(start, buf);
    this.liveBytes += size;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    this.labelBytes.set(counted, (this.labelBytes.get(counted) ?? 0) + size);
    return buf;
  }

  /**
   * A window [byteOffset, byteOffset + byteLength) of a block that every wrapper accepts as a
   * buffer of its own (a slot of a pooled state buffer). Not counted (its block is); valid while
   * the block is live; freeing a view does nothing. byteOffset must be a multiple of 4.
   */
  view(buf: WasmBuffer, byteOffset: number, byteLength: number): WasmBuffer {
    const root = this.viewOf(buf);
    if (!this.isLive(buf)) throw new MambaScanError(`wasm heap: view of a freed block ${buf.label}`);
    if (!Number.isInteger(byteOffset) || !Number.isInteger(byteLength) || byteOffset < 0 || byteLength < 0 ||
      byteOffset % 4 !== 0 || byteOffset + byteLength > buf.size) {
      throw new RangeError(`wasm heap: view [${byteOffset}, +${byteLength}) of ${buf.label} (${buf.size} bytes; offsets are multiples of 4)`);
    }
    const v: WasmBuffer = Object.freeze({ ptr: buf.ptr + byteOffset, size: byteLength, label: `${buf.label}@${root.byteOffset + byteOffset}` });
    this.views.set(v, { parent: root.buffer, byteOffset: root.byteOffset + byteOffset });
    return v;
  }

  /** The block a view is a window of and its byte offset there (a block: itself at 0). */
  viewOf(buf: WasmBuffer): { buffer: WasmBuffer; byteOffset: number } {
    const v = this.views.get(buf);
    return v ? { buffer: v.parent, byteOffset: v.byteOffset } : { buffer: buf, byteOffset: 0 };
  }

  /** Releases a block (freeing twice, or a block of another heap, throws; a view: nothing). */
  free(buf: WasmBuffer): void {
    if (this.views.has(buf)) return;
    const e = this.live.get(buf.ptr);
    if (!e || this.buffers.get(buf.ptr) !== buf) throw new MambaScanError(`wasm heap: free of an unknown or freed block ${buf.label}@${buf.ptr}`);
    this.live.delete(buf.ptr);
    this.buffers.delete(buf.ptr);
    this.liveBytes -= e.size;
    this.labelBytes.set(e.counted, (this.labelBytes.get(e.counted) ?? 0) - e.size);
    this.insertHole(buf.ptr, e.size);
  }

  isLive(buf: WasmBuffer): boolean {
    const v = this.views.get(buf);
    const b = v ? v.parent : buf;
    return this.buffers.get(b.ptr) === b;
  }

  /** Largest block alloc() could return now without exceeding maximumBytes. */
  available(): number {
    let best = this.maximumBytes - this.brk;
    for (const h of this.holes) best = Math.max(best, h.size);
    return best;
  }

  memoryStats(): WasmMemoryStats {
    const byLabel: Record<string, number> = {};
    for (const [k, v] of this.labelBytes) if (v) byLabel[k] = v;
    return {
      liveBytes: this.liveBytes, peakBytes: this.peakBytes, byLabel, liveBuffers: this.live.size,
      committedBytes: this.memory.buffer.byteLength, maximumBytes: this.maximumBytes,
    };
  }

  resetPeak(): void { this.peakBytes = this.liveBytes; }

  /** Labels and sizes of the live blocks (what a leak report shows). */
  outstanding(): { label: string; size: number }[] {
    return [...this.live.values()].map((e) => ({ label: e.label, size: e.size }));
  }

  // Views (re-created on every call: a grow replaces memory.buffer).
  bytes(buf: WasmBuffer, byteOffset = 0, length = buf.size - byteOffset): Uint8Array {
    this.checkView(buf, byteOffset, length);
    return new Uint8Array(this.memory.buffer, buf.ptr + byteOffset, length);
  }
  f32(buf: WasmBuffer, offset = 0, length = Math.floor(buf.size / 4) - offset): Float32Array {
    this.checkView(buf, offset * 4, length * 4);
    return new Float32Array(this.memory.buffer, buf.ptr + offset * 4, length);
  }
  u32(buf: WasmBuffer, offset = 0, length = Math.floor(buf.size / 4) - offset): Uint32Array {
    this.checkView(buf, offset * 4, length * 4);
    return new Uint32Array(this.memory.buffer, buf.ptr + offset * 4, length);
  }
  u16(buf: WasmBuffer, offset = 0, length = Math.floor(buf.size / 2) - offset): Uint16Array {
    this.checkView(buf, offset * 2, length * 2);
    return new Uint16Array(this.memory.buffer, buf.ptr + offset * 2, length);
  }

  private checkView(buf: WasmBuffer, byteOffset: number, length: number): void {
    if (!this.isLive(buf)) throw new MambaScanError(`wasm heap: view of a freed block ${buf.label}`);
    if (!(byteOffset >= 0 && length >= 0 && byteOffset + length <= buf.size)) {
      throw new RangeError(`wasm heap: view [${byteOffset}, ${byteOffset + length}) outside ${buf.label} (${buf.size} bytes)`);
    }
  }

  private ensureCommitted(end: number, label: string, size: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    // Grow in steps of at least 1/8 of the current size (fewer grow calls while weights stream
    // in), never past the cap.
    const want = Math.min(this.maximumBytes, Math.max(roundUp(end, WASM_PAGE), roundUp(have + have / 8, WASM_PAGE)));
    try {
      this.memory.grow((want - have) / WASM_PAGE);
    } catch (e) {
      try {
        this.memory.grow((roundUp(end, WASM_PAGE) - have) / WASM_PAGE);
      } catch {
        throw new OutOfMemoryError(`wasm heap: the host refused to grow memory to ${roundUp(end, WASM_PAGE)} bytes for ${label} ` +
          `(${size} bytes): ${(e as Error).message}`, size, Math.max(0, have - this.brk));
      }
    }
  }

  private insertHole(start: number, size: number): void {
    // Binary search for the insertion point, then merge with neighbours (and with brk).
    let lo = 0, hi = this.holes.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.holes[mid].start < start) lo = mid + 1; else hi = mid; }
    let s = start, z = size;
    const prev = this.holes[lo - 1];
    if (prev && prev.start + prev.size === s) { s = prev.start; z += prev.size; this.holes.splice(--lo, 1); }
    const next = this.holes[lo];
    if (next && s + z === next.start) { z += next.size; this.holes.splice(lo, 1); }
    if (s + z === this.brk) { this.brk = s; return; }
    this.holes.splice(lo, 0, { start: s, size: z });
  }
}
