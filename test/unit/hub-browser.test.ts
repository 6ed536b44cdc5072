// hubCachedFetch (the browser's Cache API path) in Node, with an in-memory CacheStorage that
// behaves like the browser's where it matters here (stores whole 200 responses, refuses 206,
// put consumes the body) and a counting fake fetch: a miss goes to the network and is stored,
// a hit makes no request, Range requests are cut from the cached file, errors are typed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clearHubCache, createCachingFetch, hubCachedFetch, isHubCached } from '../../src/io/hub-cache-browser.ts';
import { hubFileUrl } from '../../src/io/hub.ts';
import { AbortError, HubError } from '../../src/errors.ts';

class MemoryCache {
  entries = new Map<string, { status: number; headers: [string, string][]; body: Uint8Array }>();
  failPut: unknown = undefined;
  async match(req: RequestInfo | URL): Promise<Response | undefined> {
    const e = this.entries.get(String(req instanceof Request ? req.url : req));
    return e && new Response(e.body.slice(), { status: e.status, headers: e.headers });
  }
  async put(req: RequestInfo | URL, res: Response): Promise<void> {
    if (res.status === 206) throw new TypeError('Partial response (status code 206) is unsupported');
    const body = new Uint8Array(await res.arrayBuffer());
    if (this.failPut) throw this.failPut;
    this.entries.set(String(req), { status: res.status, headers: [...res.headers], body });
  }
  async delete(req: RequestInfo | URL): Promise<boolean> {
    return this.entries.delete(String(req instanceof Request ? req.url : req));
  }
  async keys(): Promise<Request[]> {
    return [...this.entries.keys()].map((u) => new Request(u));
  }
}

class MemoryCaches {
  caches = new Map<string, MemoryCache>();
  async open(name: string): Promise<Cache> {
    if (!this.caches.has(name)) this.caches.set(name, new MemoryCache());
    return this.caches.get(name)! as unknown as Cache;
  }
  async delete(name: string): Promise<boolean> {
    return this.caches.delete(name);
  }
  get(name = 'mamba-scan-lite'): MemoryCache | undefined {
    return this.caches.get(name);
  }
}

const HOST = 'https://hub.test/';
const WEIGHTS = (() => {
  const b = new Uint8Array(50_017); // odd size: the last range is not a multiple of anything
  for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
  return b;
})();
const CONFIG = new TextEncoder().encode('{"model_type":"mamba2"}');

