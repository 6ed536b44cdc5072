// Launchers for the selective scan (docs/model.md §Mixer steps 4-5, §Scan algorithms):
//  - 'recurrent' (shaders/ssm_scan.wgsl): token by token, state in registers, O(state) memory;
//    one kernel for prefill and decode.
//  - 'chunked' (shaders/ssd_*.wgsl): the SSD chunked form streamed over chunks of Q tokens with one
//    carried f32 state; scratch O(NH·Q² + NH·Q) whatever T is.
// Both read the initial state from `state` [NH, P, N] and leave the final state there, so calls
// continue each other (prefill in pieces, then decode).
import type { CompiledKernel, GpuContext } from '../context.ts';
import type { DefineValue, KernelDef } from '../kernel.ts';
import { STORAGE_RW } from '../flags.ts';
import { InputError, UnsupportedError } from '../../../errors.ts';
import type { StridedInput } from './strided.ts';
import headParamsSource from '../../../../shaders/ssm_scan_head_params.wgsl';
import scanSource from '../../../../shaders/ssm_scan.wgsl';
import cumsumSource from '../../../../shaders/ssd_chunk_cumsum.wgsl';
import cbSource from '../../../../shaders/ssd_chunk_cb.wgsl';
import chunkScanSource from '../../../../shaders/ssd_chunk_scan.wgsl';
import chunkStateSource from '../../../../shaders/ssd_chunk_state.wgsl';
import decodeStepSource from '../../../../shaders/ssm_decode_step.wgsl';
import activationsLib from '../../../../shaders/lib/activations.wgsl';

export type ScanAlgorithm = 'recurrent' | 'chunked';

export interface SsmScanArgs {
  T: number;
  nHeads: number;
  headDim: number;
  dState: number;
  nGroups: number;
  /** x(t,h,p) = x.buffer[x.offset + t*x.rowStride + h*P + p] */
  x: StridedInput;
  /** dt(t,h) = dt.buffer[dt.offset + t*dt.rowStride + h], raw (before dt_bias and softplus) */
  dt: StridedInput;
  /** B(t,g,n) = B.buffer[B.offset + t*B.rowStride + g*N + n] */
  B: StridedInput;
  C: StridedInput;
  /** f32 [NH] each */
  dtBias: GPUBuffer;
  aLog: GPUBuffer;
  D: GPUBuffer;
  /** f32 [NH, P, N]: initial state in, final state out. */
  state: GPUBuffer;
  /** f32 [T, NH*P] (with the D skip), from element yOffset. */
  y: GPUBuffer;
  yOffset?: number;
  dtMin: number;
  /** Upper dt clamp; Infinity for none. */
  dtMax: number;
  algorithm?: ScanAlgorithm;
  /** Chunk length Q for 'chunked' (default 64; 1..256). */
  chunkSize?: number;
  /** Tuning/testing knob for 'recurrent': how y is reduced over N (default: defaultReduction(ctx)). */
  reduction?: ScanReduction;
  /**
   * The packed per-head constants (dt_bias, A, D, 0) [NH] vec4, when the caller keeps them (they
   * depend on weights only): skips the dispatch that computes them (see headParams).
   */
  hp?: GPUBuffer;
  /**
   * Caller-held scratch for the chunked scan (e.g. workspace buffers sized by chunkedScanScratch):
   * cum and m as separate buffers; without it they come from the pool.
   */
  scratch?: { cum: GPUBuffer; m: GPUBuffer };
}

/** Largest d_state the register-resident recurrent kernel is built for. */
export const MAX_D_STATE = 256;
export const DEFAULT_CHUNK = 64;
export const MAX_CHUNK = 256;
/** f32 max: stands in for an unbounded dtMax (min(x, 3.4e38) == x for every finite dt). */
const F32_MAX = 3.4028234663852886e38;

const HEAD_PARAMS: KernelDef = {
  name: 'ssm_scan_head_params',
  source: headParamsSource,
  bindings: ['dtBias', 'aLog', 'dSkip', 'hp'],
  params: [['NH', 'u32']],
  workgroupSize: () => [64, 1, 1],
};

