// The validated, typed model config every other module reads. Aliases and spellings are
// accepted only at the edge (src/models/parse-config.ts); past that, field names are these.

export type Arch = 'zamba2' | 'mamba2';
export enum LayerKind { Mamba = 'mamba', Hybrid = 'hybrid' }

/** Fields of the Mamba2 mixer, shared by both architectures. */
export interface MixerConfig {
  readonly hiddenSize: number;       // H
  readonly dState: number;           // N
  readonly nHeads: number;           // NH
  readonly headDim: number;          // P
  readonly nGroups: number;          // G
  readonly expand: number;
  readonly convKernel: number;       // K
  readonly dInner: number;           // di = expand * H = NH * P
  readonly convDim: number;          // di + 2 G N
  readonly inProjDim: number;        // di + convDim + NH
  readonly chunkSize: number;
  /** Lower dt clamp (Zamba2 time_step_min; Mamba2 time_step_limit[0]); 0 = none. */
  readonly dtMin: number;
  /** Upper dt clamp; Infinity = none. */
  readonly dtMax: number;
  /** eps of the gated grouped norm inside the mixer (Zamba2: always 1e-5). */
  readonly mixerNormEps: number;
}

export interface CommonConfig extends MixerConfig {
  readonly arch: Arch;
  readonly vocabSize: number;
  readonly numLayers: number;
  readonly rmsNormEps: number;
  readonly tieWordEmbeddings: boolean;
  readonly bosTokenId?: number;
  readonly eosTokenIds: readonly number[];
  readonly padTokenId?: number;
}

export interface Zamba2Config extends CommonConfig {
  readonly arch: 'zamba2';
  readonly layerKinds: readonly LayerKind[];
  /** Layer indices of the hybrid layers, ascending. */
  readonly hybridLayerIds: readonly number[];
  readonly numMemBlocks: number;
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly attentionHeadDim: number;   // 2H / numAttentionHeads unless given
  readonly ropeTheta: number;
  readonly useMemRope: boolean;
  readonly useSharedAttentionAdapter: boolean;
  readonly adapterRank: number;
  readonly intermediateSize: number;
  readonly maxPositionEmbeddings: number;
}

export interface Mamba2Config extends CommonConfig {
  readonly arch: 'mamba2';
}

export type ModelConfig = Zamba2Config | Mamba2Config;
