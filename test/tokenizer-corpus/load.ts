// Loads the two reference tokenizers that npm dev dependencies ship, with both our Tokenizer and
// the oracle (@huggingface/tokenizers), once per process.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tokenizer as Oracle } from '@huggingface/tokenizers';
import { Tokenizer } from '../../src/tokenizer/index.ts';

export type Family = 'llama2' | 'llama3';
/** llama2: Mistral v0.1 / Llama 2 SentencePiece-style BPE with byte fallback (Zamba2's tokenizer). llama3: byte-level BPE. */
export const FAMILIES: Family[] = ['llama2', 'llama3'];

export function modelDir(f: Family): string {
  return fileURLToPath(new URL(`../../node_modules/@lenml/tokenizer-${f}/models/`, import.meta.url));
}

export function readFiles(f: Family): { json: string; config: string } {
  const d = modelDir(f);
  return { json: readFileSync(d + 'tokenizer.json', 'utf8'), config: readFileSync(d + 'tokenizer_config.json', 'utf8') };
}

const ours = new Map<Family, Promise<Tokenizer>>();
const oracles = new Map<Family, Oracle>();

export function loadOurs(f: Family): Promise<Tokenizer> {
  let p = ours.get(f);
  if (!p) { const { json, config } = readFiles(f); p = Tokenizer.fromJSON(json, config); ours.set(f, p); }
  return p;
}

export function loadOracle(f: Family): Oracle {
  let o = oracles.get(f);
  if (!o) { const { json, config } = readFiles(f); o = new Oracle(JSON.parse(json), JSON.parse(config)); oracles.set(f, o); }
  return o;
}
