// Every bad input and fault gets its status code and an OpenAI-style error body
// {error: {message, type, param, code}}: malformed JSON, wrong types and values, missing and
// unsupported parameters, an unknown model, over-long prompts, too many tokens, unknown routes
// and methods, a body over the limit, a missing or wrong API key (401), a full queue (429) and a
// lost GPU device (503 and a log line, also in the middle of a stream, never a hang). The server
// stays usable after each.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import OpenAI from 'openai';
import { sharedDefault, MODEL_ID, serve, until, type TestServer } from './helpers.ts';
import { loadModel, type MambaModel } from '../../src/api.ts';
import { MODEL_DIR } from './helpers.ts';

let model: MambaModel;
let ts: TestServer;

test.before(async () => {
  model = await sharedDefault();
  ts = await serve(model);
});

interface ErrorBody { error: { message: string; type: string; param: string | null; code: string | null } }

async function post(url: string, path: string, body: string | object, headers: Record<string, string> = {}): Promise<{ status: number; body: ErrorBody }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: await res.json() as ErrorBody };
}

function isError(r: { status: number; body: ErrorBody }, status: number, code: string | null, param: string | null = null, label = ''): void {
  assert.is(r.status, status, `${label}: ${JSON.stringify(r.body)}`);
  assert.equal(Object.keys(r.body), ['error'], label);
  assert.equal(Object.keys(r.body.error).sort(), ['code', 'message', 'param', 'type'], label);
  assert.is(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 10, `${label}: a message that says something`);
  assert.is(r.body.error.code, code, label);
  assert.is(r.body.error.param, param, label);
}

const chat = (extra: object) => ({ model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ...extra });
const compl = (extra: object) => ({ model: MODEL_ID, prompt: 'hi', max_tokens: 2, ...extra });

test('malformed bodies: 400 invalid_json / invalid_body', async () => {
  isError(await post(ts.url, '/v1/chat/completions', '{"model": "x", '), 400, 'invalid_json', null, 'truncated JSON');
  isError(await post(ts.url, '/v1/completions', 'not json at all'), 400, 'invalid_json', null, 'text');
  isError(await post(ts.url, '/v1/chat/completions', '[1, 2]'), 400, 'invalid_body', null, 'an array');
  isError(await post(ts.url, '/v1/completions', 'null'), 400, 'invalid_body', null, 'null');
});

test('wrong types and values: 400 naming the parameter', async () => {
  const cases: [string, object, string, string][] = [
    ['/v1/chat/completions', chat({ temperature: 'hot' }), 'temperature', 'invalid_type'],
    ['/v1/chat/completions', chat({ temperature: 2.5 }), 'temperature', 'invalid_value'],
    ['/v1/chat/completions', chat({ top_p: 1.5 }), 'top_p', 'invalid_value'],
    ['/v1/chat/completions', chat({ max_tokens: 1.5 }), 'max_tokens', 'invalid_type'],
    ['/v1/chat/completions', chat({ max_tokens: 0 }), 'max_tokens', 'invalid_value'],
    ['/v1/chat/completions', chat({ stream: 'yes' }), 'stream', 'invalid_type'],
    ['/v1/chat/completions', chat({ seed: 'x' }), 'seed', 'invalid_type'],
    ['/v1/chat/completions', chat({ stop: 5 }), 'stop', 'invalid_type'],
    ['/v1/chat/completions', chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 'stop', 'invalid_value'],
    ['/v1/chat/completions', chat({ model: 7 }), 'model', 'invalid_type'],
    ['/v1/chat/completions', chat({ messages: 'hi' }), 'messages', 'invalid_type'],
    ['/v1/chat/completions', chat({ messages: [] }), 'messages', 'empty_array'],
    ['/v1/chat/completions', chat({ messages: [{ role: 'user', content: 5 }] }), 'messages[0].content', 'invalid_type'],
    ['/v1/chat/completions', chat({ messages: [{ role: 'wizard', content: 'x' }] }), 'messages[0].role', 'invalid_value'],
    ['/v1/chat/completions', chat({ stream_options: { include_usage: true } }), 'stream_options', 'invalid_value'],
    ['/v1/completions', compl({ prompt: 42 }), 'prompt', 'invalid_type'],
    ['/v1/completions', compl({ prompt: '' }), 'prompt', 'invalid_value'],
    ['/v1/completions', compl({ prompt: [1, -2] }), 'prompt[1]', 'invalid_value'],
  ];
  for (const [path, body, param, code] of cases) isError(await post(ts.url, path, body), 400, code, param, `${path} ${JSON.stringify(body)}`);
});

