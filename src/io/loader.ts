// Streaming checkpoint loader: config.json + model.safetensors (or a sharded
// model.safetensors.index.json) -> validated config and GPU tensors.
//
// Order of work, so that a bad checkpoint costs nothing on the GPU:
//   1. parse config.json, derive the expected tensor list (src/models/layout.ts);
//   2. read and validate every safetensors header (two small range reads per file);
//   3. check every expected tensor's presence, shape and dtype; report all problems at once;
//   4. plan storage (dtype per role, split parts under the binding limit), call beforeAllocate;
//   5. per tensor: allocate its buffers, stream its bytes in bounded chunks (converting on the host
//      through host.wasm when the GPU dtype differs), and move on.
// Host memory stays at one chunk buffer plus the Wasm conversion scratch, whatever the file size;
// the high-water mark is tracked and returned. Any failure or abort destroys every buffer this
// load created (the allocator's live bytes return to where they were) and rethrows a typed error.
import { AbortError, CheckpointError, ConfigError, MambaScanError, UnsupportedError } from '../errors.ts';
import type { Backend, Buf } from '../backends/backend.ts';
import { type DType, type FloatDType, FLOAT_DTYPE_BYTES, type TensorPart, type WeightTensor, isQuantDType, numel, rowSize } from '../backends/tensor.ts';
import { FORMAT_INFO, GGML_TYPE, type QuantFormat, type QuantizeMode, deviceLayout, ggmlTypeInfo, recipeFormat } from '../quant/formats.ts';
import { aLogFromA, ggufBytesToF32, readGgufMamba2 } from './gguf-mamba2.ts';
import { type PlannedPart, maxPartBytes, planParts } from './upload.ts';
import type { ModelConfig } from '../models/config.ts';
import { type ExpectedTensor, type TensorRole, expectedTensors } from '../models/layout.ts';
import { parseConfig, parseConfigJson } from '../models/parse-config.ts';
import { type ConvertScratch, type DeviceChunk, type HostWasm, type QuantScratch, hostWasm } from '../wasm/host.ts';
import { QuantPool } from './quantize-pool.ts';
import {
  type SafetensorsEntry, type SupportedDType, dtypeItemSize, isSupportedDType, parseShardIndex, readSafetensorsHeader,
} from './safetensors.ts';
import { type CheckpointSource, type SourceInput, type UrlSourceOptions, isCheckpointSource, resolveSource } from './sources.ts';

export { planParts } from './upload.ts';

export type WeightDType = 'auto' | 'f32' | 'f16' | 'bf16';

export interface LoadProgress {
  phase: 'config' | 'headers' | 'weights' | 'done';
  /** Tensor bytes (as stored in the checkpoint) streamed so far. */
  loadedBytes: number;
  totalBytes: number;
  tensorsDone: number;
  tensorsTotal: number;
  /** The tensor being streamed. */
  tensor?: string;
  file?: string;
}

export interface LoadOptions {
  /** GPU dtype of matrices/embeddings: 'auto' keeps the checkpoint's. Vectors are always f32. */
  dtype?: WeightDType;
  /**
   * Quantize float matrices while they stream in (docs/weight-formats.md recipes): 'q8_0', 'q4_k'
   * (llama.cpp's Q4_K_M rule) or 'none' (default). Block-quantized GGUF tensors keep their format.
   */
  quantize?: QuantizeMode;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /** Host chunk size for streaming (default 8 MiB; rounded to a multiple of 8 bytes). */
  chunkBytes?: number;
  /**
   * Largest GPU buffer per tensor part (default: the device's max storage binding). Tensors above
   * it are split along dim 0. Tests lower it to exercise splits on small fixtures.
   */
  maxBindingBytes?: number;
  /** Called after validation, before the first GPU allocation, with the bytes weights will take. */
  beforeAllocate?: (config: ModelConfig, weightBytes: number) => void | Promise<void>;
  /** Passed to resolveSource for URL inputs (fetch injection, auth headers). */
  url?: UrlSourceOptions;
  /** Wait for the GPU queue after this many uploaded bytes so staging memory stays bounded (default 64 MiB). */
  syncEveryBytes?: number;
  /**
   * Worker threads quantizing float matrices while the load reads on (src/io/quantize-pool.ts;
   * at most one per core; the bytes are the same either way). Default: one per core where there
   * are 2 or more and at least 32 MiB to quantize; 0 quantizes on the loading thread.
   */
  quantizeThreads?: number;
}

