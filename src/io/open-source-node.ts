// Node: a string is a URL, an existing directory, or a Hugging Face model id that is downloaded
// (with resume) into the local cache and then read as a directory.
import { isHubModelId } from './hub.ts';
import { downloadHubFiles, downloadHubModel } from './hub-cache-node.ts';
import { directorySource } from './source-node.ts';
import type { CheckpointSource } from './sources.ts';
import type { OpenOptions } from './open-source.ts';

export async function openNodeStringSource(s: string, opts: OpenOptions): Promise<CheckpointSource | undefined> {
  if (/^(https?|file):\/\//i.test(s)) return undefined;
  if (!isHubModelId(s)) return directorySource(s);
  const onProgress = (loaded: number, total: number | undefined, file: string) => opts.onDownloadProgress?.({ phase: 'download', file, loadedBytes: loaded, totalBytes: total });
  if (opts.files) return directorySource((await downloadHubFiles(s, opts.files, { signal: opts.signal, onProgress })).dir);
  const dir = await downloadHubModel(s, { signal: opts.signal, onProgress });
  return directorySource(dir);
}
