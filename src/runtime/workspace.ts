// Named activation buffers an engine keeps between calls. Each name holds one buffer of the
// largest size asked so far; sizes depend only on the block length (at most prefillChunk
// tokens), so scratch memory is bounded by the block size and never by the prompt length, and
// it is an exact, predictable sum (src/runtime/planner.ts). Callers must not run two forwards on
// one workspace at once (the engine serialises them).
import type { GpuContext } from '../backends/webgpu/context.ts';
import { STORAGE_RW } from '../backends/webgpu/flags.ts';

export class Workspace {
  private readonly held = new Map<string, { buffer: GPUBuffer; bytes: number }>();

  constructor(private readonly ctx: GpuContext) {}

  /** The buffer named `name`, at least `bytes` long (rounded up to 4). */
  get(name: string, bytes: number): GPUBuffer {
    const want = Math.max(4, Math.ceil(bytes / 4) * 4);
    const h = this.held.get(name);
    if (h && h.bytes >= want) return h.buffer;
    if (h) {
      // Destroy before creating so the peak never holds both; pending work must be submitted first.
      this.ctx.flush();
      this.ctx.alloc.destroy(h.buffer);
      this.held.delete(name);
    }
    const buffer = this.ctx.alloc.create(`scratch:${name}`, want, STORAGE_RW);
    this.held.set(name, { buffer, bytes: want });
    return buffer;
  }

  /** Bytes held, per name. */
  sizes(): Record<string, number> {
    return Object.fromEntries([...this.held].map(([k, v]) => [k, v.bytes]));
  }

  /** Frees every buffer (after submitting pending work that may use them). */
  release(): void {
    if (this.held.size === 0) return;
    this.ctx.flush();
    for (const { buffer } of this.held.values()) this.ctx.alloc.destroy(buffer);
    this.held.clear();
  }
}
