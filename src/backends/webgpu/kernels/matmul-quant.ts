// Block-quantized weights in the weight-reading kernels (q8_0, q4_0, q5_0, q4_k, q6_k in the device
// layout of docs/weight-formats.md): the defines and WGSL libraries per format, section offsets
// and validation of quantized parts, and the unit GEMV (shaders/gemv_q.wgsl) that serves quantized
// decode on every device and 16/32-bit decode on software adapters. The GEMMs and the embedding
// gather are the 16-bit kernels with a dequantizing 4-value loader (lib/load4.wgsl -> wLoad4); their
// launchers stay in matmul.ts, which calls into this file.
import { InputError, UnsupportedError } from '../../../errors.ts';
import { FORMAT_INFO, deviceLayout } from '../../../quant/formats.ts';
import type { GpuContext, RecordedDispatch } from '../context.ts';
import type { DefineValue, KernelDef } from '../kernel.ts';
import { type DType, type GpuTensor, type TensorPart, isQuantDType } from '../tensor.ts';
import type { QuantDType } from '../../tensor.ts';
import unpack16Lib from '../../../../shaders/lib/unpack16.wgsl';
import dequantQLib from '../../../../shaders/lib/dequant_q.wgsl';
import dequantKLib from '../../../../shaders/lib/dequant_k.wgsl';
import unitFloatLib from '../../../../shaders/lib/unit_float.wgsl';
import gemvQSource from '../../../../shaders/gemv_q.wgsl';
import activationsLib from '../../../../shaders/lib/activations.wgsl';
import geluLib from '../../../../shaders/lib/gelu.wgsl';

/** Uniform params of every weight-reading matmul kernel (the quantized section offsets last). */
export const MATMUL_PARAMS = [
  ['M', 'u32'], ['N', 'u32'], ['K', 'u32'], ['nBase', 'u32'],
  ['xOffset', 'u32'], ['xRowStride', 'u32'], ['yOffset', 'u32'], ['yRowStride', 'u32'],
  ['accumulate', 'u32'], ['qhWord', 'u32'], ['dWord', 'u32'],
] as const;

/** The WGSL library that dequantizes `dtype` (prepended to the kernel source). */
export function dequantLibrary(dtype: QuantDType): string {
  return dtype === 'q4_k' || dtype === 'q6_k' ? dequantKLib : dequantQLib;
}

/** Storage-format defines of every weight-reading kernel: exactly one W_* true. */
export function formatDefines(dtype: DType, nativeF16: boolean): Record<string, DefineValue> {
  return {
    W_F32: dtype === 'f32', W_F16: dtype === 'f16', W_BF16: dtype === 'bf16',
    W_QUANT: isQuantDType(dtype),
    W_Q8_0: dtype === 'q8_0', W_Q4_0: dtype === 'q4_0', W_Q5_0: dtype === 'q5_0', W_Q4_K: dtype === 'q4_k', W_Q6_K: dtype === 'q6_k',
    F16: dtype === 'f16' && nativeF16,
    // wUnit (the GEMV's block decoder, which reads the 16-byte view `wq`) is only in shaders/gemv_q.wgsl.
    W_UNITS: false,
  };
}

/** Word offsets of a quantized part's qh and d sections (0 where the format has none). */
export function sectionWords(dtype: DType, part: TensorPart, K: number): { qhWord: number; dWord: number } {
  if (!isQuantDType(dtype)) return { qhWord: 0, dWord: 0 };
  const lay = deviceLayout(dtype, part.rows, K);
  return { qhWord: lay.qh ? lay.qh.offset / 4 : 0, dWord: lay.d ? lay.d.offset / 4 : 0 };
}

/**
 * Checks a quantized weight before any dispatch: rows of whole blocks, parts covering [0, N) in
 * order, and every part's buffer holding its device layout (a short buffer would otherwise be read
 * out of bounds, which WebGPU clamps silently).
 */
