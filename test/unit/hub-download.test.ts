// downloadHubModel against a local node:http server that copies the Hub's URL layout
// (/{org}/{name}/resolve/{revision}/{file}, Range support) and serves a tiny checkpoint made
// with the safetensors writer: full download, cache hits with zero requests, resume after a
// connection cut (in the same call and in a later one), servers that ignore ranges or answer
// 416, sharded checkpoints, 404 / 401 / 403 / network errors, and abort.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeSafetensors } from '../../src/io/safetensors-writer.ts';
import { spawn } from 'node:child_process';
import { COMPLETE_MARKER, DOWNLOAD_LOCK, downloadHubModel, type DownloadHubModelOptions } from '../../src/io/hub-cache-node.ts';
import { AbortError, CheckpointError, HubError } from '../../src/errors.ts';

// ---- fixture checkpoints ----

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** A safetensors file of f32 tensors with random (but finite) values; ~4*sum(numel) bytes. */
function shard(names: [string, number[]][], seed: number): Uint8Array {
  return encodeSafetensors(
    names.map(([name, shape], i) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const v = new Float32Array(n);
      const r = randomBytes(n, seed * 31 + i);
      for (let j = 0; j < n; j++) v[j] = (r[j]! - 127.5) / 64;
      return { name, dtype: 'F32' as const, shape, data: new Uint8Array(v.buffer) };
    }),
  );
}

const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const CONFIG = enc({ model_type: 'mamba2', hidden_size: 24, num_hidden_layers: 1, vocab_size: 37 });
// 37 x 24 x 4 + 24 x 4 + 1117 x 61 x 4 bytes: ~276 KB, big enough to arrive in several chunks.
const SINGLE = shard([['backbone.embeddings.weight', [37, 24]], ['backbone.norm_f.weight', [24]], ['backbone.layers.0.mixer.in_proj.weight', [1117, 61]]], 1);
const TOKENIZER = enc({ version: '1.0', model: { type: 'BPE', vocab: { a: 0 }, merges: [] } });
const TOKENIZER_CONFIG = enc({ bos_token: '<s>', eos_token: '</s>' });
const SHARD1 = shard([['a.weight', [13, 7]], ['b.weight', [5]]], 2);
const SHARD2 = shard([['c.weight', [29, 3]]], 3);
const INDEX = enc({ metadata: { total_size: 123 }, weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'c.weight': 'model-00002-of-00002.safetensors', 'b.weight': 'model-00001-of-00002.safetensors' } });

/** repo/revision -> file -> bytes */
const REPOS: Record<string, Record<string, Uint8Array>> = {
  'tiny/single/main': { 'config.json': CONFIG, 'model.safetensors': SINGLE, 'tokenizer.json': TOKENIZER, 'tokenizer_config.json': TOKENIZER_CONFIG },
  'tiny/single/v2': { 'config.json': enc({ model_type: 'mamba2', revision: 2 }), 'model.safetensors': SHARD2 },
  'tiny/sharded/main': { 'config.json': CONFIG, 'model.safetensors.index.json': INDEX, 'model-00001-of-00002.safetensors': SHARD1, 'model-00002-of-00002.safetensors': SHARD2 },
  'tiny/badindex/main': { 'config.json': CONFIG, 'model.safetensors.index.json': new TextEncoder().encode('{"weight_map": {"a": "../../escape.safetensors"}}') },
  'tiny/badjson/main': { 'config.json': CONFIG, 'model.safetensors.index.json': new TextEncoder().encode('{"weight_map": ') },
  'private/gated/main': { 'config.json': CONFIG, 'model.safetensors': SHARD1 },
};

// ---- the server ----

interface Req {
  file: string; // 'org/name/revision/file'
  range?: string;
  auth?: string;
  status: number;
}