export interface LoadedCheckpoint {
  readonly config: ModelConfig;
  /** config.json as parsed (non-finite numbers restored). */
  readonly configJson: Record<string, unknown>;
  /** Canonical tensor name (layout.ts) -> GPU tensor. */
  readonly tensors: Map<string, WeightTensor>;
  /** GPU bytes held by the weights (buffer sizes, padding included). */
  readonly weightBytes: number;
  /** Most host bytes the loader held at once (chunk buffers, conversion scratch, headers). */
  readonly hostHighWaterBytes: number;
  /** Safetensors files read. */
  readonly files: readonly string[];
  /** Tensors present in the checkpoint that the config does not use (e.g. a stored tied lm_head). */
  readonly unusedTensors: readonly string[];
  /**
   * Identifies the checkpoint (snapshots refuse to restore into another model): a hash of the
   * config, every tensor's name, storage and shape, and the first bytes of each tensor's data.
   */
  readonly fingerprint: string;
  /** Canonical tensor name -> its role (layout.ts): which are matrices, embeddings or vectors. */
  readonly roles: ReadonlyMap<string, TensorRole>;
  /** A tokenizer the checkpoint carries in its own metadata (GGUF), as tokenizer.json text. */
  readonly tokenizer?: { json: string; config?: string };
  /** Destroys every weight buffer (idempotent). */
  dispose(): void;
}

/** Where one tensor's bytes are and how they are stored there. */
interface SourceTensor {
  readonly exp: ExpectedTensor;
  readonly file: string;
  /** Absolute byte offset and length of the tensor's data in `file`. */
  readonly offset: number;
  readonly byteLength: number;
  /** Float element type, or a GGUF block format. */
  readonly src: SupportedDType | QuantFormat;
  /** 'a-to-a-log': GGUF stores A = -exp(A_log); we keep A_log. */
  readonly transform: 'none' | 'a-to-a-log';
}

interface Planned extends SourceTensor {
  readonly dst: DType;
  /** Shape on the backend (layout.ts gpuShape). */
  readonly shape: readonly number[];
  readonly parts: PlannedPart[];
  /** Bytes of stored data (before padding), summed over parts. */
  readonly byteLength: number;
  readonly srcBytes: number;
}

const DEFAULT_CHUNK = 8 << 20;
const SRC_DTYPE: Record<SupportedDType, FloatDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

function isFloatSrc(src: SupportedDType | QuantFormat): src is SupportedDType {
  return src === 'F32' || src === 'F16' || src === 'BF16';
}

/**
 * The backend storage of a tensor: vectors f32; block-quantized sources keep their format;
 * float matrices follow the quantize recipe (src/quant/formats.ts), else the requested float dtype.
 */
export function storageDtype(exp: Pick<ExpectedTensor, 'role' | 'quant'>, shape: readonly number[], src: SupportedDType | QuantFormat,
  want: WeightDType, quantize: QuantizeMode): DType {
  if (exp.role === 'vector') return 'f32';
  if (!isFloatSrc(src)) return src;
  const K = shape[shape.length - 1];
  const q = shape.length === 2 ? recipeFormat(exp.quant, K, quantize) : 'keep';
  if (q !== 'keep') return q;
  return want === 'auto' ? SRC_DTYPE[src] : want;
}

/** Bytes of one part of `rows` rows of a tensor whose rows hold `rowElems` values, stored as `dtype`. */
export function partBytes(dtype: DType, rows: number, rowElems: number): number {
  return isQuantDType(dtype) ? deviceLayout(dtype, rows, rowElems).totalBytes : rows * rowElems * FLOAT_DTYPE_BYTES[dtype];
}

/** Parts of a tensor of GPU shape `shape` stored as `dtype`, each within maxBytes (planParts for block formats). */
export function planTensorParts(name: string, shape: readonly number[], dtype: DType, maxBytes: number): PlannedPart[] {
  if (!isQuantDType(dtype)) return planParts(name, shape, FLOAT_DTYPE_BYTES[dtype], maxBytes);
  const rows = shape[0], K = rowSize(shape);
  const whole = partBytes(dtype, rows, K);
  if (whole <= maxBytes) return [{ rowStart: 0, rows, bytes: whole }];
  let per = Math.floor(rows * maxBytes / whole);
  while (per > 0 && partBytes(dtype, per, K) > maxBytes) per--;
  if (per < 1) throw new UnsupportedError(`${name}: one ${dtype} row (${partBytes(dtype, 1, K)} bytes) exceeds the ${maxBytes}-byte buffer binding limit`);
  const parts: PlannedPart[] = [];
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    parts.push({ rowStart: r, rows: n, bytes: partBytes(dtype, n, K) });
  }
  return parts;
}

