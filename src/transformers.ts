// A transformers.js-style facade for people coming from that library:
//   const model = await AutoModelForCausalLM.from_pretrained('Zyphra/Zamba2-1.2B-instruct');
//   const out = await model.generate({ input_ids, max_new_tokens: 20 });   // number[][]
import { loadModel, type LoadModelOptions, type MambaModel } from './api.ts';
import type { ModelSource } from './io/open-source.ts';
import { openModelSource } from './io/open-source.ts';
import { Tokenizer } from './tokenizer/index.ts';
import { InputError } from './errors.ts';

export interface FacadeGenerateOptions {
  input_ids: number[] | number[][] | { tolist(): number[][] };
  max_new_tokens?: number;
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  repetition_penalty?: number;
  seed?: number;
  eos_token_id?: number | number[];
  /** Called with each new token id of row 0. */
  streamer?: { put(ids: number[][]): void; end(): void };
}

export class CausalLM {
  constructor(readonly model: MambaModel) {}

  get config() { return this.model.config; }

  async generate(o: FacadeGenerateOptions): Promise<number[][]> {
    const raw = typeof (o.input_ids as { tolist?: unknown }).tolist === 'function'
      ? (o.input_ids as { tolist(): number[][] }).tolist() : o.input_ids as number[] | number[][];
    const rows = (Array.isArray(raw[0]) ? raw : [raw]) as number[][];
    if (rows.length === 0) throw new InputError('input_ids is empty');
    const eos = o.eos_token_id === undefined ? undefined : Array.isArray(o.eos_token_id) ? o.eos_token_id : [o.eos_token_id];
    const out = await this.model.generate(rows, {
      maxNewTokens: o.max_new_tokens ?? 20, doSample: o.do_sample ?? false, temperature: o.temperature,
      topK: o.top_k, topP: o.top_p, repetitionPenalty: o.repetition_penalty, seed: o.seed, eosTokenIds: eos,
      onToken: o.streamer ? (id, row) => { if (row === 0) o.streamer!.put([[id]]); } : undefined,
    });
    o.streamer?.end();
    return out;
  }

  async forward(input_ids: number[][]) { return this.model.forward(input_ids); }

  dispose(): Promise<void> { return this.model.dispose(); }
}

export const AutoModelForCausalLM = {
  async from_pretrained(source: ModelSource, opts: LoadModelOptions & { progress_callback?: LoadModelOptions['onProgress'] } = {}): Promise<CausalLM> {
    return new CausalLM(await loadModel(source, { ...opts, onProgress: opts.onProgress ?? opts.progress_callback }));
  },
};

/** The files a tokenizer is made from (a Hub id downloads these alone, not the weights). */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

export const AutoTokenizer = {
  async from_pretrained(source: ModelSource): Promise<Tokenizer> {
    const src = await openModelSource(source, { files: TOKENIZER_FILES });
    try {
      const json = await src.readTextIfExists('tokenizer.json');
      if (json === undefined) throw new InputError('this model source has no tokenizer.json');
      return await Tokenizer.fromJSON(json, await src.readTextIfExists('tokenizer_config.json'));
    } finally {
      if (src !== source) await src.close?.().catch(() => undefined);
    }
  },
};