/** A fake network serving two files; counts requests; answers Range with 206. */
function network(files: Record<string, Uint8Array>) {
  const calls: { url: string; range?: string; method?: string }[] = [];
  const fetchFn = (async (u: RequestInfo | URL, init?: RequestInit) => {
    const url = String(u);
    const headers = new Headers(init?.headers);
    const range = headers.get('range') ?? undefined;
    calls.push(init?.method && init.method !== 'GET' ? { url, range, method: init.method } : { url, range });
    if (init?.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    const body = files[url];
    if (!body) return new Response('Entry not found', { status: 404 });
    const m = /^bytes=(\d+)-$/.exec(range ?? '');
    if (m) {
      const s = Number(m[1]);
      return new Response(body.slice(s), { status: 206, headers: { 'content-range': `bytes ${s}-${body.length - 1}/${body.length}`, 'content-length': String(body.length - s) } });
    }
    if (init?.method === 'HEAD') return new Response(null, { status: 200, headers: { 'content-length': String(body.length) } });
    return new Response(body.slice(), { status: 200, headers: { 'content-length': String(body.length), 'content-type': 'application/octet-stream' } });
  }) as typeof fetch;
  return { calls, fetchFn };
}

const wUrl = hubFileUrl('tiny/model', 'model.safetensors', { remoteHost: HOST });
const cUrl = hubFileUrl('tiny/model', 'config.json', { remoteHost: HOST });
const FILES = { [wUrl]: WEIGHTS, [cUrl]: CONFIG };

const bytes = async (r: Response) => new Uint8Array(await r.arrayBuffer());
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

test('miss: fetched once, stored, progress counted; hit: same bytes, no request', async () => {
  const caches = new MemoryCaches();
  const { calls, fetchFn } = network(FILES);
  const progress: [number, number | undefined][] = [];
  const r1 = await hubCachedFetch(wUrl, { caches, fetch: fetchFn, onProgress: (l, t) => progress.push([l, t]) });
  assert.is(r1.status, 200);
  assert.ok(same(await bytes(r1), WEIGHTS));
  assert.is(calls.length, 1);
  assert.equal(progress[0], [0, WEIGHTS.length]);
  assert.equal(progress.at(-1), [WEIGHTS.length, WEIGHTS.length]);
  assert.ok(await isHubCached(wUrl, { caches }));

  const r2 = await hubCachedFetch(wUrl, { caches, fetch: fetchFn });
  assert.ok(same(await bytes(r2), WEIGHTS));
  assert.is(calls.length, 1, 'served from the cache');
  assert.ok(caches.get(), "stored under caches.open('mamba-scan-lite')");
});

test('Range on a cached file: 206 cut from the cache (a-b, a-, -n), 416 past the end, no request', async () => {
  const caches = new MemoryCaches();
  const { calls, fetchFn } = network(FILES);
  await (await hubCachedFetch(wUrl, { caches, fetch: fetchFn })).arrayBuffer();
  const n = WEIGHTS.length;
  const cases: [string, number, number][] = [['bytes=0-7', 0, 7], ['bytes=12345-', 12345, n - 1], ['bytes=-13', n - 13, n - 1], ['bytes=49990-99999', 49990, n - 1]];
  for (const [range, s, e] of cases) {
    const r = await hubCachedFetch(wUrl, { caches, fetch: fetchFn, headers: { Range: range } });
    assert.is(r.status, 206, range);
    assert.is(r.headers.get('content-range'), `bytes ${s}-${e}/${n}`, range);
    assert.ok(same(await bytes(r), WEIGHTS.subarray(s, e + 1)), range);
  }
  const r416 = await hubCachedFetch(wUrl, { caches, fetch: fetchFn, headers: { range: `bytes=${n}-` } });
  assert.is(r416.status, 416);
  assert.is(r416.headers.get('content-range'), `bytes */${n}`);
  assert.is(calls.length, 1);
  const bad = await hubCachedFetch(wUrl, { caches, fetch: fetchFn, headers: { range: 'bytes=0-1,5-6' } }).catch((e: unknown) => e);
  assert.instance(bad, HubError);
});

test('Range on an uncached file goes to the network and is not stored', async () => {
  const caches = new MemoryCaches();
  const { calls, fetchFn } = network(FILES);
  const r = await hubCachedFetch(wUrl, { caches, fetch: fetchFn, headers: { Range: 'bytes=100-' } });
  assert.is(r.status, 206);
  assert.ok(same(await bytes(r), WEIGHTS.subarray(100)));
  assert.equal(calls, [{ url: wUrl, range: 'bytes=100-' }]);
  assert.is(await isHubCached(wUrl, { caches }), false);
});

test('404 is returned as is and not stored (an optional file stays a network question)', async () => {
  const caches = new MemoryCaches();
  const { calls, fetchFn } = network(FILES);
  const url = hubFileUrl('tiny/model', 'tokenizer.json', { remoteHost: HOST });
  assert.is((await hubCachedFetch(url, { caches, fetch: fetchFn })).status, 404);
  assert.is((await hubCachedFetch(url, { caches, fetch: fetchFn })).status, 404);
  assert.is(calls.length, 2);
});

test('storing fails (quota): onCacheError hears of it and the file still arrives; without it HubError', async () => {
  const caches = new MemoryCaches();
  const { calls, fetchFn } = network(FILES);
  ((await caches.open('mamba-scan-lite')) as unknown as MemoryCache).failPut = new DOMException('quota', 'QuotaExceededError');
  const errors: unknown[] = [];
  const r = await hubCachedFetch(cUrl, { caches, fetch: fetchFn, onCacheError: (e) => errors.push(e) });
  assert.ok(same(await bytes(r), CONFIG));
  assert.is(errors.length, 1);
  assert.is((errors[0] as DOMException).name, 'QuotaExceededError');
  assert.is(calls.length, 2, 'fetched again, uncached');
  const e = await hubCachedFetch(cUrl, { caches, fetch: fetchFn }).catch((x: unknown) => x);
  assert.instance(e, HubError);
  assert.match((e as Error).message, /browser cache/);
});

test('without a CacheStorage it is a plain fetch', async () => {
  const { calls, fetchFn } = network(FILES);
  const noCaches = (globalThis as { caches?: unknown }).caches === undefined;
  assert.ok(noCaches, 'Node has no global caches');
  for (let i = 0; i < 2; i++) assert.ok(same(await bytes(await hubCachedFetch(cUrl, { fetch: fetchFn })), CONFIG));
  assert.is(calls.length, 2);
});

test('network failure is a HubError with the URL; abort is an AbortError', async () => {
  const caches = new MemoryCaches();
  const failing = (async () => {
    throw new TypeError('fetch failed');
  }) as typeof fetch;
  const e = await hubCachedFetch(cUrl, { caches, fetch: failing }).catch((x: unknown) => x);
  assert.instance(e, HubError);
  assert.is((e as HubError).url, cUrl);
  const ac = new AbortController();
  ac.abort();
  const { calls, fetchFn } = network(FILES);
  const a = await hubCachedFetch(cUrl, { caches, fetch: fetchFn, signal: ac.signal }).catch((x: unknown) => x);
  assert.instance(a, AbortError);
  assert.is(calls.length, 0);
});

test('clearHubCache by URL prefix and whole', async () => {
  const caches = new MemoryCaches();
  const { fetchFn } = network({ ...FILES, [`${HOST}other/m/resolve/main/config.json`]: CONFIG });
  for (const u of [wUrl, cUrl, `${HOST}other/m/resolve/main/config.json`]) await (await hubCachedFetch(u, { caches, fetch: fetchFn })).arrayBuffer();
  assert.is(await clearHubCache(`${HOST}tiny/model/`, { caches }), 2);
  assert.is(await isHubCached(wUrl, { caches }), false);
  assert.is(await isHubCached(`${HOST}other/m/resolve/main/config.json`, { caches }), true);
  assert.is(await clearHubCache(undefined, { caches }), 1);
  assert.is(caches.get(), undefined);
});

test('createCachingFetch: concurrent ranges of an uncached file download it once; HEAD from the cache', async () => {
  const caches = new MemoryCaches();
  const { calls, fetchFn } = network(FILES);
  const progress: string[] = [];
  const f = createCachingFetch({ caches, fetch: fetchFn, headers: { Authorization: 'Bearer t' }, onProgress: (l, t, u) => l === t && progress.push(u) });
  // HEAD before anything is cached goes to the network.
  const h0 = await f(wUrl, { method: 'HEAD' });
  assert.is(h0.headers.get('content-length'), String(WEIGHTS.length));
  assert.equal(calls, [{ url: wUrl, range: undefined, method: 'HEAD' }]);
  calls.length = 0;
  const ranges: [number, number][] = [[0, 7], [8, 4095], [40000, WEIGHTS.length - 1]];
  const parts = await Promise.all(ranges.map(([a, b]) => f(wUrl, { headers: new Headers({ Range: `bytes=${a}-${b}` }) })));
  for (let i = 0; i < ranges.length; i++) {
    const [a, b] = ranges[i]!;
    assert.is(parts[i]!.status, 206);
    assert.ok(same(await bytes(parts[i]!), WEIGHTS.subarray(a, b + 1)), `range ${a}-${b}`);
  }
  assert.equal(calls, [{ url: wUrl, range: undefined }], 'one whole-file download, no ranges on the network');
  assert.equal(progress, [wUrl]);
  const h1 = await f(wUrl, { method: 'HEAD' });
  assert.is(h1.status, 200);
  assert.is(h1.headers.get('content-length'), String(WEIGHTS.length));
  assert.ok(same(await bytes(await f(cUrl)), CONFIG));
  assert.is(calls.length, 2, 'HEAD of a cached file makes no request');
  // A missing file stays a 404 (HEAD and GET), not cached.
  const missing = hubFileUrl('tiny/model', 'tokenizer.json', { remoteHost: HOST });
  assert.is((await f(missing, { method: 'HEAD' })).status, 404);
  assert.is((await f(missing, { headers: { Range: 'bytes=0-3' } })).status, 404);
  assert.is(await isHubCached(missing, { caches }), false);
});

test('createCachingFetch without a Cache API: requests pass through unchanged (ranges stay ranges)', async () => {
  const { calls, fetchFn } = network(FILES);
  const f = createCachingFetch({ fetch: fetchFn });
  const r = await f(wUrl, { headers: { Range: 'bytes=10-' } });
  assert.is(r.status, 206);
  assert.ok(same(await bytes(r), WEIGHTS.subarray(10)));
  assert.equal(calls, [{ url: wUrl, range: 'bytes=10-' }]);
});

test.run();
