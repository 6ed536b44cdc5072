// UrlSource edge cases with an injected fetch: size discovery fallbacks, Range answers that do not
// match the request, short bodies, auth and missing files, each a typed error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UrlSource } from '../../src/io/sources.ts';
import { CheckpointError, HubError } from '../../src/errors.ts';

const FILE = Uint8Array.from({ length: 100 }, (_, i) => i);

type Handler = (url: string, init: RequestInit) => Response;
function source(h: Handler): { src: UrlSource; calls: { url: string; method: string; range?: string }[] } {
  const calls: { url: string; method: string; range?: string }[] = [];
  const f = (async (url: string, init: RequestInit = {}) => {
    const range = (init.headers as Record<string, string> | undefined)?.Range;
    calls.push({ url, method: init.method ?? 'GET', range });
    return h(url, init);
  }) as typeof fetch;
  return { src: new UrlSource('https://example.test/m', { fetch: f, headers: { Authorization: 'Bearer x' } }), calls };
}

const rangeOf = (init: RequestInit) => /bytes=(\d+)-(\d+)/.exec((init.headers as Record<string, string>).Range)!.slice(1).map(Number);

async function rejects(p: Promise<unknown>, cls: new (...a: never[]) => Error, re: RegExp, label: string) {
  try { await p; } catch (e) { assert.instance(e, cls, `${label}: ${(e as Error).message}`); assert.match((e as Error).message, re, label); return; }
  assert.unreachable(`${label}: resolved`);
}

test('size: HEAD Content-Length, else Content-Range of a 1-byte GET; URLs are encoded under the base', async () => {
  let { src, calls } = source((_u, init) => init.method === 'HEAD' ? new Response(null, { status: 200, headers: { 'Content-Length': '100' } }) : new Response('x'));
  assert.is(await src.size('model.safetensors'), 100);
  assert.is(calls[0].url, 'https://example.test/m/model.safetensors');
  assert.is(await src.size('model.safetensors'), 100);
  assert.is(calls.length, 1, 'cached');
  ({ src, calls } = source((_u, init) => init.method === 'HEAD' ? new Response(null, { status: 405 })
    : new Response(FILE.slice(0, 1), { status: 206, headers: { 'Content-Range': 'bytes 0-0/100' } })));
  assert.is(await src.size('a b.json'), 100);
  assert.is(calls[1].range, 'bytes=0-0');
  assert.is(calls[1].url, 'https://example.test/m/a%20b.json');
});

test('readRange: 206 with the right window; wrong Content-Range, short bodies, 416 are typed errors', async () => {
  let { src } = source((_u, init) => {
    const [a, b] = rangeOf(init);
    return new Response(FILE.slice(a, b + 1), { status: 206, headers: { 'Content-Range': `bytes ${a}-${b}/100` } });
  });
  assert.equal([...(await src.readRange('f', 10, 14))], [10, 11, 12, 13]);
  ({ src } = source(() => new Response(FILE.slice(0, 4), { status: 206, headers: { 'Content-Range': 'bytes 0-3/100' } })));
  await rejects(src.readRange('f', 10, 14), HubError, /asked for bytes 10-13.*bytes 0-3\/100/, 'wrong window');
  ({ src } = source((_u, init) => { const [a] = rangeOf(init); return new Response(FILE.slice(a, a + 2), { status: 206, headers: { 'Content-Range': `bytes ${a}-${a + 3}/100` } }); }));
  await rejects(src.readRange('f', 10, 14), HubError, /ended after 2 of 4 bytes/, 'short body');
  ({ src } = source(() => new Response(null, { status: 416 })));
  await rejects(src.readRange('f', 200, 204), CheckpointError, /past the end/, '416');
  ({ src } = source(() => new Response(FILE, { status: 200 })));
  assert.equal([...(await src.readRange('f', 97, 100))], [97, 98, 99], 'Range ignored: window cut from the full body');
  ({ src } = source(() => new Response(FILE.slice(0, 50), { status: 200 })));
  await rejects(src.readRange('f', 60, 70), HubError, /ended after 0 of 10/, 'full body too short');
});

test('status codes: 404 -> CheckpointError naming the file; 401/403 -> HubError asking for a token; 500 -> HubError', async () => {
  let { src } = source(() => new Response('no', { status: 404 }));
  await rejects(src.readText('config.json'), CheckpointError, /config.json.*not found/, '404');
  assert.is(await src.exists('config.json'), false);
  ({ src } = source(() => new Response('no', { status: 401 })));
  await rejects(src.readText('config.json'), HubError, /token/, '401');
  ({ src } = source(() => new Response('no', { status: 500, statusText: 'Internal' })));
  await rejects(src.readText('config.json'), HubError, /HTTP 500/, '500');
  ({ src } = source(() => { throw new TypeError('fetch failed'); }));
  await rejects(src.readRange('f', 0, 4), HubError, /request failed: fetch failed/, 'network');
  assert.throws(() => src.url('../etc/passwd'), /bad checkpoint file name/);
});

test.run();
