// Command-line parsing on node:util parseArgs: one option table per command, typed conversion of
// the numeric options, and UsageError (exit code 2) for anything the user typed wrong.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in the command line itself; main prints one line and exits with code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Command = 'generate' | 'chat' | 'info' | 'serve';
export const COMMANDS: readonly Command[] = ['generate', 'chat', 'info', 'serve'];

type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { help: string; arg?: string };

// Shared by every command.
const COMMON: Record<string, OptionSpec> = {
  model: { type: 'string', short: 'm', arg: '<dir|url|id>', help: 'model folder, URL or Hugging Face id (org/name[@revision])' },
  dtype: { type: 'string', arg: '<auto|f32|f16|bf16>', help: 'GPU storage of the weight matrices (default: the checkpoint\'s)' },
  quantize: { type: 'string', short: 'q', arg: '<none|q8_0|q4_k>', help: 'quantize the weight matrices at load (q4_k: llama.cpp\'s Q4_K_M rule)' },
  'kv-dtype': { type: 'string', arg: '<f16|f32>', help: 'storage of the attention KV cache (default f16 where the device has shader-f16)' },
  backend: { type: 'string', arg: '<auto|webgpu|wasm>', help: 'where to run (default auto: WebGPU when an adapter exists, else Wasm)' },
  'prefill-chunk': { type: 'string', arg: '<n>', help: 'most tokens per forward block; bounds scratch memory (default 256)' },
  json: { type: 'boolean', help: 'print one JSON object on stdout and nothing else (default when stdout is not a terminal)' },
  text: { type: 'boolean', help: 'human-readable output even when stdout is not a terminal' },
  quiet: { type: 'boolean', help: 'no stats line (and no progress bar) on stderr' },
  verbose: { type: 'boolean', short: 'v', help: 'show stack traces of errors' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

const SAMPLING: Record<string, OptionSpec> = {
  'max-new-tokens': { type: 'string', short: 'n', arg: '<n>', help: 'new tokens at most (default 64)' },
  temperature: { type: 'string', short: 't', arg: '<x>', help: 'sampling temperature; 0 or unset = greedy' },
  'top-k': { type: 'string', arg: '<n>', help: 'sample from the k most likely tokens (0 = all)' },
  'top-p': { type: 'string', arg: '<p>', help: 'nucleus sampling: smallest set with probability ≥ p' },
  'repetition-penalty': { type: 'string', arg: '<x>', help: 'divide logits of tokens already seen (1 = off)' },
  seed: { type: 'string', arg: '<n>', help: 'random seed for sampling (default: time)' },
};

const SPECS: Record<Command, { summary: string; usage: string; options: Record<string, OptionSpec> }> = {
  generate: {
    summary: 'generate text from a prompt, streamed to stdout',
    usage: 'generate --model <dir|url|id> --prompt "text" [options]',
    options: {
      ...COMMON,
      prompt: { type: 'string', short: 'p', arg: '<text>', help: 'the prompt (raw text; no chat template)' },
      ids: { type: 'string', arg: '<1,2,3>', help: 'prompt as comma-separated token ids instead of --prompt' },
      ...SAMPLING,
    },
  },
  chat: {
    summary: 'interactive chat using the checkpoint\'s chat template; state is kept between turns',
    usage: 'chat --model <dir|url|id> [--system "text"] [--load <file>] [--save <file>] [options]',
    options: {
      ...COMMON,
      system: { type: 'string', short: 's', arg: '<text>', help: 'system message for the conversation' },
      load: { type: 'string', arg: '<file>', help: 'continue the conversation saved in <file> (its state is restored, not re-prefilled)' },
      save: { type: 'string', arg: '<file>', help: 'save the conversation (transcript and model state) to <file> after every turn' },
      ...SAMPLING,
    },
  },
  info: {
    summary: 'architecture, parameters, layer plan, adapter and memory needed',
    usage: 'info --model <dir|url|id> [--max-tokens <n>] [options]',
    options: {
      ...COMMON,
      'max-tokens': { type: 'string', arg: '<n>', help: 'sequence length the memory plan is for (default 2048)' },
    },
  },
  serve: {
    summary: 'OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions) with continuous batching',
    usage: 'serve --model <dir|url|id|gguf> [--host 127.0.0.1] [--port 8080] [--api-key KEY] [options]',
    options: {
      model: COMMON.model, dtype: COMMON.dtype, quantize: COMMON.quantize, 'kv-dtype': COMMON['kv-dtype'], backend: COMMON.backend,
      'prefill-chunk': COMMON['prefill-chunk'],
      host: { type: 'string', arg: '<addr>', help: 'interface to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for all)' },
      port: { type: 'string', short: 'p', arg: '<n>', help: 'TCP port (default 8080; 0 picks a free one)' },
      'api-key': { type: 'string', arg: '<key>', help: 'require "Authorization: Bearer <key>" (default: MSL_API_KEY, else none)' },
      'model-name': { type: 'string', arg: '<id>', help: 'the model id clients send (default: the --model value)' },
      'max-batch': { type: 'string', arg: '<n>', help: 'sequences decoded together at most (default 16)' },
      'max-queue': { type: 'string', arg: '<n>', help: 'requests waiting at most; more get HTTP 429 (default 64)' },
      'max-tokens-limit': { type: 'string', arg: '<n>', help: 'largest max_tokens a request may ask for (default 4096)' },
      'prefix-cache': { type: 'string', arg: '<MiB>', help: 'memory for prompt-prefix snapshots (default 256; 0 = off)' },
      quiet: { type: 'boolean', help: 'no log line per request' },
      verbose: COMMON.verbose,
      help: COMMON.help,
    },
  },
};

export interface CommonArgs {
  model: string;
  dtype?: 'auto' | 'f32' | 'f16' | 'bf16';
  quantize?: 'none' | 'q8_0' | 'q4_k';
  kvDtype?: 'f16' | 'f32';
  backend?: 'auto' | 'webgpu' | 'wasm';
  prefillChunk?: number;
  /** Machine-readable output: --json, or stdout not a TTY (unless --text). */
  json: boolean;
  /** No stats line or progress bar on stderr. */
  quiet: boolean;
  verbose: boolean;
}

export interface ServeArgs {
  host: string;
  port: number;
  apiKey?: string;
  modelName: string;
  maxBatch: number;
  maxQueue: number;
  maxTokensLimit: number;
  prefixCacheMiB: number;
}

export interface SamplingArgs {
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
}

export type ParsedArgs =
  | { command: 'help'; topic?: Command }
  | { command: 'version' }
  | ({ command: 'generate'; prompt?: string; ids?: number[] } & CommonArgs & SamplingArgs)
  | ({ command: 'chat'; system?: string; load?: string; save?: string } & CommonArgs & SamplingArgs)
  | ({ command: 'info'; maxTokens: number } & CommonArgs)
  | ({ command: 'serve' } & CommonArgs & ServeArgs);

type Values = Record<string, string | boolean | undefined>;

function number(values: Values, name: string, opts: { integer?: boolean; min?: number; minExclusive?: number; max?: number } = {}): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const s = String(raw).trim();
  const v = s === '' ? NaN : Number(s);
  const kind = opts.integer ? 'an integer' : 'a number';
  if (!Number.isFinite(v) || (opts.integer && !Number.isInteger(v))) throw new UsageError(`--${name} must be ${kind}, got "${raw}"`);
  if (opts.min !== undefined && v < opts.min) throw new UsageError(`--${name} must be ≥ ${opts.min}, got ${v}`);
  if (opts.minExclusive !== undefined && v <= opts.minExclusive) throw new UsageError(`--${name} must be > ${opts.minExclusive}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw new UsageError(`--${name} must be ≤ ${opts.max}, got ${v}`);
  return v;
}

function parseCommon(values: Values, stdoutIsTTY: boolean): CommonArgs {
  const model = values.model;
  if (typeof model !== 'string' || model === '') throw new UsageError('--model is required (a folder, a URL or a Hugging Face id)');
  const dtype = values.dtype as string | undefined;
  if (dtype !== undefined && !['auto', 'f32', 'f16', 'bf16'].includes(dtype)) throw new UsageError(`--dtype must be auto, f32, f16 or bf16, got "${dtype}"`);
  if (values.json && values.text) throw new UsageError('--json and --text exclude each other');
  const choice = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
    const v = values[name] as string | undefined;
    if (v !== undefined && !allowed.includes(v as T)) throw new UsageError(`--${name} must be ${allowed.join(', ')}, got "${v}"`);
    return v as T | undefined;
  };
  return {
    model,
    dtype: dtype as CommonArgs['dtype'],
    quantize: choice('quantize', ['none', 'q8_0', 'q4_k'] as const),
    kvDtype: choice('kv-dtype', ['f16', 'f32'] as const),
    backend: choice('backend', ['auto', 'webgpu', 'wasm'] as const),
    prefillChunk: number(values, 'prefill-chunk', { integer: true, min: 1 }),
    json: values.json === true || (!stdoutIsTTY && values.text !== true),
    quiet: values.quiet === true,
    verbose: values.verbose === true,
  };
}

function parseSampling(values: Values): SamplingArgs {
  return {
    maxNewTokens: number(values, 'max-new-tokens', { integer: true, min: 0 }) ?? 64,
    temperature: number(values, 'temperature', { min: 0 }),
    topK: number(values, 'top-k', { integer: true, min: 0 }),
    topP: number(values, 'top-p', { minExclusive: 0, max: 1 }),
    repetitionPenalty: number(values, 'repetition-penalty', { minExclusive: 0 }),
    seed: number(values, 'seed', { integer: true }),
  };
}

function parseIds(s: string): number[] {
  const parts = s.split(/[\s,]+/).filter((p) => p !== '');
  if (parts.length === 0) throw new UsageError('--ids needs at least one token id');
  return parts.map((p) => {
    const v = Number(p);
    if (!Number.isInteger(v) || v < 0) throw new UsageError(`--ids must be non-negative integers separated by commas, got "${p}"`);
    return v;
  });
}

/** Parses argv (without node and the script). `stdoutIsTTY` decides the default output mode. */
export function parseCommandLine(argv: readonly string[], stdoutIsTTY: boolean): ParsedArgs {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    if (topic !== undefined && !COMMANDS.includes(topic as Command)) throw new UsageError(`unknown command "${topic}"; commands: ${COMMANDS.join(', ')}`);
    return { command: 'help', topic: topic as Command | undefined };
  }
  if (first === '--version' || first === 'version') return { command: 'version' };
  if (!COMMANDS.includes(first as Command)) {
    const hint = first.startsWith('-') ? 'put the command first' : `commands: ${COMMANDS.join(', ')}`;
    throw new UsageError(`unknown command "${first}"; ${hint}`);
  }
  const command = first as Command;
  const options: Record<string, OptionSpec> = {};
  for (const [k, spec] of Object.entries(SPECS[command].options)) {
    const { help: _h, arg: _a, ...o } = spec;
    options[k] = o as OptionSpec;
  }
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...rest], options: options as ParseArgsConfig['options'], strict: true, allowPositionals: true }) as { values: Values; positionals: string[] });
  } catch (e) {
    // parseArgs' messages are already one clear line ("Unknown option '--foo'. ...").
    throw new UsageError((e as Error).message.split('\n')[0]);
  }
  if (values.help) return { command: 'help', topic: command };
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}" (did you forget --prompt or --model?)`);
  const common = parseCommon(values, stdoutIsTTY);
  switch (command) {
    case 'generate': {
      const prompt = values.prompt as string | undefined;
      const ids = values.ids !== undefined ? parseIds(values.ids as string) : undefined;
      if (prompt === undefined && ids === undefined) throw new UsageError('generate needs --prompt "text" (or --ids 1,2,3)');
      if (prompt !== undefined && ids !== undefined) throw new UsageError('give either --prompt or --ids, not both');
      if (prompt === '') throw new UsageError('--prompt must not be empty');
      return { command, prompt, ids, ...common, ...parseSampling(values) };
    }
    case 'chat': {
      const file = (name: string) => {
        const v = values[name] as string | undefined;
        if (v === '') throw new UsageError(`--${name} needs a file name`);
        return v;
      };
      const load = file('load');
      if (load !== undefined && values.system !== undefined) throw new UsageError('--system and --load exclude each other (the saved conversation has its own system message)');
      return { command, system: values.system as string | undefined, load, save: file('save'), ...common, ...parseSampling(values) };
    }
    case 'serve': {
      const apiKey = (values['api-key'] as string | undefined) ?? process.env.MSL_API_KEY;
      if (apiKey === '') throw new UsageError('--api-key must not be empty');
      const host = (values.host as string | undefined) ?? '127.0.0.1';
      if (host === '') throw new UsageError('--host must not be empty');
      return {
        command, ...common, json: false,
        host,
        port: number(values, 'port', { integer: true, min: 0, max: 65535 }) ?? 8080,
        apiKey,
        modelName: (values['model-name'] as string | undefined) ?? common.model.replace(/\/+$/, ''),
        maxBatch: number(values, 'max-batch', { integer: true, min: 1, max: 1024 }) ?? 16,
        maxQueue: number(values, 'max-queue', { integer: true, min: 0 }) ?? 64,
        maxTokensLimit: number(values, 'max-tokens-limit', { integer: true, min: 1 }) ?? 4096,
        prefixCacheMiB: number(values, 'prefix-cache', { min: 0 }) ?? 256,
      };
    }
    case 'info':
      return { command, maxTokens: number(values, 'max-tokens', { integer: true, min: 1 }) ?? 2048, ...common };
  }
}

/** Help text for one command, or the overview. */
export function helpText(topic?: Command): string {
  const bin = 'mamba-scan-lite';
  if (topic === undefined) {
    const lines = [
      `${bin}: run Mamba2-family language models (Zamba2, Mamba2) on WebGPU`,
      '',
      'usage:',
      ...COMMANDS.map((c) => `  ${bin} ${SPECS[c].usage}`),
      '',
      'commands:',
      ...COMMANDS.map((c) => `  ${c.padEnd(10)}${SPECS[c].summary}`),
      '',
      `Run "${bin} <command> --help" for a command's options.`,
      'Environment: HF_TOKEN (gated/private models), MSL_CACHE_DIR (download cache), MSL_REMOTE_HOST (Hub mirror).',
    ];
    return lines.join('\n');
  }
  const spec = SPECS[topic];
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`;
    return `  ${flag.padEnd(36)}${o.help}`;
  });
  return [`${bin} ${spec.usage}`, '', spec.summary, '', 'options:', ...rows].join('\n');
}
