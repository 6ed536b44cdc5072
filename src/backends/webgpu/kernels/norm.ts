// Launchers for the two RMSNorms: shaders/rmsnorm.wgsl (plain, and the Zamba2 shared block's
// concat(x, orig) input of width 2H without storing the concat) and shaders/gated_rmsnorm.wgsl
// (the mixer's y * silu(z), normalised per group). All f32; both record one dispatch.
import type { GpuContext } from '../context.ts';
import type { KernelDef } from '../kernel.ts';
import type { StridedInput } from './strided.ts';
import { InputError } from '../../../errors.ts';
import rmsSource from '../../../../shaders/rmsnorm.wgsl';
import gatedSource from '../../../../shaders/gated_rmsnorm.wgsl';
import activationsLib from '../../../../shaders/lib/activations.wgsl';

/** Threads per row (per group for the gated norm); a power of two. */
const WG = 256;

const RMSNORM: KernelDef = {
  name: 'rmsnorm',
  source: rmsSource,
  bindings: ['x', 'x2', 'w', 'out'],
  params: [['T', 'u32'], ['H', 'u32'], ['W', 'u32'], ['eps', 'f32']],
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

const GATED_RMSNORM: KernelDef = {
  name: 'gated_rmsnorm',
  source: gatedSource,
  libraries: [activationsLib],
  bindings: ['y', 'z', 'w', 'out'],
  params: [['T', 'u32'], ['D', 'u32'], ['groupSize', 'u32'], ['G', 'u32'], ['zOffset', 'u32'], ['zRowStride', 'u32'], ['eps', 'f32']],
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

export interface RmsNormArgs {
  /** f32 [T, H] */
  x: GPUBuffer;
  /** f32 [T, H]: when given, rows are concat(x[t], x2[t]) of width 2H (Zamba2 shared block input). */
  x2?: GPUBuffer;
  /** f32 [T, H]: when given, rows are x[t] + add[t] (not stored). Excludes x2. */
  add?: GPUBuffer;
  /** f32 [H] or [2H] with x2 */
  weight: GPUBuffer;
  /** f32 [T, H] or [T, 2H]; must not be x or x2 */
  out: GPUBuffer;
  T: number;
  H: number;
  eps: number;
}

export interface GatedRmsNormArgs {
  /** f32 [T, D] */
  y: GPUBuffer;
  /** z(t, c) = z.buffer[z.offset + t * z.rowStride + c], c < D */
  z: StridedInput;
  /** f32 [D] */
  weight: GPUBuffer;
  /** f32 [T, D]; must not be y or z.buffer */
  out: GPUBuffer;
  T: number;
  D: number;
  /** channels per group (D / n_groups) */
  groupSize: number;
  eps: number;
}

function checkCount(what: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new InputError(`${what} must be an integer >= ${min}, got ${v}`);
}

function checkElems(kernel: string, name: string, buf: GPUBuffer, elems: number): void {
  if (buf.size < elems * 4) {
    throw new InputError(`${kernel}: ${name} holds ${buf.size} bytes, needs ${elems * 4} (${elems} f32)`);
  }
}

/** out = RMSNorm(x or concat(x, x2)) * weight, row by row, in f32. Records one dispatch of T workgroups. */
export async function rmsNorm(ctx: GpuContext, a: RmsNormArgs): Promise<void> {
  checkCount('rmsNorm: T', a.T, 0);
  checkCount('rmsNorm: H', a.H, 1);
  if (!(a.eps >= 0)) throw new InputError(`rmsNorm: eps must be >= 0, got ${a.eps}`);
  if (a.x2 && a.add) throw new InputError('rmsNorm: x2 (concat) and add (sum) exclude each other');
  const W = a.x2 ? 2 * a.H : a.H;
  if (a.out === a.x || a.out === a.x2 || a.out === a.add) throw new InputError('rmsNorm: out must not alias an input (rows are read twice)');
  if (a.add) checkElems('rmsNorm', 'add', a.add, a.T * a.H);
  checkElems('rmsNorm', 'x', a.x, a.T * a.H);
  if (a.x2) checkElems('rmsNorm', 'x2', a.x2, a.T * a.H);
  checkElems('rmsNorm', 'weight', a.weight, W);
  checkElems('rmsNorm', 'out', a.out, a.T * W);
  if (a.T === 0) return;
  const k = await ctx.kernel(RMSNORM, { WG, ADD: a.add !== undefined });
  ctx.dispatch(k, { x: a.x, x2: a.x2 ?? a.add ?? a.x, w: a.weight, out: a.out }, { T: a.T, H: a.H, W, eps: a.eps }, [a.T]);
}

/** out = RMSNorm_per_group(y * silu(z)) * weight (docs/model.md §Mixer step 6). One dispatch of T * (D / groupSize) workgroups. */
export async function gatedRmsNorm(ctx: GpuContext, a: GatedRmsNormArgs): Promise<void> {
  checkCount('gatedRmsNorm: T', a.T, 0);
  checkCount('gatedRmsNorm: D', a.D, 1);
  checkCount('gatedRmsNorm: groupSize', a.groupSize, 1);
  if (a.D % a.groupSize !== 0) throw new InputError(`gatedRmsNorm: D ${a.D} is not a multiple of groupSize ${a.groupSize}`);
  checkCount('gatedRmsNorm: z.offset', a.z.offset, 0);
  checkCount('gatedRmsNorm: z.rowStride', a.z.rowStride, a.T > 1 ? a.D : 0);
  if (!(a.eps >= 0)) throw new InputError(`gatedRmsNorm: eps must be >= 0, got ${a.eps}`);
  if (a.out === a.y || a.out === a.z.buffer) throw new InputError('gatedRmsNorm: out must not alias y or z');
  checkElems('gatedRmsNorm', 'y', a.y, a.T * a.D);
  if (a.T > 0) checkElems('gatedRmsNorm', 'z', a.z.buffer, a.z.offset + (a.T - 1) * a.z.rowStride + a.D);
  checkElems('gatedRmsNorm', 'weight', a.weight, a.D);
  checkElems('gatedRmsNorm', 'out', a.out, a.T * a.D);
  if (a.T === 0) return;
  const G = a.D / a.groupSize;
  const k = await ctx.kernel(GATED_RMSNORM, { WG });
  ctx.dispatch(k, { y: a.y, z: a.z.buffer, w: a.weight, out: a.out },
    { T: a.T, D: a.D, groupSize: a.groupSize, G, zOffset: a.z.offset, zRowStride: a.z.rowStride, eps: a.eps }, [a.T * G]);
}
