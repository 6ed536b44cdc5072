// GGUF reader (versions 2 and 3, little-endian; ggml/docs/gguf.md, ggml/src/gguf.cpp):
//   magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] (innermost first) | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | tensor data (offsets relative to here)
// string = u64 byte length + UTF-8 bytes; array = u32 item type + u64 count + items.
//
// Nothing is trusted: every count and length is checked against the bytes left in the file before
// anything is allocated for it, offsets must be aligned, inside the file and non-overlapping, and
// each tensor's byte size follows from its shape and type. The header is read through bounded
// range reads (1 MiB windows), never the whole file. Failures are CheckpointError (truncated or
// malformed file) or UnsupportedError (valid GGUF we do not handle: v1, big-endian, unknown ggml
// tensor types, nested arrays), always before the caller allocates anything.
import { CheckpointError, UnsupportedError } from '../errors.ts';
import { type GgmlTypeInfo, ggmlTypeInfo } from '../quant/formats.ts';
import type { CheckpointSource } from './sources.ts';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME: tensor names are shorter than this many bytes. */
export const GGUF_MAX_NAME = 64;
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;
/** Largest header (metadata + tensor infos) we parse: a lying length cannot make us read more. */
export const GGUF_MAX_HEADER_BYTES = 256 * 1024 * 1024;
/** Largest single metadata string (chat templates are kilobytes; 64 MiB leaves room). */
export const GGUF_MAX_STRING_BYTES = 64 * 1024 * 1024;

/** GGUF metadata value types. */
export enum GgufType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

const SCALAR_BYTES: Partial<Record<GgufType, number>> = {
  [GgufType.UINT8]: 1, [GgufType.INT8]: 1, [GgufType.UINT16]: 2, [GgufType.INT16]: 2,
  [GgufType.UINT32]: 4, [GgufType.INT32]: 4, [GgufType.FLOAT32]: 4, [GgufType.BOOL]: 1,
  [GgufType.UINT64]: 8, [GgufType.INT64]: 8, [GgufType.FLOAT64]: 8,
};

export function ggufTypeName(t: number): string {
  return GgufType[t] ?? `type ${t}`;
}

/** A scalar: number for 8-32-bit ints and floats, bigint for 64-bit ints, boolean, string. */
export type GgufScalar = number | bigint | boolean | string;

/** Array items: a typed array for numeric types (little-endian decoded), boolean[] or string[]. */
export type GgufArrayItems =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array
  | BigUint64Array | BigInt64Array | Float64Array | boolean[] | string[];

export type GgufKV =
  | { readonly type: Exclude<GgufType, GgufType.ARRAY>; readonly value: GgufScalar }
  | { readonly type: GgufType.ARRAY; readonly itemType: Exclude<GgufType, GgufType.ARRAY>; readonly value: GgufArrayItems };

export interface GgufTensorInfo {
  readonly name: string;
  /** Dimensions as stored (ggml ne, innermost first). */
  readonly ne: readonly number[];
  /** PyTorch order, outermost first (ne reversed): the row-major layout of the data. */
  readonly shape: readonly number[];
  readonly type: GgmlTypeInfo;
  readonly numel: number;
  /** Absolute byte offset of the data in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface GgufHeader {
  readonly file: string;
  readonly fileSize: number;
  readonly version: number;
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  /** Bytes of magic, counts, metadata and tensor infos (before the alignment padding). */
  readonly headerBytes: number;
  readonly metadata: ReadonlyMap<string, GgufKV>;
  /** Tensors by name, in file order. */
  readonly tensors: ReadonlyMap<string, GgufTensorInfo>;
}

// ---------------------------------------------------------------------------------------------
// Bounded, windowed reads

const WINDOW = 1 << 20;

class WindowReader {
  private buf: Uint8Array = new Uint8Array(0);
  private dv: DataView = new DataView(new ArrayBuffer(0));
  private start = 0;
  /** Absolute position of the next byte to parse. */
  pos = 0;
  private readonly utf8 = new TextDecoder('utf-8');

