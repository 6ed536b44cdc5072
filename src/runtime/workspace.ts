// Named activation buffers an engine keeps between calls. Each name holds one buffer of the
// largest size asked so far; sizes depend only on the block length (at most prefillChunk
// tokens), so scratch memory is bounded by the block size and never by the prompt length, and
// it is an exact, predictable sum (src/runtime/planner.ts). Callers must not run two forwards on
// one workspace at once (the engine serialises them).
import type { Backend, Buf } from '../backends/backend.ts';
import type { Workspace as ModelWorkspace } from '../models/state.ts';

export class Workspace implements ModelWorkspace {
  private readonly held = new Map<string, { buffer: Buf; bytes: number }>();

  constructor(private readonly be: Backend) {}

  /** The buffer named `name`, at least `bytes` long (rounded up to 4). */
  get(name: string, bytes: number): Buf {
    const want = Math.max(4, Math.ceil(bytes / 4) * 4);
    const h = this.held.get(name);
    if (h && h.bytes >= want) return h.buffer;
    if (h) {
      // Free before creating so the peak never holds both (work recorded with it runs first).
      this.be.free(h.buffer);
      this.held.delete(name);
    }
    const buffer = this.be.alloc(`scratch:${name}`, want);
    this.held.set(name, { buffer, bytes: want });
    return buffer;
  }

  /** Names of the op scratch buffers (Backend.opScratch) among the held ones. */
  private opNames: string[] = [];
  private ops: Record<string, Buf> = {};

  /** Sizes the op scratch buffers (name → bytes) and remembers which they are. */
  sizeOpScratch(sizes: Record<string, number>): void {
    this.opNames = Object.keys(sizes);
    this.ops = {};
    for (const [name, bytes] of Object.entries(sizes)) this.ops[name] = this.get(name, bytes);
  }

  opScratch(): Readonly<Record<string, Buf>> { return this.ops; }

  /** Bytes held, per name. */
  sizes(): Record<string, number> {
    return Object.fromEntries([...this.held].map(([k, v]) => [k, v.bytes]));
  }

  /** Frees every buffer (after submitting pending work that may use them). */
  release(): void {
    if (this.held.size === 0) return;
    for (const { buffer } of this.held.values()) this.be.free(buffer);
    this.held.clear();
    this.ops = {};
    this.opNames = [];
  }
}
