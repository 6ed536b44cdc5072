// End to end in a real browser: Debian's Chromium (WebGPU on SwiftShader), driven headless by
// playwright-core, loads the demo page (examples/browser) from a localhost server, which loads
// assets/default-model over HTTP Range requests and generates 16 tokens greedily. The ids must
// equal what the Node library generates for the same prompt in this process.
//
// Exact equality, no tolerance: greedy decoding picks the argmax, and both sides run the same
// WGSL in f32 on the same weights, so the ids agree unless two logits tie to within rounding.
// Needs `npm run build` (examples/browser/dist/app.js); skipped only when /usr/bin/chromium is absent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';

const CHROMIUM = '/usr/bin/chromium';
const root = normalize(new URL('../../', import.meta.url).pathname);
const MODEL_DIR = 'assets/default-model';
const APP_BUNDLE = 'examples/browser/dist/app.js';
const PROMPT = 'The quick brown fox jumps over';
const N = 16;
// SwiftShader emulates the GPU on the CPU; a 16-token run of the small trained model takes seconds,
// the first shader compiles a little longer. Generous for a loaded 2-core machine.
const PAGE_TIMEOUT_MS = 150_000;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json', '.json': 'application/json',
  '.wasm': 'application/wasm', '.css': 'text/css', '.safetensors': 'application/octet-stream', '.txt': 'text/plain',
};

/** A static server for the repo root with HEAD and single-range GET (what UrlSource uses). */
function serveRepo(): Promise<{ server: Server; origin: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = normalize(join(root, decodeURIComponent(url.pathname)));
    requests.push(`${req.method} ${url.pathname}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    if (!path.startsWith(root) || path.split(sep).includes('node_modules') || !existsSync(path) || !statSync(path).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    const size = statSync(path).size;
    const headers: Record<string, string | number> = { 'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream', 'Accept-Ranges': 'bytes', 'Cache-Control': 'no-store' };
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]);
      const end = Math.min(size - 1, m[2] === '' ? size - 1 : Number(m[2]));
      if (start >= size || end < start) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${size}` });
      if (req.method === 'HEAD') res.end();
      else createReadStream(path, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': size });
    if (req.method === 'HEAD') res.end();
    else createReadStream(path).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests });
  }));
}

/** The Node library's greedy ids for the prompt, with the same stop ids as the page. */
async function nodeResult(): Promise<{ promptIds: number[]; ids: number[]; adapter: string }> {
  const { loadModel } = await import('../../src/index.node.ts');
  const model = await loadModel(join(root, MODEL_DIR));
  try {
    const tok = model.tokenizer;
    assert.ok(tok, 'the default model ships tokenizer.json');
    const promptIds = tok!.encode(PROMPT, { addSpecialTokens: true });
    const eos = [...new Set([...model.config.eosTokenIds, ...tok!.eosTokenIds])];
    const all = await model.generate(promptIds, { maxNewTokens: N, temperature: 0, eosTokenIds: eos });
    return { promptIds, ids: all.slice(promptIds.length), adapter: model.deviceName };
  } finally {
    await model.dispose();
  }
}

