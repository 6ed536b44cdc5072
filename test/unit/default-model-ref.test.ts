// The shipped default model (assets/default-model) through the float64 reference (test/reference/):
// its mean next-token NLL over the first REF_TOKENS tokens of the held-out passage equals the
// trainer's per-token figures in reference.json (1e-3 relative), and its 32 greedy ids after the
// exactness prompt equal PyTorch's. Independent of any adapter, so it runs once, here; the runtime
// is held to the same figures on every adapter in test/gpu/default-model.test.ts.
// Plain JS loops: ~65 s for all 1024 tokens on a loaded 2-core machine, so by default the first
// 256 (MSL_REF_TOKENS=1024 runs the whole passage).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mean, nextTokenNlls, readCheckpointForRef } from '../helpers/checkpoint-ref.ts';
import { DEFAULT_MODEL_DIR as DIR, DEFAULT_MODEL_VOCAB as V, defaultModelReference as ref, relErr } from '../helpers/default-model.ts';
import { refForward, refGreedy } from '../reference/index.ts';

const REF_TOKENS = Number(process.env.MSL_REF_TOKENS ?? 256);

test(`the f64 reference agrees: NLL over the first ${REF_TOKENS} passage tokens, greedy ids`, async () => {
  const m = readCheckpointForRef(DIR);
  const n = Math.min(REF_TOKENS, ref.passage.predicted_tokens);
  const ids = ref.passage.ids.slice(0, n + 1);
  const t0 = performance.now();
  const { logits } = refForward(m, ids);
  const nll = mean(nextTokenNlls(logits, ids, V));
  const s = (performance.now() - t0) / 1000;
  const trainer = mean(ref.passage.token_nll, n);
  const r = relErr(nll, trainer);
  const line = `    f64 reference NLL ${nll.toFixed(6)} vs trainer ${trainer.toFixed(6)} over ${n} tokens (rel ${r.toExponential(2)}, ${s.toFixed(1)} s)`;
  console.log(line);
  assert.ok(r <= 1e-3, `f64 reference NLL ${nll} vs trainer ${trainer}`);
  assert.equal(refGreedy(m, ref.greedy.prompt_ids, 32), ref.greedy.new_ids, 'f64 reference greedy ids differ from PyTorch\'s');
});

test.run();
