// The one place GPU buffers are created. Tracks live and peak bytes exactly (per device, by
// label), reuses scratch buffers, and reports leaks on dispose. WebGPU cannot report memory use,
// so this count is the only truth about device memory.

export interface MemoryStats {
  /** Bytes in buffers created and not yet destroyed (pooled scratch included). */
  liveBytes: number;
  /** Highest liveBytes since creation or the last resetPeak(). */
  peakBytes: number;
  /** Live bytes per label prefix (the part before the first ':' or '.'). */
  byLabel: Record<string, number>;
  /** Number of live buffers. */
  liveBuffers: number;
}

export interface Allocation {
  readonly buffer: GPUBuffer;
  readonly size: number;
  readonly label: string;
}

interface Entry {
  size: number;
  label: string;
  usage: number;
  pooled: boolean;
  /** The byLabel key these bytes are counted under ('pool' while pooled). */
  counted: string;
}

/** Buffer sizes are rounded so a freed scratch buffer can serve a slightly different request. */
export function scratchBucket(size: number): number {
  if (size <= 256) return 256;
  // Round up to 1/8 of the next power of two: at most 12.5% slack.
  const p = 2 ** Math.ceil(Math.log2(size));
  const step = Math.max(256, p / 8);
  return Math.ceil(size / step) * step;
}

export class BufferAllocator {
  private readonly live = new Map<GPUBuffer, Entry>();
  private readonly pool = new Map<string, GPUBuffer[]>(); // key: usage|size
  private liveBytes = 0;
  private peakBytes = 0;
  private readonly labelBytes = new Map<string, number>();

  constructor(private readonly device: GPUDevice) {}

  /** Creates a buffer of exactly `size` bytes (rounded up to 4). */
  create(label: string, size: number, usage: GPUBufferUsageFlags, mappedAtCreation = false): GPUBuffer {
    if (!Number.isFinite(size) || size < 0) throw new RangeError(`allocator: bad size ${size} for ${label}`);
    const bytes = Math.max(4, Math.ceil(size / 4) * 4);
    const buffer = this.device.createBuffer({ label, size: bytes, usage, mappedAtCreation });
    this.track(buffer, { size: bytes, label, usage, pooled: false, counted: labelGroup(label) });
    return buffer;
  }

  /**
   * A scratch buffer of at least `size` bytes, reused from the pool when one of the same usage and
   * size class was released. Stays counted as live while pooled (it still occupies device memory).
   */
  scratch(label: string, size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    const bytes = scratchBucket(Math.max(4, size));
    const key = `${usage}|${bytes}`;
    const list = this.pool.get(key);
    const reused = list?.pop();
    if (reused) {
      const e = this.live.get(reused)!;
      e.pooled = false;
      e.label = label;
      this.recount(e, labelGroup(label));
      return reused;
    }
    const buffer = this.device.createBuffer({ label, size: bytes, usage });
    this.track(buffer, { size: bytes, label, usage, pooled: false, counted: labelGroup(label) });
    return buffer;
  }

  /** Returns a scratch buffer to the pool (it stays allocated for reuse). */
  release(buffer: GPUBuffer): void {
    const e = this.live.get(buffer);
    if (!e) throw new Error(`allocator: release of an unknown or destroyed buffer ${buffer.label}`);
    if (e.pooled) throw new Error(`allocator: double release of ${e.label}`);
    e.pooled = true;
    this.recount(e, 'pool');
    const key = `${e.usage}|${e.size}`;
    let list = this.pool.get(key);
    if (!list) this.pool.set(key, (list = []));
    list.push(buffer);
  }

  /** Destroys a buffer now and stops counting it. */
  /**
   * Called before a buffer is destroyed. The context sets it to submit recorded work first:
   * commands already recorded may still use the buffer, and WebGPU rejects a submit that
   * touches a destroyed buffer.
   */
  beforeDestroy: ((buffer?: GPUBuffer) => void) | undefined;

  destroy(buffer: GPUBuffer): void {
    const e = this.live.get(buffer);
    if (!e) return; // destroying twice is harmless, as in WebGPU
    this.beforeDestroy?.(buffer);
    if (e.pooled) {
      const list = this.pool.get(`${e.usage}|${e.size}`);
      const i = list ? list.indexOf(buffer) : -1;
      if (list && i >= 0) list.splice(i, 1);
    }
    this.untrack(buffer, e);
    buffer.destroy();
  }

  /** Destroys every pooled (released) scratch buffer. */
  trimPool(): void {
    this.beforeDestroy?.(); // released buffers may still be used by recorded, unsubmitted work
    for (const list of this.pool.values()) {
      for (const b of list.splice(0)) {
        this.beforeDestroy?.(b);
        const e = this.live.get(b);
        if (e) this.untrack(b, e);
        b.destroy();
      }
    }
  }

  isLive(buffer: GPUBuffer): boolean { return this.live.has(buffer); }
  sizeOf(buffer: GPUBuffer): number { return this.live.get(buffer)?.size ?? 0; }

  memoryStats(): MemoryStats {
    const byLabel: Record<string, number> = {};
    for (const [k, v] of this.labelBytes) if (v) byLabel[k] = v;
    return { liveBytes: this.liveBytes, peakBytes: this.peakBytes, byLabel, liveBuffers: this.live.size };
  }

  resetPeak(): void { this.peakBytes = this.liveBytes; }

  /** Labels and sizes of live buffers that are not pooled scratch (what a leak report shows). */
  outstanding(): { label: string; size: number }[] {
    return [...this.live.values()].filter((e) => !e.pooled).map((e) => ({ label: e.label, size: e.size }));
  }

  /** Destroys everything; returns the buffers that were still held (not released) as leaks. */
  dispose(): { label: string; size: number }[] {
    const leaks = this.outstanding();
    for (const [b, e] of [...this.live]) { this.untrack(b, e); b.destroy(); }
    this.pool.clear();
    return leaks;
  }

  private track(buffer: GPUBuffer, e: Entry): void {
    this.live.set(buffer, e);
    this.liveBytes += e.size;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    this.addCount(e.counted, e.size);
  }

  private untrack(buffer: GPUBuffer, e: Entry): void {
    this.live.delete(buffer);
    this.liveBytes -= e.size;
    this.addCount(e.counted, -e.size);
  }

  private recount(e: Entry, key: string): void {
    this.addCount(e.counted, -e.size);
    e.counted = key;
    this.addCount(key, e.size);
  }

  private addCount(key: string, delta: number): void {
    this.labelBytes.set(key, (this.labelBytes.get(key) ?? 0) + delta);
  }
}

/** `weights:model.layers.3.mamba.in_proj.weight` -> `weights`. */
export function labelGroup(label: string): string {
  const m = /^[^:.]+/.exec(label);
  return m ? m[0] : label;
}
