// Launcher for NeoX RoPE in place on strided rows (shaders/rope.wgsl). The inverse frequencies are
// computed here exactly as transformers does in float32 and kept on the GPU per (headDim, theta)
// for the life of the context (a few hundred bytes, label 'weights:rope_inv_freq').
import type { GpuContext } from '../context.ts';
import type { KernelDef } from '../kernel.ts';
import { InputError } from '../../../errors.ts';
import { ropeInvFreq } from '../../backend.ts';

export { ropeInvFreq } from '../../backend.ts';
import ropeSource from '../../../../shaders/rope.wgsl';

const WG = 256;

const ROPE: KernelDef = {
  name: 'rope',
  source: ropeSource,
  bindings: ['x', 'invFreq'],
  params: [['offset', 'u32'], ['rowStride', 'u32'], ['T', 'u32'], ['nHeads', 'u32'], ['half', 'u32'], ['headDim', 'u32'], ['pos0', 'u32']],
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

export interface RopeArgs {
  /** f32, rows x[offset + t * rowStride + h * headDim + i], rotated in place */
  x: GPUBuffer;
  /** elements; default 0 */
  offset?: number;
  /** elements between consecutive tokens' rows (>= nHeads * headDim) */
  rowStride: number;
  T: number;
  nHeads: number;
  /** even; the rotation covers the full head dim */
  headDim: number;
  /** absolute position of row t = 0 */
  pos0: number;
  /** rope base, e.g. 10000 (used when invFreq is not given) */
  theta: number;
  /** inv_freq [headDim / 2] f32 (ropeInvFreq(headDim, theta)); default: a table kept per context. */
  invFreq?: GPUBuffer;
  /** u32 [T]: each row's absolute position (rows of several sequences); pos0 is then ignored. */
  positions?: GPUBuffer;
}

const ROPE_POSITIONS: KernelDef = { ...ROPE, bindings: ['x', 'invFreq', 'positions'] };

const tables = new WeakMap<GpuContext, Map<string, GPUBuffer>>();

function invFreqBuffer(ctx: GpuContext, headDim: number, theta: number): GPUBuffer {
  let m = tables.get(ctx);
  if (!m) { m = new Map(); tables.set(ctx, m); }
  const key = `${headDim}:${theta}`;
  let b = m.get(key);
  if (!b || !ctx.alloc.isLive(b)) {
    b = ctx.upload('weights:rope_inv_freq', ropeInvFreq(headDim, theta));
    m.set(key, b);
  }
  return b;
}

/** Rotates q or k rows in place at positions pos0 .. pos0 + T - 1. One dispatch. */
export async function rope(ctx: GpuContext, a: RopeArgs): Promise<void> {
  const offset = a.offset ?? 0;
  for (const [n, v, min] of [['T', a.T, 0], ['nHeads', a.nHeads, 1], ['headDim', a.headDim, 2], ['pos0', a.pos0, 0], ['offset', offset, 0], ['rowStride', a.rowStride, 0]] as const) {
    if (!Number.isInteger(v) || v < min) throw new InputError(`rope: ${n} must be an integer >= ${min}, got ${v}`);
  }
  if (a.headDim % 2 !== 0) throw new InputError(`rope: headDim ${a.headDim} must be even (rotate-half pairs i with i + hd/2)`);
  if (a.T > 1 && a.rowStride < a.nHeads * a.headDim) throw new InputError(`rope: rowStride ${a.rowStride} is below nHeads * headDim = ${a.nHeads * a.headDim}: rows would overlap`);
  if (!(a.theta > 0)) throw new InputError(`rope: theta must be > 0, got ${a.theta}`);
  if (a.pos0 + a.T > 1 << 24) throw new InputError(`rope: position ${a.pos0 + a.T} is beyond f32's exact integers (2^24)`);
  if (a.T === 0) return;
  const end = offset + (a.T - 1) * a.rowStride + a.nHeads * a.headDim;
  if (a.x.size < end * 4) throw new InputError(`rope: x holds ${a.x.size} bytes, rows reach element ${end}`);
  if (a.positions && a.positions.size < 4 * a.T) throw new InputError(`rope: positions holds ${a.positions.size} bytes, needs ${4 * a.T}`);
  const k = a.positions ? await ctx.kernel(ROPE_POSITIONS, { WG, POSITIONS: true }) : await ctx.kernel(ROPE, { WG, POSITIONS: false });
  if (a.invFreq && a.invFreq.size < 4 * (a.headDim >> 1)) throw new InputError(`rope: invFreq holds ${a.invFreq.size} bytes, needs ${4 * (a.headDim >> 1)}`);
  const invFreq = a.invFreq ?? invFreqBuffer(ctx, a.headDim, a.theta);
  const half = a.headDim / 2;
  ctx.dispatch(k, a.positions ? { x: a.x, invFreq, positions: a.positions } : { x: a.x, invFreq },
    { offset, rowStride: a.rowStride, T: a.T, nHeads: a.nHeads, half, headDim: a.headDim, pos0: a.pos0 },
    [Math.ceil((a.T * a.nHeads * half) / WG)]);
}
