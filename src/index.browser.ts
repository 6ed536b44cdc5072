// Browser entry: WebGPU from navigator.gpu; string sources are URLs or Hugging Face model ids
// (fetched with Range requests, whole files cached with the Cache API).
import { setGpuProvider } from './backends/webgpu/provider.ts';
import { DeviceError } from './errors.ts';
import { setStringSourceOpener } from './io/open-source.ts';
import { openBrowserStringSource } from './io/open-source-browser.ts';

setGpuProvider(async () => {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new DeviceError('WebGPU is not available in this browser (navigator.gpu is missing): use a recent Chrome/Edge, or enable WebGPU');
  return gpu;
});
setStringSourceOpener(openBrowserStringSource);

export * from './index.ts';
export { hubCachedFetch, createCachingFetch, clearHubCache } from './io/hub-cache-browser.ts';