const server = {
  log: [] as Req[],
  /** Files whose next response sends half the body and then drops the connection. */
  cutOnce: new Set<string>(),
  /** Files whose response sends half the body and then stalls until the client goes away. */
  stall: new Set<string>(),
  ignoreRange: false,
  token: 'hf_secret',
  reset() {
    this.log = [];
    this.cutOnce.clear();
    this.stall.clear();
    this.ignoreRange = false;
  },
};

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(new URL(req.url!, 'http://x').pathname);
  const send = (status: number, file: string, body?: string) => {
    server.log.push({ file, range: req.headers.range, auth: req.headers.authorization, status });
    res.writeHead(status, { 'Content-Type': 'text/plain' }).end(body ?? '');
  };
  if (!m) return send(400, req.url!, 'bad path');
  const [, org, name, rev, fileEnc] = m as unknown as [string, string, string, string, string];
  const revision = decodeURIComponent(rev);
  const file = decodeURIComponent(fileEnc);
  const key = `${org}/${name}/${revision}/${file}`;
  if (org === 'private' && req.headers.authorization !== `Bearer ${server.token}`) {
    return send(req.headers.authorization ? 403 : 401, key, 'Access to model private/gated is restricted.');
  }
  const body = REPOS[`${org}/${name}/${revision}`]?.[file];
  if (!body) return send(404, key, 'Entry not found');

  let start = 0;
  let status = 200;
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes' };
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range && !server.ignoreRange) {
    start = Number(range[1]);
    if (start >= body.byteLength) {
      server.log.push({ file: key, range: req.headers.range, auth: req.headers.authorization, status: 416 });
      res.writeHead(416, { 'Content-Range': `bytes */${body.byteLength}` }).end();
      return;
    }
    status = 206;
    headers['Content-Range'] = `bytes ${start}-${body.byteLength - 1}/${body.byteLength}`;
  }
  const part = body.subarray(start);
  headers['Content-Length'] = String(part.byteLength);
  server.log.push({ file: key, range: req.headers.range, auth: req.headers.authorization, status });
  res.writeHead(status, headers);
  if (server.cutOnce.has(key) || server.stall.has(key)) {
    const stall = server.stall.has(key);
    server.cutOnce.delete(key);
    // Give the client time to read the first half before the socket goes, so the partial
    // file holds bytes and the retry has something to resume from.
    res.write(part.subarray(0, part.byteLength >> 1), () => {
      if (!stall) setTimeout(() => res.socket?.destroy(), 100);
    });
    return;
  }
  res.end(part);
}

const httpServer = http.createServer(handle);
let host = '';
let tmpRoot = '';
let n = 0;

