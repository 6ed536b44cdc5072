// The server under load, through the official `openai` client: 32 concurrent streaming clients
// (chat and completion, more than the batch holds, so some queue) all complete, each with the text
// its request gets alone (the library's greedy run), and the GPU's live bytes return to where
// they were (pooled scratch aside); then a disconnect storm (clients aborting at random points: before admission, in
// prefill, mid-stream, by dropping the socket) leaves the server healthy, with nothing running
// or queued, no bytes leaked, and answers still right. Prints the figures (requests, errors,
// p50/p95 time to first token, leaks) as one JSON line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { request as httpRequest } from 'node:http';
import { chatIds, libraryGreedy, loadDefault, MODEL_ID, percentile, serve, systemHead, until, type TestServer } from './helpers.ts';
import type { MambaModel } from '../../src/api.ts';
import type { ChatMessage } from '../../src/tokenizer/index.ts';
import { mulberry32 } from '../fixtures/rng.ts';

let model: MambaModel;
let ts: TestServer;
const MAX = 12;

type Job = { kind: 'chat'; messages: ChatMessage[] } | { kind: 'completion'; prompt: string };
const SYSTEM: ChatMessage = { role: 'system', content: 'You answer like a ship captain of old, in plain words.' };
const JOBS: Job[] = [
  { kind: 'completion', prompt: 'The sea was calm that morning and' },
  { kind: 'completion', prompt: 'In the year of our Lord' },
  { kind: 'completion', prompt: 'Mr. President, the state of the Union is' },
  { kind: 'completion', prompt: 'Call me Ishmael. Some years ago, never mind how long precisely,' },
  { kind: 'chat', messages: [{ role: 'user', content: 'Where is the white whale?' }] },
  { kind: 'chat', messages: [{ role: 'user', content: 'What is the law of the land?' }] },
  { kind: 'chat', messages: [SYSTEM, { role: 'user', content: 'Shall we sail tonight?' }] },
  { kind: 'chat', messages: [SYSTEM, { role: 'user', content: 'How many men are aboard?' }] },
];

/** Each job's answer alone, from the library (the server keeps a snapshot after a system prompt: same split). */
const want: { text: string; finish: string }[] = [];

interface Outcome { text: string; finish: string | null; ttftMs: number; serverTtftMs?: number }

async function streamOne(j: Job, signal?: AbortSignal, onChunk?: (n: number) => void): Promise<Outcome> {
  const t0 = performance.now();
  let text = '', finish: string | null = null, ttft = -1, n = 0, serverTtft: number | undefined;
  const note = (piece: string | null | undefined, extra: unknown) => {
    if (ttft < 0 && piece) ttft = performance.now() - t0;
    text += piece ?? '';
    const t = (extra as { timings?: { ttft_ms: number } }).timings;
    if (t) serverTtft = t.ttft_ms;
    onChunk?.(++n);
  };
  if (j.kind === 'chat') {
    const s = await ts.client.chat.completions.create({ model: MODEL_ID, messages: j.messages as never, temperature: 0, max_tokens: MAX, stream: true }, { signal });
    for await (const c of s) { note(c.choices[0]?.delta?.content, c); finish = c.choices[0]?.finish_reason ?? finish; }
  } else {
    const s = await ts.client.completions.create({ model: MODEL_ID, prompt: j.prompt, temperature: 0, max_tokens: MAX, stream: true }, { signal });
    for await (const c of s) { note(c.choices[0]?.text, c); finish = c.choices[0]?.finish_reason ?? finish; }
  }
  return { text, finish, ttftMs: ttft < 0 ? performance.now() - t0 : ttft, serverTtftMs: serverTtft };
}

async function health(): Promise<Record<string, any>> {
  return (await fetch(`${ts.url}/health`)).json() as Promise<Record<string, any>>;
}

const idle = async () => { const h = await health(); return h.queue.running === 0 && h.queue.waiting === 0 && h.requests.in_flight === 0; };

let baseline = 0;
/** Device bytes held, without released scratch buffers waiting in the allocator's pool for reuse. */
const held = () => { const m = model.memoryStats(); return m.liveBytes - (m.byLabel.pool ?? 0); };
const byLabel = () => JSON.stringify(model.memoryStats().byLabel);
const figures: Record<string, unknown> = {};

test.before(async () => {
  // A device of its own, so that live bytes count this model's buffers only.
  model = await loadDefault({ device: {} });
  ts = await serve(model, { maxBatch: 16, maxQueue: 64 });
  for (const j of JOBS) {
    if (j.kind === 'completion') want.push(await libraryGreedy(model, model.tokenizer!.encode(j.prompt, { addSpecialTokens: true }), MAX));
    else want.push(await libraryGreedy(model, chatIds(model, j.messages), MAX, systemHead(model, j.messages)));
  }
  // Buffers that keep their high-water size (the readback staging grows with the sequences that
  // finish a step together) reach it once: the baseline is taken after a burst of a full batch.
  await Promise.all(Array.from({ length: 16 }, (_, i) => streamOne(JOBS[i % JOBS.length])));
  await until(idle, 30_000, 'idle after warm-up');
  baseline = held();
});

