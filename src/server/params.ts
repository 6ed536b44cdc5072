// Request bodies of /v1/chat/completions and /v1/completions checked and turned into typed
// requests. Every wrong type or value is a 400 naming the parameter, as OpenAI answers;
// parameters the server does not implement (n > 1, logprobs, penalties, tools) are refused
// rather than ignored, so a client never gets something other than what it asked for.
import type { ChatMessage } from '../tokenizer/index.ts';
import { badParam, HttpError } from './errors.ts';

export interface SamplingParams {
  /** OpenAI's rule: temperature > 0 samples (the default temperature is 1). */
  doSample: boolean;
  temperature: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
}

interface Common {
  model: string;
  /** undefined: the endpoint's default. */
  maxTokens?: number;
  stream: boolean;
  includeUsage: boolean;
  stop: string[];
  sampling: SamplingParams;
}

export interface ChatParams extends Common { messages: ChatMessage[] }
export interface CompletionParams extends Common { prompt: string | number[] }

type Body = Record<string, unknown>;

const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

function wrongType(param: string, expected: string, v: unknown): HttpError {
  return badParam(param, `Invalid type for '${param}': expected ${expected}, but got ${typeName(v)} instead.`, 'invalid_type');
}

function optNumber(b: Body, k: string, lo: number, hi: number): number | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw wrongType(k, 'a number', v);
  if (v < lo || v > hi) throw badParam(k, `'${k}' must be between ${lo} and ${hi}, got ${v}`);
  return v;
}

function optInt(b: Body, k: string, lo: number, hi = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw wrongType(k, 'an integer', v);
  if (v < lo || v > hi) throw badParam(k, `'${k}' must be an integer ${hi === Number.MAX_SAFE_INTEGER ? `≥ ${lo}` : `between ${lo} and ${hi}`}, got ${v}`);
  return v;
}

function optBool(b: Body, k: string): boolean | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw wrongType(k, 'a boolean', v);
  return v;
}

function unsupported(param: string, what: string): HttpError {
  return new HttpError(400, `'${param}' is not supported by this server (${what})`, 'invalid_request_error', param, 'unsupported_parameter');
}

function common(b: Body, isChat: boolean): Common {
  const model = b.model;
  if (model === undefined) throw badParam('model', 'you must provide a model parameter', 'missing_required_parameter');
  if (typeof model !== 'string' || model === '') throw wrongType('model', 'a non-empty string', model);
  const n = optInt(b, 'n', 1);
  if (n !== undefined && n !== 1) throw unsupported('n', 'one choice per request; send several requests instead');
  for (const k of ['presence_penalty', 'frequency_penalty']) {
    const v = optNumber(b, k, -2, 2);
    if (v !== undefined && v !== 0) throw unsupported(k, 'use the repetition_penalty extension');
  }
  for (const k of ['logprobs', 'top_logprobs', 'logit_bias', 'tools', 'functions', 'response_format', 'best_of', 'suffix', 'echo']) {
    const v = b[k];
    if (v === undefined || v === null || v === false || (k === 'best_of' && v === 1) || (k === 'tools' && Array.isArray(v) && v.length === 0)) continue;
    throw unsupported(k, 'not implemented');
  }
  let maxTokens = optInt(b, 'max_tokens', 1);
  if (isChat) {
    const mct = optInt(b, 'max_completion_tokens', 1);
    if (mct !== undefined) maxTokens = mct;
  }
  const stream = optBool(b, 'stream') ?? false;
  let includeUsage = false;
  const so = b.stream_options;
  if (so !== undefined && so !== null) {
    if (typeof so !== 'object' || Array.isArray(so)) throw wrongType('stream_options', 'an object', so);
    if (!stream) throw badParam('stream_options', "'stream_options' is only allowed when 'stream' is true");
    includeUsage = optBool(so as Body, 'include_usage') ?? false;
  }
  const stop = stopList(b.stop);
  const temperature = optNumber(b, 'temperature', 0, 2) ?? 1;
  const topP = optNumber(b, 'top_p', 0, 1);
  const topK = optInt(b, 'top_k', 0);
  const repetitionPenalty = optNumber(b, 'repetition_penalty', Number.MIN_VALUE, 10);
  const seed = optInt(b, 'seed', Number.MIN_SAFE_INTEGER);
  // top_p 0 keeps only the most likely token: greedy.
  const doSample = temperature > 0 && topP !== 0;
  const sampling: SamplingParams = { doSample, temperature, topP: topP === 0 || topP === 1 ? undefined : topP, topK, repetitionPenalty, seed };
  if (b.user !== undefined && typeof b.user !== 'string') throw wrongType('user', 'a string', b.user);
  return { model, maxTokens, stream, includeUsage, stop, sampling };
}