if (!existsSync(CHROMIUM)) {
  console.log(`e2e: skipping the browser test: ${CHROMIUM} is not installed (Debian: apt-get install chromium)`);
  test.skip('demo page in headless Chromium generates the same 16 greedy tokens as Node', () => {});
} else {
  test('demo page in headless Chromium generates the same 16 greedy tokens as Node', async () => {
    assert.ok(existsSync(join(root, APP_BUNDLE)), `${APP_BUNDLE} is missing: run "npm run build" first`);
    assert.ok(existsSync(join(root, MODEL_DIR, 'config.json')), `${MODEL_DIR} is missing`);
    const expected = await nodeResult();

    const { chromium } = await import('playwright-core');
    const { server, origin, requests } = await serveRepo();
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // WebGPU is behind a flag on Linux; headless Chromium then uses SwiftShader (PLATFORM.md).
      args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run'],
    });
    const logs: string[] = [];
    try {
      const page = await browser.newPage();
      page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
      page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
      const q = new URLSearchParams({ model: `/${MODEL_DIR}/`, prompt: PROMPT, n: String(N), autorun: '1' });
      await page.goto(`${origin}/examples/browser/index.html?${q}`);
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), undefined, { timeout: PAGE_TIMEOUT_MS });
      const got = await page.evaluate(() => ({ result: window.__mslResult, error: window.__mslError }));
      assert.is(got.error, undefined, `the page reported an error: ${got.error}\n${logs.join('\n')}`);
      const r = got.result!;
      assert.ok(r, `no result on the page\n${logs.join('\n')}`);
      assert.equal(r.promptIds, expected.promptIds, 'the page tokenizes the prompt as Node does');
      assert.equal(r.ids, expected.ids, `browser (${r.adapter}) and Node (${expected.adapter}) greedy ids differ`);
      assert.is(r.ids.length, r.stats.newTokens);
      assert.ok(r.peakBytes > 0, 'the page reports peak GPU memory');
      // The weights really came over HTTP Range requests from this server.
      assert.ok(requests.some((l) => /\.safetensors bytes=/.test(l)), `no ranged safetensors reads: ${requests.join(', ')}`);
      console.log(`e2e: ${r.adapter} in Chromium = ${expected.adapter} in Node: ${JSON.stringify(r.ids)}; ` +
        `prefill ${r.stats.prefillSeconds.toFixed(2)} s, decode ${((r.stats.newTokens - 1) / r.stats.decodeSeconds).toFixed(1)} tok/s, peak ${(r.peakBytes / 2 ** 20).toFixed(1)} MiB`);
    } finally {
      await browser.close();
      server.close();
    }
  });

  test('a picked model folder loads from File objects', async () => {
    const { chromium } = await import('playwright-core');
    const { server, origin, requests } = await serveRepo();
    const browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${origin}/examples/browser/index.html`);
      // The <input webkitdirectory> gets the folder's files, as a user's pick would.
      await page.setInputFiles('#folder', join(root, MODEL_DIR));
      await page.click('#load');
      await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state ?? ''), undefined, { timeout: 60_000 });
      const status = await page.textContent('#status');
      assert.is(await page.evaluate(() => window.__mslError), undefined);
      const layers = JSON.parse(readFileSync(join(root, MODEL_DIR, 'config.json'), 'utf8').replace(/\bInfinity\b/g, '1e999')).num_hidden_layers;
      assert.match(status ?? '', new RegExp(`zamba2, ${layers} layers`));
      assert.is(await page.isEnabled('#generate'), true);
      assert.not.ok(requests.some((l) => l.includes(MODEL_DIR)), 'nothing fetched from the server: the files came from the pick');
    } finally {
      await browser.close();
      server.close();
    }
  });

  test('without WebGPU the page says so plainly', async () => {
    const { chromium } = await import('playwright-core');
    const { server, origin } = await serveRepo();
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      // Whether this Chromium exposes WebGPU without flags varies by build: hide it for certain.
      // A string, not a function: tsx's compiled functions may reference helpers the page lacks.
      await page.addInitScript({ content: "Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });" });
      await page.goto(`${origin}/examples/browser/index.html?autorun=1`);
      await page.waitForFunction(() => document.body.dataset.state !== undefined, undefined, { timeout: 30_000 });
      assert.is(await page.evaluate(() => document.body.dataset.state), 'error');
      const shown = (await page.textContent('#no-webgpu')) ?? '';
      assert.match(shown, /WebGPU is not available/, `shown: "${shown}", error: ${await page.evaluate(() => window.__mslError)}`);
      assert.is(await page.isVisible('#no-webgpu'), true);
      assert.is(await page.isDisabled('#load'), true);
    } finally {
      await browser.close();
      server.close();
    }
  });
}

test.run();
