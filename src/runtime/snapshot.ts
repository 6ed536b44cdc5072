// Session snapshots: a sequence's whole history as bytes. For a Mamba2 model that is constant-size
// state (each layer's conv ring and SSM state) plus, for Zamba2, the attention KV rows written so far
// and the tokens chosen but not yet fed. Layout (little-endian):
//   "MSLS"  u32 version  u32 headerBytes  header (UTF-8 JSON, SnapshotHeader)
//   per mamba layer: conv state (convStateBytes), SSM state (ssmStateBytes)
//   per KV site: k rows [position, kvWidth], then v rows, in the cache dtype
//   u32 FNV-1a of everything before it
// Restoring checks the model fingerprint, every dimension and the checksum before touching the
// device, so a snapshot of another model or a damaged file is a SnapshotError that changes nothing.
import type { Backend, KvDType } from '../backends/backend.ts';
import { SnapshotError } from '../errors.ts';
import type { CacheDims } from '../models/state.ts';
import { type HybridCache, kvElemBytes } from './cache.ts';

const MAGIC = 0x534c534d; // "MSLS"
const VERSION = 1;

export interface SnapshotHeader {
  /** LoadedCheckpoint.fingerprint of the model that wrote it. */
  model: string;
  dims: CacheDims;
  kvDtype: KvDType;
  /** Tokens consumed. */
  position: number;
  /** Tokens chosen but not yet fed (the session's last sampled token). */
  pending: number[];
}

function fnv1a(bytes: Uint8Array, end: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h;
}

/** Bytes a snapshot of `dims` at `position` takes (constant in the position except the KV rows). */
export function snapshotBytes(dims: CacheDims, kvDtype: KvDType, position: number, headerBytes: number): number {
  const state = dims.numMambaLayers * (dims.convStateBytes + dims.ssmStateBytes);
  const kv = dims.numKvSites * 2 * position * dims.kvWidth * kvElemBytes(kvDtype);
  return 12 + headerBytes + state + kv + 4;
}

/** Reads a cache's state back from the device into snapshot bytes. */
export async function saveSnapshot(be: Backend, cache: HybridCache, model: string, pending: readonly number[]): Promise<Uint8Array> {
  const header: SnapshotHeader = { model, dims: cache.dims, kvDtype: cache.kvDtype, position: cache.position, pending: [...pending] };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(snapshotBytes(cache.dims, cache.kvDtype, cache.position, headerBytes.byteLength));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, VERSION, true);
  dv.setUint32(8, headerBytes.byteLength, true);
  out.set(headerBytes, 12);
  let off = 12 + headerBytes.byteLength;
  const put = async (buf: Parameters<Backend['read']>[0], bytes: number) => {
    if (bytes === 0) return;
    out.set(new Uint8Array(await be.read(buf, 0, bytes)), off);
    off += bytes;
  };
  for (const m of cache.mamba) {
    await put(m.convState, cache.dims.convStateBytes);
    await put(m.ssmState, cache.dims.ssmStateBytes);
  }
  const rowBytes = cache.dims.kvWidth * kvElemBytes(cache.kvDtype);
  for (const site of cache.kv) {
    await put(site.k, cache.position * rowBytes);
    await put(site.v, cache.position * rowBytes);
  }
  dv.setUint32(off, fnv1a(out, off), true);
  return out;
}

/** Validates snapshot bytes against a model and cache dims; returns the header and the data offset. */
export function parseSnapshot(bytes: Uint8Array, model: string, dims: CacheDims, kvDtype: KvDType): { header: SnapshotHeader; dataOffset: number } {
  if (!(bytes instanceof Uint8Array)) throw new SnapshotError('a snapshot must be a Uint8Array');
  if (bytes.byteLength < 16) throw new SnapshotError(`snapshot of ${bytes.byteLength} bytes is truncated`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw new SnapshotError('not a mamba-scan-lite session snapshot (bad magic)');
  const version = dv.getUint32(4, true);
  if (version !== VERSION) throw new SnapshotError(`snapshot version ${version} is not supported (this runtime reads ${VERSION})`);
  const hLen = dv.getUint32(8, true);
  if (12 + hLen + 4 > bytes.byteLength) throw new SnapshotError('snapshot header runs past the end: truncated');
  let header: SnapshotHeader;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + hLen)));
  } catch (e) {
    throw new SnapshotError(`snapshot header is not valid JSON: ${(e as Error).message}`);
  }
  const end = bytes.byteLength - 4;
  if (dv.getUint32(end, true) !== fnv1a(bytes, end)) throw new SnapshotError('snapshot checksum mismatch: the bytes are damaged');
  if (header?.model !== model) throw new SnapshotError(`snapshot belongs to another model (${String(header?.model)}, this one is ${model})`);
  for (const k of Object.keys(dims) as (keyof CacheDims)[]) {
    if (header.dims?.[k] !== dims[k]) throw new SnapshotError(`snapshot ${k} ${String(header.dims?.[k])} does not match this model's ${dims[k]}`);
  }
  if (header.kvDtype !== kvDtype) throw new SnapshotError(`snapshot KV cache is ${String(header.kvDtype)}, this model's is ${kvDtype}`);
  if (!Number.isSafeInteger(header.position) || header.position < 0) throw new SnapshotError(`snapshot position ${String(header.position)} is invalid`);
  if (!Array.isArray(header.pending) || !header.pending.every((t) => Number.isInteger(t) && t >= 0)) throw new SnapshotError('snapshot pending tokens are invalid');
  if (bytes.byteLength !== snapshotBytes(dims, kvDtype, header.position, hLen)) {
    throw new SnapshotError(`snapshot holds ${bytes.byteLength} bytes, ${snapshotBytes(dims, kvDtype, header.position, hLen)} expected for position ${header.position}`);
  }
  return { header, dataOffset: 12 + hLen };
}

/** Writes validated snapshot data into a fresh cache (position 0) and sets its position. */
export function restoreSnapshot(be: Backend, cache: HybridCache, bytes: Uint8Array, header: SnapshotHeader, dataOffset: number): void {
  let off = dataOffset;
  const take = (n: number) => { const v = bytes.subarray(off, off + n); off += n; return v; };
  cache.reserve(Math.max(1, header.position));
  for (const m of cache.mamba) {
    be.write(m.convState, 0, take(cache.dims.convStateBytes));
    be.write(m.ssmState, 0, take(cache.dims.ssmStateBytes));
  }
  const rowBytes = cache.dims.kvWidth * kvElemBytes(cache.kvDtype);
  for (const site of cache.kv) {
    if (header.position > 0) be.write(site.k, 0, take(header.position * rowBytes));
    if (header.position > 0) be.write(site.v, 0, take(header.position * rowBytes));
  }
  cache.position = header.position;
}
