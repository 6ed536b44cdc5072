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
import { type FloatDType, FLOAT_DTYPE_BYTES as DTYPE_BYTES, type TensorPart, type WeightTensor, numel, rowSize } from '../backends/tensor.ts';
import { type PlannedPart, maxPartBytes, planParts } from './upload.ts';
import type { ModelConfig } from '../models/config.ts';
import { type ExpectedTensor, type TensorRole, expectedTensors } from '../models/layout.ts';
import { parseConfig, parseConfigJson } from '../models/parse-config.ts';
import { type ConvertScratch, type HostWasm, hostWasm } from '../wasm/host.ts';
import {
  type SafetensorsEntry, type SafetensorsHeader, type SupportedDType, dtypeItemSize, isSupportedDType,
  parseShardIndex, readSafetensorsHeader,
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
  /** Destroys every weight buffer (idempotent). */
  dispose(): void;
}

interface Planned {
  readonly exp: ExpectedTensor;
  readonly file: string;
  readonly entry: SafetensorsEntry;
  readonly src: SupportedDType;
  readonly dst: FloatDType;
  readonly shape: readonly number[];
  readonly parts: PlannedPart[];
  readonly byteLength: number;
}

const DEFAULT_CHUNK = 8 << 20;
const SRC_DTYPE: Record<SupportedDType, FloatDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

