export { GpuContext, type DeviceOptions, type GpuFeatures, type GpuLimits, type AdapterDescription, type CompiledKernel, type Binding } from './context.ts';
export { BufferAllocator, type MemoryStats } from './allocator.ts';
export { BufferUsage, MapMode, STORAGE_RW } from './flags.ts';
export { type KernelDef, type DefineValue, type ParamType } from './kernel.ts';
export { setGpuProvider, getGpu } from './provider.ts';
