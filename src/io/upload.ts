// Placing tensors on a backend: the dim-0 split rule shared by the checkpoint loader and by code
// that builds weights in memory (generated models, tests), and a one-shot upload of host data.
import { UnsupportedError } from '../errors.ts';
import type { Backend, Buf } from '../backends/backend.ts';
import { type FloatDType, FLOAT_DTYPE_BYTES as DTYPE_BYTES, type TensorPart, type WeightTensor, numel, rowSize } from '../backends/tensor.ts';

export interface PlannedPart {
  /** First dim-0 row of the part. */
  rowStart: number;
  rows: number;
  /** Element bytes in the part (its buffer is this rounded up to 4). */
  bytes: number;
}

/** The largest buffer one tensor part may use on this backend (optionally lowered, e.g. by tests). */
export function maxPartBytes(be: Backend, override?: number): number {
  const limit = Math.min(override ?? Infinity, be.limits.maxBindingBytes, be.limits.maxBufferBytes);
  return Math.floor(limit / 4) * 4;
}

/**
 * Dim-0 split of a tensor with GPU shape `shape` and element size `elem` so that each part's
 * buffer is at most `maxBytes`, and each part starts at an even element (16-bit data is packed
 * two per u32, and a u32 must not straddle two buffers). One part when the tensor fits.
 */
export function planParts(name: string, shape: readonly number[], elem: number, maxBytes: number): PlannedPart[] {
  const n = numel(shape);
  const rows = shape.length === 0 ? 1 : shape[0];
  const rowElems = rowSize(shape);
  if (Math.ceil((n * elem) / 4) * 4 <= maxBytes || n === 0) return [{ rowStart: 0, rows, bytes: n * elem }];
  let perPart = Math.floor(maxBytes / (rowElems * elem));
  // With an odd row size only an even number of rows keeps every part start even.
  if (rowElems % 2 === 1) perPart -= perPart % 2;
  if (perPart < 1) {
    const unit = rowElems * elem * (rowElems % 2 ? 2 : 1);
    throw new UnsupportedError(`${name}: one dim-0 row${rowElems % 2 ? ' pair' : ''} (${unit} bytes) exceeds the ` +
      `${maxBytes}-byte buffer binding limit, so the tensor cannot be split to fit this device`);
  }
  const parts: PlannedPart[] = [];
  for (let r = 0; r < rows; r += perPart) {
    const k = Math.min(perPart, rows - r);
    parts.push({ rowStart: r, rows: k, bytes: k * rowElems * elem });
  }
  return parts;
}

/**
 * Uploads host data already in the GPU storage format (`data`: f32 values, or 16-bit patterns
 * for f16/bf16, in PyTorch order) as a GpuTensor, split like the loader splits. Buffers are
 * labelled `weights:<name>` (`#i` per part).
 */
export function uploadTensor(be: Backend, name: string, dtype: FloatDType, shape: readonly number[], data: ArrayBufferView,
  opts: { maxBindingBytes?: number; labelPrefix?: string } = {}): WeightTensor {
  const elem = DTYPE_BYTES[dtype];
  const byteLength = numel(shape) * elem;
  if (data.byteLength !== byteLength) throw new RangeError(`${name}: ${data.byteLength} bytes given, shape [${shape}] ${dtype} needs ${byteLength}`);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const plan = planParts(name, shape, elem, maxPartBytes(be, opts.maxBindingBytes));
  const rowBytes = rowSize(shape) * elem;
  const parts: TensorPart[] = [];
  const prefix = opts.labelPrefix ?? 'weights';
  try {
    plan.forEach((p, i) => {
      const buffer = be.alloc(`${prefix}:${name}${plan.length > 1 ? `#${i}` : ''}`, p.bytes);
      parts.push({ buffer, rowStart: p.rowStart, rows: p.rows });
      if (p.bytes > 0) be.write(buffer, 0, bytes.subarray(p.rowStart * rowBytes, p.rowStart * rowBytes + p.bytes));
    });
  } catch (e) {
    for (const p of parts) be.free(p.buffer);
    throw e;
  }
  return { name, dtype, shape: [...shape], parts, byteLength };
}

/** Destroys a tensor's buffers. */
export function destroyTensor(be: Backend, t: WeightTensor): void {
  for (const p of t.parts) be.free(p.buffer);
}
