// The shipped default model (assets/default-model, or MSL_DEFAULT_MODEL_DIR: another trainer
// export) and the figures its trainer stored beside it (reference.json), for the tests that hold
// the runtime and the f64 reference to them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_MODEL_DIR = process.env.MSL_DEFAULT_MODEL_DIR ?? join(new URL('../../', import.meta.url).pathname, 'assets/default-model');
/** The default model's vocabulary (the Mistral tokenizer). */
export const DEFAULT_MODEL_VOCAB = 32000;

export interface DefaultModelReference {
  trainer_commit: string;
  /** The held-out passage: ids (<s> first), per-token NLLs of the trainer, their mean. */
  passage: { ids: number[]; predicted_tokens: number; mean_nll: number; token_nll: number[] };
  /** The exactness prompt and PyTorch's 32 greedy ids after it. */
  greedy: { prompt: string; prompt_ids: number[]; new_ids: number[]; min_top2_margin: number };
}

export const defaultModelReference = JSON.parse(readFileSync(join(DEFAULT_MODEL_DIR, 'reference.json'), 'utf8')) as DefaultModelReference;

export const relErr = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);