function stopList(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw wrongType('stop', 'a string or an array of strings', v);
  if (list.length > 4) throw badParam('stop', `'stop' takes at most 4 sequences, got ${list.length}`);
  list.forEach((s, i) => {
    if (typeof s !== 'string') throw wrongType(`stop[${i}]`, 'a string', s);
    if (s === '') throw badParam(`stop[${i}]`, 'a stop sequence must not be empty');
  });
  return list as string[];
}

function object(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, `the request body must be a JSON object, got ${typeName(body)}`, 'invalid_request_error', null, 'invalid_body');
  }
  return body as Body;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

export function parseChat(body: unknown): ChatParams {
  const b = object(body);
  const c = common(b, true);
  const raw = b.messages;
  if (raw === undefined) throw badParam('messages', 'you must provide a messages parameter', 'missing_required_parameter');
  if (!Array.isArray(raw)) throw wrongType('messages', 'an array', raw);
  if (raw.length === 0) throw badParam('messages', "'messages' must hold at least one message", 'empty_array');
  const messages: ChatMessage[] = raw.map((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw wrongType(`messages[${i}]`, 'an object', m);
    const { role, content } = m as Body;
    if (typeof role !== 'string') throw wrongType(`messages[${i}].role`, 'a string', role);
    if (!ROLES.has(role)) throw badParam(`messages[${i}].role`, `unknown role '${role}': use system, developer, user, assistant or tool`);
    // 'developer' is the newer name of 'system'; chat templates know only the latter.
    return { role: role === 'developer' ? 'system' : role, content: messageText(content, `messages[${i}].content`) };
  });
  return { ...c, messages };
}

/** A message's content: a string, or text parts (images and audio are not supported). */
function messageText(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (!Array.isArray(content)) throw wrongType(param, 'a string or an array of content parts', content);
  return content.map((p, j) => {
    const part = p as Body;
    if (typeof part !== 'object' || part === null) throw wrongType(`${param}[${j}]`, 'an object', p);
    if (part.type !== 'text') throw unsupported(`${param}[${j}].type`, `only text content parts, got '${String(part.type)}'`);
    if (typeof part.text !== 'string') throw wrongType(`${param}[${j}].text`, 'a string', part.text);
    return part.text;
  }).join('');
}

export function parseCompletion(body: unknown): CompletionParams {
  const b = object(body);
  const c = common(b, false);
  let p = b.prompt;
  if (p === undefined) throw badParam('prompt', 'you must provide a prompt parameter', 'missing_required_parameter');
  // One prompt: a string or token ids, possibly wrapped in a one-element batch.
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) p = p[0];
  if (typeof p === 'string') {
    if (p === '') throw badParam('prompt', "'prompt' must not be empty");
    return { ...c, prompt: p };
  }
  if (Array.isArray(p)) {
    if (p.length === 0) throw badParam('prompt', "'prompt' must not be empty");
    if (p.every((x) => typeof x === 'number')) {
      p.forEach((x, i) => { if (!Number.isInteger(x) || (x as number) < 0) throw badParam(`prompt[${i}]`, `token ids must be non-negative integers, got ${x}`); });
      return { ...c, prompt: p as number[] };
    }
    if (p.every((x) => typeof x === 'string' || Array.isArray(x))) throw unsupported('prompt', 'one prompt per request; send several requests instead');
  }
  throw wrongType('prompt', 'a string or an array of token ids', p);
}