const SCAN_PARAMS = [
  ['T', 'u32'], ['NH', 'u32'], ['P', 'u32'], ['headsPerGroup', 'u32'], ['pBlocks', 'u32'],
  ['xOff', 'u32'], ['xStride', 'u32'], ['dtOff', 'u32'], ['dtStride', 'u32'],
  ['bOff', 'u32'], ['bStride', 'u32'], ['cOff', 'u32'], ['cStride', 'u32'],
  ['dtMin', 'f32'], ['dtMax', 'f32'], ['npt', 'u32'], ['yOff', 'u32'],
] as const;

/** The recurrent kernel's definition (exported so tests can compile every variant). */
export const SSM_SCAN: KernelDef = {
  name: 'ssm_scan',
  source: scanSource,
  libraries: [activationsLib],
  bindings: ['xs', 'dts', 'bs', 'cs', 'hp', 'state', 'y'],
  params: SCAN_PARAMS,
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

const SSD_CUMSUM: KernelDef = {
  name: 'ssd_chunk_cumsum',
  source: cumsumSource,
  libraries: [activationsLib],
  bindings: ['dts', 'hp', 'cum'],
  params: [['NH', 'u32'], ['Q', 'u32'], ['L', 'u32'], ['t0', 'u32'], ['dtOff', 'u32'], ['dtStride', 'u32'],
    ['dtMin', 'f32'], ['dtMax', 'f32']],
  workgroupSize: () => [64, 1, 1],
};

const SSD_CB: KernelDef = {
  name: 'ssd_chunk_cb',
  source: cbSource,
  bindings: ['bs', 'cs', 'cum', 'm'],
  params: [['G', 'u32'], ['N', 'u32'], ['headsPerGroup', 'u32'], ['Q', 'u32'], ['L', 'u32'], ['t0', 'u32'],
    ['nTiles', 'u32'], ['bOff', 'u32'], ['bStride', 'u32'], ['cOff', 'u32'], ['cStride', 'u32']],
  workgroupSize: () => [16, 16, 1],
};

const SSD_SCAN: KernelDef = {
  name: 'ssd_chunk_scan',
  source: chunkScanSource,
  bindings: ['xs', 'cs', 'hp', 'cum', 'm', 'state', 'y'],
  params: [['NH', 'u32'], ['P', 'u32'], ['N', 'u32'], ['headsPerGroup', 'u32'], ['Q', 'u32'], ['L', 'u32'],
    ['t0', 'u32'], ['pBlocks', 'u32'], ['tBlocks', 'u32'], ['xOff', 'u32'], ['xStride', 'u32'],
    ['cOff', 'u32'], ['cStride', 'u32'], ['yOff', 'u32']],
  workgroupSize: () => [16, 4, 1],
};

const SSD_STATE: KernelDef = {
  name: 'ssd_chunk_state',
  source: chunkStateSource,
  bindings: ['xs', 'bs', 'cum', 'state'],
  params: [['NH', 'u32'], ['P', 'u32'], ['N', 'u32'], ['headsPerGroup', 'u32'], ['Q', 'u32'], ['L', 'u32'],
    ['t0', 'u32'], ['pBlocks', 'u32'], ['nBlocks', 'u32'], ['xOff', 'u32'], ['xStride', 'u32'],
    ['bOff', 'u32'], ['bStride', 'u32']],
  workgroupSize: () => [16, 4, 1],
};

/** The fused decode step (exported so tests can compile every variant). */
export const SSM_DECODE_STEP: KernelDef = {
  name: 'ssm_decode_step',
  source: decodeStepSource,
  libraries: [activationsLib],
  bindings: ['zx', 'convW', 'convB', 'convState', 'hp', 'state', 'y', 'seqs'],
  params: [
    ['B', 'u32'], ['NH', 'u32'], ['P', 'u32'], ['headsPerGroup', 'u32'], ['pBlocks', 'u32'], ['C', 'u32'], ['K', 'u32'], ['G', 'u32'],
    ['xbcOff', 'u32'], ['dtOff', 'u32'], ['zxStride', 'u32'], ['dtMin', 'f32'], ['dtMax', 'f32'], ['npt', 'u32'],
  ],
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

/** Chunked kernels' register tiles: 4 rows x SSD_TR tokens per thread in ssd_chunk_scan, SSD_RP rows x 4 columns in ssd_chunk_state. */
const SSD_TR = 4;
const SSD_RP = 4;

/**
 * How the recurrent kernel sums y over the d_state columns of a row (see shaders/ssm_scan.wgsl):
 * 'subgroup' (4 lanes per row, subgroupShuffleXor), 'workgroup' (8 or 4 lanes, workgroup memory),
 * 'none' (one thread per row holds all N columns; no reduction). Default: 'subgroup' when the
 * device has subgroups, else 'workgroup'. ('none' measured slower on lavapipe as well; it stays as
 * a knob for devices where cross-lane traffic is the bottleneck and N is small.)
 */
export type ScanReduction = 'subgroup' | 'workgroup' | 'none';

export function defaultReduction(ctx: GpuContext): ScanReduction {
  return ctx.features.subgroups ? 'subgroup' : 'workgroup';
}

/** Records hp[h] = (dt_bias[h], -exp(A_log[h]), D[h], 0) for h < NH (shaders/ssm_scan_head_params.wgsl). */
export async function headParams(ctx: GpuContext, dtBias: GPUBuffer, aLog: GPUBuffer, D: GPUBuffer, NH: number, hp: GPUBuffer): Promise<void> {
  const k = await ctx.kernel(HEAD_PARAMS);
  ctx.dispatch(k, { dtBias, aLog, dSkip: D, hp }, { NH }, [Math.ceil(NH / 64)]);
}

/** Recurrent kernel geometry; see the tuning knobs in shaders/ssm_scan.wgsl. */
export function recurrentVariant(N: number, reduction: ScanReduction, unroll = true): Record<string, DefineValue> {
  // 'subgroup': the LN lanes of a row must fit in the smallest legal subgroup (4).
  // 'workgroup': 8 lanes halve the registers per thread at N >= 64.
  const LN = reduction === 'subgroup' ? 4 : reduction === 'none' ? 1 : N >= 64 ? 8 : 4;
  const WG = 64;
  // Rows per thread: each B/C load then feeds RPT rows. Capped so the state takes at most 64
  // registers per thread (NPT*RPT), which real GPUs hold without spilling. Measured on lavapipe at
  // N = 128: RPT 2-4 runs ~2x faster than 1 on the subgroup and workgroup paths.
  const NPT = Math.ceil(N / LN);
  const RPT = Math.max(1, Math.min(4, Math.floor(64 / NPT)));
  // TB ('workgroup' only): tokens per workgroup-memory reduction block. 4 keeps the array at 2 KiB;
  // larger arrays cost SwiftShader seconds of compile time per variant for little gain.
  return {
    N, LN, NPT, RPT, PB: (RPT * WG) / LN, WG, TB: reduction === 'workgroup' ? 4 : 1,
    SUBGROUPS: reduction === 'subgroup', DIRECT: reduction === 'none',
    // The column loop's bound: a constant lets GPU compilers unroll it and keep the state in
    // registers. Software adapters get a runtime bound: lavapipe's LLVM spent 6-65 s per fully
    // unrolled variant on a cold shader cache (vs 2-6 s), for a similar speed once the (small,
    // constant) row loop stays unrolled.
    K_END: unroll ? 'NPT' : 'params.npt',
  };
}

interface Shape { T: number; NH: number; P: number; N: number; G: number }

function checkArgs(a: SsmScanArgs): Shape {
  const { T, nHeads: NH, headDim: P, dState: N, nGroups: G } = a;
  for (const [k, v] of Object.entries({ T, nHeads: NH, headDim: P, dState: N, nGroups: G })) {
    if (!Number.isInteger(v) || v < 1) throw new InputError(`ssmScan: ${k} must be an integer >= 1, got ${v}`);
  }
  if (NH % G !== 0) throw new InputError(`ssmScan: nHeads ${NH} is not a multiple of nGroups ${G}`);
  if (N > MAX_D_STATE) throw new UnsupportedError(`ssmScan: d_state ${N} > ${MAX_D_STATE} is not supported`);
  if (!(a.dtMin >= 0) || !(a.dtMax >= a.dtMin)) throw new InputError(`ssmScan: bad dt clamp [${a.dtMin}, ${a.dtMax}]`);
  const view = (name: string, v: StridedInput, width: number) => {
    if (!Number.isInteger(v.offset) || v.offset < 0 || !Number.isInteger(v.rowStride) || v.rowStride < 0) {
      throw new InputError(`ssmScan: ${name} view has a bad offset/stride (${v.offset}, ${v.rowStride})`);
    }
    if (T > 1 && v.rowStride < width) throw new InputError(`ssmScan: ${name} row stride ${v.rowStride} < row width ${width}`);
    const need = 4 * (v.offset + (T - 1) * v.rowStride + width);
    if (v.buffer.size < need) throw new InputError(`ssmScan: ${name} buffer has ${v.buffer.size} bytes, the view needs ${need}`);
    if (need / 4 > 0xffffffff) throw new InputError(`ssmScan: ${name} view exceeds the u32 index range`);
  };
  view('x', a.x, NH * P);
  view('dt', a.dt, NH);
  view('B', a.B, G * N);
  view('C', a.C, G * N);
  if (a.state.size < 4 * NH * P * N) throw new InputError(`ssmScan: state has ${a.state.size} bytes, needs ${4 * NH * P * N}`);
  const yOff = a.yOffset ?? 0;
  if (!Number.isInteger(yOff) || yOff < 0) throw new InputError(`ssmScan: yOffset must be a non-negative integer, got ${yOff}`);
  if (a.y.size < 4 * (yOff + T * NH * P)) throw new InputError(`ssmScan: y has ${a.y.size} bytes, needs ${4 * (yOff + T * NH * P)}`);
  for (const [name, b] of [['x', a.x.buffer], ['dt', a.dt.buffer], ['B', a.B.buffer], ['C', a.C.buffer], ['state', a.state]] as const) {
    if (b === a.y) throw new InputError(`ssmScan: y must not alias ${name}`);
  }
  if (a.state === a.x.buffer || a.state === a.B.buffer || a.state === a.C.buffer || a.state === a.dt.buffer) {
    throw new InputError('ssmScan: state must not alias an input');
  }
  return { T, NH, P, N, G };
}

function chunkOf(a: Pick<SsmScanArgs, 'chunkSize'>): number {
  const Q = a.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(Q) || Q < 1 || Q > MAX_CHUNK) throw new UnsupportedError(`ssmScan: chunkSize ${Q} is not in 1..${MAX_CHUNK}`);
  return Q;
}

/**
 * Scratch bytes one ssmScan call takes from the pool (released before it returns): the packed
 * per-head constants, plus for 'chunked' the per-chunk matrices. Independent of T once T >= Q.
 * The sum of scanScratchBuffers (the pool rounds each buffer up separately).
 */
export function scanScratchBytes(a: ScratchArgs): number {
  return scanScratchBuffers(a).reduce((x, y) => x + y, 0);
}

type ScratchArgs = Pick<SsmScanArgs, 'T' | 'nHeads'> & Partial<Pick<SsmScanArgs, 'algorithm' | 'chunkSize'>>;

/** Bytes [cum, m] of the caller-held scratch (SsmScanArgs.scratch) for chunked blocks of at most T tokens. */
export function chunkedScanScratch(T: number, nHeads: number, chunkSize = DEFAULT_CHUNK): [number, number] {
  if (T < 1) return [0, 0];
  const [, cumBytes, mBytes] = scanScratchBuffers({ T, nHeads, algorithm: 'chunked', chunkSize });
  return [cumBytes, mBytes];
}

/** The individual scratch requests of one ssmScan call, in bytes: [hp] or [hp, cum, m]. */
export function scanScratchBuffers(a: ScratchArgs): number[] {
  const NH = a.nHeads;
  const hp = 16 * NH; // vec4 (dt_bias, A, D, 0) per head
  if ((a.algorithm ?? 'recurrent') === 'recurrent') return [hp];
  const Q = Math.min(chunkOf(a), a.T);
  // cum [NH, 4, Q] (dt, cumsum hi/lo, state weights) and the decay-weighted C·Bᵀ matrix M [NH, Q, Q].
  return [hp, 4 * 4 * NH * Q, 4 * NH * Q * Q];
}

function stridedParams(a: SsmScanArgs) {
  return {
    xOff: a.x.offset, xStride: a.x.rowStride, dtOff: a.dt.offset, dtStride: a.dt.rowStride,
    bOff: a.B.offset, bStride: a.B.rowStride, cOff: a.C.offset, cStride: a.C.rowStride,
  };
}

function dtClamp(a: SsmScanArgs): { dtMin: number; dtMax: number } {
  return { dtMin: a.dtMin, dtMax: Number.isFinite(a.dtMax) ? Math.min(a.dtMax, F32_MAX) : F32_MAX };
}

/** Records the selective scan: y [T, NH*P] and the state advanced by T tokens. */
export async function ssmScan(ctx: GpuContext, a: SsmScanArgs): Promise<void> {
  const s = checkArgs(a);
  const algorithm = a.algorithm ?? 'recurrent';
  if (algorithm !== 'recurrent' && algorithm !== 'chunked') throw new InputError(`ssmScan: unknown algorithm ${String(algorithm)}`);
  const Q = algorithm === 'chunked' ? Math.min(chunkOf(a), s.T) : 0;
  const kernels = algorithm === 'recurrent'
    ? await recurrentKernels(ctx, s.N, a.reduction ?? defaultReduction(ctx))
    : await chunkKernels(ctx);
  const scratch: GPUBuffer[] = [];
  let hp = a.hp;
  if (hp && hp.size < 16 * s.NH) throw new InputError(`ssmScan: hp holds ${hp.size} bytes, needs ${16 * s.NH}`);
  try {
    if (!hp) {
      hp = ctx.alloc.scratch('scratch:scan.hp', 16 * s.NH, STORAGE_RW);
      scratch.push(hp);
      await headParams(ctx, a.dtBias, a.aLog, a.D, s.NH, hp);
    }
    if (algorithm === 'recurrent') {
      const [scan] = kernels;
      const PB = Number(scan.defines.PB);
      const pBlocks = Math.ceil(s.P / PB);
      ctx.dispatch(scan, { xs: a.x.buffer, dts: a.dt.buffer, bs: a.B.buffer, cs: a.C.buffer, hp, state: a.state, y: a.y }, {
        T: s.T, NH: s.NH, P: s.P, headsPerGroup: s.NH / s.G, pBlocks, ...stridedParams(a), ...dtClamp(a),
        npt: Number(scan.defines.NPT), yOff: a.yOffset ?? 0,
      }, [s.NH * pBlocks]);
    } else {
      const [, cumBytes, mBytes] = scanScratchBuffers({ T: s.T, nHeads: s.NH, algorithm, chunkSize: Q });
      let cum: GPUBuffer, m: GPUBuffer;
      if (a.scratch) {
        if (a.scratch.cum.size < cumBytes || a.scratch.m.size < mBytes) {
          throw new InputError(`ssmScan: scratch holds ${a.scratch.cum.size} + ${a.scratch.m.size} bytes, the chunked scan needs ${cumBytes} + ${mBytes}`);
        }
        ({ cum, m } = a.scratch);
      } else {
        const c = ctx.alloc.scratch('scratch:scan.cum', cumBytes, STORAGE_RW);
        scratch.push(c);
        const mm = ctx.alloc.scratch('scratch:scan.m', mBytes, STORAGE_RW);
        scratch.push(mm);
        cum = c; m = mm;
      }
      recordChunked(ctx, a, s, Q, kernels as ChunkKernels, hp, cum, m);
    }
  } finally {
    // Pool reuse is stream ordered: a later user of these buffers runs after the dispatches above.
    for (const b of scratch) ctx.alloc.release(b);
  }
}

type ChunkKernels = [CompiledKernel, CompiledKernel, CompiledKernel, CompiledKernel];

function chunkKernels(ctx: GpuContext): Promise<ChunkKernels> {
  // Register tiles with constant bounds (unrolled). Runtime bounds compiled ~2x faster on a cold
  // lavapipe cache (7 s vs 16 s for the set) but ran 3-4x slower there, so one form for all.
  return Promise.all([
    ctx.kernel(SSD_CUMSUM), ctx.kernel(SSD_CB), ctx.kernel(SSD_SCAN, { TR: SSD_TR }), ctx.kernel(SSD_STATE, { RP: SSD_RP }),
  ]);
}

async function recurrentKernels(ctx: GpuContext, N: number, reduction: ScanReduction): Promise<[CompiledKernel]> {
  if (reduction === 'subgroup' && !ctx.features.subgroups) {
    throw new UnsupportedError("ssmScan: reduction 'subgroup' needs the WebGPU 'subgroups' feature, which this device lacks");
  }
  return [await ctx.kernel(SSM_SCAN, recurrentVariant(N, reduction, !ctx.softwareTuning))];
}

/** The chunk loop: four dispatches per chunk of Q tokens, reusing the same scratch every chunk. */
function recordChunked(ctx: GpuContext, a: SsmScanArgs, s: Shape, Q: number, k: ChunkKernels,
  hp: GPUBuffer, cum: GPUBuffer, m: GPUBuffer): void {
  const [cumsumK, cbK, scanK, stateK] = k;
  const { T, NH, P, N, G } = s;
  const hpg = NH / G;
  const sp = stridedParams(a);
  const clamp = dtClamp(a);
  for (let t0 = 0; t0 < T; t0 += Q) {
    const L = Math.min(Q, T - t0);
    ctx.dispatch(cumsumK, { dts: a.dt.buffer, hp, cum },
      { NH, Q, L, t0, dtOff: sp.dtOff, dtStride: sp.dtStride, ...clamp }, [NH]);
    const nTiles = Math.ceil(L / 16);
    ctx.dispatch(cbK, { bs: a.B.buffer, cs: a.C.buffer, cum, m }, {
      G, N, headsPerGroup: hpg, Q, L, t0, nTiles, bOff: sp.bOff, bStride: sp.bStride, cOff: sp.cOff, cStride: sp.cStride,
    }, [G * nTiles * nTiles]);
    const pBlocks = Math.ceil(P / 64), tBlocks = Math.ceil(L / (4 * SSD_TR));
    ctx.dispatch(scanK, { xs: a.x.buffer, cs: a.C.buffer, hp, cum, m, state: a.state, y: a.y }, {
      NH, P, N, headsPerGroup: hpg, Q, L, t0, pBlocks, tBlocks, xOff: sp.xOff, xStride: sp.xStride,
      cOff: sp.cOff, cStride: sp.cStride, yOff: a.yOffset ?? 0,
    }, [NH * pBlocks * tBlocks]);
    const sBlocks = Math.ceil(P / (4 * SSD_RP)), nBlocks = Math.ceil(N / 64);
    ctx.dispatch(stateK, { xs: a.x.buffer, bs: a.B.buffer, cum, state: a.state }, {
      NH, P, N, headsPerGroup: hpg, Q, L, t0, pBlocks: sBlocks, nBlocks, xOff: sp.xOff, xStride: sp.xStride,
      bOff: sp.bOff, bStride: sp.bStride,
    }, [NH * sBlocks * nBlocks]);
  }
}

export interface DecodeStepArgs {
  /** Sequences in the step (one token each). */
  B: number;
  nHeads: number;
  headDim: number;
  dState: number;
  nGroups: number;
  convDim: number;
  kernelSize: number;
  /**
   * In_proj rows [B, zxStride]: sequence b's xBC (convDim values) at xbcOffset + b * zxStride and
   * its dt (NH values) at dtOffset + b * zxStride (elements).
   */
  zx: GPUBuffer;
  xbcOffset: number;
  dtOffset: number;
  zxStride: number;
  convWeight: GPUBuffer;
  convBias: GPUBuffer;
  /** Holds each sequence's ring [K, convDim] (src/backends/backend.ts convStateBytes), read and advanced. */
  convState: GPUBuffer;
  /** Packed head constants [NH] vec4 (headParams). */
  hp: GPUBuffer;
  /** Holds each sequence's SSM state [NH, P, N] f32, advanced in place. */
  state: GPUBuffer;
  /** y [B, NH * P] */
  y: GPUBuffer;
  /** u32 [B, 4]: sequence b's ring offset in convState, state offset in state (elements), its token's position, 0. */
  seqs: GPUBuffer;
  dtMin: number;
  dtMax: number;
  reduction?: ScanReduction;
}

/**
 * One decode token of each of B sequences: conv1d + SiLU + conv-state update + scan + D skip in one
 * dispatch (shaders/ssm_decode_step.wgsl), the same results as conv1d followed by ssmScan with T = 1
 * per sequence.
 */
export async function ssmDecodeStep(ctx: GpuContext, a: DecodeStepArgs): Promise<void> {
  const { B, nHeads: NH, headDim: P, dState: N, nGroups: G, convDim: C, kernelSize: K } = a;
  for (const [k, v] of Object.entries({ B, nHeads: NH, headDim: P, dState: N, nGroups: G, convDim: C, kernelSize: K })) {
    if (!Number.isInteger(v) || v < 1) throw new InputError(`ssmDecodeStep: ${k} must be an integer >= 1, got ${v}`);
  }
  if (NH % G !== 0) throw new InputError(`ssmDecodeStep: nHeads ${NH} is not a multiple of nGroups ${G}`);
  if (C !== NH * P + 2 * G * N) throw new InputError(`ssmDecodeStep: convDim ${C} != NH*P + 2*G*N = ${NH * P + 2 * G * N}`);
  if (N > MAX_D_STATE) throw new UnsupportedError(`ssmDecodeStep: d_state ${N} > ${MAX_D_STATE} is not supported`);
  if (!(a.dtMin >= 0) || !(a.dtMax >= a.dtMin)) throw new InputError(`ssmDecodeStep: bad dt clamp [${a.dtMin}, ${a.dtMax}]`);
  if (!Number.isInteger(a.zxStride) || (B > 1 && a.zxStride < 1)) throw new InputError(`ssmDecodeStep: bad zxStride ${a.zxStride}`);
  const need = (name: string, b: GPUBuffer, elems: number) => {
    if (b.size < 4 * elems) throw new InputError(`ssmDecodeStep: ${name} holds ${b.size} bytes, needs ${4 * elems}`);
  };
  need('zx (xBC)', a.zx, a.xbcOffset + (B - 1) * a.zxStride + C);
  need('zx (dt)', a.zx, a.dtOffset + (B - 1) * a.zxStride + NH);
  need('convWeight', a.convWeight, C * K);
  need('convBias', a.convBias, C);
  need('convState', a.convState, K * C);
  need('hp', a.hp, 4 * NH);
  need('state', a.state, NH * P * N);
  need('y', a.y, B * NH * P);
  need('seqs', a.seqs, 4 * B);
  for (const [name, b] of [['zx', a.zx], ['convState', a.convState], ['state', a.state]] as const) {
    if (b === a.y) throw new InputError(`ssmDecodeStep: y must not alias ${name}`);
  }
  const reduction = a.reduction ?? defaultReduction(ctx);
  if (reduction === 'subgroup' && !ctx.features.subgroups) {
    throw new UnsupportedError("ssmDecodeStep: reduction 'subgroup' needs the WebGPU 'subgroups' feature, which this device lacks");
  }
  const k = await ctx.kernel(SSM_DECODE_STEP, recurrentVariant(N, reduction, !ctx.softwareTuning));
  const PB = Number(k.defines.PB);
  const pBlocks = Math.ceil(P / PB);
  ctx.dispatch(k, { zx: a.zx, convW: a.convWeight, convB: a.convBias, convState: a.convState, hp: a.hp, state: a.state, y: a.y, seqs: a.seqs }, {
    B, NH, P, headsPerGroup: NH / G, pBlocks, C, K, G, xbcOff: a.xbcOffset, dtOff: a.dtOffset, zxStride: a.zxStride,
    dtMin: a.dtMin, dtMax: Number.isFinite(a.dtMax) ? Math.min(a.dtMax, F32_MAX) : F32_MAX, npt: Number(k.defines.NPT),
  }, [B * NH * pBlocks]);
}
