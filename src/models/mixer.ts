// The Mamba2 mixer (docs/model.md §Mixer), shared by Zamba2 and Mamba2. Works on a block of
// T tokens starting from the layer's conv and SSM state, and leaves both states advanced, so
// prefill blocks, continuation and decode (T = 1) are the same call.
//
//   zxbcdt [T, inProjDim] = u · in_projᵀ          columns: z [di] | xBC [convDim] | dt [NH]
//   xbc    [T, convDim]   = silu(conv1d(xBC))      (convState carries the last K-1 raw columns)
//   y      [T, di]        = scan(x, dt, B, C)       (ssmState [NH, P, N] f32 carried)
//   yn     [T, di]        = groupRmsNorm(y · silu(z)) · norm.weight
//   residual [T, H]      += yn · out_projᵀ
import type { Backend, Buf, ScanAlgorithm, WeightTensor } from '../backends/backend.ts';
import { strided } from '../backends/tensor.ts';
import type { MixerConfig } from './config.ts';
import type { Block, Workspace } from './state.ts';
import type { WeightSet } from './weights.ts';

export type { ScanAlgorithm } from '../backends/backend.ts';

export interface MixerWeights {
  readonly inProj: WeightTensor;   // [inProjDim, H]
  readonly convWeight: Buf;        // [convDim, K] f32
  readonly convBias: Buf;          // [convDim] f32
  readonly dtBias: Buf;            // [NH]
  readonly aLog: Buf;              // [NH]
  readonly D: Buf;                 // [NH]
  readonly normWeight: Buf;        // [di]
  readonly outProj: WeightTensor;  // [H, di]
}

/** `prefix` ends with the mixer module name: `model.layers.3.mamba`, `backbone.layers.0.mixer`. */
export function mixerWeights(w: WeightSet, prefix: string): MixerWeights {
  return {
    inProj: w.matrix(`${prefix}.in_proj.weight`),
    convWeight: w.vector(`${prefix}.conv1d.weight`),
    convBias: w.vector(`${prefix}.conv1d.bias`),
    dtBias: w.vector(`${prefix}.dt_bias`),
    aLog: w.vector(`${prefix}.A_log`),
    D: w.vector(`${prefix}.D`),
    normWeight: w.vector(`${prefix}.norm.weight`),
    outProj: w.matrix(`${prefix}.out_proj.weight`),
  };
}

/**
 * Workspace buffers (name → bytes) the mixer uses for a block of T tokens. The names are shared
 * slots (`slot.a` … `slot.d`) that the Zamba2 shared block also uses for its own intermediates:
 * the two are never live at once, and sharing keeps scratch under 64 MiB at 1.2B width for
 * 256-token blocks.
 */
export function mixerScratch(cfg: MixerConfig, T: number): Record<string, number> {
  return {
    [SLOT_ZXBCDT]: 4 * T * cfg.inProjDim,
    [SLOT_XBC]: 4 * T * cfg.convDim,
    [SLOT_Y]: 4 * T * cfg.dInner,
    [SLOT_YN]: 4 * T * cfg.dInner,
  };
}

export const SLOT_ZXBCDT = 'slot.a';
export const SLOT_XBC = 'slot.b';
export const SLOT_Y = 'slot.c';
export const SLOT_YN = 'slot.d';

/**
 * The mixer's input u [rows, H]: `x` itself, or RMSNorm(x) · weight when `norm` is given (then
 * in_proj takes the norm as its input transform, which decode fuses into the GEMV; `norm.out`
 * receives u where the backend runs the norm on its own).
 */
export interface MixerInput {
  x: Buf;
  /** RMSNorm(x + add) when `add` is given (a hybrid layer's input). */
  norm?: { weight: Buf; eps: number; out: Buf; add?: Buf };
}

/** residual [rows, H] += Mixer(u [rows, H]) for the block's rows, each sequence with its layer `stateIndex` state. */
export async function mixerForward(
  be: Backend, cfg: MixerConfig, w: MixerWeights, stateIndex: number,
  u: MixerInput, residual: Buf, blk: Block, ws: Workspace, scan: ScanAlgorithm | undefined,
): Promise<void> {
  const T = blk.rows;
  const { dInner: di, convDim, inProjDim, nHeads, headDim, dState, nGroups } = cfg;
  const sz = mixerScratch(cfg, T);
  const zxbcdt = ws.get(SLOT_ZXBCDT, sz[SLOT_ZXBCDT]);
  const xbc = ws.get(SLOT_XBC, sz[SLOT_XBC]);
  const y = ws.get(SLOT_Y, sz[SLOT_Y]);
  const yn = ws.get(SLOT_YN, sz[SLOT_YN]);

  await be.matmul({
    x: u.x, M: T, w: w.inProj, y: zxbcdt,
    input: u.norm && { kind: 'rmsNorm', weight: u.norm.weight, eps: u.norm.eps, scratch: u.norm.out, add: u.norm.add },
  });
  await be.convScan({
    seqs: blk.seqs.map((q) => ({
      rowStart: q.rowStart, T: q.T, pos0: q.state.position,
      convState: q.state.mamba[stateIndex].convState, ssmState: q.state.mamba[stateIndex].ssmState,
    })),
    xBC: strided(zxbcdt, di, inProjDim), dt: strided(zxbcdt, di + convDim, inProjDim), convDim,
    kernelSize: cfg.convKernel, convWeight: w.convWeight, convBias: w.convBias, xbc,
    nHeads, headDim, dState, nGroups, dtBias: w.dtBias, aLog: w.aLog, D: w.D, y,
    dtMin: cfg.dtMin, dtMax: cfg.dtMax, algorithm: scan, scratch: ws.opScratch(), seqTable: blk.seqTable,
  });
  // out_proj takes the gated group norm as its input transform (fused into the decode GEMV).
  await be.matmul({
    x: y, M: T, w: w.outProj, y: residual, accumulate: true,
    input: { kind: 'gatedRmsNorm', z: strided(zxbcdt, 0, inProjDim), weight: w.normWeight, scratch: yn, groupSize: di / nGroups, eps: cfg.mixerNormEps },
  });
}
