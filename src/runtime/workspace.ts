// Scratch buffers for one forward call, taken from the allocator's pool by name and returned
// together at the end. Sizes depend only on the block length (at most prefillChunk tokens), so
// scratch memory does not grow with the prompt.
import type { GpuContext } from '../gpu/context.ts';
import { STORAGE_RW } from '../gpu/flags.ts';

export class Workspace {
  private readonly held = new Map<string, { buffer: GPUBuffer; bytes: number }>();

  constructor(private readonly ctx: GpuContext) {}

  /** A scratch buffer named `name` of at least `bytes`; the same name returns the same buffer. */
  get(name: string, bytes: number): GPUBuffer {
    const h = this.held.get(name);
    if (h && h.bytes >= bytes) return h.buffer;
    if (h) { this.ctx.alloc.release(h.buffer); this.held.delete(name); }
    const buffer = this.ctx.alloc.scratch(`scratch:${name}`, bytes, STORAGE_RW);
    this.held.set(name, { buffer, bytes });
    return buffer;
  }

  /** Returns every buffer to the pool (they stay allocated for the next call). */
  release(): void {
    for (const { buffer } of this.held.values()) if (this.ctx.alloc.isLive(buffer)) this.ctx.alloc.release(buffer);
    this.held.clear();
  }
}
