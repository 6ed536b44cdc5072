// A Hugging Face checkpoint folder (config.json + one model.safetensors) as float64 reference input,
// read here independently of src/io: the safetensors header by hand, F32/F16/BF16 widened exactly.
// Also the mean next-token NLL of a logits matrix, in float64. Used by the trained default model's
// exactness test and by `npm run bench` (bench/quality.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigJson } from '../fixtures/config-json.ts';
import type { RefModelInput, RefTensor } from '../reference/index.ts';

function f16ToF64(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function readCheckpointForRef(dir: string): RefModelInput {
  const config = parseConfigJson(readFileSync(join(dir, 'config.json'), 'utf8'));
  const buf = readFileSync(join(dir, 'model.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as
    Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  delete (header as Record<string, unknown>).__metadata__;
  const base = 8 + n;
  const weights = new Map<string, RefTensor>();
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (const [name, e] of Object.entries(header)) {
    const count = e.shape.reduce((a, b) => a * b, 1);
    const [b0, b1] = e.data_offsets;
    const bytes = buf.subarray(base + b0, base + b1);
    const values = new Float64Array(count);
    if (e.dtype === 'F32') {
      for (let i = 0; i < count; i++) values[i] = bytes.readFloatLE(4 * i);
    } else if (e.dtype === 'BF16') {
      for (let i = 0; i < count; i++) { u32[0] = bytes.readUInt16LE(2 * i) << 16; values[i] = f32[0]; }
    } else if (e.dtype === 'F16') {
      for (let i = 0; i < count; i++) values[i] = f16ToF64(bytes.readUInt16LE(2 * i));
    } else {
      throw new Error(`${name}: dtype ${e.dtype} not handled by the test reader`);
    }
    if (b1 - b0 !== count * (e.dtype === 'F32' ? 4 : 2)) throw new Error(`${name}: byte range does not match its shape`);
    weights.set(name, { shape: e.shape, values });
  }
  return { config, weights };
}

/** -log softmax(logits[t])[ids[t+1]] for t = 0..T-2, in float64 (logits [T, V] row-major). */
export function nextTokenNlls(logits: ArrayLike<number>, ids: readonly number[], V: number): Float64Array {
  const T = ids.length;
  if (logits.length !== T * V) throw new Error(`logits length ${logits.length} != ${T} x ${V}`);
  const out = new Float64Array(T - 1);
  for (let t = 0; t < T - 1; t++) {
    const o = t * V;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v] > mx) mx = logits[o + v];
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[o + v] - mx);
    out[t] = mx + Math.log(s) - logits[o + ids[t + 1]];
  }
  return out;
}

export function mean(xs: ArrayLike<number>, n = xs.length): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i];
  return s / n;
}

/** Mean next-token NLL over the whole sequence. */
export function meanNextTokenNll(logits: ArrayLike<number>, ids: readonly number[], V: number): number {
  return mean(nextTokenNlls(logits, ids, V));
}
