// Launcher for the exact-erf GELU gate of the Zamba2 MLP (shaders/gelu_gate.wgsl).
import type { GpuContext } from '../context.ts';
import type { KernelDef } from '../kernel.ts';
import { InputError } from '../../../errors.ts';
import geluSource from '../../../../shaders/gelu_gate.wgsl';
import geluLib from '../../../../shaders/lib/gelu.wgsl';

const WG = 256;

const GELU_GATE: KernelDef = {
  name: 'gelu_gate',
  source: geluSource,
  libraries: [geluLib],
  bindings: ['gu', 'out'],
  params: [['T', 'u32'], ['F', 'u32']],
  workgroupSize: (d) => [Number(d.WG), 1, 1],
};

export interface GeluGateArgs {
  /** f32 [T, 2F]: gate half then up half (gate_up_proj output) */
  gu: GPUBuffer;
  /** f32 [T, F]; must not alias gu */
  out: GPUBuffer;
  T: number;
  F: number;
}

/** out [T, F] = gelu_erf(gu[:, :F]) * gu[:, F:]. One dispatch, one thread per output. */
export async function geluGate(ctx: GpuContext, a: GeluGateArgs): Promise<void> {
  if (!Number.isInteger(a.T) || a.T < 0) throw new InputError(`geluGate: T must be an integer >= 0, got ${a.T}`);
  if (!Number.isInteger(a.F) || a.F < 1) throw new InputError(`geluGate: F must be an integer >= 1, got ${a.F}`);
  if (a.out === a.gu) throw new InputError('geluGate: out must not alias gu');
  if (a.gu.size < a.T * 2 * a.F * 4) throw new InputError(`geluGate: gu holds ${a.gu.size} bytes, needs ${a.T * 2 * a.F * 4} (f32 [T, 2F])`);
  if (a.out.size < a.T * a.F * 4) throw new InputError(`geluGate: out holds ${a.out.size} bytes, needs ${a.T * a.F * 4} (f32 [T, F])`);
  if (a.T * a.F > 0xffffffff) throw new InputError(`geluGate: T * F = ${a.T * a.F} exceeds the u32 index range`);
  if (a.T === 0) return;
  const k = await ctx.kernel(GELU_GATE, { WG });
  ctx.dispatch(k, { gu: a.gu, out: a.out }, { T: a.T, F: a.F }, [Math.ceil((a.T * a.F) / WG)]);
}
