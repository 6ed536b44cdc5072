// Shared pieces of the Wasm kernel tests (test/wasm/*.test.ts): one WasmKernels per configuration
// (1 thread, every core, the single-threaded plain-memory build), weight tensors in every storage
// format with their exact dequantized values (src/quant/reference.ts is the oracle for the block
// formats) and random inputs. `kernels({ split: n })` runs every op on the calling thread as n
// simulated threads (each thread index in turn), so splits for any thread count are tested
// without that many cores.
import * as assert from 'uvu/assert';
import { mulberry32 } from '../fixtures/rng.ts';
import { randomBlocks } from '../helpers/quant-inputs.ts';
import { FORMAT_INFO, isQuantFormat, type QuantFormat } from '../../src/quant/formats.ts';
import { dequantizeDevice, quantizeBlocks, repackToDevice, scaleMinK4 } from '../../src/quant/reference.ts';
import { bf16BitsToNumber, f16BitsToNumber, f32ToBf16Bits, f32ToF16Bits } from '../../src/quant/half.ts';
import type { DType, TensorPart } from '../../src/backends/tensor.ts';
import { WasmKernels, type WasmBuffer, type WasmTensor } from '../../src/backends/wasm/kernels.ts';
import { wasmFeatures } from '../../src/backends/wasm/features.ts';

export const U = 2 ** -24;

const cache = new Map<string, Promise<WasmKernels>>();

export interface KernelsConfig {
  /** Real threads (capped at the core count). */
  threads?: number;
  /** Simulated threads on the calling thread (overrides threads). */
  split?: number;
  relaxedSimd?: boolean;
}

/** Kernels for a configuration, created once per test process. */
export function kernels(c: KernelsConfig): Promise<WasmKernels> {
  const key = JSON.stringify([c.threads ?? 1, c.split ?? 0, c.relaxedSimd ?? false]);
  let k = cache.get(key);
  if (!k) {
    k = WasmKernels.create({ threads: c.threads ?? 1, simulateThreads: c.split, relaxedSimd: c.relaxedSimd ?? false, parallelMinWork: 0 });
    cache.set(key, k);
  }
  return k;
}

/**
 * The configurations every op runs under: 1 thread, every core, 3 and 7 simulated threads, and
 * the same for the relaxed-SIMD build when the engine has it (Node 20: only with
 * --experimental-wasm-relaxed-simd, which scripts/run-tests.mjs passes to the wasm suite). Within a
 * group results must be bit-identical; each group is checked against the reference.
 */
export const CONFIG_GROUPS: KernelsConfig[][] = [
  [{ threads: 1 }, { threads: 2 }, { split: 3 }, { split: 7 }],
  ...(wasmFeatures().relaxedSimd ? [[{ threads: 2, relaxedSimd: true }, { split: 3, relaxedSimd: true }]] : []),
];

export function configName(c: KernelsConfig): string {
  return (c.split ? `split ${c.split}` : `${c.threads} thread${c.threads === 1 ? '' : 's'}`) + (c.relaxedSimd ? ' relaxed' : '');
}

/** Closes every cached instance (call from the last test of a file). */
export async function closeAll(): Promise<void> {
  for (const k of cache.values()) (await k).close();
  cache.clear();
}

export function randn(r: () => number): number {
  const u = Math.max(r(), 1e-12), v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = randn(r) * scale;
  return out;
}

export interface TestWeight {
  tensor: WasmTensor;
  /** Exact element values the kernels must see (after storage rounding / dequantization), [N, K]. */
  values: Float64Array;
  /**
   * Per element, |a| + |b| where the stored value is w = a - b as a kernel may form it: for q4_k
   * a = d sc q, b = dmin m (the GEMV sums the two parts separately); |w| for every other format.
   */
  magnitude: Float64Array;
  dispose(): void;
}

export type BlockSource = 'quantized' | 'random';

/**
 * A weight [N, K] in `dtype`, split into parts of rowsPerPart rows (16-bit parts on even
 * elements). Block formats come from ggml's quantizer on random normal weights ('quantized') or
 * from random bytes with scales across the whole f16 range ('random', src: test/helpers/quant-inputs.ts).
 */
