// Launcher for shaders/add.wgsl: out = a + b over n f32 elements.
import type { GpuContext } from '../gpu/context.ts';
import type { KernelDef } from '../gpu/kernel.ts';
import source from '../../shaders/add.wgsl';

const ADD: KernelDef = {
  name: 'add',
  source,
  bindings: ['a', 'b', 'out'],
  params: [['n', 'u32']],
  workgroupSize: () => [256, 1, 1],
};

/** out [n] = a [n] + b [n]; all f32 storage buffers. */
export async function add(ctx: GpuContext, a: GPUBuffer, b: GPUBuffer, out: GPUBuffer, n: number): Promise<void> {
  const k = await ctx.kernel(ADD);
  ctx.dispatch(k, { a, b, out }, { n }, [Math.ceil(n / 256)]);
}
