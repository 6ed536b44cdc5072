// Writes safetensors files (https://github.com/huggingface/safetensors, "Format" section):
//   [u64 little-endian header length N][N bytes of JSON header][data section]
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} with offsets
// relative to the start of the data section, plus an optional "__metadata__" string map.
// The header is padded with spaces to a multiple of 8 bytes so the data section starts 8-aligned
// (what the Rust/Python writers do, and what lets readers view 16-/32-bit data without copying).
// Used by the test fixtures and the default-model generator; the library itself only reads.

export type SafetensorsDType = 'F32' | 'F16' | 'BF16';

export interface SafetensorsTensorIn {
  name: string;
  dtype: SafetensorsDType;
  /** PyTorch order, outermost first. */
  shape: number[];
  /** Raw little-endian element bytes; length must equal prod(shape) * itemsize. */
  data: Uint8Array;
}

const ITEM_SIZE: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Encodes tensors (in the given order) into one safetensors file. */
export function encodeSafetensors(tensors: SafetensorsTensorIn[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__' || seen.has(t.name)) throw new Error(`safetensors: duplicate or reserved tensor name "${t.name}"`);
    seen.add(t.name);
    const item = ITEM_SIZE[t.dtype];
    if (item === undefined) throw new Error(`safetensors: unsupported dtype ${String(t.dtype)} for ${t.name}`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`safetensors: bad shape [${t.shape}] for ${t.name}`);
    if (t.data.byteLength !== numel * item) {
      throw new Error(`safetensors: ${t.name} has ${t.data.byteLength} bytes, shape [${t.shape}] ${t.dtype} needs ${numel * item}`);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let headerBytes = enc.encode(json);
  const pad = (8 - (headerBytes.byteLength % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    headerBytes = enc.encode(json);
  }
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.byteLength;
  for (const t of tensors) {
    out.set(t.data, p);
    p += t.data.byteLength;
  }
  return out;
}

/** Writes `files` (relative path -> bytes or UTF-8 text) under `dir`, creating folders. Node only. */
export async function writeCheckpointDir(dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  await fs.mkdir(dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    const full = path.join(dir, rel);
    await fs.mkdir(path.dirname(full), { recursive: true });
    await fs.writeFile(full, content);
  }
}
