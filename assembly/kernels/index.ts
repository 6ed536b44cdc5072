// kernels.wasm: the CPU compute core (hand-written SIMD128). Export surface and contract are
// documented in assembly/kernels/README.md; in short:
//  - imports: env.memory only (shared in kernels.wasm / kernels-relaxed.wasm, plain in
//    kernels-st.wasm); no data segments, no allocator, no globals written.
//  - every kernel takes byte pointers into that memory, sizes, and (threadIndex, threadCount);
//    it computes its own share of the outputs and returns; calling it for every ti in
//    0 .. threadCount-1 (in any order, on any instances sharing the memory) completes the op,
//    and the results do not depend on threadCount.
export { abiVersion, heapBase, relaxedSimd } from './info';
export { embedding, gemm, gemmScratchBytes, gemv, weightBlock } from './matmul';
export { gatedRmsnorm, rmsnorm, rmsnormAdd } from './norm';
export { add, argmax, geluGate, storeRows } from './elementwise';
export { rope } from './rope';
export { conv1d } from './conv1d';
export { ssmScan } from './scan';
export { attention } from './attention';