  constructor(private readonly source: CheckpointSource, readonly file: string, readonly size: number) {}

  fail(reason: string, tensor?: string): never {
    throw new CheckpointError(this.file, reason, tensor);
  }

  get left(): number { return this.size - this.pos; }

  /** Whether [pos, pos + n) is in the window (no I/O needed). */
  has(n: number): boolean { return this.pos + n <= this.start + this.buf.byteLength; }

  /** Makes [pos, pos + n) available, or fails naming `what` when the file ends first. */
  async need(n: number, what: string): Promise<void> {
    if (this.has(n)) return;
    if (n > this.left) this.fail(`truncated: ${what} at byte ${this.pos} needs ${n} bytes, only ${this.left} remain`);
    if (this.pos + n > GGUF_MAX_HEADER_BYTES) this.fail(`header is larger than the ${GGUF_MAX_HEADER_BYTES}-byte limit (at ${what})`);
    const end = Math.min(this.size, this.pos + Math.max(n, WINDOW));
    const bytes = await this.source.readRange(this.file, this.pos, end);
    if (bytes.byteLength !== end - this.pos) this.fail(`short read at byte ${this.pos}: ${bytes.byteLength} of ${end - this.pos} bytes`);
    this.buf = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.start = this.pos;
  }

  private at(n: number): number {
    const o = this.pos - this.start;
    this.pos += n;
    return o;
  }

  u8(): number { return this.dv.getUint8(this.at(1)); }
  i8(): number { return this.dv.getInt8(this.at(1)); }
  u16(): number { return this.dv.getUint16(this.at(2), true); }
  i16(): number { return this.dv.getInt16(this.at(2), true); }
  u32(): number { return this.dv.getUint32(this.at(4), true); }
  i32(): number { return this.dv.getInt32(this.at(4), true); }
  f32(): number { return this.dv.getFloat32(this.at(4), true); }
  f64(): number { return this.dv.getFloat64(this.at(8), true); }
  u64(): bigint { return this.dv.getBigUint64(this.at(8), true); }
  i64(): bigint { return this.dv.getBigInt64(this.at(8), true); }

  bytes(n: number): Uint8Array {
    const o = this.at(n);
    return this.buf.subarray(o, o + n);
  }

  /** A u64 length/count that must fit in `limit` (a bound from the bytes left); fails otherwise. */
  count(what: string, limit: number): number {
    const v = this.u64();
    if (v > BigInt(limit)) this.fail(`${what} is ${v}, more than the file can hold (at most ${limit})`);
    return Number(v);
  }

  async string(what: string, maxBytes = GGUF_MAX_STRING_BYTES): Promise<string> {
    if (!this.has(8)) await this.need(8, `${what} length`);
    const at = this.pos;
    const len = this.u64();
    if (len > BigInt(this.left)) this.fail(`${what} at byte ${at} claims ${len} bytes, only ${this.left} remain (truncated or corrupt)`);
    if (len > BigInt(maxBytes)) this.fail(`${what} at byte ${at} is ${len} bytes, above the ${maxBytes}-byte limit`);
    const n = Number(len);
    if (!this.has(n)) await this.need(n, what);
    return this.utf8.decode(this.bytes(n));
  }
}

// ---------------------------------------------------------------------------------------------
// Values

function readScalar(r: WindowReader, t: GgufType): GgufScalar {
  switch (t) {
    case GgufType.UINT8: return r.u8();
    case GgufType.INT8: return r.i8();
    case GgufType.UINT16: return r.u16();
    case GgufType.INT16: return r.i16();
    case GgufType.UINT32: return r.u32();
    case GgufType.INT32: return r.i32();
    case GgufType.FLOAT32: return r.f32();
    case GgufType.UINT64: return r.u64();
    case GgufType.INT64: return r.i64();
    case GgufType.FLOAT64: return r.f64();
    case GgufType.BOOL: {
      const b = r.u8();
      if (b > 1) r.fail(`bool value ${b} at byte ${r.pos - 1} is neither 0 nor 1`);
      return b === 1;
    }
    default: throw new Error(`unreachable scalar type ${t}`);
  }
}

