// Everything the Node and browser entries share. Each entry sets its GPU provider and how
// string sources (paths, model ids) open, then re-exports this.
export { loadModel, MambaModel, type LoadModelOptions, type ForwardOutput } from './api.ts';
export type { ModelSource } from './io/open-source.ts';
export { Session, type GenerateOptions, type GenerateStats } from './runtime/session.ts';
export { SeededRandom, sampleToken, type SamplingOptions } from './runtime/sampling.ts';
export { planMemory, choosePrefillChunk, type MemoryPlan, type PlanOptions } from './runtime/planner.ts';
export { parseConfig } from './models/parse-config.ts';
export type { ModelConfig, Zamba2Config, Mamba2Config, LayerKind } from './models/config.ts';
export { GpuContext, type DeviceOptions } from './backends/webgpu/context.ts';
export { WasmBackend, type WasmBackendOptions } from './backends/wasm/backend.ts';
export type { MemoryStats, Backend, BackendKind, KvDType } from './backends/backend.ts';
export { setGpuProvider } from './backends/webgpu/provider.ts';
export { Tokenizer } from './tokenizer/index.ts';
export { AutoModelForCausalLM, AutoTokenizer } from './transformers.ts';
export { isHubModelId, hubFileUrl, hubModelBaseUrl } from './io/hub.ts';
export * from './errors.ts';
