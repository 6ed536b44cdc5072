// Typed wrapper around build/host.wasm (assembly/host/): 16-bit float conversions for the
// checkpoint loader (and later the sampler). Big data crosses as pointers into Wasm memory:
// callers get a scratch region, fill its input view, run a conversion, and read the output view
// before the next call (views are re-created after memory may have grown).
import wasmBytes from '../../build/host.wasm';
import { MambaScanError } from '../errors.ts';

interface HostExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  free(ptr: number): void;
  bf16ToF32(src: number, dst: number, n: number): void;
  f16ToF32(src: number, dst: number, n: number): void;
  f32ToBf16(src: number, dst: number, n: number): void;
  f32ToF16(src: number, dst: number, n: number): void;
  sampleLogits(logits: number, V: number, seen: number, nSeen: number, temperature: number, topK: number,
    topP: number, penalty: number, doSample: boolean, u: number, work: number): number;
}

export interface WasmSampleOptions {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  doSample: boolean;
}

export type Float16Kind = 'f16' | 'bf16';

let instance: Promise<HostWasm> | undefined;

/** The shared host module (instantiated once, asynchronously: browsers refuse big sync compiles). */
export function hostWasm(): Promise<HostWasm> {
  if (!instance) {
    instance = (async () => {
      const mod = await WebAssembly.compile(wasmBytes as Uint8Array<ArrayBuffer>);
      const inst = await WebAssembly.instantiate(mod, {
        env: {
          abort(_msg: number, _file: number, line: number, col: number) {
            throw new MambaScanError(`host wasm aborted at ${line}:${col}`);
          },
        },
      });
      return new HostWasm(inst.exports as unknown as HostExports);
    })();
    instance.catch(() => { instance = undefined; });
  }
  return instance;
}

/**
 * A reusable pair of regions in Wasm memory: `input` (inBytes) and `output` (outBytes). Allocate
 * once per load, reuse for every chunk, free at the end.
 */
export interface ConvertScratch {
  readonly inPtr: number;
  readonly outPtr: number;
  readonly inBytes: number;
  readonly outBytes: number;
}

export class HostWasm {
  constructor(private readonly x: HostExports) {}

  scratch(inBytes: number, outBytes: number): ConvertScratch {
    const inPtr = this.x.alloc(Math.max(16, inBytes));
    const outPtr = this.x.alloc(Math.max(16, outBytes));
    return { inPtr, outPtr, inBytes, outBytes };
  }

  freeScratch(s: ConvertScratch): void {
    this.x.free(s.inPtr);
    this.x.free(s.outPtr);
  }

  /** A view of `bytes` bytes of the scratch input region (valid until the next alloc). */
  input(s: ConvertScratch, bytes = s.inBytes): Uint8Array {
    if (bytes > s.inBytes) throw new RangeError(`host wasm: ${bytes} bytes > scratch input ${s.inBytes}`);
    return new Uint8Array(this.x.memory.buffer, s.inPtr, bytes);
  }

  output(s: ConvertScratch, bytes: number): Uint8Array {
    if (bytes > s.outBytes) throw new RangeError(`host wasm: ${bytes} bytes > scratch output ${s.outBytes}`);
    return new Uint8Array(this.x.memory.buffer, s.outPtr, bytes);
  }

  /** n 16-bit values in the input region -> n f32 in the output region. */
  toF32(s: ConvertScratch, from: Float16Kind, n: number): Uint8Array {
    this.check(s, n * 2, n * 4);
    (from === 'bf16' ? this.x.bf16ToF32 : this.x.f16ToF32)(s.inPtr, s.outPtr, n);
    return this.output(s, n * 4);
  }

  /** n f32 in the input region -> n 16-bit values (round to nearest even) in the output region. */
  fromF32(s: ConvertScratch, to: Float16Kind, n: number): Uint8Array {
    this.check(s, n * 4, n * 2);
    (to === 'bf16' ? this.x.f32ToBf16 : this.x.f32ToF16)(s.inPtr, s.outPtr, n);
    return this.output(s, n * 2);
  }

  private check(s: ConvertScratch, inBytes: number, outBytes: number): void {
    if (!Number.isInteger(inBytes) || inBytes < 0 || inBytes > s.inBytes || outBytes > s.outBytes) {
      throw new RangeError(`host wasm: conversion of ${inBytes} -> ${outBytes} bytes exceeds scratch ${s.inBytes} -> ${s.outBytes}`);
    }
  }

  /**
   * Chooses the next token from `logits` [V] (assembly/host/sample.ts): penalty over `seen`,
   * temperature, top-k, top-p, then the draw `u` in [0, 1). Buffers are reused across calls.
   */
  sample(logits: Float32Array, seen: ArrayLike<number>, o: WasmSampleOptions, u: number): number {
    const V = logits.length;
    const need = 4 * (2 * V + seen.length) + 64;
    if (!this.sampleBuf || this.sampleBuf.bytes < need) {
      if (this.sampleBuf) this.x.free(this.sampleBuf.ptr);
      this.sampleBuf = { ptr: this.x.alloc(need), bytes: need };
    }
    const base = this.sampleBuf.ptr;
    const logitsPtr = base, workPtr = base + 4 * V, seenPtr = base + 8 * V;
    new Float32Array(this.x.memory.buffer, logitsPtr, V).set(logits);
    const seenView = new Int32Array(this.x.memory.buffer, seenPtr, seen.length);
    for (let i = 0; i < seen.length; i++) seenView[i] = seen[i];
    return this.x.sampleLogits(logitsPtr, V, seenPtr, seen.length, o.temperature, o.topK, o.topP,
      o.repetitionPenalty, o.doSample, u, workPtr);
  }

  private sampleBuf: { ptr: number; bytes: number } | undefined;

  // Convenience forms for small arrays (tests, one-off conversions): copy in, convert, copy out.

  bf16ToF32(src: Uint16Array): Float32Array { return this.oneShot(src, 'bf16', 'up') as Float32Array; }
  f16ToF32(src: Uint16Array): Float32Array { return this.oneShot(src, 'f16', 'up') as Float32Array; }
  f32ToBf16(src: Float32Array): Uint16Array { return this.oneShot(src, 'bf16', 'down') as Uint16Array; }
  f32ToF16(src: Float32Array): Uint16Array { return this.oneShot(src, 'f16', 'down') as Uint16Array; }

  private oneShot(src: Uint16Array | Float32Array, kind: Float16Kind, dir: 'up' | 'down'): Float32Array | Uint16Array {
    const n = src.length;
    const inB = dir === 'up' ? n * 2 : n * 4, outB = dir === 'up' ? n * 4 : n * 2;
    const s = this.scratch(inB, outB);
    try {
      this.input(s, inB).set(new Uint8Array(src.buffer, src.byteOffset, inB));
      const out = dir === 'up' ? this.toF32(s, kind, n) : this.fromF32(s, kind, n);
      const copy = out.slice();
      return dir === 'up' ? new Float32Array(copy.buffer) : new Uint16Array(copy.buffer);
    } finally {
      this.freeScratch(s);
    }
  }
}