function typedArrayFor(t: GgufType, n: number): Exclude<GgufArrayItems, boolean[] | string[]> {
  switch (t) {
    case GgufType.UINT8: return new Uint8Array(n);
    case GgufType.INT8: return new Int8Array(n);
    case GgufType.UINT16: return new Uint16Array(n);
    case GgufType.INT16: return new Int16Array(n);
    case GgufType.UINT32: return new Uint32Array(n);
    case GgufType.INT32: return new Int32Array(n);
    case GgufType.FLOAT32: return new Float32Array(n);
    case GgufType.UINT64: return new BigUint64Array(n);
    case GgufType.INT64: return new BigInt64Array(n);
    case GgufType.FLOAT64: return new Float64Array(n);
    default: throw new Error(`unreachable array type ${t}`);
  }
}

async function readValue(r: WindowReader, key: string): Promise<GgufKV> {
  if (!r.has(4)) await r.need(4, `value type of "${key}"`);
  const at = r.pos;
  const t = r.u32();
  if (t === GgufType.STRING) return { type: GgufType.STRING, value: await r.string(`string value of "${key}"`) };
  if (t === GgufType.ARRAY) {
    await r.need(12, `array header of "${key}"`);
    const it = r.u32();
    if (it === GgufType.ARRAY) throw new UnsupportedError(`${r.file}: metadata "${key}" is an array of arrays, which is not supported`);
    if (it === GgufType.STRING) {
      const n = r.count(`string array "${key}" length`, Math.floor(r.left / 8));
      const items: string[] = new Array(n);
      for (let i = 0; i < n; i++) items[i] = await r.string(`item ${i} of "${key}"`);
      return { type: GgufType.ARRAY, itemType: GgufType.STRING, value: items };
    }
    const size = SCALAR_BYTES[it as GgufType];
    if (size === undefined) r.fail(`metadata "${key}" has an array of unknown value type ${it}`);
    const n = r.count(`array "${key}" length`, Math.floor(r.left / size));
    await r.need(n * size, `items of "${key}"`);
    if (it === GgufType.BOOL) {
      const items: boolean[] = new Array(n);
      for (let i = 0; i < n; i++) items[i] = readScalar(r, GgufType.BOOL) as boolean;
      return { type: GgufType.ARRAY, itemType: GgufType.BOOL, value: items };
    }
    const arr = typedArrayFor(it, n);
    for (let i = 0; i < n; i++) (arr as unknown as GgufScalar[])[i] = readScalar(r, it);
    return { type: GgufType.ARRAY, itemType: it as Exclude<GgufType, GgufType.ARRAY>, value: arr };
  }
  const size = SCALAR_BYTES[t as GgufType];
  if (size === undefined) r.fail(`metadata "${key}" has unknown value type ${t} (at byte ${at})`);
  await r.need(size, `value of "${key}"`);
  return { type: t as Exclude<GgufType, GgufType.ARRAY>, value: readScalar(r, t) };
}

// ---------------------------------------------------------------------------------------------
// Header

/**
 * Reads and validates the header of GGUF file `file` in `source`: metadata, tensor infos, data
 * section offset. Reads only the header bytes (in windows of at most 1 MiB).
 */
