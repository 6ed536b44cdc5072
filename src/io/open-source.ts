// Turns what a user passes to loadModel into a CheckpointSource. Strings are platform-specific
// (a directory or a Hub id in Node, a URL or a Hub id in browsers), so each entry point installs
// its opener; everything else (URL objects, File lists, in-memory files, sources) is common.
import { resolveSource, type CheckpointSource, type SourceInput } from './sources.ts';

export type ModelSource = SourceInput;

/** Download or load progress for one file (Hub downloads happen before the weights stream). */
export interface DownloadProgress {
  phase: 'download';
  file: string;
  loadedBytes: number;
  totalBytes: number | undefined;
}

export interface OpenOptions {
  onDownloadProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /**
   * Only these files will be read (e.g. a tokenizer's): a Hub model is then downloaded for them
   * alone, not its weights. Sources that read lazily (URLs, folders) ignore it.
   */
  files?: readonly string[];
}

export type StringSourceOpener = (s: string, opts: OpenOptions) => Promise<CheckpointSource | undefined>;

let stringOpener: StringSourceOpener | undefined;

export function setStringSourceOpener(fn: StringSourceOpener): void {
  stringOpener = fn;
}

export async function openModelSource(source: ModelSource, opts: OpenOptions): Promise<CheckpointSource> {
  if (typeof source === 'string' && stringOpener) {
    const s = await stringOpener(source, opts);
    if (s) return s;
  }
  return resolveSource(source, { signal: opts.signal });
}