test.before(async () => {
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  host = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/`;
  tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'msl-hub-'));
});
test.after(async () => {
  httpServer.closeAllConnections();
  await new Promise<void>((r) => httpServer.close(() => r()));
  await fs.rm(tmpRoot, { recursive: true, force: true });
});
test.before.each(() => server.reset());

/** A fresh cache folder per test; the server's host; no retry delay. */
function opts(extra: DownloadHubModelOptions = {}): DownloadHubModelOptions & { cacheDir: string } {
  return { cacheDir: path.join(tmpRoot, `cache-${n++}`), remoteHost: host, retryDelayMs: 0, ...extra };
}

async function assertFiles(dir: string, files: Record<string, Uint8Array>): Promise<void> {
  for (const [f, want] of Object.entries(files)) {
    const got = new Uint8Array(await fs.readFile(path.join(dir, f)));
    assert.is(got.byteLength, want.byteLength, `${f} size`);
    assert.ok(Buffer.compare(got, want) === 0, `${f} bytes differ`);
  }
  const left = (await fs.readdir(dir, { recursive: true })).filter((f) => String(f).endsWith('.partial'));
  assert.equal(left, [], 'no .partial files left');
}

async function assertMissing(p: string): Promise<void> {
  const st = await fs.stat(p).catch(() => undefined);
  assert.is(st, undefined, `${p} should not exist`);
}

const requestsFor = (file: string) => server.log.filter((r) => r.file === file);

// ---- tests ----

test('full download: required and optional files, layout, marker; 404s of optional files are fine', async () => {
  const o = opts();
  const progress = new Map<string, [number, number | undefined]>();
  const dir = await downloadHubModel('tiny/single', { ...o, onProgress: (l, t, f) => progress.set(f, [l, t]) });
  assert.is(dir, path.join(o.cacheDir, 'tiny--single', 'main'));
  await assertFiles(dir, REPOS['tiny/single/main']!);
  // Not served: the index (so the single-file path is taken) and two optional files.
  for (const f of ['model.safetensors.index.json', 'generation_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json']) {
    assert.is(requestsFor(`tiny/single/main/${f}`)[0]?.status, 404, f);
    await assertMissing(path.join(dir, f));
  }
  assert.is(server.log.length, 9);
  assert.ok(server.log.every((r) => r.range === undefined));
  // The last progress report of each file is complete, with the server's size as total.
  assert.equal(progress.get('model.safetensors'), [SINGLE.byteLength, SINGLE.byteLength]);
  assert.equal(progress.get('config.json'), [CONFIG.byteLength, CONFIG.byteLength]);
  const marker = JSON.parse(await fs.readFile(path.join(dir, COMPLETE_MARKER), 'utf8'));
  assert.equal(marker.files, { 'config.json': CONFIG.byteLength, 'model.safetensors': SINGLE.byteLength, 'tokenizer.json': TOKENIZER.byteLength, 'tokenizer_config.json': TOKENIZER_CONFIG.byteLength });
});

test('cache hit: the second call makes zero requests; a damaged file is fetched again', async () => {
  const o = opts();
  const dir = await downloadHubModel('tiny/single', o);
  const first = server.log.length;
  assert.ok(first > 0);
  const reported: string[] = [];
  assert.is(await downloadHubModel('tiny/single', { ...o, onProgress: (_l, _t, f) => reported.push(f) }), dir);
  assert.is(server.log.length, first, 'no request on a cache hit');
  assert.equal(reported.sort(), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  // Truncate the weights: the marker's size no longer matches, so only that file is fetched again.
  await fs.truncate(path.join(dir, 'model.safetensors'), 100);
  server.log = [];
  await downloadHubModel('tiny/single', o);
  await assertFiles(dir, REPOS['tiny/single/main']!);
  assert.equal(server.log.filter((r) => r.status !== 404).map((r) => r.file), ['tiny/single/main/model.safetensors']);
  // force: everything again.
  server.log = [];
  await downloadHubModel('tiny/single', { ...o, force: true });
  assert.is(server.log.length, 9);
});

test('sharded checkpoint: index, then each shard once; no model.safetensors request', async () => {
  const dir = await downloadHubModel('tiny/sharded', opts());
  await assertFiles(dir, REPOS['tiny/sharded/main']!);
  const got = server.log.filter((r) => r.status === 200).map((r) => r.file.split('/').pop());
  assert.equal(got, ['config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  assert.is(requestsFor('tiny/sharded/main/model.safetensors').length, 0);
});

test('revision from the id: its own URL path and cache folder', async () => {
  const o = opts();
  const dir = await downloadHubModel('tiny/single@v2', o);
  assert.is(dir, path.join(o.cacheDir, 'tiny--single', 'v2'));
  await assertFiles(dir, REPOS['tiny/single/v2']!);
  assert.ok(server.log.every((r) => r.file.startsWith('tiny/single/v2/')));
});

test('MSL_REMOTE_HOST and MSL_CACHE_DIR steer a call without options', async () => {
  const saved = [process.env.MSL_REMOTE_HOST, process.env.MSL_CACHE_DIR];
  const cacheDir = path.join(tmpRoot, 'env-cache');
  process.env.MSL_REMOTE_HOST = host;
  process.env.MSL_CACHE_DIR = cacheDir;
  try {
    const dir = await downloadHubModel('tiny/sharded', { retryDelayMs: 0 });
    assert.is(dir, path.join(cacheDir, 'tiny--sharded', 'main'));
    await assertFiles(dir, REPOS['tiny/sharded/main']!);
  } finally {
    for (const [k, v] of [['MSL_REMOTE_HOST', saved[0]], ['MSL_CACHE_DIR', saved[1]]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('connection cut mid-body: the same call retries with Range from the bytes it kept', async () => {
  server.cutOnce.add('tiny/single/main/model.safetensors');
  const dir = await downloadHubModel('tiny/single', opts());
  await assertFiles(dir, REPOS['tiny/single/main']!);
  const reqs = requestsFor('tiny/single/main/model.safetensors');
  assert.is(reqs.length, 2);
  assert.is(reqs[0]!.range, undefined);
  const from = Number(/^bytes=(\d+)-$/.exec(reqs[1]!.range ?? '')?.[1]);
  assert.ok(from > 0 && from <= SINGLE.byteLength >> 1, `resumed from ${reqs[1]!.range}`);
  assert.is(reqs[1]!.status, 206);
});

test('interrupted download: HubError, .partial kept; the next call resumes with Range, bytes identical', async () => {
  const o = opts({ retries: 0 });
  server.cutOnce.add('tiny/single/main/model.safetensors');
  try {
    await downloadHubModel('tiny/single', o);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, HubError);
    assert.is((e as HubError).status, undefined);
    assert.match((e as HubError).url, /\/tiny\/single\/resolve\/main\/model\.safetensors$/);
    assert.match((e as Error).message, /resum/);
  }
  const partial = path.join(o.cacheDir, 'tiny--single', 'main', 'model.safetensors.partial');
  const kept = (await fs.stat(partial)).size;
  assert.ok(kept > 0 && kept < SINGLE.byteLength);
  await assertMissing(path.join(o.cacheDir, 'tiny--single', 'main', 'model.safetensors'));

  server.log = [];
  const progress: number[] = [];
  const dir = await downloadHubModel('tiny/single', { ...o, onProgress: (l, _t, f) => f === 'model.safetensors' && progress.push(l) });
  await assertFiles(dir, REPOS['tiny/single/main']!);
  // config.json was complete already: not requested again.
  assert.is(requestsFor('tiny/single/main/config.json').length, 0);
  const reqs = requestsFor('tiny/single/main/model.safetensors');
  assert.is(reqs.length, 1);
  assert.is(reqs[0]!.range, `bytes=${kept}-`);
  assert.is(reqs[0]!.status, 206);
  assert.is(progress[0], kept, 'progress of a resumed file starts at what was kept');
  assert.is(progress.at(-1), SINGLE.byteLength);
});

test('a body that ends cleanly but short of Content-Length is not accepted; the rest is fetched', async () => {
  // A proxy that closes early: the fetch wrapper hands back the first 1000 bytes under the
  // full Content-Length, as a complete (not errored) stream.
  let cut = false;
  const shortOnce: typeof fetch = async (u, init) => {
    const res = await fetch(u, init);
    if (cut || !String(u).endsWith('/model.safetensors')) return res;
    cut = true;
    const all = new Uint8Array(await res.arrayBuffer());
    return new Response(all.subarray(0, 1000), { status: 200, headers: { 'content-length': String(all.byteLength) } });
  };
  const dir = await downloadHubModel('tiny/single', opts({ fetch: shortOnce }));
  await assertFiles(dir, REPOS['tiny/single/main']!);
  assert.equal(requestsFor('tiny/single/main/model.safetensors').map((r) => r.range), [undefined, 'bytes=1000-']);
});

test('a server that ignores Range (200) restarts the file from zero', async () => {
  const o = opts({ retries: 0 });
  server.cutOnce.add('tiny/single/main/model.safetensors');
  await downloadHubModel('tiny/single', o).catch(() => undefined);
  server.ignoreRange = true;
  server.log = [];
  const dir = await downloadHubModel('tiny/single', o);
  await assertFiles(dir, REPOS['tiny/single/main']!);
  const reqs = requestsFor('tiny/single/main/model.safetensors');
  assert.is(reqs.length, 1);
  assert.ok(reqs[0]!.range !== undefined && reqs[0]!.status === 200);
});

test('a stale .partial longer than the file (416) is dropped and the file fetched whole', async () => {
  const o = opts({ retries: 0 });
  const dir = path.join(o.cacheDir, 'tiny--single', 'main');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'model.safetensors.partial'), randomBytes(SINGLE.byteLength + 10, 9));
  await downloadHubModel('tiny/single', o);
  await assertFiles(dir, REPOS['tiny/single/main']!);
  assert.equal(requestsFor('tiny/single/main/model.safetensors').map((r) => r.status), [416, 200]);
});

test('404 model: HubError with status 404, the URL and "check the model id"; nothing cached', async () => {
  const o = opts();
  try {
    await downloadHubModel('nobody/missing', o);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, HubError);
    const h = e as HubError;
    assert.is(h.status, 404);
    assert.is(h.url, `${host}nobody/missing/resolve/main/config.json`);
    assert.match(h.message, /check the model id/);
    assert.match(h.message, h.url);
  }
  assert.is(server.log.length, 1, '404 is not retried');
  await assertMissing(path.join(o.cacheDir, 'nobody--missing', 'main', COMPLETE_MARKER));
});

test('401 without a token mentions HF_TOKEN; 403 with a wrong one; HF_TOKEN or token option gets in', async () => {
  const saved = process.env.HF_TOKEN;
  delete process.env.HF_TOKEN;
  try {
    const o = opts();
    const err = await downloadHubModel('private/gated', o).catch((e: unknown) => e);
    assert.instance(err, HubError);
    assert.is((err as HubError).status, 401);
    assert.match((err as Error).message, /HF_TOKEN/);
    assert.is(server.log.length, 1, '401 is not retried');

    const err2 = await downloadHubModel('private/gated', { ...o, token: 'hf_wrong' }).catch((e: unknown) => e);
    assert.instance(err2, HubError);
    assert.is((err2 as HubError).status, 403);
    assert.match((err2 as Error).message, /HF_TOKEN/);

    process.env.HF_TOKEN = server.token;
    server.log = [];
    const dir = await downloadHubModel('private/gated', o);
    await assertFiles(dir, REPOS['private/gated/main']!);
    assert.ok(server.log.every((r) => r.auth === `Bearer ${server.token}`));

    delete process.env.HF_TOKEN;
    const dir2 = await downloadHubModel('private/gated', { ...opts(), token: server.token });
    await assertFiles(dir2, REPOS['private/gated/main']!);
  } finally {
    if (saved === undefined) delete process.env.HF_TOKEN;
    else process.env.HF_TOKEN = saved;
  }
});

test('network failure (nothing listening): HubError without status after the retries', async () => {
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  let calls = 0;
  const counting: typeof fetch = (u, i) => {
    calls++;
    return fetch(u, i);
  };
  const err = await downloadHubModel('tiny/single', { ...opts(), remoteHost: `http://127.0.0.1:${port}/`, retries: 2, fetch: counting }).catch((e: unknown) => e);
  assert.instance(err, HubError);
  assert.is((err as HubError).status, undefined);
  assert.match((err as Error).message, /3 attempts/);
  assert.is(calls, 3);
});

