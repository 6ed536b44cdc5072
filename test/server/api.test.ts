// The server through the official `openai` client, on the default model: chat and text
// completions, streamed and not, equal the library's own greedy generation at temperature 0;
// usage counts, finish reasons, stop sequences, seeds, /v1/models and /health; the prefix cache
// (a repeated system prompt, a continued chat) skips prefill, visible in the response's
// `timings`, without changing the output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type OpenAI from 'openai';
import { chatIds, eosIds, libraryGreedy, sharedDefault, MODEL_ID, serve, systemHead, type TestServer } from './helpers.ts';
import type { MambaModel } from '../../src/api.ts';

let model: MambaModel;
let ts: TestServer;
let client: TestServer['client'];

// Loaded when this suite starts (uvu imports every file of a run before running any).
test.before(async () => {
  model = await sharedDefault();
  ts = await serve(model);
  client = ts.client;
});

type Timings = { prompt_tokens: number; prompt_tokens_prefilled: number; prompt_tokens_cached: number; completion_tokens: number; queue_ms: number; ttft_ms: number };
const timingsOf = (r: unknown) => (r as { timings: Timings }).timings;

test('chat completion (not streamed) at temperature 0 equals the library', async () => {
  const messages = [{ role: 'user' as const, content: 'Tell me about the sea.' }];
  const r = await client.chat.completions.create({ model: MODEL_ID, messages, temperature: 0, max_tokens: 8 });
  const ids = chatIds(model, messages);
  const want = await libraryGreedy(model, ids, 8);
  assert.is(r.object, 'chat.completion');
  assert.is(r.model, MODEL_ID);
  assert.match(r.id, /^chatcmpl-/);
  assert.is(r.choices.length, 1);
  assert.is(r.choices[0].message.role, 'assistant');
  assert.is(r.choices[0].message.content, want.text);
  assert.is(r.choices[0].finish_reason, want.finish);
  assert.equal(r.usage && { p: r.usage.prompt_tokens, c: r.usage.completion_tokens, t: r.usage.total_tokens }, { p: ids.length, c: want.tokens, t: ids.length + want.tokens });
  const t = timingsOf(r);
  assert.is(t.prompt_tokens_prefilled + t.prompt_tokens_cached, ids.length);
  assert.ok(t.ttft_ms > 0 && t.queue_ms >= 0);
});

