// Node entry: WebGPU from Dawn (the `webgpu` package); string sources may be directories,
// URLs or Hugging Face model ids (downloaded into a local cache).
import { setGpuProvider } from './backends/webgpu/provider.ts';
import { nodeGpu } from './backends/webgpu/node-gpu.ts';
import { setStringSourceOpener } from './io/open-source.ts';
import { openNodeStringSource } from './io/open-source-node.ts';

setGpuProvider(nodeGpu);
setStringSourceOpener(openNodeStringSource);

export * from './index.ts';
export { downloadHubModel, defaultHubCacheDir, hubModelDir } from './io/hub-cache-node.ts';
export { fromFiles as tokenizerFromFiles } from './tokenizer/node.ts';