export function makeWeight(k: WasmKernels, name: string, dtype: DType, N: number, K: number, seed: number,
  opts: { rowsPerPart?: number; source?: BlockSource; scale?: number } = {}): TestWeight {
  let per = Math.min(opts.rowsPerPart ?? N, Math.max(N, 1));
  if ((dtype === 'f16' || dtype === 'bf16') && K % 2 === 1 && per % 2 === 1 && per < N) per++;
  const values = new Float64Array(N * K);
  const magnitude = new Float64Array(N * K);
  const parts: TensorPart<WasmBuffer>[] = [];
  const data = randomArray(N * K, seed, opts.scale ?? 1 / Math.sqrt(Math.max(K, 1)));
  let blocks: Uint8Array | undefined;
  if (isQuantFormat(dtype)) {
    const nb = (N * K) / FORMAT_INFO[dtype].qk;
    blocks = opts.source === 'random' ? randomBlocks(dtype, nb, seed) : quantizeBlocks(dtype, data);
  }
  for (let r0 = 0; r0 < N; r0 += per) {
    const rows = Math.min(per, N - r0);
    let bytes: Uint8Array;
    if (dtype === 'f32') {
      bytes = new Uint8Array(Float32Array.from(data.subarray(r0 * K, (r0 + rows) * K)).buffer);
      for (let i = r0 * K; i < (r0 + rows) * K; i++) values[i] = Math.fround(data[i]);
    } else if (dtype === 'f16' || dtype === 'bf16') {
      const bits = new Uint16Array(rows * K + (rows * K) % 2);
      for (let i = 0; i < rows * K; i++) {
        const v = data[r0 * K + i];
        bits[i] = dtype === 'f16' ? f32ToF16Bits(v) : f32ToBf16Bits(v);
        values[r0 * K + i] = dtype === 'f16' ? f16BitsToNumber(bits[i]) : bf16BitsToNumber(bits[i]);
      }
      bytes = new Uint8Array(bits.buffer);
    } else {
      const f = dtype as QuantFormat;
      const B = FORMAT_INFO[f].ggufBlockBytes, qk = FORMAT_INFO[f].qk;
      const b0 = (r0 * K) / qk, b1 = ((r0 + rows) * K) / qk;
      const partBlocks = blocks!.subarray(b0 * B, b1 * B);
      bytes = repackToDevice(f, partBlocks, rows, K);
      values.set(dequantizeDevice(f, bytes, rows, K), r0 * K);
    }
    const buffer = k.upload(`weights:${name}${parts.length ? `.${parts.length}` : ''}`, bytes);
    parts.push({ buffer, rowStart: r0, rows });
  }
  for (let i = 0; i < values.length; i++) magnitude[i] = Math.abs(values[i]);
  if (dtype === 'q4_k') q4kMagnitudes(blocks!, magnitude);
  let disposed = false;
  return {
    tensor: { name, dtype, shape: [N, K], parts, byteLength: parts.reduce((s, p) => s + p.buffer.size, 0) },
    values, magnitude,
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const p of parts) k.heap.free(p.buffer);
    },
  };
}

/** |d sc q| + |dmin m| per value of q4_k GGUF blocks (the two terms the GEMV sums apart). */
function q4kMagnitudes(blocks: Uint8Array, out: Float64Array): void {
  const dv = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  const nb = blocks.byteLength / 144;
  for (let b = 0; b < nb; b++) {
    const p = b * 144;
    const d = f16BitsToNumber(dv.getUint16(p, true)), dmin = f16BitsToNumber(dv.getUint16(p + 2, true));
    for (let j = 0; j < 256; j++) {
      const sub = j >> 5;
      const byte = blocks[p + 16 + 32 * (sub >> 1) + (j & 31)];
      const q = sub & 1 ? byte >> 4 : byte & 15;
      const [sc, m] = scaleMinK4(sub, blocks, p + 4);
      out[b * 256 + j] = Math.abs(d * sc * q) + Math.abs(dmin * m);
    }
  }
}

/** A buffer holding `data` (f32). */
export function upload(k: WasmKernels, label: string, data: Float32Array | Uint32Array | Uint16Array): WasmBuffer {
  return k.upload(label, data);
}

/** Bit patterns of an f32 array, for exact comparisons (NaN payloads included). */
export function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

export function assertSameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.is(a.length, b.length, `${what}: lengths`);
  const ba = bits(a), bb = bits(b);
  for (let i = 0; i < ba.length; i++) {
    if (ba[i] !== bb[i]) assert.unreachable(`${what}: element ${i} differs: ${a[i]} vs ${b[i]}`);
  }
}

/** max |got - ref| and the index, plus max |ref|. */
export function maxAbsErr(got: ArrayLike<number>, ref: ArrayLike<number>): { err: number; at: number; scale: number } {
  let err = 0, at = -1, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]));
    const d = Math.abs(got[i] - ref[i]);
    if (!(d <= err)) { err = d; at = i; }
  }
  return { err, at, scale };
}

/**
 * Runs `run` under configuration of CONFIG_GROUPS (each on its own heap), checks the first result of each group
 * with `check`, and requires every other result to be bit-identical to it. `run` labels its
 * buffers `test:...` and must free them.
 */
export async function acrossConfigs(what: string, run: (k: WasmKernels) => Float32Array | Promise<Float32Array>,
  check: (got: Float32Array) => void): Promise<void> {
  for (const group of CONFIG_GROUPS) {
    let first: Float32Array | undefined;
    for (const cfg of group) {
      const k = await kernels(cfg);
      const mine = () => k.heap.outstanding().filter((b) => b.label.startsWith('test:')).length;
      const live = mine();
      const got = await run(k);
      assert.is(mine(), live, `${what}: ${configName(cfg)} left test: buffers allocated`);
      if (!first) { check(got); first = got; } else assertSameBits(got, first, `${what}: ${configName(cfg)} vs ${configName(group[0])}`);
    }
  }
}

/** Elementwise |got - ref| <= rel |ref| + abs (abs may be per element). */
export function expectClose(got: ArrayLike<number>, ref: ArrayLike<number>, rel: number, abs: number | ((i: number) => number), what: string): void {
  assert.is(got.length, ref.length, `${what}: length`);
  let worst = 0, at = -1;
  for (let i = 0; i < ref.length; i++) {
    const a = typeof abs === 'number' ? abs : abs(i);
    const e = Math.abs(got[i] - ref[i]) / (rel * Math.abs(ref[i]) + a);
    if (!(e <= worst)) { worst = e; at = i; }
  }
  assert.ok(worst <= 1, `${what}: element ${at} got ${got[at]} want ${ref[at]} (error ${worst.toFixed(2)}x tolerance)`);
}