test('chat completion streamed: chunks in order, [DONE], same text as not streamed, usage chunk', async () => {
  const messages = [{ role: 'user' as const, content: 'What did the whale do?' }];
  const plain = await client.chat.completions.create({ model: MODEL_ID, messages, temperature: 0, max_tokens: 8 });
  const stream = await client.chat.completions.create({ model: MODEL_ID, messages, temperature: 0, max_tokens: 8, stream: true, stream_options: { include_usage: true } });
  let text = '', roles = 0, finish: string | null = null, usage: OpenAI.CompletionUsage | undefined, chunks = 0;
  for await (const c of stream) {
    chunks++;
    assert.is(c.object, 'chat.completion.chunk');
    if (c.usage) { usage = c.usage; assert.is(c.choices.length, 0, 'the usage chunk has no choices'); continue; }
    const d = c.choices[0].delta;
    if (d.role) roles++;
    text += d.content ?? '';
    if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
  }
  assert.is(roles, 1, 'the role comes once, first');
  assert.is(text, plain.choices[0].message.content);
  assert.is(finish, plain.choices[0].finish_reason);
  assert.equal(usage?.completion_tokens, plain.usage?.completion_tokens);
  assert.ok(chunks >= 3);
  // The raw wire format ends with the [DONE] event.
  const raw = await fetch(`${ts.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL_ID, messages, temperature: 0, max_tokens: 3, stream: true }) });
  assert.match(raw.headers.get('content-type') ?? '', /text\/event-stream/);
  const body = await raw.text();
  assert.ok(body.endsWith('data: [DONE]\n\n'), body.slice(-80));
  assert.ok(body.split('\n\n').filter(Boolean).every((e) => e.startsWith('data: ')));
});

test('text completion, streamed and not, at temperature 0 equals the library', async () => {
  const prompt = 'It was the best of times, and the sea';
  const ids = model.tokenizer!.encode(prompt, { addSpecialTokens: true });
  const want = await libraryGreedy(model, ids, 8);
  // Streamed, not streamed, and by token ids, at once (they share the batch).
  const streamed = (async () => {
    let t = '';
    for await (const c of await client.completions.create({ model: MODEL_ID, prompt, temperature: 0, max_tokens: 8, stream: true })) t += c.choices[0]?.text ?? '';
    return t;
  })();
  const [r, text, byIds, dflt] = await Promise.all([
    client.completions.create({ model: MODEL_ID, prompt, temperature: 0, max_tokens: 8 }),
    streamed,
    client.completions.create({ model: MODEL_ID, prompt: ids, temperature: 0, max_tokens: 8 }),
    client.completions.create({ model: MODEL_ID, prompt: 'A', temperature: 0 }),
  ]);
  assert.is(r.object, 'text_completion');
  assert.is(r.choices[0].text, want.text);
  assert.is(r.choices[0].finish_reason, want.finish);
  assert.is(r.usage?.prompt_tokens, ids.length);
  assert.is(r.usage?.completion_tokens, want.tokens);
  assert.is(text, want.text);
  // Token ids as the prompt: the same continuation.
  assert.is(byIds.choices[0].text, want.text);
  // Without max_tokens the endpoint's default (16, as OpenAI's) applies.
  assert.ok((dflt.usage?.completion_tokens ?? 0) <= 16);
});

test('stop sequences cut the text before the stop; seeds repeat; temperature > 0 samples', async () => {
  const prompt = 'The ship sailed on and on and';
  const full = await client.completions.create({ model: MODEL_ID, prompt, temperature: 0, max_tokens: 16 });
  const text = full.choices[0].text;
  // A stop sequence from the middle of the greedy text: the output is the text before it.
  const cut = text.slice(Math.floor(text.length / 2)).trim().slice(0, 3);
  if (cut.length > 0 && full.choices[0].finish_reason === 'length') {
    const at = text.indexOf(cut);
    const [s, streamed] = await Promise.all([
      client.completions.create({ model: MODEL_ID, prompt, temperature: 0, max_tokens: 16, stop: [cut, 'zzzzqq'] }),
      (async () => {
        let t = '';
        for await (const c of await client.completions.create({ model: MODEL_ID, prompt, temperature: 0, max_tokens: 16, stop: cut, stream: true })) t += c.choices[0]?.text ?? '';
        return t;
      })(),
    ]);
    assert.is(s.choices[0].text, text.slice(0, at));
    assert.is(s.choices[0].finish_reason, 'stop');
    assert.is(streamed, text.slice(0, at), 'streaming holds back a partial stop sequence');
  }
  const sampled = await Promise.all([42, 42, 1, 2, 3].map((seed) => client.completions.create({ model: MODEL_ID, prompt, temperature: 1.5, seed, max_tokens: 8 })));
  const texts = sampled.map((x) => x.choices[0].text);
  assert.is(texts[0], texts[1], 'same seed, same text');
  assert.ok(new Set(texts).size > 1, 'different seeds sample different text (temperature > 0 samples)');
});

test('GET /v1/models and /health', async () => {
  const list = await client.models.list();
  assert.equal(list.data.map((m) => m.id), [MODEL_ID]);
  const one = await client.models.retrieve(MODEL_ID);
  assert.is(one.owned_by, 'mamba-scan-lite');
  const h = await (await fetch(`${ts.url}/health`)).json() as Record<string, any>;
  assert.is(h.status, 'ok');
  assert.is(h.backend, model.backend);
  assert.is(h.adapter, model.deviceName);
  assert.equal(Object.keys(h.queue).sort(), ['full', 'max_batch', 'max_queue', 'running', 'waiting']);
  assert.ok(h.memory.live_bytes > 0 && h.memory.peak_bytes >= h.memory.live_bytes && h.memory.weight_bytes === model.weightBytes);
  assert.ok(h.requests.total >= 5);
});

test('prefix cache: a repeated system prompt and a continued chat skip their prefill, same output', async () => {
  const system = { role: 'system' as const, content: 'You are a sailor who answers in short plain sentences about ships, whales and the open sea.' };
  const m1 = [system, { role: 'user' as const, content: 'Where are we going?' }];
  const m2 = [system, { role: 'user' as const, content: 'How big is the whale?' }];
  const ids1 = chatIds(model, m1), ids2 = chatIds(model, m2);
  const head = systemHead(model, m1);
  assert.ok(head > 10 && ids1.slice(0, head).every((t, i) => t === ids2[i]), 'the system prompt renders as a shared token prefix');
  const r1 = await client.chat.completions.create({ model: MODEL_ID, messages: m1, temperature: 0, max_tokens: 8 });
  const t1 = timingsOf(r1);
  assert.is(t1.prompt_tokens_cached, 0);
  assert.is(t1.prompt_tokens_prefilled, ids1.length);
  const r2 = await client.chat.completions.create({ model: MODEL_ID, messages: m2, temperature: 0, max_tokens: 8 });
  const t2 = timingsOf(r2);
  assert.is(t2.prompt_tokens_cached, head, 'restored after the system prompt');
  assert.is(t2.prompt_tokens_prefilled, ids2.length - head);
  assert.is(r2.usage?.prompt_tokens_details?.cached_tokens, head);
  assert.is(r2.choices[0].message.content, (await libraryGreedy(model, ids2, 8, head)).text);
  // The same conversation continued: everything up to the previous prompt's last token is restored.
  const m3 = [...m1, { role: 'assistant' as const, content: r1.choices[0].message.content ?? '' }, { role: 'user' as const, content: 'And then?' }];
  const ids3 = chatIds(model, m3);
  const r3 = await client.chat.completions.create({ model: MODEL_ID, messages: m3, temperature: 0, max_tokens: 8 });
  const t3 = timingsOf(r3);
  assert.ok(ids1.slice(0, -1).every((t, i) => t === ids3[i]), 'the earlier prompt is a token prefix of the continued one');
  assert.is(t3.prompt_tokens_cached, ids1.length - 1);
  assert.is(t3.prompt_tokens_prefilled, ids3.length - (ids1.length - 1));
  assert.is(r3.choices[0].message.content, (await libraryGreedy(model, ids3, 8, head)).text);
  const h = await (await fetch(`${ts.url}/health`)).json() as Record<string, any>;
  assert.ok(h.prefix_cache.hits >= 2 && h.prefix_cache.bytes <= h.prefix_cache.budget_bytes);
});

test('one log line per request: id, prompt/new tokens, queue wait, TTFT, tok/s', async () => {
  const before = ts.logs.length;
  const r = await client.completions.create({ model: MODEL_ID, prompt: 'Call me', temperature: 0, max_tokens: 4 });
  const lines = ts.logs.slice(before);
  assert.is(lines.length, 1, lines.join('\n'));
  assert.match(lines[0], new RegExp(`^${r.id} completion 200 prompt=\\d+ cached=\\d+ new=${r.usage?.completion_tokens} queue=[\\d.]+ms ttft=[\\d.]+ms decode=([\\d.]+|-)tok/s (length|stop)$`));
  void eosIds;
});

test.after(async () => {
  await ts.srv.close();
});

test.run();