test('abort: before the start (no request) and mid-body (AbortError, .partial kept for a resume)', async () => {
  const ac0 = new AbortController();
  ac0.abort();
  const e0 = await downloadHubModel('tiny/single', { ...opts(), signal: ac0.signal }).catch((e: unknown) => e);
  assert.instance(e0, AbortError);
  assert.is(server.log.length, 0);

  server.stall.add('tiny/single/main/model.safetensors');
  const ac = new AbortController();
  const o = opts();
  const t0 = Date.now();
  const e1 = await downloadHubModel('tiny/single', {
    ...o,
    signal: ac.signal,
    onProgress: (l, _t, f) => f === 'model.safetensors' && l > 0 && ac.abort(),
  }).catch((e: unknown) => e);
  assert.instance(e1, AbortError);
  assert.ok(Date.now() - t0 < 5000, 'abort does not wait for the stalled body');
  const partial = path.join(o.cacheDir, 'tiny--single', 'main', 'model.safetensors.partial');
  assert.ok((await fs.stat(partial)).size > 0);
  server.stall.clear();
  const dir = await downloadHubModel('tiny/single', o);
  await assertFiles(dir, REPOS['tiny/single/main']!);
  assert.match(requestsFor('tiny/single/main/model.safetensors').at(-1)!.range ?? '', /^bytes=\d+-$/);
});

