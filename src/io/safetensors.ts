// safetensors reader: header parsing with strict validation. Format (huggingface/safetensors):
//   [u64 LE header length N][N bytes UTF-8 JSON][data section]
// JSON: { name: {dtype, shape, data_offsets: [begin, end]}, ..., "__metadata__"?: {str: str} },
// offsets relative to the data section. Nothing here trusts the file: every number is checked
// against the file size before it is used, and every failure is a CheckpointError naming the
// file, the tensor when there is one, and the reason.
import { CheckpointError } from '../errors.ts';
import type { CheckpointSource } from './sources.ts';

/** dtypes the runtime can load. */
export type SupportedDType = 'F32' | 'F16' | 'BF16';

/** Item sizes of the dtypes the safetensors format defines (so other tensors can be validated too). */
const ITEM_SIZE: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1, F8_E8M0: 1, C64: 8,
};

/** The reference implementation refuses headers above 100 MB; so do we (a lying length field). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  readonly name: string;
  /** As written in the header ('F32', 'BF16', 'I64', ...). */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte offset of the first element in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface SafetensorsHeader {
  readonly file: string;
  readonly fileSize: number;
  /** N: length of the JSON header. */
  readonly headerLength: number;
  /** Absolute offset of the data section (8 + N). */
  readonly dataOffset: number;
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata?: Readonly<Record<string, string>>;
}

export function isSupportedDType(d: string): d is SupportedDType {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

export function dtypeItemSize(d: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(ITEM_SIZE, d) ? ITEM_SIZE[d] : undefined;
}

/** Reads N from the first 8 bytes and checks it against the file size. */
export function parseHeaderLength(file: string, first8: Uint8Array, fileSize: number): number {
  if (fileSize < 8 || first8.byteLength < 8) {
    throw new CheckpointError(file, `truncated: ${fileSize} bytes, a safetensors file starts with an 8-byte header length`);
  }
  const dv = new DataView(first8.buffer, first8.byteOffset, 8);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw new CheckpointError(file, `header length ${n} is larger than the file (${fileSize} bytes): truncated or not a safetensors file`);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) throw new CheckpointError(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2n) throw new CheckpointError(file, `header length ${n} is too small for a JSON object`);
  return Number(n);
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Parses and validates the JSON header (`headerBytes` = the N bytes after the length field) of a
 * file of `fileSize` bytes.
 */
export function parseSafetensorsHeader(file: string, headerBytes: Uint8Array, fileSize: number): SafetensorsHeader {
  const headerLength = headerBytes.byteLength;
  const dataOffset = 8 + headerLength;
  if (dataOffset > fileSize) throw new CheckpointError(file, `header (${headerLength} bytes) runs past the end of the file (${fileSize} bytes)`);
  const dataLength = fileSize - dataOffset;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch (e) {
    throw new CheckpointError(file, 'header is not valid UTF-8', undefined, { cause: e });
  }
  if (!text.trimStart().startsWith('{')) throw new CheckpointError(file, 'header is not a JSON object (does not start with "{")');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(file, `invalid header JSON: ${(e as Error).message}`, undefined, { cause: e });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new CheckpointError(file, 'header JSON is not an object');

  let metadata: Record<string, string> | undefined;
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CheckpointError(file, '__metadata__ must be an object of strings');
      metadata = {};
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') throw new CheckpointError(file, `__metadata__.${k} must be a string`);
        metadata[k] = s;
      }
      continue;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CheckpointError(file, 'entry is not an object', name);
    const { dtype, shape, data_offsets: offsets } = v as Record<string, unknown>;
    if (typeof dtype !== 'string') throw new CheckpointError(file, `dtype must be a string, got ${JSON.stringify(dtype)}`, name);
    const item = dtypeItemSize(dtype);
    if (item === undefined) throw new CheckpointError(file, `unknown dtype ${JSON.stringify(dtype)}`, name);
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      throw new CheckpointError(file, `shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`, name);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
      throw new CheckpointError(file, `data_offsets must be [begin, end] integers, got ${JSON.stringify(offsets)}`, name);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new CheckpointError(file, `data_offsets [${begin}, ${end}] end before they begin`, name);
    if (end > dataLength) {
      throw new CheckpointError(file, `data_offsets [${begin}, ${end}] are out of range: the data section has ${dataLength} bytes (file truncated?)`, name);
    }
    let numel = 1;
    for (const d of shape as number[]) numel *= d;
    const want = numel * item;
    if (!Number.isSafeInteger(want) || want !== end - begin) {
      throw new CheckpointError(file, `byte length ${end - begin} does not match shape [${shape}] x ${dtype} (${want} bytes)`, name);
    }
    tensors.set(name, { name, dtype, shape: shape as number[], offset: dataOffset + begin, byteLength: end - begin });
  }

  // Overlap check on the byte ranges sorted by start (empty tensors overlap nothing).
  const ranges = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1], cur = ranges[i];
    if (cur.offset < prev.offset + prev.byteLength) {
      throw new CheckpointError(file, `data of ${cur.name} overlaps ${prev.name} (bytes ${cur.offset - dataOffset}.. vs ..${prev.offset - dataOffset + prev.byteLength})`, cur.name);
    }
  }
  return { file, fileSize, headerLength, dataOffset, tensors, metadata };
}

/** Parses the header of a whole file held in memory. */
export function parseSafetensors(file: string, bytes: Uint8Array): SafetensorsHeader {
  const n = parseHeaderLength(file, bytes.subarray(0, 8), bytes.byteLength);
  return parseSafetensorsHeader(file, bytes.subarray(8, 8 + n), bytes.byteLength);
}

/** Reads and validates the header of `file` from a source: two small range reads. */
export async function readSafetensorsHeader(source: CheckpointSource, file: string): Promise<SafetensorsHeader> {
  const fileSize = await source.size(file);
  if (fileSize < 8) throw new CheckpointError(file, `truncated: ${fileSize} bytes, a safetensors file starts with an 8-byte header length`);
  const first8 = await source.readRange(file, 0, 8);
  const n = parseHeaderLength(file, first8, fileSize);
  const header = await source.readRange(file, 8, 8 + n);
  if (header.byteLength !== n) throw new CheckpointError(file, `short read of the header: ${header.byteLength} of ${n} bytes`);
  return parseSafetensorsHeader(file, header, fileSize);
}

/** The `weight_map` of model.safetensors.index.json: tensor name -> shard file. */
export function parseShardIndex(file: string, text: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(file, `invalid JSON: ${(e as Error).message}`, undefined, { cause: e });
  }
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) throw new CheckpointError(file, 'has no "weight_map" object');
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '' || shard.includes('..') || shard.startsWith('/') || shard.includes('\\')) {
      throw new CheckpointError(file, `weight_map entry has a bad shard file name ${JSON.stringify(shard)}`, name);
    }
    out.set(name, shard);
  }
  return out;
}
