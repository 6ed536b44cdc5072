// Typed wrapper around build/host.wasm (assembly/host/): 16-bit float conversions for the
// checkpoint loader (and later the sampler). Big data crosses as pointers into Wasm memory:
// callers get a scratch region, fill its input view, run a conversion, and read the output view
// before the next call (views are re-created after memory may have grown).
import wasmBytes from '../../build/host.wasm';
import { InputError, MambaScanError } from '../errors.ts';
import { type DeviceLayout, type QuantFormat, FORMAT_INFO, deviceLayout } from '../quant/formats.ts';

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
  quantizeRows(fmt: number, src: number, rows: number, K: number, qs: number, qh: number, d: number, rowOffset: number): number;
  repackBlocks(fmt: number, src: number, nb: number, qs: number, qh: number, d: number, blockOffset: number): void;
  dequantizeBlocks(fmt: number, qs: number, qh: number, d: number, firstBlock: number, nb: number, dst: number): void;
}

/** Format codes of assembly/host/quant.ts. */
const FORMAT_CODE: Record<QuantFormat, number> = { q8_0: 0, q4_0: 1, q5_0: 2, q4_k: 3, q6_k: 4 };

/**
 * Wasm memory for streaming one tensor through the quantizer or the GGUF repacker, a chunk of
 * whole rows at a time (see HostWasm.quantScratch). Regions:
 *   in    : f32 [maxRows, K] input rows, or the GGUF blocks of up to maxRows rows for repacking;
 *   in16  : f16/bf16 [maxRows, K] staging for 16-bit checkpoints (converted into `in` first);
 *   out   : the device sections of maxRows rows (`layout`), filled from block 0 on every call.
 */
export interface QuantScratch {
  readonly format: QuantFormat;
  readonly K: number;
  readonly maxRows: number;
  readonly inPtr: number;
  readonly inBytes: number;
  readonly in16Ptr: number;
  readonly in16Bytes: number;
  readonly outPtr: number;
  /** deviceLayout(format, maxRows, K): where the sections sit in `out`. */
  readonly layout: DeviceLayout;
}

/**
 * One chunk's output: views of the leading `blocks` blocks of each section of the scratch's `out`
 * region (valid until the next call that may grow Wasm memory). A loader writes them at
 * partLayout.qs.offset + firstBlock * FORMAT_INFO[f].qsBlockBytes, .qh.offset + 4 * firstBlock and
 * .d.offset + 2 * firstBlock of the part's buffer. (Chunks of an even block count keep the f16
 * d slices 4-byte aligned, as GPU buffer writes need.)
 */
export interface DeviceChunk {
  readonly rows: number;
  readonly blocks: number;
  readonly qs: Uint8Array;
  readonly qh?: Uint8Array;
  readonly d?: Uint8Array;
  /** Blocks that held a NaN or an infinity (written as zero blocks); 0 for repacked chunks. */
  readonly nonFiniteBlocks: number;
}

/** Byte addresses in Wasm memory of a device buffer's sections. */
export interface SectionPointers {
  readonly qs: number;
  readonly qh: number;
  readonly d: number;
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

  // ------------------------------------------------------------------------------------------
  // Block quantization (assembly/host/quant.ts; formats: docs/weight-formats.md)

