// Dawn for Node (npm `webgpu`). The object returned by create() must stay referenced for as long
// as any device lives: if it is garbage-collected Dawn frees its instance under the device
// (segfaults, hangs at exit). It is kept in this module for the life of the process.
import { DeviceError } from '../../errors.ts';

let dawnGpu: GPU | undefined;

export async function nodeGpu(): Promise<GPU> {
  if (dawnGpu) return dawnGpu;
  let mod: { create: (flags: string[]) => GPU };
  try {
    mod = (await import('webgpu')) as unknown as { create: (flags: string[]) => GPU };
  } catch (e) {
    throw new DeviceError(`cannot load Dawn for Node (npm package "webgpu"): ${(e as Error).message}`, { cause: e });
  }
  dawnGpu = mod.create([]);
  return dawnGpu;
}