export async function readGgufHeader(source: CheckpointSource, file: string): Promise<GgufHeader> {
  const fileSize = await source.size(file);
  const r = new WindowReader(source, file, fileSize);
  if (fileSize < 24) r.fail(`truncated: ${fileSize} bytes, a GGUF header is at least 24`);
  await r.need(24, 'file header');
  const magic = r.u32();
  if (magic !== GGUF_MAGIC) r.fail(`not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF")`);
  const version = r.u32();
  if (version === 0) r.fail('GGUF version 0 is invalid');
  if ((version & 0xffff) === 0) throw new UnsupportedError(`${file}: big-endian GGUF files are not supported (version field 0x${version.toString(16)})`);
  if (version === 1) throw new UnsupportedError(`${file}: GGUF version 1 is not supported (re-convert with a current llama.cpp)`);
  if (version > 3) throw new UnsupportedError(`${file}: GGUF version ${version} is newer than the supported versions 2 and 3`);
  // Minimum sizes bound the counts: a tensor info takes at least 8 + 1 + 4 + 4 + 8 bytes, a KV 8 + 1 + 4 + 1.
  const nTensors = r.count('tensor count', Math.floor((fileSize - 24) / 25));
  const nKv = r.count('metadata count', Math.floor((fileSize - 24) / 14));

  const metadata = new Map<string, GgufKV>();
  for (let i = 0; i < nKv; i++) {
    const key = await r.string(`metadata key ${i}`, 65535);
    if (key === '') r.fail(`metadata key ${i} is empty`);
    if (metadata.has(key)) r.fail(`duplicate metadata key "${key}"`);
    metadata.set(key, await readValue(r, key));
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get('general.alignment');
  if (al) {
    if (al.type !== GgufType.UINT32) r.fail(`general.alignment must be a u32, got ${ggufTypeName(al.type)}`);
    alignment = al.value as number;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) r.fail(`general.alignment ${alignment} is not a power of two`);
  }

  interface RawInfo { name: string; ne: number[]; type: GgmlTypeInfo; rel: bigint }
  const raw: RawInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = await r.string(`name of tensor ${i}`, 4096);
    if (name === '') r.fail(`tensor ${i} has an empty name`);
    if (new TextEncoder().encode(name).byteLength >= GGUF_MAX_NAME) r.fail(`tensor name is ${name.length} characters, ggml allows fewer than ${GGUF_MAX_NAME} bytes`, name);
    if (names.has(name)) r.fail('duplicate tensor name', name);
    names.add(name);
    await r.need(4, `dimension count of ${name}`);
    const nDims = r.u32();
    if (nDims > GGUF_MAX_DIMS) r.fail(`${nDims} dimensions, ggml allows at most ${GGUF_MAX_DIMS}`, name);
    await r.need(8 * nDims + 12, `shape, type and offset of ${name}`);
    const ne: number[] = [];
    let numel = 1;
    for (let d = 0; d < nDims; d++) {
      const v = r.u64();
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) r.fail(`dimension ${d} is ${v}`, name);
      ne.push(Number(v));
      numel *= Number(v);
    }
    if (!Number.isSafeInteger(numel)) r.fail(`shape [${ne}] has too many elements`, name);
    const typeId = r.u32();
    const type = ggmlTypeInfo(typeId);
    if (!type) throw new UnsupportedError(`${file} [${name}]: unknown ggml tensor type id ${typeId} (a newer llama.cpp quantization?)`);
    const rowLen = nDims === 0 ? 1 : ne[0];
    if (rowLen % type.blockValues !== 0) r.fail(`rows of ${rowLen} values are not a whole number of ${type.name} blocks (${type.blockValues} values)`, name);
    raw.push({ name, ne, type, rel: r.u64() });
  }
  const headerBytes = r.pos;
  const dataOffset = nTensors > 0 ? Math.ceil(headerBytes / alignment) * alignment : headerBytes;
  if (dataOffset > fileSize) r.fail(`truncated: the data section would start at byte ${dataOffset}, past the end (${fileSize} bytes)`);

  const tensors = new Map<string, GgufTensorInfo>();
  for (const t of raw) {
    const numel = t.ne.reduce((a, b) => a * b, 1);
    const byteLength = (numel / t.type.blockValues) * t.type.blockBytes;
    if (t.rel % BigInt(alignment) !== 0n) r.fail(`data offset ${t.rel} is not a multiple of the alignment ${alignment}`, t.name);
    if (t.rel > BigInt(fileSize) || dataOffset + Number(t.rel) + byteLength > fileSize) {
      r.fail(`data [${t.rel}, +${byteLength}) runs past the end of the file (${fileSize - dataOffset} data bytes): truncated?`, t.name);
    }
    const offset = dataOffset + Number(t.rel);
    tensors.set(t.name, { name: t.name, ne: t.ne, shape: [...t.ne].reverse(), type: t.type, numel, offset, byteLength });
  }
  const ranges = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1], cur = ranges[i];
    if (cur.offset < prev.offset + prev.byteLength) r.fail(`data overlaps ${prev.name}`, cur.name);
  }
  return { file, fileSize, version, alignment, dataOffset, headerBytes, metadata, tensors };
}

