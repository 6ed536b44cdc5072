// Whole models with quantized weights (`loadModel(src, { quantize })`) against the independent
// float64 reference run on the *dequantized* weights (test/helpers/quant-fixture.ts): every fixture
// variant, q8_0 and q4_k. Storage precision then adds no error of its own, so the bound is the f32
// one of model.test.ts: max |Δlogit| ≤ 1e-4, and greedy ids identical to the reference's. The wide
// variants have rows of 256 values, so q4_k/q6_k (not only their 32-block fallbacks) run there.
// Also printed (not asserted): how far quantization moves the logits from the unquantized model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { modelTarget } from '../helpers/gpu.ts';
import { makeFixture, randomIds, type FixtureOptions } from '../fixtures/index.ts';
import { refForward, refGreedy } from '../reference/index.ts';
import { loadModel } from '../../src/api.ts';
import { quantizedFixture } from '../helpers/quant-fixture.ts';
import { isQuantDType } from '../../src/backends/tensor.ts';

const VARIANTS: FixtureOptions[] = [
  { arch: 'zamba2', variant: 'hybrid-1block', dtype: 'bf16', seed: 41 },
  { arch: 'zamba2', variant: 'hybrid-2blocks', dtype: 'f16', seed: 42 },
  { arch: 'zamba2', variant: 'wide-256', dtype: 'bf16', seed: 43 },
  { arch: 'mamba2', variant: 'tied-g1', dtype: 'f32', seed: 44 },
  { arch: 'mamba2', variant: 'untied-g2', dtype: 'bf16', seed: 45 },
  { arch: 'mamba2', variant: 'wide-256', dtype: 'f32', seed: 46 },
];

const TOL = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) || (Number.isNaN(a[i]) ? Infinity : 0));
  return m;
}

for (const opts of VARIANTS) {
  for (const mode of ['q8_0', 'q4_k'] as const) {
    test(`model ${opts.arch}/${opts.variant}/${opts.dtype} quantize ${mode}: logits match the f64 reference on the dequantized weights (tol ${TOL}); greedy ids identical`, async () => {
      const fx = makeFixture(opts);
      const q = quantizedFixture(fx, mode);
      // f32 KV: the reference keeps keys and values in f64 (f16 KV has its own test).
      const model = await loadModel(new Map(fx.files), { ...(await modelTarget()), noTokenizer: true, warmup: false, quantize: mode, prefillChunk: 16, kvDtype: 'f32' });
      try {
        const quantized = [...q.dtypes.values()].filter(isQuantDType).length;
        if (opts.variant !== 'untied-g2') assert.ok(quantized > 0, 'some matrices are quantized');
        const V = model.config.vocabSize;
        const ids = randomIds(37, V, opts.seed);
        const out = await model.forward([ids]);
        const ref = refForward(q.fixture, ids).logits;
        const err = maxAbsDiff(out.data, ref);
        assert.ok(err <= TOL, `max |Δlogit| ${err} > ${TOL}`);
        const prompt = randomIds(9, V, opts.seed + 1);
        const seq = await model.generate(prompt, { maxNewTokens: 12, eosTokenIds: [] });
        assert.equal(seq.slice(prompt.length), refGreedy(q.fixture, prompt, 12));
        // How much the format itself moves the model (information for the closing note).
        const exact = refForward(fx, ids).logits;
        let scale = 0;
        for (const v of exact) scale = Math.max(scale, Math.abs(v));
        if (process.env.MSL_TEST_TIMING || process.env.MSL_QUANT_REPORT) {
          console.log(`  ${fx.name} ${mode}: ${quantized} tensors quantized; |Δlogit| vs unquantized ${maxAbsDiff(ref, exact).toExponential(2)} (logit scale ${scale.toFixed(1)}); runtime vs reference ${err.toExponential(2)}`);
        }
      } finally {
        await model.dispose();
      }
    });
  }
}

test.run();