test('two downloads of one model in this process: each file fetched once', async () => {
  const o = opts();
  const [a, b] = await Promise.all([downloadHubModel('tiny/sharded', o), downloadHubModel('tiny/sharded', o)]);
  assert.is(a, b);
  await assertFiles(a, REPOS['tiny/sharded/main']!);
  const ok = server.log.filter((r) => r.status === 200).map((r) => r.file);
  assert.is(ok.length, 4);
  assert.is(new Set(ok).size, 4);
  await assertMissing(path.join(a, DOWNLOAD_LOCK));
});

test('a lock held by another live process is waited for; dead or unrefreshed locks are taken over', async () => {
  const o = opts();
  const dir = path.join(o.cacheDir, 'tiny--single', 'main');
  await fs.mkdir(dir, { recursive: true });
  const lock = path.join(dir, DOWNLOAD_LOCK);
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
  try {
    await fs.writeFile(lock, JSON.stringify({ pid: live.pid, host: os.hostname() }));
    let done = false;
    const p = downloadHubModel('tiny/single', o).then((d) => ((done = true), d));
    await new Promise((r) => setTimeout(r, 600));
    assert.is(done, false);
    assert.is(server.log.length, 0, 'no request while another process holds the lock');
    await fs.rm(lock); // the other process finished without completing the model
    await assertFiles(await p, REPOS['tiny/single/main']!);
  } finally {
    live.kill();
  }
  // A dead process's lock (same host).
  const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => dead.on('exit', r));
  const o2 = opts();
  const dir2 = path.join(o2.cacheDir, 'tiny--single', 'main');
  await fs.mkdir(dir2, { recursive: true });
  await fs.writeFile(path.join(dir2, DOWNLOAD_LOCK), JSON.stringify({ pid: dead.pid, host: os.hostname() }));
  const t0 = Date.now();
  await assertFiles(await downloadHubModel('tiny/single', o2), REPOS['tiny/single/main']!);
  // Taken over at once, not after the 30 s staleness timeout.
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  // Another host's lock that has not been refreshed for a minute.
  const o3 = opts();
  const dir3 = path.join(o3.cacheDir, 'tiny--single', 'main');
  await fs.mkdir(dir3, { recursive: true });
  await fs.writeFile(path.join(dir3, DOWNLOAD_LOCK), JSON.stringify({ pid: 1, host: 'elsewhere' }));
  const old = new Date(Date.now() - 60_000);
  await fs.utimes(path.join(dir3, DOWNLOAD_LOCK), old, old);
  await assertFiles(await downloadHubModel('tiny/single', o3), REPOS['tiny/single/main']!);
  await assertMissing(path.join(dir3, DOWNLOAD_LOCK));
});