  /** Raw Wasm memory (16-byte aligned) for callers that run the pointer-level methods below. */
  allocBytes(bytes: number): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`host wasm: bad allocation size ${bytes}`);
    return this.x.alloc(Math.max(16, bytes));
  }

  freeBytes(ptr: number): void { this.x.free(ptr); }

  /** A view of `bytes` bytes at `ptr` (valid until the next call that may grow memory). */
  bytesAt(ptr: number, bytes: number): Uint8Array {
    this.checkSpan(ptr, bytes, 'view');
    return new Uint8Array(this.x.memory.buffer, ptr, bytes);
  }

  /** Section addresses of a device buffer that starts at `base` in Wasm memory. */
  sectionPointers(base: number, layout: DeviceLayout): SectionPointers {
    return { qs: base + layout.qs.offset, qh: layout.qh ? base + layout.qh.offset : 0, d: layout.d ? base + layout.d.offset : 0 };
  }

  /**
   * Pointer level: quantizes `rows` f32 rows of layout.K values at `src` into the device buffer at
   * `base` (whole-part `layout`), rows [rowOffset, rowOffset + rows). Returns the number of blocks
   * that held a NaN or an infinity (written as zero blocks).
   */
  quantizeRowsInto(src: number, rows: number, base: number, layout: DeviceLayout, rowOffset: number): number {
    const { format, K } = layout;
    this.checkRows(rows, rowOffset, layout);
    this.checkSpan(src, rows * K * 4, 'quantize input');
    this.checkSpan(base, layout.totalBytes, 'device buffer');
    const p = this.sectionPointers(base, layout);
    return this.x.quantizeRows(FORMAT_CODE[format], src, rows, K, p.qs, p.qh, p.d, rowOffset);
  }

  /** Pointer level: copies `nb` GGUF blocks at `src` (any alignment) into blocks [blockOffset, +nb) of the device buffer at `base`. */
  repackBlocksInto(src: number, nb: number, base: number, layout: DeviceLayout, blockOffset: number): void {
    if (!Number.isSafeInteger(nb) || !Number.isSafeInteger(blockOffset) || nb < 0 || blockOffset < 0 || blockOffset + nb > layout.nb) {
      throw new RangeError(`host wasm: blocks [${blockOffset}, ${blockOffset + nb}) outside the ${layout.nb} blocks of the part`);
    }
    this.checkSpan(src, nb * FORMAT_INFO[layout.format].ggufBlockBytes, 'GGUF blocks');
    this.checkSpan(base, layout.totalBytes, 'device buffer');
    const p = this.sectionPointers(base, layout);
    this.x.repackBlocks(FORMAT_CODE[layout.format], src, nb, p.qs, p.qh, p.d, blockOffset);
  }

  /** Pointer level: f32 values of blocks [firstBlock, +nb) of the device buffer at `base` into `dst` (nb * QK floats). */
  dequantizeBlocksAt(base: number, layout: DeviceLayout, firstBlock: number, nb: number, dst: number): void {
    if (!Number.isSafeInteger(nb) || !Number.isSafeInteger(firstBlock) || nb < 0 || firstBlock < 0 || firstBlock + nb > layout.nb) {
      throw new RangeError(`host wasm: blocks [${firstBlock}, ${firstBlock + nb}) outside the ${layout.nb} blocks of the part`);
    }
    this.checkSpan(base, layout.totalBytes, 'device buffer');
    this.checkSpan(dst, nb * FORMAT_INFO[layout.format].qk * 4, 'dequantize output');
    const p = this.sectionPointers(base, layout);
    this.x.dequantizeBlocks(FORMAT_CODE[layout.format], p.qs, p.qh, p.d, firstBlock, nb, dst);
  }

  /**
   * Streaming: scratch for a tensor with rows of K values stored as `format`, taking up to
   * `maxRows` rows per chunk. Allocate once per tensor (or per load, for the widest K), reuse for
   * every chunk, free with freeQuantScratch.
   */
  quantScratch(format: QuantFormat, K: number, maxRows: number): QuantScratch {
    if (!Number.isSafeInteger(maxRows) || maxRows < 1) throw new RangeError(`host wasm: maxRows must be a positive integer, got ${maxRows}`);
    const layout = deviceLayout(format, maxRows, K);
    const inBytes = maxRows * K * 4, in16Bytes = maxRows * K * 2;
    const inPtr = this.allocBytes(inBytes);
    const in16Ptr = this.allocBytes(in16Bytes);
    const outPtr = this.allocBytes(layout.totalBytes);
    return { format, K, maxRows, inPtr, inBytes, in16Ptr, in16Bytes, outPtr, layout };
  }

  freeQuantScratch(s: QuantScratch): void {
    this.x.free(s.inPtr);
    this.x.free(s.in16Ptr);
    this.x.free(s.outPtr);
  }

  /** View of the scratch's input region: f32 rows for quantizeChunk, GGUF blocks for repackChunk. */
  quantInput(s: QuantScratch, bytes = s.inBytes): Uint8Array {
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > s.inBytes) throw new RangeError(`host wasm: ${bytes} bytes > quant scratch input ${s.inBytes}`);
    return new Uint8Array(this.x.memory.buffer, s.inPtr, bytes);
  }

  /** View of the 16-bit staging region (f16/bf16 rows for quantizeChunk(s, rows, 'f16' | 'bf16')). */
  quantInput16(s: QuantScratch, bytes = s.in16Bytes): Uint8Array {
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > s.in16Bytes) throw new RangeError(`host wasm: ${bytes} bytes > quant scratch 16-bit input ${s.in16Bytes}`);
    return new Uint8Array(this.x.memory.buffer, s.in16Ptr, bytes);
  }

  /**
   * Quantizes the first `rows` rows of the input (f32 in quantInput, or 16-bit in quantInput16,
   * converted exactly to f32 first) into the scratch's sections; returns views of them.
   */
  quantizeChunk(s: QuantScratch, rows: number, from: 'f32' | Float16Kind = 'f32'): DeviceChunk {
    if (!Number.isSafeInteger(rows) || rows < 0 || rows > s.maxRows) throw new RangeError(`host wasm: ${rows} rows outside quant scratch of ${s.maxRows}`);
    const n = rows * s.K;
    if (from !== 'f32') (from === 'bf16' ? this.x.bf16ToF32 : this.x.f16ToF32)(s.in16Ptr, s.inPtr, n);
    const bad = this.quantizeRowsInto(s.inPtr, rows, s.outPtr, s.layout, 0);
    return this.chunkViews(s, rows, bad);
  }

  /** Repacks the GGUF blocks of `rows` rows held in quantInput into the scratch's sections. */
  repackChunk(s: QuantScratch, rows: number): DeviceChunk {
    if (!Number.isSafeInteger(rows) || rows < 0 || rows > s.maxRows) throw new RangeError(`host wasm: ${rows} rows outside quant scratch of ${s.maxRows}`);
    this.repackBlocksInto(s.inPtr, rows * s.layout.blocksPerRow, s.outPtr, s.layout, 0);
    return this.chunkViews(s, rows, 0);
  }

  private chunkViews(s: QuantScratch, rows: number, nonFiniteBlocks: number): DeviceChunk {
    const blocks = rows * s.layout.blocksPerRow;
    const info = FORMAT_INFO[s.format];
    const buf = this.x.memory.buffer, L = s.layout;
    return {
      rows, blocks, nonFiniteBlocks,
      qs: new Uint8Array(buf, s.outPtr + L.qs.offset, blocks * info.qsBlockBytes),
      qh: L.qh ? new Uint8Array(buf, s.outPtr + L.qh.offset, blocks * 4) : undefined,
      d: L.d ? new Uint8Array(buf, s.outPtr + L.d.offset, blocks * 2) : undefined,
    };
  }

  // Convenience forms for whole small tensors (tests, tools): copy in, run, copy out.

  /**
   * The device buffer (deviceLayout(format, rows, K).totalBytes) of x [rows, K]. Blocks holding a
   * NaN or an infinity are an InputError unless nonFinite is 'zero' (then they are zero blocks).
   */
  quantize(format: QuantFormat, x: Float32Array, rows: number, K: number, opts: { nonFinite?: 'throw' | 'zero' } = {}): Uint8Array {
    const layout = deviceLayout(format, rows, K);
    if (x.length !== rows * K) throw new InputError(`quantize ${format}: ${x.length} values, expected rows * K = ${rows * K}`);
    const src = this.allocBytes(x.byteLength), base = this.allocBytes(layout.totalBytes);
    try {
      new Float32Array(this.x.memory.buffer, src, x.length).set(x);
      new Uint8Array(this.x.memory.buffer, base, layout.totalBytes).fill(0);
      const bad = this.quantizeRowsInto(src, rows, base, layout, 0);
      if (bad > 0 && opts.nonFinite !== 'zero') throw new InputError(`quantize ${format}: ${bad} block(s) contain NaN or infinite values`);
      return new Uint8Array(this.x.memory.buffer, base, layout.totalBytes).slice();
    } finally {
      this.x.free(src);
      this.x.free(base);
    }
  }

  /** The device buffer of `rows` rows of K values given as GGUF blocks (rows * K / QK blocks). */
  repack(format: QuantFormat, blocks: Uint8Array, rows: number, K: number): Uint8Array {
    const layout = deviceLayout(format, rows, K);
    const need = layout.nb * FORMAT_INFO[format].ggufBlockBytes;
    if (blocks.byteLength < need) throw new InputError(`repack ${format}: ${blocks.byteLength} bytes, ${layout.nb} blocks need ${need}`);
    const src = this.allocBytes(need), base = this.allocBytes(layout.totalBytes);
    try {
      new Uint8Array(this.x.memory.buffer, src, need).set(blocks.subarray(0, need));
      new Uint8Array(this.x.memory.buffer, base, layout.totalBytes).fill(0);
      this.repackBlocksInto(src, layout.nb, base, layout, 0);
      return new Uint8Array(this.x.memory.buffer, base, layout.totalBytes).slice();
    } finally {
      this.x.free(src);
      this.x.free(base);
    }
  }

  /** f32 values [rows, K] of a device buffer. */
  dequantize(format: QuantFormat, buf: Uint8Array, rows: number, K: number): Float32Array {
    const layout = deviceLayout(format, rows, K);
    if (buf.byteLength < layout.totalBytes) throw new InputError(`dequantize ${format}: ${buf.byteLength} bytes < ${layout.totalBytes}`);
    const base = this.allocBytes(layout.totalBytes), dst = this.allocBytes(rows * K * 4);
    try {
      new Uint8Array(this.x.memory.buffer, base, layout.totalBytes).set(buf.subarray(0, layout.totalBytes));
      this.dequantizeBlocksAt(base, layout, 0, layout.nb, dst);
      return new Float32Array(this.x.memory.buffer, dst, rows * K).slice();
    } finally {
      this.x.free(base);
      this.x.free(dst);
    }
  }

  private checkRows(rows: number, rowOffset: number, layout: DeviceLayout): void {
    if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(rowOffset) || rows < 0 || rowOffset < 0 || rowOffset + rows > layout.rows) {
      throw new RangeError(`host wasm: rows [${rowOffset}, ${rowOffset + rows}) outside the ${layout.rows} rows of the part`);
    }
  }

  private checkSpan(ptr: number, bytes: number, what: string): void {
    if (!Number.isSafeInteger(ptr) || !Number.isSafeInteger(bytes) || ptr < 0 || bytes < 0 || ptr + bytes > this.x.memory.buffer.byteLength) {
      throw new RangeError(`host wasm: ${what} [${ptr}, +${bytes}) is outside Wasm memory (${this.x.memory.buffer.byteLength} bytes)`);
    }
  }
}
