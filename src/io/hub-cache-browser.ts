// A fetch that keeps whole files in the browser's Cache API (caches.open('mamba-scan-lite')), so
// a checkpoint loaded from URLs (a Hub model id through hubFileUrl, or any URL) is downloaded
// once and read from the cache on later page loads. No `node:` imports: this is bundled for
// browsers.
//
// Only complete 200 responses are stored (the Cache API refuses 206). A request with a Range
// header is answered from a cached whole file as a synthesized 206 when there is one, and goes
// to the network uncached otherwise. A response is stored before it is handed back (put, then
// match), rather than teeing one stream into both: a tee buffers the whole file in memory when
// the cache side and the reader run at different speeds, which for a 2 GB shard is the problem
// this library exists to avoid.

import { AbortError, HubError } from '../errors.ts';

export const HUB_CACHE_NAME = 'mamba-scan-lite';

/** The part of CacheStorage used here (so tests and workers can pass their own). */
export type HubCacheStorage = Pick<CacheStorage, 'open' | 'delete'>;

export interface HubCachedFetchOptions {
  /** Request headers (Authorization, Range). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Download progress of a cache miss: bytes so far and the Content-Length when known. */
  onProgress?: (loaded: number, total: number | undefined) => void;
  /** Default globalThis.fetch. */
  fetch?: typeof globalThis.fetch;
  /** Default globalThis.caches; without one (insecure context, Node) this is a plain fetch. */
  caches?: HubCacheStorage;
  /** Default 'mamba-scan-lite'. */
  cacheName?: string;
  /**
   * Storing failed (usually the storage quota): the file is fetched again uncached and this
   * is called with the reason, so a caller can tell the user that the next load will download
   * again. Without it such failures are thrown.
   */
  onCacheError?: (error: unknown, url: string) => void;
  /**
   * A Range request for a file not cached yet downloads the whole file into the cache first and
   * answers from it (instead of going to the network uncached). For loaders that read a file
   * only through ranges but read all of it, as the safetensors loader does.
   */
  fillOnRangeMiss?: boolean;
}

/**
 * GET `url` through the cache. Resolves with a Response like fetch does; a non-ok status is
 * returned as is (not cached) so the caller can map it (404 for an optional file), a network
 * failure throws HubError, an abort throws AbortError.
 */
export async function hubCachedFetch(url: string, opts: HubCachedFetchOptions = {}): Promise<Response> {
  const storage = opts.caches ?? (globalThis as { caches?: HubCacheStorage }).caches;
  const headers = opts.headers ?? {};
  const range = headerValue(headers, 'range');
  if (!storage) return network(url, opts, headers);

  const cache = await storage.open(opts.cacheName ?? HUB_CACHE_NAME);
  const hit = await cache.match(url);
  if (hit) {
    checkAbort(opts.signal, url);
    return range === undefined ? hit : sliceResponse(hit, range, url);
  }
  if (range !== undefined) {
    if (!opts.fillOnRangeMiss) return network(url, opts, headers);
    const whole = await hubCachedFetch(url, { ...opts, headers: withoutHeader(headers, 'range'), fillOnRangeMiss: false });
    if (whole.status !== 200) return whole;
    return sliceResponse(whole, range, url);
  }

  const res = await network(url, opts, headers);
  if (res.status !== 200) return res;
  try {
    await cache.put(url, withProgress(res, opts.onProgress));
  } catch (e) {
    checkAbort(opts.signal, url);
    if (!opts.onCacheError) throw new HubError(url, undefined, `could not store ${url} in the browser cache: ${String(e)}`, { cause: e });
    opts.onCacheError(e, url);
    await cache.delete(url).catch(() => false);
    return network(url, { ...opts, onProgress: undefined }, headers);
  }
  const stored = await cache.match(url);
  if (!stored) throw new HubError(url, undefined, `the browser cache dropped ${url} right after storing it (storage evicted?)`);
  return stored;
}

export interface CachingFetchOptions extends Omit<HubCachedFetchOptions, 'headers' | 'signal' | 'onProgress' | 'fillOnRangeMiss'> {
  /** Headers added to every request (e.g. authHeaders(token)). */
  headers?: Record<string, string>;
  /** Download progress of each file that goes into the cache. */
  onProgress?: (loaded: number, total: number | undefined, url: string) => void;
}

/**
 * A fetch-compatible function that serves GET and HEAD from the cache, for a loader that takes a
 * `fetch` option (the URL checkpoint source): HEAD of a cached file answers with its size, a
 * GET (whole or Range) of a file not cached yet downloads it into the cache once, also when
 * several ranges of it are asked for at the same time. Other methods go to the network.
 */
