// Exactness on trained weights: the shipped default model (assets/default-model) against the
// figures its PyTorch trainer stored at export (reference.json: bf16-rounded weights, f32 compute,
// scripts/train/train.py).
//   - mean next-token NLL over a held-out passage of <s> + 1024 tokens: runtime = trainer within
//     1e-3 relative (default load options, i.e. what npm start runs). On SwiftShader, ~8x slower
//     than lavapipe here (a full pass takes 2-4 minutes on a loaded 2-core machine), the default is
//     the first 256 tokens against the trainer's per-token figures; MSL_RUNTIME_TOKENS=1024 runs all;
//   - the 32-token greedy continuation of the trainer's exactness prompt: runtime ids = PyTorch's
//     exactly, with the default options (f16 KV cache where the adapter has shader-f16) and with
//     an f32 KV cache (one run where the default is f32);
// The f64 reference on the same passage (the same for every adapter, so once): test/unit/default-model-ref.test.ts.
// Quantized at load, the same passage: test/gpu/default-model-quant.test.ts.
// All figures are printed. MSL_DEFAULT_MODEL_DIR points it at another trainer export.
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { mean, nextTokenNlls } from '../helpers/checkpoint-ref.ts';
import { DEFAULT_MODEL_DIR as DIR, DEFAULT_MODEL_VOCAB as V, defaultModelReference as ref, relErr } from '../helpers/default-model.ts';
import { timedTest } from '../helpers/timed-test.ts';
import { loadModel } from '../../src/api.ts';

const test = timedTest(true);

test('reference.json is a trainer export: passage of >= 1024 predicted tokens, per-token NLLs, 32 greedy ids', async () => {
  const p = ref.passage;
  assert.ok(p.ids.length >= 1025 && p.ids[0] === 1, 'passage = <s> + at least 1024 tokens');
  assert.is(p.predicted_tokens, p.ids.length - 1);
  assert.is(p.token_nll.length, p.predicted_tokens);
  assert.ok(Math.abs(mean(p.token_nll) - p.mean_nll) < 1e-5, 'per-token NLLs average to the stored mean');
  assert.ok(p.mean_nll > 0 && p.mean_nll < 8, `a trained model: NLL ${p.mean_nll}`);
  assert.is(ref.greedy.new_ids.length, 32);
  assert.match(ref.trainer_commit, /^[0-9a-f]{40}/);
});

test('runtime mean NLL over the held-out passage = the trainer\'s within 1e-3 relative', async () => {
  const ctx = await testGpu();
  const model = await loadModel(DIR, { device: ctx, noTokenizer: true });
  try {
    assert.is(model.config.vocabSize, V);
    const all = ref.passage.predicted_tokens;
    const n = Math.min(all, Number(process.env.MSL_RUNTIME_TOKENS ?? (model.deviceName === 'swiftshader' ? 256 : all)));
    const ids = ref.passage.ids.slice(0, n + 1);
    const out = await model.forward([ids]);
    const nll = mean(nextTokenNlls(out.data, ids, V));
    const trainer = n === all ? ref.passage.mean_nll : mean(ref.passage.token_nll, n);
    const r = relErr(nll, trainer);
    console.log(`    ${model.deviceName}: runtime NLL ${nll.toFixed(6)} vs trainer ${trainer.toFixed(6)} ` +
      `over ${n} tokens (rel ${r.toExponential(2)}; perplexity ${Math.exp(nll).toFixed(2)})`);
    assert.ok(r <= 1e-3, `runtime NLL ${nll} vs trainer ${trainer}: rel ${r}`);
  } finally {
    await model.dispose();
  }
});

test('runtime greedy 32 tokens = PyTorch\'s (default KV cache and f32 KV cache)', async () => {
  const ctx = await testGpu();
  // Without shader-f16 (SwiftShader) the default KV cache is f32 already: one run covers both.
  for (const kvDtype of ctx.features.shaderF16 ? [undefined, 'f32'] as const : [undefined]) {
    const model = await loadModel(DIR, { device: ctx, kvDtype });
    try {
      // The prompt tokenizes as the trainer tokenized it (the same tokenizer.json, through our tokenizer).
      assert.equal(model.tokenizer!.encode(ref.greedy.prompt, { addSpecialTokens: true }), ref.greedy.prompt_ids);
      const seq = await model.generate(ref.greedy.prompt_ids, { maxNewTokens: 32, eosTokenIds: [] });
      assert.equal(seq.slice(ref.greedy.prompt_ids.length), ref.greedy.new_ids,
        `${model.deviceName}, KV ${kvDtype ?? 'default'}: greedy ids differ from PyTorch's (smallest top-2 gap there ${ref.greedy.min_top2_margin})`);
    } finally {
      await model.dispose();
    }
  }
  console.log(`    greedy "${ref.greedy.prompt}" + 32 ids identical (PyTorch's smallest top-2 logit gap ${ref.greedy.min_top2_margin.toFixed(3)})`);
});

test.run();
