// What the engine needs from an architecture: run a block of tokens through the layers from a
// cache, and project final hidden rows to logits. One implementation per file in src/models/.
import type { GpuContext } from '../backends/webgpu/context.ts';
import type { ModelConfig } from './config.ts';
import type { CacheDims, HybridCache } from '../runtime/cache.ts';
import type { Workspace } from '../runtime/workspace.ts';
import type { ScanAlgorithm } from './mixer.ts';

export interface BlockOptions {
  scan: ScanAlgorithm;
}

export interface ModelRunner {
  readonly config: ModelConfig;
  cacheDims(): CacheDims;
  /**
   * Runs T tokens (ids u32 [T] on the GPU) at positions cache.position .. +T-1 and returns the
   * final-normed hidden states hn [T, H] (a workspace buffer). Advances every state in `cache`
   * except `cache.position`, which the engine moves.
   */
  block(ids: GPUBuffer, T: number, cache: HybridCache, ws: Workspace, opts: BlockOptions): Promise<GPUBuffer>;
  /** logits [rows, V] = hn[rowStart .. rowStart+rows) · headᵀ. */
  head(hn: GPUBuffer, rowStart: number, rows: number, logits: GPUBuffer): Promise<void>;
  /**
   * Workspace buffers (name → bytes) for a block of T tokens. The engine sizes the workspace from
   * this for a full prefill block before the first call, so no buffer is regrown mid-block; the
   * memory planner sums the same figures.
   */
  scratch(T: number): Record<string, number>;
  /** Weight tensors the head reads (for bandwidth figures). */
  readonly headWeight: import('../backends/webgpu/tensor.ts').GpuTensor;
}