/**
 * Backend bytes a config's weights take (every part's buffer, 4-byte padded), as the loader would
 * store them from a checkpoint of `srcDtype` floats: the memory planner's weight figure.
 */
export function plannedWeightBytes(config: ModelConfig, opts: { dtype?: WeightDType; srcDtype?: SupportedDType; quantize?: QuantizeMode; maxBindingBytes?: number } = {}): number {
  const src = opts.srcDtype ?? 'BF16';
  let total = 0;
  for (const exp of expectedTensors(config)) {
    const shape = exp.gpuShape ?? exp.shape;
    const dst = storageDtype(exp, shape, src, opts.dtype ?? 'auto', opts.quantize ?? 'none');
    for (const p of planTensorParts(exp.name, shape, dst, opts.maxBindingBytes ?? Number.MAX_SAFE_INTEGER)) total += Math.max(4, Math.ceil(p.bytes / 4) * 4);
  }
  return total;
}

/** FNV-1a over strings and bytes, two 32-bit lanes (64 bits): a model identity, not a security hash. */
class Fingerprint {
  private a = 0x811c9dc5;
  private b = 0x050c5d1f;
  add(text: string): void { this.addBytes(new TextEncoder().encode(text)); }
  addBytes(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) {
      this.a = Math.imul(this.a ^ bytes[i], 0x01000193) >>> 0;
      this.b = Math.imul(this.b ^ bytes[i] ^ (i & 0xff), 0x01000193) >>> 0;
    }
  }
  hex(): string { return this.a.toString(16).padStart(8, '0') + this.b.toString(16).padStart(8, '0'); }
}

function shapeEq(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Loads a checkpoint onto the GPU. `input` is a CheckpointSource or anything resolveSource takes. */
export async function loadCheckpoint(be: Backend, input: SourceInput, opts: LoadOptions = {}): Promise<LoadedCheckpoint> {
  const ownsSource = !isCheckpointSource(input);
  const source = await resolveSource(input, { ...opts.url, signal: opts.url?.signal ?? opts.signal });
  try {
    return await load(be, source, opts);
  } finally {
    if (ownsSource) await source.close?.().catch(() => {});
  }
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const r = signal.reason;
    throw new AbortError(`checkpoint load aborted${r instanceof Error && r.message ? `: ${r.message}` : ''}`);
  }
}

/** What a checkpoint format's reader yields: the config and where every expected tensor is. */
interface Located {
  config: ModelConfig;
  configJson: Record<string, unknown>;
  tensors: SourceTensor[];
  files: string[];
  unusedTensors: string[];
  tokenizer?: { json: string; config?: string };
}

/** The .gguf file a source names or holds alone (no config.json beside it), if any. */
async function ggufFileOf(source: CheckpointSource): Promise<string | undefined> {
  if (source.primaryFile) return /\.gguf$/i.test(source.primaryFile) ? source.primaryFile : undefined;
  if (!source.list || (await source.exists('config.json'))) return undefined;
  const ggufs = (await source.list()).filter((f) => /\.gguf$/i.test(f));
  if (ggufs.length > 1) throw new CheckpointError(source.description, `holds several GGUF files (${ggufs.join(', ')}) and no config.json: name the one to load`);
  return ggufs[0];
}