function gpuDtypeFor(role: TensorRole, src: SupportedDType, want: WeightDType): FloatDType {
  if (role === 'vector') return 'f32';
  return want === 'auto' ? SRC_DTYPE[src] : want;
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

async function load(be: Backend, source: CheckpointSource, opts: LoadOptions): Promise<LoadedCheckpoint> {
  const want = opts.dtype ?? 'auto';
  if (!['auto', 'f32', 'f16', 'bf16'].includes(want)) throw new UnsupportedError(`dtype ${JSON.stringify(want)}: expected 'auto', 'f32', 'f16' or 'bf16'`);
  const signal = opts.signal;
  const progress = opts.onProgress;
  let highWater = 0;
  const noteHost = (bytes: number) => { if (bytes > highWater) highWater = bytes; };

  // 1. config
  checkAbort(signal);
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

  // 2. headers
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
  const headers = new Map<string, SafetensorsHeader>();
  const where = new Map<string, { file: string; entry: SafetensorsEntry }>();
  for (const file of files) {
    checkAbort(signal);
    progress?.({ phase: 'headers', loadedBytes: 0, totalBytes: 0, tensorsDone: 0, tensorsTotal: expected.length, file });
    const h = await readSafetensorsHeader(source, file);
    noteHost(h.headerLength + 8);
    headers.set(file, h);
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

  // 3. validate every expected tensor before any allocation
  const missing: string[] = [];
  const mismatched: { name: string; file: string; msg: string }[] = [];
  const unsupported: { name: string; file: string; dtype: string }[] = [];
  const found: { exp: ExpectedTensor; file: string; entry: SafetensorsEntry }[] = [];
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
    found.push({ exp, ...hit });
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
  const unusedTensors = [...where.keys()].filter((n) => !used.has(n));

  // 4. plan storage
  const maxPart = maxPartBytes(be, opts.maxBindingBytes);
  const plan: Planned[] = found.map(({ exp, file, entry }) => {
    const src = entry.dtype as SupportedDType;
    const dst = gpuDtypeFor(exp.role, src, want);
    const shape = exp.gpuShape ?? exp.shape;
    const parts = planParts(exp.name, shape, DTYPE_BYTES[dst], maxPart);
    return { exp, file, entry, src, dst, shape, parts, byteLength: numel(shape) * DTYPE_BYTES[dst] };
  });
  const weightBytes = plan.reduce((s, p) => s + p.parts.reduce((t, q) => t + Math.max(4, Math.ceil(q.bytes / 4) * 4), 0), 0);
  const totalBytes = plan.reduce((s, p) => s + p.entry.byteLength, 0);
  checkAbort(signal);
  await opts.beforeAllocate?.(config, weightBytes);

  // 5. allocate and stream, tensor by tensor
  const chunkBytes = Math.max(64, Math.floor((opts.chunkBytes ?? DEFAULT_CHUNK) / 8) * 8);
  const chunkElems = chunkBytes / 4; // even; one chunk of f32 fits chunkBytes
  const syncEvery = opts.syncEveryBytes ?? 64 << 20;
  const created: Buf[] = [];
  const tensors = new Map<string, WeightTensor>();
  let wasm: HostWasm | undefined;
  let scratch: ConvertScratch | undefined;
  const hostBuf = new Uint8Array(chunkBytes);
  let hostHeld = hostBuf.byteLength;
  noteHost(hostHeld);
  let loaded = 0;
  let sinceSync = 0;
  try {
    if (plan.some((p) => SRC_DTYPE[p.src] !== p.dst)) {
      wasm = await hostWasm();
      // Input and output both hold one chunk of f32 (16 <-> 16 conversions go through f32).
      scratch = wasm.scratch(chunkElems * 4, chunkElems * 4);
      hostHeld += 2 * chunkElems * 4;
      noteHost(hostHeld);
    }
    let done = 0;
    for (const p of plan) {
      checkAbort(signal);
      const srcItem = dtypeItemSize(p.src)!;
      const dstItem = DTYPE_BYTES[p.dst];
      const rowElems = rowSize(p.shape);
      const parts: TensorPart[] = [];
      for (let i = 0; i < p.parts.length; i++) {
        const part = p.parts[i];
        const label = `weights:${p.exp.name}${p.parts.length > 1 ? `#${i}` : ''}`;
        const buffer = be.alloc(label, part.bytes);
        created.push(buffer);
        parts.push({ buffer, rowStart: part.rowStart, rows: part.rows });
        const partElems = part.rows * rowElems;
        const srcBase = p.entry.offset + part.rowStart * rowElems * srcItem;
        for (let e0 = 0; e0 < partElems; e0 += chunkElems) {
          checkAbort(signal);
          const n = Math.min(chunkElems, partElems - e0);
          const start = srcBase + e0 * srcItem;
          const raw = await source.readRange(p.file, start, start + n * srcItem, hostBuf);
          if (raw.byteLength !== n * srcItem) throw new CheckpointError(p.file, `short read: ${raw.byteLength} of ${n * srcItem} bytes`, p.exp.name);
          if (raw.buffer !== hostBuf.buffer) noteHost(hostHeld + raw.byteLength); // sources without in-place reads
          let out: Uint8Array = raw;
          if (SRC_DTYPE[p.src] !== p.dst) out = convert(wasm!, scratch!, raw, p.src, p.dst, n);
          be.write(parts[i].buffer, e0 * dstItem, out);
          loaded += n * srcItem;
          sinceSync += out.byteLength;
          progress?.({ phase: 'weights', loadedBytes: loaded, totalBytes, tensorsDone: done, tensorsTotal: plan.length, tensor: p.exp.name, file: p.file });
          if (sinceSync >= syncEvery) {
            // Dawn copies writeBuffer data into staging that is recycled only as the queue
            // drains; waiting here keeps that bounded too.
            await be.sync();
            sinceSync = 0;
          }
        }
      }
      tensors.set(p.exp.name, { name: p.exp.name, dtype: p.dst, shape: p.shape, parts, byteLength: p.byteLength });
      done++;
    }
    await be.sync();
    progress?.({ phase: 'done', loadedBytes: loaded, totalBytes, tensorsDone: plan.length, tensorsTotal: plan.length });
  } catch (e) {
    for (const b of created) be.free(b);
    if (e instanceof MambaScanError || e instanceof RangeError) throw e;
    if ((e as Error)?.name === 'AbortError') throw new AbortError(`checkpoint load aborted: ${(e as Error).message}`);
    throw new CheckpointError(source.description, `load failed: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e });
  } finally {
    if (wasm && scratch) wasm.freeScratch(scratch);
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
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const b of created) be.free(b);
      tensors.clear();
    },
  };
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
