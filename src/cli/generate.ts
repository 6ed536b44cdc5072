// `generate`: tokenize the prompt, stream new tokens through the incremental detokenizer to
// stdout, then a stats line on stderr (unless --quiet), or one JSON object on stdout (machine mode).
import type { MambaModel, GenerateOptions, GenerateStats } from '../index.node.ts';
import { InputError } from '../errors.ts';
import type { ParsedArgs, SamplingArgs } from './args.ts';
import { runFigures, statsLine, type RunFigures } from './format.ts';
import { type CliIo, writeAll } from './io.ts';

type GenerateArgs = Extract<ParsedArgs, { command: 'generate' }>;

/** The sampling options and stop ids for a run (tokenizer and config eos ids both stop). */
export function generateOptions(model: MambaModel, s: SamplingArgs, signal?: AbortSignal): GenerateOptions {
  const eos = new Set<number>(model.config.eosTokenIds);
  for (const id of model.tokenizer?.eosTokenIds ?? []) eos.add(id);
  return {
    maxNewTokens: s.maxNewTokens,
    // The CLI's --temperature switches sampling on (0 or unset = greedy); the library needs doSample.
    doSample: s.temperature !== undefined && s.temperature > 0,
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    repetitionPenalty: s.repetitionPenalty,
    seed: s.seed,
    eosTokenIds: [...eos],
    signal,
  };
}

export function figuresOf(model: MambaModel, stats: GenerateStats): RunFigures {
  return runFigures(stats, model.memoryStats().peakBytes, model.deviceName, model.backend);
}

export function noTokenizer(model: string): InputError {
  return new InputError(`${model} has no tokenizer.json, so text cannot be encoded: pass the prompt as token ids with --ids 1,2,3`);
}

export async function runGenerate(model: MambaModel, args: GenerateArgs, io: CliIo, signal: AbortSignal): Promise<void> {
  const tok = model.tokenizer;
  let promptIds: number[];
  if (args.ids) promptIds = args.ids;
  else if (tok) promptIds = tok.encode(args.prompt!, { addSpecialTokens: true });
  else throw noTokenizer(args.model);

  const decoder = tok?.createStreamDecoder({ skipSpecialTokens: true });
  const ids: number[] = [];
  let text = '';
  const show = !args.json;
  model.resetPeak();
  const it = model.generateStream(promptIds, generateOptions(model, args, signal));
  let stats: GenerateStats;
  for (;;) {
    const r = await it.next();
    if (r.done) { stats = r.value; break; }
    ids.push(r.value);
    const piece = decoder ? decoder.push(r.value) : `${ids.length > 1 ? ' ' : ''}${r.value}`;
    text += piece;
    if (show) await writeAll(io.stdout, piece);
  }
  const tail = decoder?.flush() ?? '';
  text += tail;
  const figures = figuresOf(model, stats);
  if (args.json) {
    const out = {
      model: args.model,
      arch: model.config.arch,
      ...(args.prompt !== undefined ? { prompt: args.prompt } : {}),
      promptIds,
      ids,
      text,
      stats: { ...figures, prefillSeconds: stats.prefillSeconds, decodeSeconds: stats.decodeSeconds, weightBytes: model.weightBytes },
    };
    await writeAll(io.stdout, `${JSON.stringify(out)}\n`);
    return;
  }
  await writeAll(io.stdout, `${tail}\n`);
  // On stderr whatever stdout is (llama.cpp does the same): `npm start | cat` still shows it.
  if (!args.quiet) await writeAll(io.stderr, `${statsLine(figures)}\n`);
}