async function load(be: Backend, source: CheckpointSource, opts: LoadOptions): Promise<LoadedCheckpoint> {
  const want = opts.dtype ?? 'auto';
  if (!['auto', 'f32', 'f16', 'bf16'].includes(want)) throw new UnsupportedError(`dtype ${JSON.stringify(want)}: expected 'auto', 'f32', 'f16' or 'bf16'`);
  const quantize = opts.quantize ?? 'none';
  if (!['none', 'q8_0', 'q4_k'].includes(quantize)) throw new UnsupportedError(`quantize ${JSON.stringify(quantize)}: expected 'q8_0', 'q4_k' or 'none'`);
  const signal = opts.signal;
  const progress = opts.onProgress;
  let highWater = 0;
  const noteHost = (bytes: number) => { if (bytes > highWater) highWater = bytes; };

  // 1-3. config, headers, every expected tensor located and validated: nothing allocated yet.
  checkAbort(signal);
  const gguf = await ggufFileOf(source);
  const located = gguf
    ? await locateGguf(source, gguf, noteHost, progress)
    : await locateSafetensors(source, noteHost, signal, progress);
  const { config, configJson, files, unusedTensors } = located;

  // 4. plan storage
  const maxPart = maxPartBytes(be, opts.maxBindingBytes);
  const plan: Planned[] = located.tensors.map((t) => {
    const shape = t.exp.gpuShape ?? t.exp.shape;
    const dst = storageDtype(t.exp, shape, t.src, want, quantize);
    const parts = planTensorParts(t.exp.name, shape, dst, maxPart);
    return { ...t, dst, shape, parts, byteLength: parts.reduce((x, q) => x + q.bytes, 0), srcBytes: t.byteLength };
  });
  const weightBytes = plan.reduce((s, p) => s + p.parts.reduce((t, q) => t + Math.max(4, Math.ceil(q.bytes / 4) * 4), 0), 0);
  const totalBytes = plan.reduce((s, p) => s + p.srcBytes, 0);
  checkAbort(signal);
  await opts.beforeAllocate?.(config, weightBytes);

  // 5. allocate and stream, tensor by tensor
  const chunkBytes = Math.max(64, Math.floor((opts.chunkBytes ?? DEFAULT_CHUNK) / 8) * 8);
  const syncEvery = opts.syncEveryBytes ?? 64 << 20;
  const created: Buf[] = [];
  const tensors = new Map<string, WeightTensor>();
  const fp = new Fingerprint();
  fp.add(JSON.stringify(config));
  const st: Streamer = {
    fingerprint: fp,
    be, source, chunkBytes, hostBuf: new Uint8Array(chunkBytes), wasm: undefined, scratch: undefined,
    hostHeld: chunkBytes, noteHost, loaded: 0, sinceSync: 0, syncEvery, signal,
    onBytes: (p, loaded) => progress?.({ phase: 'weights', loadedBytes: loaded, totalBytes, tensorsDone: tensors.size, tensorsTotal: plan.length, tensor: p.exp.name, file: p.file }),
  };
  noteHost(st.hostHeld);
  try {
    if (plan.some((p) => p.dst !== 'f32' || p.src !== 'F32')) st.wasm = await hostWasm();
    st.pool = await QuantPool.forLoad({
      threads: opts.quantizeThreads, chunkBytes, signal, onHostBytes: (b) => noteHost(st.hostHeld + b),
      workBytes: plan.reduce((s, p) => s + (isQuantDType(p.dst) && isFloatSrc(p.src) ? p.srcBytes : 0), 0),
    });
    for (const p of plan) {
      checkAbort(signal);
      const parts: TensorPart[] = [];
      fp.add(`${p.exp.name}|${p.src}|${p.dst}|${p.shape.join('x')}|${p.srcBytes}`);
      for (let i = 0; i < p.parts.length; i++) {
        const part = p.parts[i];
        const buffer = be.alloc(`weights:${p.exp.name}${p.parts.length > 1 ? `#${i}` : ''}`, part.bytes);
        created.push(buffer);
        parts.push({ buffer, rowStart: part.rowStart, rows: part.rows });
        if (p.transform === 'a-to-a-log') await streamALog(st, p, buffer);
        else if (isQuantDType(p.dst)) await streamQuantPart(st, p, part, p.dst, buffer);
        else await streamFloatPart(st, p, part, p.dst, buffer);
      }
      tensors.set(p.exp.name, { name: p.exp.name, dtype: p.dst, shape: p.shape, parts, byteLength: p.byteLength });
    }
    await st.pool?.drain();
    await be.sync();
    progress?.({ phase: 'done', loadedBytes: st.loaded, totalBytes, tensorsDone: plan.length, tensorsTotal: plan.length });
  } catch (e) {
    for (const b of created) be.free(b);
    if (e instanceof MambaScanError || e instanceof RangeError) throw e;
    if ((e as Error)?.name === 'AbortError') throw new AbortError(`checkpoint load aborted: ${(e as Error).message}`);
    throw new CheckpointError(source.description, `load failed: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e });
  } finally {
    st.pool?.close();
    if (st.wasm && st.scratch) st.wasm.freeScratch(st.scratch);
    if (st.wasm && st.quant) st.wasm.freeQuantScratch(st.quant);
  }

  let disposed = false;
  return {
    config,
    configJson,
    tensors,
    weightBytes,
    hostHighWaterBytes: highWater,
    files,
    unusedTensors,
    tokenizer: located.tokenizer,
    roles: new Map(plan.map((p) => [p.exp.name, p.exp.role])),
    fingerprint: fp.hex(),
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const b of created) be.free(b);
      tensors.clear();
    },
  };
}

async function locateSafetensors(source: CheckpointSource, noteHost: (bytes: number) => void, signal: AbortSignal | undefined,
  progress: LoadOptions['onProgress']): Promise<Located> {
  progress?.({ phase: 'config', loadedBytes: 0, totalBytes: 0, tensorsDone: 0, tensorsTotal: 0, file: 'config.json' });
  if (!(await source.exists('config.json'))) throw new CheckpointError('config.json', `not found in ${source.description}`);
  const configText = await source.readText('config.json');
  let configJson: Record<string, unknown>;
  let config: ModelConfig;
  try {
    configJson = parseConfigJson(configText);
    config = parseConfig(configJson);
  } catch (e) {
    if (e instanceof ConfigError) throw new CheckpointError('config.json', e.message, undefined, { cause: e });
    throw e;
  }
  const expected = expectedTensors(config);

  checkAbort(signal);
  let weightMap: Map<string, string> | undefined;
  let files: string[];
  const indexName = 'model.safetensors.index.json';
  if (await source.exists(indexName)) {
    weightMap = parseShardIndex(indexName, await source.readText(indexName));
    files = [...new Set(weightMap.values())];
  } else if (await source.exists('model.safetensors')) {
    files = ['model.safetensors'];
  } else {
    const listed = source.list ? ` (files: ${(await source.list()).join(', ') || 'none'})` : '';
    throw new CheckpointError('model.safetensors', `not found in ${source.description}, and there is no ${indexName}${listed}`);
  }
  const where = new Map<string, { file: string; entry: SafetensorsEntry }>();
  for (const file of files) {
    checkAbort(signal);
    progress?.({ phase: 'headers', loadedBytes: 0, totalBytes: 0, tensorsDone: 0, tensorsTotal: expected.length, file });
    const h = await readSafetensorsHeader(source, file);
    noteHost(h.headerLength + 8);
    for (const [name, entry] of h.tensors) {
      const prev = where.get(name);
      if (prev) throw new CheckpointError(file, `tensor is also stored in ${prev.file}`, name);
      where.set(name, { file, entry });
    }
  }
  if (weightMap) {
    for (const [name, file] of weightMap) {
      const w = where.get(name);
      if (!w || w.file !== file) {
        throw new CheckpointError(file, `${indexName} maps this tensor to ${file}, but ${w ? `it is stored in ${w.file}` : 'no header has it'}`, name);
      }
    }
  }

  const missing: string[] = [];
  const mismatched: { name: string; file: string; msg: string }[] = [];
  const unsupported: { name: string; file: string; dtype: string }[] = [];
  const found: SourceTensor[] = [];
  const used = new Set<string>();
  for (const exp of expected) {
    const hit = [exp.name, ...(exp.aliases ?? [])].map((n) => where.get(n)).find((x) => x !== undefined);
    if (!hit) { missing.push(exp.name); continue; }
    used.add(hit.entry.name);
    if (!shapeEq(hit.entry.shape, exp.shape)) {
      mismatched.push({ name: hit.entry.name, file: hit.file, msg: `${hit.entry.name}: shape [${hit.entry.shape}] in ${hit.file}, config implies [${exp.shape}]` });
      continue;
    }
    if (!isSupportedDType(hit.entry.dtype)) { unsupported.push({ name: hit.entry.name, file: hit.file, dtype: hit.entry.dtype }); continue; }
    found.push({ exp, file: hit.file, offset: hit.entry.offset, byteLength: hit.entry.byteLength, src: hit.entry.dtype, transform: 'none' });
  }
  if (missing.length || mismatched.length) {
    const lines: string[] = [];
    if (missing.length) lines.push(`${missing.length} missing tensor(s): ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', ...' : ''}`);
    if (mismatched.length) lines.push(`${mismatched.length} shape mismatch(es): ${mismatched.slice(0, 8).map((m) => m.msg).join('; ')}${mismatched.length > 8 ? '; ...' : ''}`);
    const file = mismatched[0]?.file ?? (files.length === 1 ? files[0] : weightMap ? indexName : files[0]);
    throw new CheckpointError(file, `checkpoint does not match config.json (${config.arch}): ${lines.join('. ')}`, missing[0] ?? mismatched[0].name);
  }
  if (unsupported.length) {
    const u = unsupported[0];
    throw new UnsupportedError(`${u.file} [${u.name}]: dtype ${u.dtype} is not supported (F32, F16 and BF16 are)` +
      (unsupported.length > 1 ? `; ${unsupported.length - 1} more tensor(s) likewise` : ''));
  }
  return { config, configJson, tensors: found, files, unusedTensors: [...where.keys()].filter((n) => !used.has(n)) };
}

const GGUF_FLOAT: Partial<Record<number, SupportedDType>> = { [GGML_TYPE.F32]: 'F32', [GGML_TYPE.F16]: 'F16', [GGML_TYPE.BF16]: 'BF16' };

async function locateGguf(source: CheckpointSource, file: string, noteHost: (bytes: number) => void,
  progress: LoadOptions['onProgress']): Promise<Located> {
  progress?.({ phase: 'headers', loadedBytes: 0, totalBytes: 0, tensorsDone: 0, tensorsTotal: 0, file });
  const m = await readGgufMamba2(source, file);
  noteHost(Math.min(m.header.dataOffset, 1 << 20));
  const tensors: SourceTensor[] = [];
  for (const exp of expectedTensors(m.config)) {
    const t = m.tensors.get(exp.name);
    if (!t) throw new CheckpointError(file, `the GGUF mapping has no tensor for ${exp.name}`, exp.name);
    if (!shapeEq(t.shape, exp.shape)) throw new CheckpointError(file, `${t.ggufName}: shape [${t.shape}] does not match the metadata's [${exp.shape}]`, t.ggufName);
    const src = t.format ?? GGUF_FLOAT[t.ggmlType.id];
    if (!src) throw new UnsupportedError(`${file} [${t.ggufName}]: GGUF type ${t.ggmlType.name} is not supported`);
    if (!isFloatSrc(src) && exp.role === 'vector') throw new UnsupportedError(`${file} [${t.ggufName}]: a ${t.ggmlType.name} vector is not supported (vectors must be F32/F16/BF16)`);
    tensors.push({ exp, file, offset: t.offset, byteLength: t.byteLength, src, transform: t.transform });
  }
  const tokenizer = m.tokenizer ? { json: JSON.stringify(m.tokenizer.tokenizerJson), config: JSON.stringify(m.tokenizer.tokenizerConfig) } : undefined;
  return { config: m.config, configJson: m.configJson, tensors, files: [file], unusedTensors: [...m.unusedTensors], tokenizer };
}

/** The streaming state of one load: host buffers, the Wasm converters, progress and sync counters. */
interface Streamer {
  /** Takes the first bytes of every tensor as they stream past. */
  readonly fingerprint: Fingerprint;
  readonly be: Backend;
  readonly source: CheckpointSource;
  readonly chunkBytes: number;
  readonly hostBuf: Uint8Array;
  wasm: HostWasm | undefined;
  /** Float conversion scratch (created on first use). */
  scratch: ConvertScratch | undefined;
  /** Quantization scratch, kept while consecutive tensors share its format and row length. */
  quant?: QuantScratch;
  /** Workers quantizing float chunks (absent: quantize on this thread). */
  pool?: QuantPool;
  hostHeld: number;
  readonly noteHost: (bytes: number) => void;
  loaded: number;
  sinceSync: number;
  readonly syncEvery: number;
  readonly signal?: AbortSignal;
  readonly onBytes: (p: Planned, loaded: number) => void;
}

async function readChunk(st: Streamer, p: Planned, start: number, end: number, into = st.hostBuf): Promise<Uint8Array> {
  checkAbort(st.signal);
  const raw = await st.source.readRange(p.file, start, end, into);
  if (raw.byteLength !== end - start) throw new CheckpointError(p.file, `short read: ${raw.byteLength} of ${end - start} bytes`, p.exp.name);
  if (raw.buffer !== into.buffer) st.noteHost(st.hostHeld + (st.pool?.hostBytes ?? 0) + raw.byteLength); // sources without in-place reads
  if (start === p.offset) st.fingerprint.addBytes(raw.subarray(0, 64));
  return raw;
}

async function wrote(st: Streamer, p: Planned, srcBytes: number, dstBytes: number): Promise<void> {
  st.loaded += srcBytes;
  st.sinceSync += dstBytes;
  st.onBytes(p, st.loaded);
  if (st.sinceSync >= st.syncEvery) {
    // Dawn copies writeBuffer data into staging that is recycled only as the queue drains;
    // waiting here keeps that bounded too.
    await st.be.sync();
    st.sinceSync = 0;
  }
}

/** A float part: chunks of elements, converted on the host (Wasm) when the dtypes differ. */
async function streamFloatPart(st: Streamer, p: Planned, part: PlannedPart, dst: FloatDType, buffer: Buf): Promise<void> {
  const src = p.src as SupportedDType;
  const srcItem = dtypeItemSize(src)!;
  const dstItem = FLOAT_DTYPE_BYTES[dst];
  const rowElems = rowSize(p.shape);
  const chunkElems = st.chunkBytes / 4; // even; one chunk of f32 fits chunkBytes
  if (SRC_DTYPE[src] !== dst && !st.scratch) {
    // Input and output both hold one chunk of f32 (16 <-> 16 conversions go through f32).
    st.scratch = st.wasm!.scratch(chunkElems * 4, chunkElems * 4);
    st.hostHeld += 2 * chunkElems * 4;
    st.noteHost(st.hostHeld);
  }
  const partElems = part.rows * rowElems;
  const srcBase = p.offset + part.rowStart * rowElems * srcItem;
  for (let e0 = 0; e0 < partElems; e0 += chunkElems) {
    const n = Math.min(chunkElems, partElems - e0);
    const raw = await readChunk(st, p, srcBase + e0 * srcItem, srcBase + (e0 + n) * srcItem);
    const out = SRC_DTYPE[src] !== dst ? convert(st.wasm!, st.scratch!, raw, src, dst, n) : raw;
    st.be.write(buffer, e0 * dstItem, out);
    await wrote(st, p, n * srcItem, out.byteLength);
  }
}

/** A_log from a GGUF's A (a small vector, read whole): log(-A) in f64, rounded to f32. */
async function streamALog(st: Streamer, p: Planned, buffer: Buf): Promise<void> {
  const n = numel(p.shape);
  const raw = await readChunk(st, p, p.offset, p.offset + p.byteLength);
  const src = p.src as SupportedDType;
  const info = ggmlTypeInfo(src === 'F32' ? GGML_TYPE.F32 : src === 'F16' ? GGML_TYPE.F16 : GGML_TYPE.BF16)!;
  const aLog = aLogFromA(ggufBytesToF32(info, raw, n), p.file, p.exp.name);
  st.be.write(buffer, 0, aLog);
  await wrote(st, p, p.byteLength, aLog.byteLength);
}

/**
 * A block-quantized part: chunks of whole rows, quantized from floats or repacked from GGUF blocks
 * in Wasm, each section written at its place in the part (docs/weight-formats.md). Chunks hold an
 * even number of blocks, so every f16 `d` slice starts on 4 bytes.
 */
async function streamQuantPart(st: Streamer, p: Planned, part: PlannedPart, format: QuantFormat, buffer: Buf): Promise<void> {
  const K = rowSize(p.shape);
  const info = FORMAT_INFO[format];
  const blocksPerRow = K / info.qk;
  const fromFloat = isFloatSrc(p.src);
  const srcRowBytes = fromFloat ? K * dtypeItemSize(p.src as SupportedDType)! : blocksPerRow * info.ggufBlockBytes;
  // A chunk's f32 rows (quantizing) or GGUF bytes (repacking) fit the host chunk buffer.
  let rows = Math.max(1, Math.floor(st.chunkBytes / (fromFloat ? 4 * K : srcRowBytes)));
  rows = Math.min(rows, part.rows);
  if (blocksPerRow % 2 === 1 && rows % 2 === 1 && rows < part.rows) rows = rows > 1 ? rows - 1 : 2;
  if (rows * srcRowBytes > st.hostBuf.byteLength) throw new UnsupportedError(`${p.exp.name}: a row of ${srcRowBytes} bytes is larger than the loader's chunk (${st.hostBuf.byteLength} bytes): raise chunkBytes`);
  const w = st.wasm!;
  const layout = deviceLayout(format, part.rows, K);
  if (fromFloat && st.pool) {
    const from = p.src === 'F32' ? 'f32' : p.src === 'F16' ? 'f16' : 'bf16';
    for (let r0 = 0; r0 < part.rows; r0 += rows) {
      const n = Math.min(rows, part.rows - r0);
      const start = p.offset + (part.rowStart + r0) * srcRowBytes;
      await st.pool.submit({
        format, K, rows: n, from, read: (into) => readChunk(st, p, start, start + n * srcRowBytes, into),
        write: (c) => writeQuantChunk(st, p, part, format, buffer, layout, r0, c, n * srcRowBytes),
      });
    }
    return;
  }
  if (!st.quant || st.quant.format !== format || st.quant.K !== K || st.quant.maxRows < rows) {
    if (st.quant) { w.freeQuantScratch(st.quant); st.hostHeld -= st.quant.inBytes + st.quant.in16Bytes + st.quant.layout.totalBytes; }
    st.quant = w.quantScratch(format, K, rows);
    st.hostHeld += st.quant.inBytes + st.quant.in16Bytes + st.quant.layout.totalBytes;
    st.noteHost(st.hostHeld);
  }
  const s = st.quant;
  for (let r0 = 0; r0 < part.rows; r0 += rows) {
    const n = Math.min(rows, part.rows - r0);
    const start = p.offset + (part.rowStart + r0) * srcRowBytes;
    const raw = await readChunk(st, p, start, start + n * srcRowBytes);
    let c;
    if (fromFloat) {
      const from = p.src === 'F32' ? 'f32' : p.src === 'F16' ? 'f16' : 'bf16';
      (from === 'f32' ? w.quantInput(s, raw.byteLength) : w.quantInput16(s, raw.byteLength)).set(raw);
      c = w.quantizeChunk(s, n, from);
    } else {
      w.quantInput(s, raw.byteLength).set(raw);
      c = w.repackChunk(s, n);
    }
    await writeQuantChunk(st, p, part, format, buffer, layout, r0, c, n * srcRowBytes);
  }
}

/** Writes a chunk's sections at their places in the part (its rows from r0); NaN/inf blocks fail the load. */
async function writeQuantChunk(st: Streamer, p: Planned, part: PlannedPart, format: QuantFormat, buffer: Buf,
  layout: ReturnType<typeof deviceLayout>, r0: number, c: DeviceChunk, srcBytes: number): Promise<void> {
  if (c.nonFiniteBlocks > 0) {
    throw new CheckpointError(p.file, `${c.nonFiniteBlocks} block(s) of rows ${part.rowStart + r0}..${part.rowStart + r0 + c.rows - 1} hold NaN or infinite values, which ${format} cannot store`, p.exp.name);
  }
  const info = FORMAT_INFO[format];
  const b0 = r0 * layout.blocksPerRow;
  let bytes = 0;
  st.be.write(buffer, layout.qs.offset + b0 * info.qsBlockBytes, c.qs);
  bytes += c.qs.byteLength;
  if (c.qh && layout.qh) { st.be.write(buffer, layout.qh.offset + 4 * b0, c.qh); bytes += c.qh.byteLength; }
  if (c.d && layout.d) { st.be.write(buffer, layout.d.offset + 2 * b0, c.d); bytes += c.d.byteLength; }
  await wrote(st, p, srcBytes, bytes);
}

/** Converts n elements of `raw` (src dtype) to dst through the Wasm scratch; returns a view of Wasm memory. */
function convert(w: HostWasm, s: ConvertScratch, raw: Uint8Array, src: SupportedDType, dst: FloatDType, n: number): Uint8Array {
  w.input(s, raw.byteLength).set(raw);
  if (src === 'F32') return w.fromF32(s, dst as 'f16' | 'bf16', n);
  const up = w.toF32(s, src === 'F16' ? 'f16' : 'bf16', n);
  if (dst === 'f32') return up;
  // 16-bit -> other 16-bit: via f32 (exact), then one rounding.
  w.input(s, n * 4).set(up);
  return w.fromF32(s, dst as 'f16' | 'bf16', n);
}
