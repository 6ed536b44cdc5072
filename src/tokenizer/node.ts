// Node-only helper: load a tokenizer from a checkpoint folder (tokenizer.json and, when present,
// tokenizer_config.json). Kept out of index.ts so browser bundles never see node: imports.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError } from '../errors.ts';
import { Tokenizer } from './index.ts';

export async function fromFiles(dir: string): Promise<Tokenizer> {
  const jsonPath = join(dir, 'tokenizer.json');
  let json: string;
  try {
    json = await readFile(jsonPath, 'utf8');
  } catch (e) {
    throw new CheckpointError(jsonPath, 'cannot read tokenizer.json (only tokenizer.json-based BPE tokenizers are supported)', undefined, { cause: e });
  }
  let config: string | undefined;
  try {
    config = await readFile(join(dir, 'tokenizer_config.json'), 'utf8');
  } catch {
    config = undefined; // optional: without it there is no chat template and no BOS/EOS names
  }
  return Tokenizer.fromJSON(json, config);
}