test('32 concurrent streaming clients: all complete, each equals its single-request result, live bytes back at baseline', async () => {
  const t0 = performance.now();
  const results = await Promise.allSettled(Array.from({ length: 32 }, (_, i) => streamOne(JOBS[i % JOBS.length])));
  const wall = (performance.now() - t0) / 1000;
  const errors = results.filter((r) => r.status === 'rejected');
  assert.is(errors.length, 0, `errors: ${errors.map((e) => String((e as PromiseRejectedResult).reason)).join('; ')}`);
  const outs = results.map((r) => (r as PromiseFulfilledResult<Outcome>).value);
  outs.forEach((o, i) => {
    assert.is(o.text, want[i % JOBS.length].text, `client ${i}`);
    assert.is(o.finish, want[i % JOBS.length].finish, `client ${i} finish`);
  });
  await until(idle, 30_000, 'idle after the load');
  const h = await health();
  const live = held();
  assert.is(live, baseline, `live bytes ${live} vs baseline ${baseline} (${byLabel()})`);
  assert.is(h.memory.sequence_bytes_reserved, 0);
  assert.ok(h.batching.peak_batch > 1 && h.batching.peak_batch <= 16, `peak batch ${h.batching.peak_batch}`);
  const ttft = outs.map((o) => o.ttftMs);
  Object.assign(figures, {
    requests: outs.length, errors: errors.length, wall_s: +wall.toFixed(2),
    ttft_p50_ms: Math.round(percentile(ttft, 50)), ttft_p95_ms: Math.round(percentile(ttft, 95)),
    server_ttft_p50_ms: Math.round(percentile(outs.map((o) => o.serverTtftMs ?? 0), 50)),
    completion_tokens: outs.length * MAX, peak_batch: h.batching.peak_batch, leaked_bytes: live - baseline,
  });
});

test('disconnect storm: random aborts leave the server healthy, idle and leak-free', async () => {
  const r = mulberry32(7);
  const before = (await health()).requests.cancelled as number;
  const runs: Promise<unknown>[] = [];
  let planned = 0;
  for (let i = 0; i < 24; i++) {
    const j = JOBS[Math.floor(r() * JOBS.length)];
    const mode = i % 3;
    if (mode === 0) {
      // Abort after a random delay: before admission, during prefill or while streaming.
      const ac = new AbortController();
      setTimeout(() => ac.abort(), Math.floor(r() * 1500));
      runs.push(streamOne(j, ac.signal).catch(() => undefined));
      planned++;
    } else if (mode === 1) {
      // Abort after k chunks.
      const ac = new AbortController();
      const k = 1 + Math.floor(r() * 6);
      runs.push(streamOne(j, ac.signal, (n) => { if (n >= k) ac.abort(); }).catch(() => undefined));
      planned++;
    } else {
      // Drop the socket without a word, mid-stream.
      runs.push(new Promise<void>((resolve) => {
        const body = JSON.stringify(j.kind === 'chat'
          ? { model: MODEL_ID, messages: j.messages, max_tokens: 40, stream: true, temperature: 0 }
          : { model: MODEL_ID, prompt: j.prompt, max_tokens: 40, stream: true, temperature: 0 });
        const u = new URL(`${ts.url}/v1/${j.kind === 'chat' ? 'chat/completions' : 'completions'}`);
        const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          let events = 0;
          res.on('data', () => { if (++events === 2) req.destroy(); });
          res.on('close', () => resolve());
        });
        req.on('error', () => resolve());
        req.end(body);
      }));
      planned++;
    }
  }
  await Promise.all(runs);
  await until(idle, 60_000, 'idle after the storm');
  const h = await health();
  assert.is(h.status, 'ok');
  assert.ok(h.requests.cancelled > before, `cancelled ${h.requests.cancelled} (was ${before})`);
  const live = held();
  assert.is(live, baseline, `live bytes ${live} vs baseline ${baseline} after ${planned} aborted clients (${byLabel()})`);
  // Still right afterwards.
  const o = await streamOne(JOBS[3]);
  assert.is(o.text, want[3].text);
  Object.assign(figures, { storm_clients: planned, storm_cancelled: h.requests.cancelled - before, storm_leaked_bytes: live - baseline });
});

test.after(async () => {
  console.log(`server load figures (${model.deviceName}): ${JSON.stringify({ bench: 'server.load', ...figures })}`);
  await ts.srv.close();
  await model.dispose();
});

test.run();
