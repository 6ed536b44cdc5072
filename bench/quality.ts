// Quality of the default model (assets/default-model) as this runtime computes it: mean next-token
// NLL and perplexity over the held-out passage stored in reference.json (<s> + 1024 tokens of a
// held-out Moby-Dick chapter), beside the PyTorch trainer's figure for the same passage and its
// perplexity over the whole held-out split, for the stored bf16 weights and quantized at load to
// q8_0 and q4_k. A quality figure, not a timing: nothing is asserted here
// (test/gpu/default-model.test.ts holds the 1e-3 bound).
//
//   node --import ./scripts/register.mjs bench/quality.ts [--model DIR]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/index.node.ts';
import { meanNextTokenNll } from '../test/helpers/checkpoint-ref.ts';
import { jsonLine, table } from './common.ts';

const i = process.argv.indexOf('--model');
const dir = i >= 0 ? process.argv[i + 1] : join(new URL('..', import.meta.url).pathname, 'assets/default-model');
const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as {
  passage: { ids: number[]; source: string; mean_nll: number };
  heldout: { tokens: number; window: number; mean_nll: number; ppl: number };
};

// The stored weights (bf16), then each quantization recipe applied at load: what q8_0 and
// q4_k (llama.cpp's Q4_K_M rule) cost in NLL on the same passage.
const rows: (string | number)[][] = [];
for (const quantize of [undefined, 'q8_0', 'q4_k'] as const) {
  const model = await loadModel(dir, { noTokenizer: true, quantize });
  try {
    const t0 = performance.now();
    const out = await model.forward([ref.passage.ids]);
    const s = (performance.now() - t0) / 1000;
    const nll = meanNextTokenNll(out.data, ref.passage.ids, model.config.vocabSize);
    const rel = Math.abs(nll - ref.passage.mean_nll) / ref.passage.mean_nll;
    const weights = quantize ?? 'bf16 (stored)';
    rows.push([weights, nll.toFixed(5), Math.exp(nll).toFixed(2), (nll - ref.passage.mean_nll).toExponential(2), (model.weightBytes / 2 ** 20).toFixed(1)]);
    console.log(`${weights}: forward over the passage ${s.toFixed(1)} s on ${model.deviceName}`);
    jsonLine('quality', {
      model: dir.endsWith('assets/default-model') ? 'assets/default-model' : dir, adapter: model.deviceName, quantize: quantize ?? 'none',
      weightBytes: model.weightBytes, passageTokens: ref.passage.ids.length - 1, passageNll: nll, passagePpl: Math.exp(nll),
      trainerPassageNll: ref.passage.mean_nll, relDiff: rel,
      trainerHeldoutPpl: ref.heldout.ppl, trainerHeldoutTokens: ref.heldout.tokens,
    });
  } finally {
    await model.dispose();
  }
}
table(`default model quality (${ref.passage.source}, ${ref.passage.ids.length - 1} predicted tokens; PyTorch trainer: NLL ${ref.passage.mean_nll.toFixed(5)}, ` +
  `held-out perplexity ${ref.heldout.ppl.toFixed(2)} over ${ref.heldout.tokens} tokens)`,
  ['weights', 'passage NLL (nats/token)', 'perplexity', 'NLL - trainer', 'weight MiB'], rows);
