// The HTTP routes of the OpenAI-compatible API: POST /v1/chat/completions and /v1/completions
// (JSON, or server-sent events with `stream: true`), GET /v1/models[/id] and GET /health. Each
// handler reads and checks the body, turns it into token ids (the chat template for chat), runs
// it through the request loop and writes OpenAI's response shapes, plus a `timings` object.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { MambaModel } from '../api.ts';
import type { ChatMessage } from '../tokenizer/index.ts';
import { checkApiKey } from './auth.ts';
import { HttpError, sendError, toHttpError } from './errors.ts';
import type { GenerationJob, GenerationResult, RequestLoop } from './loop.ts';
import { parseChat, parseCompletion, type ChatParams, type CompletionParams } from './params.ts';
import { SseStream } from './sse.ts';

export interface RouteContext {
  model: MambaModel;
  loop: RequestLoop;
  /** The id clients name in `model` (GET /v1/models lists it). */
  modelId: string;
  apiKey?: string;
  /** Largest request body in bytes (default 4 MiB). */
  maxBodyBytes: number;
  /** Unix seconds the server started (the model's `created`). */
  created: number;
}

const ROUTES: Record<string, string[]> = {
  '/v1/chat/completions': ['POST'],
  '/v1/completions': ['POST'],
  '/v1/models': ['GET'],
  '/health': ['GET'],
};

export async function handleRequest(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): Promise<void> {
  const tReceived = performance.now();
  const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';
  try {
    if (path === '/health' && method === 'GET') return health(res, ctx);
    const denied = checkApiKey(req, ctx.apiKey);
    if (denied) { await drainBody(req); return sendError(res, denied); }
    const modelPath = /^\/v1\/models\/(.+)$/.exec(path);
    if (modelPath && method === 'GET') return oneModel(res, ctx, decodeURIComponent(modelPath[1]));
    const allowed = ROUTES[path];
    if (!allowed) {
      await drainBody(req);
      return sendError(res, new HttpError(404, `unknown request URL: ${method} ${path}`, 'not_found_error', null, 'unknown_url'));
    }
    if (!allowed.includes(method)) {
      await drainBody(req);
      return sendError(res, new HttpError(405, `${method} is not allowed on ${path} (use ${allowed.join(', ')})`, 'invalid_request_error', null, 'method_not_allowed'), { Allow: allowed.join(', ') });
    }
    if (path === '/v1/models') return json(res, 200, { object: 'list', data: [modelCard(ctx)] });
    const body = await readJson(req, ctx.maxBodyBytes);
    if (path === '/v1/chat/completions') await chat(req, res, ctx, parseChat(body), tReceived);
    else await completion(req, res, ctx, parseCompletion(body), tReceived);
  } catch (e) {
    sendError(res, toHttpError(e));
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s), ...headers });
  res.end(s);
}

function modelCard(ctx: RouteContext) {
  return { id: ctx.modelId, object: 'model', created: ctx.created, owned_by: 'mamba-scan-lite' };
}

function oneModel(res: ServerResponse, ctx: RouteContext, id: string): void {
  if (id !== ctx.modelId) throw unknownModel(id, ctx);
  json(res, 200, modelCard(ctx));
}

function unknownModel(id: string, ctx: RouteContext): HttpError {
  return new HttpError(404, `the model '${id}' does not exist on this server; it serves '${ctx.modelId}'`, 'invalid_request_error', 'model', 'model_not_found');
}

function health(res: ServerResponse, ctx: RouteContext): void {
  const { loop, model } = ctx;
  const lost = loop.deviceLost;
  const status = lost ? 'device_lost' : loop.isDraining ? 'draining' : 'ok';
  const m = model.memoryStats();
  const b = loop.batcher;
  json(res, status === 'ok' ? 200 : 503, {
    status,
    ...(lost ? { error: lost.message } : {}),
    model: ctx.modelId,
    backend: model.backend,
    adapter: model.deviceName,
    queue: { waiting: b.queueDepth, running: b.runningCount, max_batch: b.limits.maxBatch, max_queue: b.maxQueue, full: loop.queueFull },
    memory: { live_bytes: m.liveBytes, peak_bytes: m.peakBytes, weight_bytes: m.weightBytes, baseline_bytes: m.baselineBytes, sequence_bytes_reserved: b.reservedBytes },
    prefix_cache: prefixCacheFigures(loop),
    requests: (({ requests, errors, cancelled, inFlight }) => ({ total: requests, errors, cancelled, in_flight: inFlight }))(loop.stats()),
    batching: { steps: b.stats().steps, tokens: b.stats().tokens, peak_batch: b.stats().peakBatch },
  });
}

function prefixCacheFigures(loop: RequestLoop) {
  const p = loop.prefixCache?.stats();
  if (!p) return null;
  return { entries: p.entries, bytes: p.bytes, budget_bytes: p.budgetBytes, hits: p.hits, misses: p.misses,
    restored_tokens: p.restoredTokens, evictions: p.evictions, rejected: p.rejected };
}

async function drainBody(req: IncomingMessage): Promise<void> {
  // Read (and drop) what the client sent so that a keep-alive connection stays usable.
  if (req.readableEnded) return;
  req.resume();
  await new Promise<void>((r) => { req.once('end', r); req.once('error', () => r()); req.once('close', r); });
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.resume();
      throw new HttpError(413, `the request body is over ${limit} bytes`, 'invalid_request_error', null, 'request_too_large');
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `the request body is not valid JSON (${(e as Error).message}); send a JSON object with Content-Type: application/json`, 'invalid_request_error', null, 'invalid_json');
  }
}

