// host.wasm: host-side numeric helpers (src/wasm/host.ts loads it). One line per export group.
export { alloc, free } from './memory';
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './convert';
export { sampleLogits } from './sample';
export { quantizeRows, repackBlocks, dequantizeBlocks } from './quant';
