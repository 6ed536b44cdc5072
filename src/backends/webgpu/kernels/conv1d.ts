// Launcher for the causal depthwise conv1d with fused bias + SiLU (docs/model.md §Mixer step 2):
// shaders/conv1d.wgsl computes out [T, C] reading earlier inputs from the conv state, then
// shaders/conv1d_state.wgsl rolls the state forward in place. Prefill, continuation and decode
// (T = 1) share this path.
//
// Conv state layout (src/backends/backend.ts convStateBytes): a ring f32 [K, C] whose row (a mod K)
// holds the raw (pre-conv) input of absolute position a; zeros for a fresh sequence.
import type { GpuContext } from '../context.ts';
import type { KernelDef } from '../kernel.ts';
import { InputError, UnsupportedError } from '../../../errors.ts';
import type { StridedInput } from './strided.ts';
import { convStateBytes as neutralConvStateBytes } from '../../backend.ts';
import convSource from '../../../../shaders/conv1d.wgsl';
import activationsLib from '../../../../shaders/lib/activations.wgsl';
import stateSource from '../../../../shaders/conv1d_state.wgsl';

const PARAMS = [['T', 'u32'], ['C', 'u32'], ['K', 'u32'], ['inOff', 'u32'], ['inStride', 'u32'], ['pos0', 'u32'], ['outOff', 'u32']] as const;

const CONV1D: KernelDef = {
  name: 'conv1d',
  source: convSource,
  libraries: [activationsLib],
  bindings: ['inp', 'weight', 'bias', 'convState', 'out'],
  params: PARAMS,
  workgroupSize: () => [256, 1, 1],
};

const CONV1D_STATE: KernelDef = {
  name: 'conv1d_state',
  source: stateSource,
  bindings: ['inp', 'convState'],
  params: PARAMS,
  workgroupSize: () => [256, 1, 1],
};

export const CONV_KERNEL_MIN = 2;
export const CONV_KERNEL_MAX = 8;

export interface Conv1dArgs {
  T: number;
  channels: number;
  kernelSize: number;
  /** xin(t, c) = input.buffer[input.offset + t*input.rowStride + c] (f32). */
  input: StridedInput;
  /** f32 [C, K] (conv1d.weight [C, 1, K]). */
  weight: GPUBuffer;
  /** f32 [C] */
  bias: GPUBuffer;
  /** Ring f32 [K, C], read then updated in place; convStateBytes(C, K) bytes. */
  convState: GPUBuffer;
  /** Absolute position of input row 0 (selects the ring rows). */
  pos0: number;
  /** f32 [T, C] from element outOffset; must not alias input or convState. */
  out: GPUBuffer;
  outOffset?: number;
}

/** Bytes of the conv state for `channels` channels and a kernel of `kernelSize` taps. */
export function convStateBytes(channels: number, kernelSize: number): number {
  checkKernelSize(kernelSize);
  return neutralConvStateBytes(channels, kernelSize);
}

function checkKernelSize(K: number): void {
  if (!Number.isInteger(K) || K < CONV_KERNEL_MIN || K > CONV_KERNEL_MAX) {
    throw new UnsupportedError(`conv1d: kernel size ${K} is not supported (${CONV_KERNEL_MIN}..${CONV_KERNEL_MAX})`);
  }
}

/** Records out = silu(bias + causal depthwise conv(input)) and advances convState by T inputs. */
export async function conv1d(ctx: GpuContext, a: Conv1dArgs): Promise<void> {
  const { T, channels: C, kernelSize: K, input } = a;
  checkKernelSize(K);
  if (!Number.isInteger(T) || T < 1) throw new InputError(`conv1d: T must be an integer >= 1, got ${T}`);
  if (!Number.isInteger(C) || C < 1) throw new InputError(`conv1d: channels must be an integer >= 1, got ${C}`);
  if (input.rowStride < C && T > 1) throw new InputError(`conv1d: input row stride ${input.rowStride} < channels ${C}`);
  if (T * C > 0xffffffff) throw new InputError(`conv1d: T*C = ${T * C} exceeds the u32 index range`);
  const needIn = 4 * (input.offset + (T - 1) * input.rowStride + C);
  if (input.buffer.size < needIn) throw new InputError(`conv1d: input buffer has ${input.buffer.size} bytes, view needs ${needIn}`);
  if (a.convState.size < convStateBytes(C, K)) {
    throw new InputError(`conv1d: convState has ${a.convState.size} bytes, needs ${convStateBytes(C, K)}`);
  }
  const outOff = a.outOffset ?? 0;
  if (!Number.isInteger(outOff) || outOff < 0) throw new InputError(`conv1d: outOffset must be a non-negative integer, got ${outOff}`);
  if (a.out.size < 4 * (outOff + T * C)) throw new InputError(`conv1d: out has ${a.out.size} bytes, needs ${4 * (outOff + T * C)}`);
  if (a.out === input.buffer || a.out === a.convState) throw new InputError('conv1d: out must not alias input or convState');

  if (!Number.isInteger(a.pos0) || a.pos0 < 0 || a.pos0 > 0xffffffff - T) throw new InputError(`conv1d: pos0 must be a non-negative integer, got ${a.pos0}`);
  const params = { T, C, K, inOff: input.offset, inStride: input.rowStride, pos0: a.pos0, outOff };
  const [conv, roll] = await Promise.all([ctx.kernel(CONV1D), ctx.kernel(CONV1D_STATE)]);
  ctx.dispatch(conv, { inp: input.buffer, weight: a.weight, bias: a.bias, convState: a.convState, out: a.out },
    params, [Math.ceil((T * C) / 256)]);
  // Stream order: this dispatch runs after the conv above has read the old state.
  ctx.dispatch(roll, { inp: input.buffer, convState: a.convState }, params, [Math.ceil(C / 256)]);
}
