// The shipped default model (assets/default-model) quantized at load (q8_0, q4_k): what the
// quantizers cost in quality on trained weights, against the bf16 figures its trainer stored
// (reference.json). A property of the quantizers, not of a kernel variant (the quantized kernels
// are held to the f64 reference on the same dequantized weights in model-quant.test.ts), so the
// GPU lanes skip this file (scripts/run-tests.mjs).
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { mean, nextTokenNlls } from '../helpers/checkpoint-ref.ts';
import { DEFAULT_MODEL_DIR as DIR, DEFAULT_MODEL_VOCAB as V, defaultModelReference as ref } from '../helpers/default-model.ts';
import { timedTest } from '../helpers/timed-test.ts';
import { loadModel } from '../../src/api.ts';

const test = timedTest(true);

// Quantized at load: the NLL over the first 256 passage tokens may rise only a little over the
// trainer's (bf16) figure: perplexity +1% for q8_0 (exp(dNLL) - 1 <= 0.01) and +5% for q4_k
// (measured on lavapipe over these 256 tokens: -0.03% and +0.05%; the model is small and high-entropy). The kernels themselves are
// held to the f64 reference on the same dequantized weights in test/gpu/model-quant.test.ts.
for (const [quantize, maxRise] of [['q8_0', 0.01], ['q4_k', 0.05]] as const) {
  test(`quantize ${quantize}: passage perplexity within +${maxRise * 100}% of the trainer's bf16 figure`, async () => {
    const ctx = await testGpu();
    const model = await loadModel(DIR, { device: ctx, noTokenizer: true, quantize });
    try {
      const dtypes = new Set(model.matrixDtypes());
      assert.ok(dtypes.has(quantize), `matrices are ${[...dtypes]}`);
      const n = Math.min(256, ref.passage.predicted_tokens);
      const ids = ref.passage.ids.slice(0, n + 1);
      const nll = mean(nextTokenNlls((await model.forward([ids])).data, ids, V));
      const trainer = mean(ref.passage.token_nll, n);
      const rise = Math.exp(nll - trainer) - 1;
      console.log(`    ${quantize} on ${model.deviceName}: NLL ${nll.toFixed(6)} vs bf16 trainer ${trainer.toFixed(6)} over ${n} tokens: perplexity ${rise >= 0 ? '+' : ''}${(rise * 100).toFixed(3)}%`);
      assert.ok(rise <= maxRise, `perplexity rises ${(rise * 100).toFixed(2)}% with ${quantize}`);
      assert.ok(nll !== trainer, 'quantized weights change the figure at all');
    } finally {
      await model.dispose();
    }
  });
}

test.run();
