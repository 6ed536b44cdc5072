// What the host's Wasm engine supports, by validating tiny hand-assembled modules (no instance is
// created). SIMD128 is required by every kernel build; threads (shared memory + atomics) and
// relaxed SIMD choose the build. Node 20 (V8 11.3) validates relaxed SIMD only with
// --experimental-wasm-relaxed-simd; Node 22+ and current browsers have it on by default.

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const V128_CONST_0 = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];

/** (func (result v128) v128.const 0) */
const SIMD_MODULE = [...HEADER, 1, 5, 1, 0x60, 0, 1, 0x7b, 3, 2, 1, 0, 10, 22, 1, 20, 0, ...V128_CONST_0, 0x0b];
/** (func (result v128) (f32x4.relaxed_madd c c c)) */
const RELAXED_MODULE = [...HEADER, 1, 5, 1, 0x60, 0, 1, 0x7b, 3, 2, 1, 0, 10, 61, 1, 59, 0,
  ...V128_CONST_0, ...V128_CONST_0, ...V128_CONST_0, 0xfd, 0x85, 0x02, 0x0b];
/** (memory 1 1 shared) (func (result i32) (i32.atomic.load (i32.const 0))) */
const THREADS_MODULE = [...HEADER, 1, 5, 1, 0x60, 0, 1, 0x7f, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1,
  10, 10, 1, 8, 0, 0x41, 0, 0xfe, 0x10, 2, 0, 0x0b];

function validates(bytes: number[]): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(new Uint8Array(bytes));
  } catch {
    return false;
  }
}

export interface WasmFeatures {
  /** SIMD128 (required). */
  simd: boolean;
  /** Atomics and shared memory in Wasm, and a SharedArrayBuffer to back it. */
  threads: boolean;
  /** Relaxed SIMD (f32x4.relaxed_madd and friends). */
  relaxedSimd: boolean;
}

let cached: WasmFeatures | undefined;

export function wasmFeatures(): WasmFeatures {
  if (!cached) {
    let sharedMemory = false;
    if (typeof SharedArrayBuffer !== 'undefined') {
      try {
        new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true } as WebAssembly.MemoryDescriptor);
        sharedMemory = true;
      } catch { /* not cross-origin isolated, or no shared memory in this host */ }
    }
    cached = {
      simd: validates(SIMD_MODULE),
      threads: sharedMemory && validates(THREADS_MODULE),
      relaxedSimd: validates(RELAXED_MODULE),
    };
  }
  return cached;
}
