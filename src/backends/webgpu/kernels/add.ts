// Launchers for the residual adds: shaders/add.wgsl (out = a + b) and shaders/add_inplace.wgsl
// (x += delta), f32, any n.
import type { GpuContext } from '../context.ts';
import type { KernelDef } from '../kernel.ts';
import source from '../../../../shaders/add.wgsl';
import inplaceSource from '../../../../shaders/add_inplace.wgsl';

const ADD: KernelDef = {
  name: 'add',
  source,
  bindings: ['a', 'b', 'out'],
  params: [['n', 'u32']],
  workgroupSize: () => [256, 1, 1],
};

const ADD_INPLACE: KernelDef = {
  name: 'add_inplace',
  source: inplaceSource,
  bindings: ['x', 'delta'],
  params: [['n', 'u32']],
  workgroupSize: () => [256, 1, 1],
};

/** out [n] = a [n] + b [n]; all f32 storage buffers, out aliasing neither input. */
export async function add(ctx: GpuContext, a: GPUBuffer, b: GPUBuffer, out: GPUBuffer, n: number): Promise<void> {
  const k = await ctx.kernel(ADD);
  ctx.dispatch(k, { a, b, out }, { n }, [Math.ceil(n / 256)]);
}

/** x [n] += delta [n]; f32 storage buffers that must not alias. */
export async function addInPlace(ctx: GpuContext, x: GPUBuffer, delta: GPUBuffer, n: number): Promise<void> {
  const k = await ctx.kernel(ADD_INPLACE);
  ctx.dispatch(k, { x, delta }, { n }, [Math.ceil(n / 256)]);
}