test('missing and unsupported parameters; token ids outside the vocabulary', async () => {
  isError(await post(ts.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }), 400, 'missing_required_parameter', 'model', 'no model');
  isError(await post(ts.url, '/v1/chat/completions', { model: MODEL_ID }), 400, 'missing_required_parameter', 'messages', 'no messages');
  isError(await post(ts.url, '/v1/completions', { model: MODEL_ID }), 400, 'missing_required_parameter', 'prompt', 'no prompt');
  isError(await post(ts.url, '/v1/chat/completions', chat({ n: 2 })), 400, 'unsupported_parameter', 'n', 'n = 2');
  isError(await post(ts.url, '/v1/chat/completions', chat({ logprobs: true })), 400, 'unsupported_parameter', 'logprobs', 'logprobs');
  isError(await post(ts.url, '/v1/completions', compl({ presence_penalty: 0.5 })), 400, 'unsupported_parameter', 'presence_penalty', 'presence penalty');
  isError(await post(ts.url, '/v1/completions', compl({ prompt: ['a', 'b'] })), 400, 'unsupported_parameter', 'prompt', 'two prompts');
  const r = await post(ts.url, '/v1/completions', compl({ prompt: [1, model.config.vocabSize + 5] }));
  isError(r, 400, 'invalid_value', null, 'id outside the vocabulary');
  assert.match(r.body.error.message, /outside the vocabulary/);
});

test('unknown model 404; over-long prompt and too many tokens 400', async () => {
  isError(await post(ts.url, '/v1/chat/completions', chat({ model: 'gpt-4o' })), 404, 'model_not_found', 'model', 'unknown model');
  const limit = ts.srv.loop.contextLimit;
  const long = await post(ts.url, '/v1/completions', compl({ prompt: new Array(limit + 10).fill(5) }));
  isError(long, 400, 'context_length_exceeded', 'prompt', 'prompt over the context');
  assert.match(long.body.error.message, new RegExp(`maximum context length is ${limit} tokens`));
  isError(await post(ts.url, '/v1/completions', compl({ prompt: new Array(limit - 5).fill(5), max_tokens: 50 })), 400, 'context_length_exceeded', 'prompt', 'prompt + max_tokens over the context');
  isError(await post(ts.url, '/v1/chat/completions', chat({ max_tokens: 1_000_000 })), 400, 'max_tokens_exceeded', 'max_tokens', 'max_tokens over the limit');
  // The official client surfaces them as typed errors.
  const client = ts.client;
  await client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }).then(
    () => assert.unreachable('accepted'), (e) => { assert.instance(e, OpenAI.NotFoundError); assert.is((e as InstanceType<typeof OpenAI.APIError>).code, 'model_not_found'); });
  await client.completions.create({ model: MODEL_ID, prompt: 'x', max_tokens: 10_000_000 }).then(
    () => assert.unreachable('accepted'), (e) => assert.instance(e, OpenAI.BadRequestError));
});

test('routes: unknown path 404, wrong method 405, body over the limit 413', async () => {
  const r404 = await fetch(`${ts.url}/v1/embeddings`, { method: 'POST', body: '{}' });
  assert.is(r404.status, 404);
  assert.is(((await r404.json()) as ErrorBody).error.code, 'unknown_url');
  const r405 = await fetch(`${ts.url}/v1/chat/completions`);
  assert.is(r405.status, 405);
  assert.is(r405.headers.get('allow'), 'POST');
  assert.is(((await r405.json()) as ErrorBody).error.code, 'method_not_allowed');
  const big = await post(ts.url, '/v1/completions', compl({ prompt: 'x'.repeat(5 * 2 ** 20) }));
  isError(big, 413, 'request_too_large', null, 'big body');
  // After all of these the server still answers.
  const ok = await ts.client.completions.create({ model: MODEL_ID, prompt: 'The sea', temperature: 0, max_tokens: 2 });
  assert.ok(ok.choices[0].finish_reason);
});