export function createCachingFetch(opts: CachingFetchOptions = {}): typeof globalThis.fetch {
  const inflight = new Map<string, Promise<void>>();
  const fetchFn = opts.fetch ?? globalThis.fetch;
  const caching = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const headers = { ...opts.headers, ...headersRecord(init?.headers ?? (input instanceof Request ? input.headers : undefined)) };
    const signal = init?.signal ?? undefined;
    const base = { ...opts, headers, signal, onProgress: undefined };
    const storage = opts.caches ?? (globalThis as { caches?: HubCacheStorage }).caches;
    // No Cache API (insecure context): nothing to fill, so no whole-file downloads for ranges.
    if (!storage) return fetchFn(url, { ...init, headers });
    if (method === 'HEAD') {
      const hit = await (await storage.open(opts.cacheName ?? HUB_CACHE_NAME)).match(url);
      if (!hit) return network(url, { ...base, fetch: (u, i) => fetchFn(u, { ...i, method: 'HEAD' }) }, headers);
      const len = hit.headers.get('content-length') ?? String((await hit.blob()).size);
      return new Response(null, { status: 200, headers: { 'Content-Length': len, 'Content-Type': hit.headers.get('content-type') ?? 'application/octet-stream' } });
    }
    if (method !== 'GET') return fetchFn(input, init);
    // One download per file: concurrent requests wait for it, then read from the cache.
    // The entry is set before the first await, so requests that arrive together share it.
    let pending = inflight.get(url);
    if (!pending) {
      pending = (async () => {
        if (await isHubCached(url, opts)) return;
        const res = await hubCachedFetch(url, {
          ...base,
          headers: withoutHeader(headers, 'range'),
          onProgress: opts.onProgress && ((l, t) => opts.onProgress!(l, t, url)),
        });
        await res.body?.cancel();
      })();
      inflight.set(url, pending);
      pending.then(() => inflight.delete(url), () => inflight.delete(url));
    }
    await pending.catch(() => undefined); // a failed fill is retried (and reported) below
    return hubCachedFetch(url, { ...base, fillOnRangeMiss: true });
  };
  return caching as typeof globalThis.fetch;
}

function headersRecord(h: HeadersInit | undefined): Record<string, string> {
  if (!h) return {};
  if (h instanceof Headers) return Object.fromEntries(h.entries());
  if (Array.isArray(h)) return Object.fromEntries(h);
  return { ...(h as Record<string, string>) };
}

function withoutHeader(headers: Record<string, string>, name: string): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== name));
}

/** Whether `url` is cached as a whole file. */
export async function isHubCached(url: string, opts: Pick<HubCachedFetchOptions, 'caches' | 'cacheName'> = {}): Promise<boolean> {
  const storage = opts.caches ?? (globalThis as { caches?: HubCacheStorage }).caches;
  if (!storage) return false;
  return (await (await storage.open(opts.cacheName ?? HUB_CACHE_NAME)).match(url)) !== undefined;
}

/** Removes cached files: those whose URL starts with `prefix`, or all of them. */
export async function clearHubCache(prefix?: string, opts: Pick<HubCachedFetchOptions, 'caches' | 'cacheName'> = {}): Promise<number> {
  const storage = opts.caches ?? (globalThis as { caches?: HubCacheStorage }).caches;
  if (!storage) return 0;
  const name = opts.cacheName ?? HUB_CACHE_NAME;
  if (prefix === undefined) {
    const n = (await (await storage.open(name)).keys()).length;
    await storage.delete(name);
    return n;
  }
  const cache = await storage.open(name);
  let n = 0;
  for (const req of await cache.keys()) {
    if (req.url.startsWith(prefix) && (await cache.delete(req))) n++;
  }
  return n;
}

async function network(url: string, opts: HubCachedFetchOptions, headers: Record<string, string>): Promise<Response> {
  const fetchFn = opts.fetch ?? globalThis.fetch;
  checkAbort(opts.signal, url);
  try {
    return await fetchFn(url, { headers, signal: opts.signal });
  } catch (e) {
    checkAbort(opts.signal, url);
    throw new HubError(url, undefined, `network error fetching ${url}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

function checkAbort(signal: AbortSignal | undefined, url: string): void {
  if (signal?.aborted) throw new AbortError(`fetch of ${url} aborted`);
}

function headerValue(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** The same response with its body counted as it is read (by cache.put). */
function withProgress(res: Response, onProgress: HubCachedFetchOptions['onProgress']): Response {
  if (!onProgress || !res.body) return res;
  const len = res.headers.get('content-length');
  const total = len !== null && !res.headers.get('content-encoding') ? Number(len) : undefined;
  let loaded = 0;
  onProgress(0, total);
  const counted = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        loaded += chunk.byteLength;
        onProgress(loaded, total);
        ctl.enqueue(chunk);
      },
    }),
  );
  return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/**
 * A 206 (or 416) answer to a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range, cut from a
 * cached whole file. (Chromium backs cached bodies with disk blobs, so slicing does not read
 * the whole file into memory.)
 */
async function sliceResponse(whole: Response, range: string, url: string): Promise<Response> {
  const blob = await whole.blob();
  const size = blob.size;
  const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  let start: number;
  let end: number; // inclusive
  if (!m || (m[1] === '' && m[2] === '')) throw new HubError(url, undefined, `unsupported Range "${range}": one range "bytes=a-b" is supported`);
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || end < start) {
    return new Response(null, { status: 416, headers: { 'Content-Range': `bytes */${size}` } });
  }
  return new Response(blob.slice(start, end + 1), {
    status: 206,
    headers: {
      'Content-Range': `bytes ${start}-${end}/${size}`,
      'Content-Length': String(end - start + 1),
      'Content-Type': whole.headers.get('content-type') ?? 'application/octet-stream',
    },
  });
}