export function checkQuantTensor(op: string, w: GpuTensor): void {
  if (!isQuantDType(w.dtype)) return;
  const [N, K] = w.shape;
  const qk = FORMAT_INFO[w.dtype].qk;
  if (K % qk !== 0 || K === 0) throw new InputError(`${op}: ${w.name} is ${w.dtype}, whose rows need a multiple of ${qk} values; K = ${K}`);
  let next = 0;
  for (const p of w.parts) {
    if (p.rowStart !== next) throw new InputError(`${op}: ${w.name} part at row ${p.rowStart} does not follow row ${next}`);
    next += p.rows;
    if (p.rows === 0) continue;
    const need = deviceLayout(w.dtype, p.rows, K).totalBytes;
    if (p.buffer.size < need) throw new InputError(`${op}: ${w.name} part of ${p.rows} rows holds ${p.buffer.size} bytes, its ${w.dtype} layout needs ${need}`);
  }
  if (next !== N) throw new InputError(`${op}: ${w.name} parts cover ${next} of ${N} rows`);
}

function gemvDef(quant: boolean, library: string): KernelDef {
  return {
    name: 'gemv_q',
    source: gemvQSource,
    libraries: quant ? [library] : [unpack16Lib, library],
    bindings: quant ? ['x', 'wq', 'y', 'wu'] : ['x', 'wq', 'y'],
    params: MATMUL_PARAMS,
    workgroupSize: (d) => [Number(d.WG), 1, 1],
  };
}

/** Extra params of the GEMV with an input prologue (shaders/gemv_q.wgsl XNORM / XGATE / XGELU). */
const PROLOGUE_PARAMS = [['nEps', 'f32'], ['nGroup', 'u32'], ['zOff', 'u32'], ['zStride', 'u32']] as const;

/** The GEMV with an input prologue: `nw` (and `xz` for XGATE) after the format's bindings. */
function prologueDef(base: KernelDef, kind: GemvPrologue['kind']): KernelDef {
  // One object per (format family, prologue): the context caches compiled variants per def object.
  let byKind = PROLOGUE_DEFS.get(base);
  if (!byKind) PROLOGUE_DEFS.set(base, (byKind = new Map()));
  let def = byKind.get(kind);
  if (!def) byKind.set(kind, (def = makePrologueDef(base, kind)));
  return def;
}
const PROLOGUE_DEFS = new Map<KernelDef, Map<GemvPrologue['kind'], KernelDef>>();

function makePrologueDef(base: KernelDef, kind: GemvPrologue['kind']): KernelDef {
  const extra = kind === 'gelu' ? [] : kind === 'gated' ? ['nw', 'xz'] : kind === 'norm-add' ? ['nw', 'xa'] : ['nw'];
  return {
    ...base,
    name: `gemv_q.${kind}`,
    libraries: [...(base.libraries ?? []), activationsLib, geluLib],
    bindings: [...base.bindings, ...extra],
    params: [...MATMUL_PARAMS, ...PROLOGUE_PARAMS],
  };
}

/**
 * An input prologue the GEMV applies to its one x row before multiplying (decode): the RMSNorm
 * that precedes in_proj (of x, or of x + add), the gated group norm that precedes out_proj, or the GELU gate that
 * precedes the MLP's down projection. The results equal running rmsNorm / gatedRmsNorm / geluGate
 * first, up to the order of the norm's sum of squares.
 */
export type GemvPrologue =
  | { kind: 'norm'; weight: GPUBuffer; eps: number }
  | { kind: 'norm-add'; weight: GPUBuffer; eps: number; add: GPUBuffer }
  | { kind: 'gated'; weight: GPUBuffer; eps: number; z: { buffer: GPUBuffer; offset: number }; groupSize: number }
  | { kind: 'gelu' };