test('API key: missing or wrong 401, right one works, /health needs none', async () => {
  const keyed = await serve(model, { apiKey: 'sekrit-123' });
  try {
    isError(await post(keyed.url, '/v1/completions', compl({})), 401, 'missing_api_key', null, 'no key');
    isError(await post(keyed.url, '/v1/completions', compl({}), { authorization: 'Bearer wrong' }), 401, 'invalid_api_key', null, 'wrong key');
    isError(await post(keyed.url, '/v1/completions', compl({}), { authorization: 'sekrit-123' }), 401, 'invalid_api_key', null, 'not a bearer token');
    const models = await fetch(`${keyed.url}/v1/models`);
    assert.is(models.status, 401);
    assert.is((await fetch(`${keyed.url}/health`)).status, 200);
    const wrong = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'nope', maxRetries: 0 });
    await wrong.models.list().then(() => assert.unreachable('listed'), (e) => assert.instance(e, OpenAI.AuthenticationError));
    const r = await keyed.client.completions.create({ model: MODEL_ID, prompt: 'hi', max_tokens: 2, temperature: 0 });
    assert.ok(r.choices.length === 1);
  } finally {
    await keyed.srv.close();
  }
});

test('a full queue answers 429 and the running request is unaffected', async () => {
  const tight = await serve(model, { maxBatch: 1, maxQueue: 0 });
  try {
    const first = await tight.client.completions.create({ model: MODEL_ID, prompt: 'Once upon a time', temperature: 0, max_tokens: 24, stream: true });
    const it = first[Symbol.asyncIterator]();
    await it.next(); // it is running now
    const r = await post(tight.url, '/v1/completions', compl({}));
    isError(r, 429, 'queue_full', null, 'queue full');
    const h = await (await fetch(`${tight.url}/health`)).json() as { queue: { full: boolean; running: number } };
    assert.ok(h.queue.running === 1 && h.queue.full);
    await tight.client.completions.create({ model: MODEL_ID, prompt: 'x', max_tokens: 2 }).then(
      () => assert.unreachable('accepted'), (e) => assert.instance(e, OpenAI.RateLimitError));
    let n = 0;
    for (let x = await it.next(); !x.done; x = await it.next()) n++;
    assert.ok(n >= 1, 'the running stream completed');
  } finally {
    await tight.srv.close();
  }
});

test('a lost GPU device: 503 with a clear body and log line, also mid-stream; never a hang', async () => {
  // A device of its own: losing it must not disturb the shared test device.
  const own = await loadModel(MODEL_DIR, { device: {}, warmup: false });
  const lost = await serve(own);
  try {
    // Mid-stream: the stream ends with an error event.
    const stream = await lost.client.completions.create({ model: MODEL_ID, prompt: 'The whale', temperature: 0, max_tokens: 200, stream: true });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    own.ctx.device.destroy();
    const t0 = Date.now();
    let err: unknown;
    try { for (let x = await it.next(); !x.done; x = await it.next()) { /* drain */ } } catch (e) { err = e; }
    assert.ok(Date.now() - t0 < 60_000, 'no hang');
    assert.instance(err, OpenAI.APIError, `stream error: ${err}`);
    assert.match(String((err as Error).message), /device lost/i);
    await until(() => lost.logs.some((l) => /^device lost: /.test(l)), 10_000, 'the device-lost log line');
    // Later requests: 503 at once.
    const r = await post(lost.url, '/v1/completions', compl({}));
    isError(r, 503, 'device_lost', null, 'after the loss');
    assert.match(r.body.error.message, /restart/);
    const h = await fetch(`${lost.url}/health`);
    assert.is(h.status, 503);
    assert.is(((await h.json()) as { status: string }).status, 'device_lost');
  } finally {
    await lost.srv.close();
    await own.dispose();
  }
});

test.after(async () => {
  await ts.srv.close();
});

test.run();