test('offline: a complete cache is used; anything else is a HubError without a request', async () => {
  const o = opts();
  const err = await downloadHubModel('tiny/single', { ...o, offline: true }).catch((e: unknown) => e);
  assert.instance(err, HubError);
  assert.match((err as Error).message, /offline/);
  assert.is(server.log.length, 0);
  const saved = process.env.HF_HUB_OFFLINE;
  process.env.HF_HUB_OFFLINE = '1';
  try {
    assert.instance(await downloadHubModel('tiny/single', o).catch((e: unknown) => e), HubError);
    const dir = await downloadHubModel('tiny/single', { ...o, offline: false });
    assert.is(await downloadHubModel('tiny/single', o), dir);
  } finally {
    if (saved === undefined) delete process.env.HF_HUB_OFFLINE;
    else process.env.HF_HUB_OFFLINE = saved;
  }
});

test('a bad index (escaping shard name, broken JSON) is a CheckpointError and is not kept', async () => {
  for (const id of ['tiny/badindex', 'tiny/badjson']) {
    const o = opts();
    const err = await downloadHubModel(id, o).catch((e: unknown) => e);
    assert.instance(err, CheckpointError, id);
    assert.match((err as Error).message, /model\.safetensors\.index\.json/);
    await assertMissing(path.join(o.cacheDir, id.replace('/', '--'), 'main', 'model.safetensors.index.json'));
    await assertMissing(path.join(o.cacheDir, 'escape.safetensors'));
  }
});

test.run();
