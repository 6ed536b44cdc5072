// What a model reads and advances while it runs a block: the per-sequence recurrent state and the
// activation workspace. The runtime owns and allocates both (src/runtime/cache.ts, workspace.ts);
// models only see these interfaces, so they depend on nothing above them.
import type { Buf, KvDType, OpScratchBuffers } from '../backends/backend.ts';

export interface MambaLayerState {
  /** convState [K-1, convDim] f32: the last K-1 raw pre-conv xBC rows (backend.ts convStateBytes). */
  readonly convState: Buf;
  /** ssmState [NH, P, N] f32. */
  readonly ssmState: Buf;
}

export interface KvSite {
  /** k [capacity, nKvHeads * hd] in the cache dtype */
  readonly k: Buf;
  /** v [capacity, nKvHeads * hd] */
  readonly v: Buf;
  readonly capacity: number;
}

/** One sequence's state as a block sees it. */
export interface SequenceState {
  readonly mamba: readonly MambaLayerState[];
  /** One per attention call site (Zamba2 hybrid layer), in layer order. */
  readonly kv: readonly KvSite[];
  readonly kvDtype: KvDType;
  /** Tokens consumed so far: the absolute position of the block's first token. */
  readonly position: number;
}

/** KV capacity is reserved in multiples of this many tokens. */
export const KV_BLOCK = 256;

/** One sequence's rows in a block of several. */
export interface BlockSequence {
  readonly state: SequenceState;
  /** Its first row among the block's rows, and its row count (its tokens this step). */
  readonly rowStart: number;
  readonly T: number;
}

/**
 * The rows a block runs: one or more sequences' tokens one after another (a batched step: decode
 * tokens of many sequences, or prefill chunks beside them). Weights are read once for all rows.
 */
export interface Block {
  readonly rows: number;
  readonly seqs: readonly BlockSequence[];
  /** u32 [rows]: every row's absolute position (RoPE over rows of several sequences). */
  readonly positions?: Buf;
  /** Workspace table the backend may fill for batched kernels (ConvScanOp.seqTable). */
  readonly seqTable?: Buf;
}

/** Sizes the runtime needs to allocate a SequenceState for a model. */
export interface CacheDims {
  numMambaLayers: number;
  convStateBytes: number;
  ssmStateBytes: number;
  numKvSites: number;
  /** nKvHeads * hd */
  kvWidth: number;
  /** Tokens the KV capacity is rounded up to. */
  kvBlock: number;
}

/** Named activation buffers, each at least the requested size, reused between blocks. */
export interface Workspace {
  get(name: string, bytes: number): Buf;
  /** The op scratch buffers (Backend.opScratch) the engine sized for this block size. */
  opScratch(): OpScratchBuffers;
}
