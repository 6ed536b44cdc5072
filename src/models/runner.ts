// What the engine needs from an architecture: run a block of tokens through the layers from a
// sequence state, and project final hidden rows to logits. One implementation per file in src/models/.
import type { Buf, ScanAlgorithm, WeightTensor } from '../backends/backend.ts';
import type { ModelConfig } from './config.ts';
import type { Block, CacheDims, Workspace } from './state.ts';

export interface BlockOptions {
  /** The scan to use; undefined: the backend's choice per sequence. */
  scan?: ScanAlgorithm;
}

export interface ModelRunner {
  readonly config: ModelConfig;
  cacheDims(): CacheDims;
  /**
   * Runs the block's rows (ids u32 [rows] on the backend; each sequence's tokens at positions
   * state.position .. +T-1) and returns the final-normed hidden states hn [rows, H] (a workspace
   * buffer). Advances every state of every sequence except their positions, which the engine moves.
   */
  block(ids: Buf, blk: Block, ws: Workspace, opts: BlockOptions): Promise<Buf>;
  /** logits [rows, V] = hn[rowStart .. rowStart+rows) · headᵀ. */
  head(hn: Buf, rowStart: number, rows: number, logits: Buf): Promise<void>;
  /**
   * Workspace buffers (name → bytes) for a block of T tokens. The engine sizes the workspace from
   * this for a full prefill block before the first call, so no buffer is regrown mid-block; the
   * memory planner sums the same figures.
   */
  scratch(T: number): Record<string, number>;
  /** Frees the buffers the runner holds itself (e.g. a RoPE table); the weights belong to the loader. */
  dispose(): void;
  /** The weight the head reads (for bandwidth figures and the storage dtype report). */
  readonly headWeight: WeightTensor;
}
