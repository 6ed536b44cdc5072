// Where the `GPU` object comes from. Browsers have navigator.gpu; the Node entry installs Dawn's
// through setGpuProvider. The library never writes to globalThis.navigator.
import { DeviceError } from '../../errors.ts';

let provider: (() => Promise<GPU>) | undefined;

export function setGpuProvider(p: () => Promise<GPU>): void {
  provider = p;
}

export async function getGpu(): Promise<GPU> {
  if (provider) return provider();
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  throw new DeviceError(
    'WebGPU is not available: in a browser use one with WebGPU enabled (Chrome/Edge 113+, or ' +
      '--enable-unsafe-webgpu); in Node import the package\'s Node entry, which uses Dawn.',
  );
}