const newId = (prefix: string) => `${prefix}-${randomUUID().replace(/-/g, '').slice(0, 24)}`;

/** An AbortSignal that fires when the client goes away before the response is complete. */
function clientGone(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => { if (!res.writableFinished) ac.abort(); });
  return ac.signal;
}

function usage(r: GenerationResult) {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
    prompt_tokens_details: { cached_tokens: r.timings.prompt_tokens_cached },
  };
}

/**
 * Prompt lengths after which a snapshot pays: the end of the leading system messages, when the
 * tokens of that rendering are a prefix of the whole prompt's (the prompt's end is always one).
 */
function systemBoundary(ctx: RouteContext, messages: ChatMessage[], ids: number[]): number[] {
  let k = 0;
  while (k < messages.length && messages[k].role === 'system') k++;
  if (k === 0 || k === messages.length) return [];
  const tok = ctx.model.tokenizer!;
  try {
    const head = tok.encode(tok.applyChatTemplate(messages.slice(0, k), { addGenerationPrompt: false }), { addSpecialTokens: false });
    if (head.length > 0 && head.length < ids.length && head.every((t, i) => t === ids[i])) return [head.length];
  } catch {
    // Some templates refuse a conversation of system messages only: no boundary then.
  }
  return [];
}

async function chat(req: IncomingMessage, res: ServerResponse, ctx: RouteContext, p: ChatParams, tReceived: number): Promise<void> {
  if (p.model !== ctx.modelId) throw unknownModel(p.model, ctx);
  const tok = ctx.model.tokenizer!;
  let text: string;
  try {
    text = tok.applyChatTemplate(p.messages, { addGenerationPrompt: true });
  } catch (e) {
    throw new HttpError(400, `the model's chat template refused these messages: ${(e as Error).message}`, 'invalid_request_error', 'messages', 'invalid_messages');
  }
  const ids = tok.encode(text, { addSpecialTokens: false });
  const id = newId('chatcmpl');
  const head = { id, created: Math.floor(Date.now() / 1000), model: ctx.modelId, system_fingerprint: ctx.model.fingerprint };
  const job: GenerationJob = {
    id, route: 'chat', promptIds: ids, promptParam: 'messages', savePrefixes: systemBoundary(ctx, p.messages, ids),
    maxTokens: p.maxTokens, sampling: p.sampling, stop: p.stop, signal: clientGone(res), tReceived,
  };
  if (!p.stream) {
    const r = await ctx.loop.run(job);
    json(res, 200, {
      ...head, object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: r.text }, logprobs: null, finish_reason: r.finishReason }],
      usage: usage(r), timings: r.timings,
    }, { 'x-request-id': id });
    return;
  }
  const sse = new SseStream(res, { 'x-request-id': id });
  const chunk = (delta: object, finish: string | null, extra: object = {}) =>
    ({ ...head, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra });
  job.onText = async (piece) => {
    if (!sse.isStarted) await sse.send(chunk({ role: 'assistant', content: '' }, null));
    await sse.send(chunk({ content: piece }, null));
  };
  await streamJob(ctx, sse, job, async (r) => {
    if (!sse.isStarted) await sse.send(chunk({ role: 'assistant', content: '' }, null));
    await sse.send(chunk({}, r.finishReason, { timings: r.timings }));
    if (p.includeUsage) await sse.send({ ...head, object: 'chat.completion.chunk', choices: [], usage: usage(r), timings: r.timings });
  });
}

async function completion(req: IncomingMessage, res: ServerResponse, ctx: RouteContext, p: CompletionParams, tReceived: number): Promise<void> {
  if (p.model !== ctx.modelId) throw unknownModel(p.model, ctx);
  const tok = ctx.model.tokenizer!;
  const ids = typeof p.prompt === 'string' ? tok.encode(p.prompt, { addSpecialTokens: true }) : p.prompt;
  const id = newId('cmpl');
  const head = { id, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: ctx.modelId, system_fingerprint: ctx.model.fingerprint };
  const job: GenerationJob = {
    id, route: 'completion', promptIds: ids, promptParam: 'prompt', savePrefixes: [],
    // OpenAI's default for this endpoint.
    maxTokens: p.maxTokens ?? 16, sampling: p.sampling, stop: p.stop, signal: clientGone(res), tReceived,
  };
  const choice = (text: string, finish: string | null) => ({ text, index: 0, logprobs: null, finish_reason: finish });
  if (!p.stream) {
    const r = await ctx.loop.run(job);
    json(res, 200, { ...head, choices: [choice(r.text, r.finishReason)], usage: usage(r), timings: r.timings }, { 'x-request-id': id });
    return;
  }
  const sse = new SseStream(res, { 'x-request-id': id });
  job.onText = (piece) => sse.send({ ...head, choices: [choice(piece, null)] });
  await streamJob(ctx, sse, job, async (r) => {
    await sse.send({ ...head, choices: [choice('', r.finishReason)], timings: r.timings });
    if (p.includeUsage) await sse.send({ ...head, choices: [], usage: usage(r), timings: r.timings });
  });
}

/** Runs a streaming job: errors before the first event get a status code, later ones an error event. */
async function streamJob(ctx: RouteContext, sse: SseStream, job: GenerationJob, finish: (r: GenerationResult) => Promise<void>): Promise<void> {
  let r: GenerationResult;
  try {
    r = await ctx.loop.run(job);
  } catch (e) {
    if (!sse.isStarted) throw e;
    // The head (200) is out: OpenAI's clients read an `error` event as a failed stream.
    await sse.send(toHttpError(e).body());
    await sse.done();
    return;
  }
  await finish(r);
  await sse.done();
}
