// `mamba-scan-lite serve` as a process (the CLI from source): it binds 127.0.0.1 on the port it
// was given, SIGTERM lets an in-flight stream finish (all its tokens, then [DONE]) while new
// connections are refused, and the process then exits 0; SIGINT with nothing running exits at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { MODEL_DIR, until } from './helpers.ts';

const root = new URL('../../', import.meta.url).pathname;

interface Proc { child: ChildProcess; stderr: () => string; url: Promise<string>; exit: Promise<number | null> }

function startServe(extra: string[] = []): Proc {
  const child = spawn(process.execPath, ['--import', './scripts/register.mjs', join(root, 'src/cli/main.ts'), 'serve', '--model', MODEL_DIR, '--port', '0', '--model-name', 'm', ...extra],
    { cwd: root, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const url = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /at (http:\/\/[^\s]+)\/v1 /.exec(err);
      if (m) resolve(m[1]);
    });
    child.on('exit', () => reject(new Error(`serve exited before listening:\n${err}`)));
  });
  url.catch(() => undefined);
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stderr: () => err, url, exit };
}

test('SIGTERM drains: the in-flight stream completes, new connections are refused, exit 0', async () => {
  const p = startServe(['--quiet']);
  try {
    const url = await p.url;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'loopback by default');
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', prompt: 'The old captain said', max_tokens: 24, temperature: 0, stream: true }),
    });
    assert.is(res.status, 200);
    const reader = res.body!.getReader();
    let body = '';
    const dec = new TextDecoder();
    // Signal once the first event is in: the request is running.
    for (;;) {
      const { value } = await reader.read();
      body += dec.decode(value, { stream: true });
      if (body.includes('\n\n')) break;
    }
    p.child.kill('SIGTERM');
    await until(() => /draining 1 in-flight request/.test(p.stderr()), 20_000, 'the drain notice');
    const refused = await fetch(`${url}/health`).then((r) => r.status, (e) => String(e.cause?.code ?? e));
    assert.ok(refused === 503 || /ECONNREFUSED|ECONNRESET|fetch failed/.test(String(refused)), `new requests refused while draining (${refused})`);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      body += dec.decode(value, { stream: true });
    }
    assert.ok(body.endsWith('data: [DONE]\n\n'), `the stream finished: ${body.slice(-120)}`);
    const events = body.split('\n\n').filter((e) => e.startsWith('data: {'));
    const last = JSON.parse(events.at(-1)!.slice(6));
    assert.ok(['length', 'stop'].includes(last.choices[0].finish_reason));
    if (last.choices[0].finish_reason === 'length') assert.is(last.timings.completion_tokens, 24, 'every token of the request');
    assert.is(await p.exit, 0, p.stderr());
    assert.match(p.stderr(), /drained; exiting/);
  } finally {
    p.child.kill('SIGKILL');
  }
});

test('SIGINT with nothing running exits 0 at once', async () => {
  const p = startServe();
  try {
    const url = await p.url;
    assert.is((await fetch(`${url}/health`)).status, 200);
    p.child.kill('SIGINT');
    assert.is(await p.exit, 0, p.stderr());
  } finally {
    p.child.kill('SIGKILL');
  }
});

test.run();