// ---------------------------------------------------------------------------------------------
// Typed metadata access (each failure names the key)

export function metaKV(h: GgufHeader, key: string): GgufKV | undefined {
  return h.metadata.get(key);
}

export function metaString(h: GgufHeader, key: string): string | undefined {
  const kv = h.metadata.get(key);
  if (!kv) return undefined;
  if (kv.type !== GgufType.STRING) throw new CheckpointError(h.file, `metadata "${key}" must be a string, got ${ggufTypeName(kv.type)}`);
  return kv.value as string;
}

const INT_TYPES = new Set([GgufType.UINT8, GgufType.INT8, GgufType.UINT16, GgufType.INT16, GgufType.UINT32, GgufType.INT32, GgufType.UINT64, GgufType.INT64]);

/** An integer metadata value of any integer type, as a safe JS integer >= min. */
export function metaInt(h: GgufHeader, key: string, min = 0): number | undefined {
  const kv = h.metadata.get(key);
  if (!kv) return undefined;
  if (!INT_TYPES.has(kv.type)) throw new CheckpointError(h.file, `metadata "${key}" must be an integer, got ${ggufTypeName(kv.type)}`);
  const v = Number(kv.value as number | bigint);
  if (!Number.isSafeInteger(v) || v < min) throw new CheckpointError(h.file, `metadata "${key}" = ${String(kv.value)} is out of range (>= ${min})`);
  return v;
}

/** A float (f32/f64, or an integer) metadata value. */
export function metaFloat(h: GgufHeader, key: string): number | undefined {
  const kv = h.metadata.get(key);
  if (!kv) return undefined;
  if (kv.type === GgufType.FLOAT32 || kv.type === GgufType.FLOAT64) return kv.value as number;
  if (INT_TYPES.has(kv.type)) return Number(kv.value as number | bigint);
  throw new CheckpointError(h.file, `metadata "${key}" must be a number, got ${ggufTypeName(kv.type)}`);
}

export function metaBool(h: GgufHeader, key: string): boolean | undefined {
  const kv = h.metadata.get(key);
  if (!kv) return undefined;
  if (kv.type !== GgufType.BOOL) throw new CheckpointError(h.file, `metadata "${key}" must be a bool, got ${ggufTypeName(kv.type)}`);
  return kv.value as boolean;
}

export function metaStringArray(h: GgufHeader, key: string): string[] | undefined {
  const kv = h.metadata.get(key);
  if (!kv) return undefined;
  if (kv.type !== GgufType.ARRAY || kv.itemType !== GgufType.STRING) throw new CheckpointError(h.file, `metadata "${key}" must be an array of strings`);
  return kv.value as string[];
}

/** An integer array (any integer item type) as numbers. */
export function metaIntArray(h: GgufHeader, key: string): number[] | undefined {
  const kv = h.metadata.get(key);
  if (!kv) return undefined;
  if (kv.type !== GgufType.ARRAY || !INT_TYPES.has(kv.itemType)) throw new CheckpointError(h.file, `metadata "${key}" must be an array of integers`);
  return Array.from(kv.value as ArrayLike<number | bigint>, (v) => Number(v));
}