/** Whether the GPU unit GEMV can run `w` with an input prologue (one x row, rows of whole units, at most 8 norm groups). */
export function prologueFits(w: GpuTensor, M: number, p: GemvPrologue): boolean {
  const K = w.shape[1];
  if (M !== 1 || K % gemvUnit(w.dtype) !== 0 || K % 32 !== 0) return false;
  if (p.kind === 'gated') return p.groupSize % 4 === 0 && K % p.groupSize === 0 && K / p.groupSize <= 8;
  return true;
}

const GEMV_DEFS = {
  q: gemvDef(true, dequantQLib),
  k: gemvDef(true, dequantKLib),
  float: gemvDef(false, unitFloatLib),
};

/** Values per GEMV unit (shaders/lib/*: a block or a quarter of a super-block). */
export function gemvUnit(dtype: DType): number {
  return dtype === 'q4_k' || dtype === 'q6_k' ? 64 : 32;
}

/**
 * Whether every subgroup of this device has exactly `n` invocations (adapter info's subgroup size
 * range, where the platform reports it), so a workgroup of n threads is one subgroup.
 */
function subgroupSizeIs(ctx: GpuContext, n: number): boolean {
  if (!ctx.features.subgroups) return false;
  const info = (ctx.device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo;
  return info?.subgroupMinSize === n && info?.subgroupMaxSize === n;
}

/** The two traversals of shaders/gemv_q.wgsl. */
export type GemvTraversal = 'gpu' | 'lanes';

export interface UnitGemvTuning { wg: number; rows: number }
/**
 * GPUs: 64 threads split each row into units (neighbouring threads, neighbouring units), 4 rows per
 * workgroup. CPU emulations: 8 threads (one SIMD vector, one subgroup) own 2 rows each, so each
 * storage load feeds 8 lanes of useful work and x is loaded once per subgroup for 16 rows (4 rows
 * per thread spill registers on lavapipe and cost ~1.6x the CPU time of 2; bench/kernels-matmul.ts).
 */
export const UNIT_GEMV_TUNING: Record<GemvTraversal, UnitGemvTuning> = {
  gpu: { wg: 64, rows: 4 },
  lanes: { wg: 8, rows: 2 },
};

export interface UnitGemvCall {
  x: { buffer: GPUBuffer; offset: number; size: number };
  xOffset: number;
  xRowStride: number;
  y: { buffer: GPUBuffer; offset: number; size: number };
  yOffset: number;
  yRowStride: number;
  M: number;
  K: number;
  w: GpuTensor;
  accumulate: boolean;
  traversal: GemvTraversal;
  tuning?: UnitGemvTuning;
  nativeF16: boolean;
  /** Input prologue (GPU traversal, M = 1 only; see prologueFits). */
  prologue?: GemvPrologue;
  /** Append the dispatches here instead of recording them (MatmulArgs.sink). */
  sink?: RecordedDispatch[];
}

/**
 * Records the unit GEMV for one weight (one dispatch per part). The caller has validated shapes
 * and bound x and y as windows; xOffset/yOffset are relative to those windows.
 */
export async function unitGemv(ctx: GpuContext, c: UnitGemvCall): Promise<void> {
  const { w, M, K } = c;
  const quant = isQuantDType(w.dtype);
  const unit = gemvUnit(w.dtype);
  if (K % unit !== 0) throw new UnsupportedError(`matmul: the unit GEMV needs K % ${unit} == 0 for ${w.dtype}, K = ${K}`);
  if (!quant && K % 32 !== 0) throw new UnsupportedError(`matmul: the unit GEMV needs K % 32 == 0 for ${w.dtype}`);
  const t = c.tuning ?? UNIT_GEMV_TUNING[c.traversal];
  const mb = M === 1 ? 1 : M <= 4 ? 4 : 8;
  let rows = t.rows;
  const pow2 = (v: number) => Number.isInteger(v) && v > 0 && (v & (v - 1)) === 0;
  if (!pow2(t.wg) || !pow2(rows) || t.wg > ctx.limits.maxComputeInvocationsPerWorkgroup) {
    throw new UnsupportedError(`matmul: unit GEMV tuning wg ${t.wg}, rows ${t.rows} must be powers of two within the workgroup limit`);
  }
  if (c.traversal === 'gpu') {
    // Workgroup memory is WG * R * MB + WG floats: halve R until R * MB <= 32 and it fits the device.
    const bytes = (r: number) => 4 * t.wg * (r * mb + 1);
    while (rows > 1 && (rows * mb > 32 || bytes(rows) > ctx.limits.maxComputeWorkgroupStorageSize)) rows /= 2;
    if (t.wg < rows * mb) throw new UnsupportedError(`matmul: unit GEMV needs wg >= rows * MB (${rows * mb}), got wg ${t.wg}`);
  }
  const base = quant ? (w.dtype === 'q4_k' || w.dtype === 'q6_k' ? GEMV_DEFS.k : GEMV_DEFS.q) : GEMV_DEFS.float;
  const pro = c.prologue;
  if (pro && (c.traversal !== 'gpu' || !prologueFits(w, M, pro))) {
    throw new UnsupportedError(`matmul: an input prologue needs the GPU traversal, one x row, K a multiple of 32 and of the unit, and at most 8 norm groups`);
  }
  const def = pro ? prologueDef(base, pro.kind) : base;
  const defines: Record<string, DefineValue> = {
    ...formatDefines(w.dtype, c.nativeF16),
    W_UNITS: true,
    LANES: c.traversal === 'lanes',
    SUBGROUPS: c.traversal === 'lanes' && (t.wg === 4 || t.wg === 8) && subgroupSizeIs(ctx, t.wg),
    SG8: t.wg === 8,
    XVEC: c.xOffset % 4 === 0 && c.xRowStride % 4 === 0,
    WG: t.wg, R: rows, MB: mb,
    XPRO: pro !== undefined && pro.kind !== 'gelu', XGATE: pro?.kind === 'gated', XADD: pro?.kind === 'norm-add', XGELU: pro?.kind === 'gelu',
  };
  if (pro && pro.kind !== 'gelu') { defines.NW_BINDING = quant ? 5 : 4; defines.Z_BINDING = quant ? 6 : 5; }
  const k = await ctx.kernel(def, defines);
  const proParams: Record<string, number> = !pro ? {} : pro.kind === 'gelu' ? { nEps: 0, nGroup: K, zOff: 0, zStride: 0 }
    : { nEps: pro.eps, nGroup: pro.kind === 'gated' ? pro.groupSize : K, zOff: pro.kind === 'gated' ? pro.z.offset : 0, zStride: 0 };
  const perGroup = c.traversal === 'lanes' ? t.wg * rows : rows;
  for (const part of w.parts) {
    if (part.rows === 0) continue;
    const params: Record<string, number> = {
      M, N: part.rows, K, nBase: part.rowStart, xOffset: c.xOffset, xRowStride: c.xRowStride,
      yOffset: c.yOffset, yRowStride: c.yRowStride, accumulate: c.accumulate ? 1 : 0, ...sectionWords(w.dtype, part, K), ...proParams,
    };
    const bindings: Record<string, GPUBuffer | { buffer: GPUBuffer; offset: number; size: number }> = { x: c.x, wq: part.buffer, y: c.y };
    if (quant) bindings.wu = part.buffer;
    if (pro && pro.kind !== 'gelu') bindings.nw = pro.weight;
    if (pro?.kind === 'gated') bindings.xz = pro.z.buffer;
    if (pro?.kind === 'norm-add') bindings.xa = pro.add;
    const grid: [number, number, number] = [Math.ceil(part.rows / perGroup), 1, Math.ceil(M / mb)];
    if (c.sink) c.sink.push({ k, bindings, params, grid });
    else ctx.dispatch(k, bindings, params, grid);
  }
}
