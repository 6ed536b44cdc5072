// Shared by the server suites: the default model on the test adapter, a server on a free loopback
// port with its log lines captured, an `openai` client for it, and the library's own answer for a
// request (what the server must reproduce at temperature 0).
import { join } from 'node:path';
import OpenAI from 'openai';
import { testGpu } from '../helpers/gpu.ts';
import { loadModel, type LoadModelOptions, type MambaModel } from '../../src/api.ts';
import { startServer, type RunningServer, type ServeOptions } from '../../src/server/index.ts';
import type { ChatMessage } from '../../src/tokenizer/index.ts';

export const MODEL_DIR = join(new URL('../../', import.meta.url).pathname, 'assets/default-model');
export const MODEL_ID = 'default-model';

export async function loadDefault(extra: LoadModelOptions = {}): Promise<MambaModel> {
  return loadModel(MODEL_DIR, { device: await testGpu(), ...extra });
}

let shared: Promise<MambaModel> | undefined;

/**
 * One default model on the shared test device for every suite of the run that does not need a
 * device of its own (a warm load takes seconds on SwiftShader). It lives until the process ends.
 */
export function sharedDefault(): Promise<MambaModel> {
  shared ??= loadDefault();
  return shared;
}

export interface TestServer {
  srv: RunningServer;
  client: OpenAI;
  logs: string[];
  url: string;
}

export async function serve(model: MambaModel, opts: ServeOptions = {}): Promise<TestServer> {
  const logs: string[] = [];
  const srv = await startServer(model, { port: 0, modelId: MODEL_ID, log: (l) => logs.push(l), ...opts });
  const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: opts.apiKey ?? 'unused', maxRetries: 0, timeout: 300_000 });
  return { srv, client, logs, url: srv.url };
}

/** The stop ids the server uses: the config's and the tokenizer's end-of-sequence ids. */
export function eosIds(model: MambaModel): number[] {
  return [...new Set([...model.config.eosTokenIds, ...model.tokenizer!.eosTokenIds])];
}

export function chatIds(model: MambaModel, messages: ChatMessage[]): number[] {
  const tok = model.tokenizer!;
  return tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
}

/**
 * The library's greedy continuation of `ids` as text and its token count. `head` > 0 feeds the
 * first `head` tokens on their own first (Session.append, as the server does when it keeps a
 * snapshot at the end of a system prompt), the rest with generate.
 */
export async function libraryGreedy(model: MambaModel, ids: number[], maxTokens: number, head = 0): Promise<{ text: string; tokens: number; finish: 'stop' | 'length' }> {
  const eos = eosIds(model);
  const s = model.createSession();
  try {
    if (head > 0) await s.append(ids.slice(0, head));
    const out = await s.generate(ids.slice(head), { maxNewTokens: maxTokens, eosTokenIds: eos });
    const text = model.tokenizer!.decode(out, { skipSpecialTokens: true });
    return { text, tokens: out.length, finish: eos.includes(out.at(-1) ?? -1) ? 'stop' : 'length' };
  } finally {
    s.dispose();
  }
}

/** Tokens of the rendered leading system messages (the server's snapshot point), or 0. */
export function systemHead(model: MambaModel, messages: ChatMessage[]): number {
  const tok = model.tokenizer!;
  let k = 0;
  while (k < messages.length && messages[k].role === 'system') k++;
  if (k === 0 || k === messages.length) return 0;
  return tok.encode(tok.applyChatTemplate(messages.slice(0, k), { addGenerationPrompt: false }), { addSpecialTokens: false }).length;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Waits until `cond` holds (polling), or fails after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 60_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
