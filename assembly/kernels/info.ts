// Module facts a host reads before calling anything.
import { RELAXED_SIMD } from './common';

/** Version of the export surface (argument lists); bumped on any incompatible change. */
export function abiVersion(): i32 { return 1; }

/** First byte the host may allocate from (everything below belongs to the module; it is unused). */
export function heapBase(): usize { return __heap_base; }

/** 1 in the build that uses relaxed-SIMD fused multiply-adds (kernels-relaxed.wasm). */
export function relaxedSimd(): i32 { return RELAXED_SIMD ? 1 : 0; }
