// AutoTokenizer.from_pretrained(hubId) against a local server with the Hub's URL layout: it fetches
// the tokenizer's files only (never config.json or the weights), gives the same ids as the
// tokenizer read from disk, and a later full model download keeps those files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AutoTokenizer } from '../../src/index.node.ts';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { downloadHubModel } from '../../src/io/hub-cache-node.ts';

const MODEL = path.join(new URL('../../', import.meta.url).pathname, 'assets/default-model');
const files: Record<string, Buffer> = {};
for (const f of ['tokenizer.json', 'tokenizer_config.json', 'config.json']) files[f] = await fs.readFile(path.join(MODEL, f));
// Stands in for the weights: a request for it is what the test must not see.
files['model.safetensors'] = Buffer.alloc(1 << 20, 7);

const log: string[] = [];
const server = http.createServer((req, res) => {
  const m = /^\/tiny\/tok\/resolve\/main\/(.+)$/.exec(req.url ?? '');
  const body = m ? files[decodeURIComponent(m[1])] : undefined;
  log.push(m?.[1] ?? String(req.url));
  if (!body) { res.writeHead(404).end('Entry not found'); return; }
  res.writeHead(200, { 'Content-Length': String(body.byteLength), 'Content-Type': 'application/octet-stream' }).end(body);
});
let cache = '';
const saved = { host: process.env.MSL_REMOTE_HOST, dir: process.env.MSL_CACHE_DIR };

// Set when this suite runs, not at import (uvu imports every file of a run first).
test.before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cache = await fs.mkdtemp(path.join(os.tmpdir(), 'msl-tok-'));
  process.env.MSL_REMOTE_HOST = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  process.env.MSL_CACHE_DIR = cache;
});

test('AutoTokenizer.from_pretrained(hub id) downloads only the tokenizer files', async () => {
  const tok = await AutoTokenizer.from_pretrained('tiny/tok');
  assert.equal([...new Set(log)].sort(), ['tokenizer.json', 'tokenizer_config.json']);
  const disk = await Tokenizer.fromJSON(files['tokenizer.json'].toString('utf8'), files['tokenizer_config.json'].toString('utf8'));
  const text = 'Call me Ishmael. Some years ago — never mind how long precisely.';
  assert.equal(tok.encode(text), disk.encode(text));
  assert.ok(tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true }).length > 0, 'the chat template came along');
  // Again: from the cache, no request.
  log.length = 0;
  await AutoTokenizer.from_pretrained('tiny/tok');
  assert.equal(log, []);
  // The full download later fetches the rest and keeps the tokenizer files it has.
  await downloadHubModel('tiny/tok');
  assert.ok(log.includes('config.json') && log.includes('model.safetensors'));
  assert.not.ok(log.includes('tokenizer.json'), 'tokenizer.json was already there');
});

test.after(async () => {
  server.close();
  if (saved.host === undefined) delete process.env.MSL_REMOTE_HOST; else process.env.MSL_REMOTE_HOST = saved.host;
  if (saved.dir === undefined) delete process.env.MSL_CACHE_DIR; else process.env.MSL_CACHE_DIR = saved.dir;
  await fs.rm(cache, { recursive: true, force: true });
});

test.run();
