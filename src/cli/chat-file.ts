// `chat --save/--load`: a conversation in one file, its transcript (what the chat template sees
// and what the model has consumed) and the session snapshot (Session.saveState), so a loaded chat
// continues exactly where it stopped without prefilling the history again. Layout:
//   "MSLC"  u32 version  u32 jsonBytes  JSON {model, transcript}  snapshot bytes (to the end)
// Written to a temporary name and renamed, so an interrupted save leaves the old file intact.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { InputError, SnapshotError } from '../errors.ts';
import type { TranscriptState } from './chat.ts';

const MAGIC = 0x434c534d; // "MSLC"
const VERSION = 1;

export interface ChatFile {
  /** Fingerprint of the model that wrote it. */
  model: string;
  transcript: TranscriptState;
  snapshot: Uint8Array;
}

export async function saveChatFile(path: string, f: ChatFile): Promise<void> {
  const json = new TextEncoder().encode(JSON.stringify({ model: f.model, transcript: f.transcript }));
  const out = new Uint8Array(12 + json.byteLength + f.snapshot.byteLength);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, VERSION, true);
  dv.setUint32(8, json.byteLength, true);
  out.set(json, 12);
  out.set(f.snapshot, 12 + json.byteLength);
  const tmp = `${path}.partial`;
  await writeFile(tmp, out);
  await rename(tmp, path);
}

export async function loadChatFile(path: string): Promise<ChatFile> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    throw new InputError(`cannot read the saved chat ${path}: ${(e as Error).message}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 12 || dv.getUint32(0, true) !== MAGIC) throw new SnapshotError(`${path} is not a saved mamba-scan-lite chat (chat --save writes them)`);
  if (dv.getUint32(4, true) !== VERSION) throw new SnapshotError(`${path}: saved chat version ${dv.getUint32(4, true)} is not supported (this version reads ${VERSION})`);
  const n = dv.getUint32(8, true);
  if (12 + n > bytes.byteLength) throw new SnapshotError(`${path} is truncated`);
  let head: { model?: unknown; transcript?: TranscriptState };
  try {
    head = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + n)));
  } catch (e) {
    throw new SnapshotError(`${path}: the saved chat's header is damaged (${(e as Error).message})`);
  }
  const t = head.transcript;
  if (typeof head.model !== 'string' || !t || !Array.isArray(t.messages) || typeof t.consumed !== 'string') throw new SnapshotError(`${path}: the saved chat's header is incomplete`);
  return { model: head.model, transcript: t, snapshot: bytes.subarray(12 + n) };
}
