// Browsers: a string is a URL base or a Hugging Face model id, read with Range requests through
// a fetch that keeps whole files in the Cache API, so the next visit loads without the network.
import { hubFileUrl, isHubModelId } from './hub.ts';
import { createCachingFetch } from './hub-cache-browser.ts';
import { UrlSource, type CheckpointSource } from './sources.ts';
import type { OpenOptions } from './open-source.ts';

export async function openBrowserStringSource(s: string, opts: OpenOptions): Promise<CheckpointSource | undefined> {
  const cachingFetch = createCachingFetch({
    onProgress: (loaded, total, url) => opts.onDownloadProgress?.({ phase: 'download', file: url, loadedBytes: loaded, totalBytes: total }),
  });
  if (isHubModelId(s, undefined)) {
    const base = hubFileUrl(s, '');
    return new UrlSource(base, { fetch: cachingFetch, signal: opts.signal });
  }
  if (/^https?:\/\//i.test(s) || s.startsWith('/') || s.startsWith('.')) {
    const abs = new URL(s, (globalThis as { location?: { href: string } }).location?.href ?? 'http://localhost/').href;
    return new UrlSource(abs, { signal: opts.signal });
  }
  return undefined;
}
