// The Wasm sampler (assembly/host/sample.ts) against the TypeScript statement of the same rule
// (src/runtime/sampling.ts) on random logits, odd vocabulary sizes and every knob; plus the
// properties that make sampling trustworthy: top-k 1 and temperature 0 are argmax, top-p keeps
// the smallest nucleus, seeded draws repeat, and the draw frequencies follow softmax.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostWasm } from '../../src/wasm/host.ts';
import { SeededRandom, isGreedy, sampleToken, resolveSampling, validateSampling, type SamplingOptions } from '../../src/runtime/sampling.ts';
import { InputError } from '../../src/errors.ts';

function randomLogits(V: number, seed: number, spread = 3): Float32Array {
  const r = new SeededRandom(seed);
  const out = new Float32Array(V);
  for (let i = 0; i < V; i++) out[i] = (r.next() * 2 - 1) * spread;
  // Ties exercise the lower-index-first rule.
  if (V > 10) { out[7] = out[3]; out[V - 1] = out[3]; }
  return out;
}

test('wasm sampler equals the TypeScript rule over random cases', async () => {
  const host = await hostWasm();
  const configs: SamplingOptions[] = [
    { doSample: false },
    { doSample: true, temperature: 1 },
    { doSample: true, temperature: 0.7, topK: 5 },
    { doSample: true, temperature: 1.3, topP: 0.9 },
    { doSample: true, temperature: 0.9, topK: 40, topP: 0.5, repetitionPenalty: 1.3 },
    { doSample: true, temperature: 2, topK: 1 },
    { doSample: false, repetitionPenalty: 1.5 },
    { doSample: true, temperature: 0 },
  ];
  let n = 0;
  for (const V of [1, 2, 17, 333, 32000]) {
    for (let c = 0; c < configs.length; c++) {
      for (let s = 0; s < (V > 1000 ? 3 : 12); s++) {
        const o = configs[c];
        const logits = randomLogits(V, 1000 * V + 10 * c + s);
        const seen = new Set([0, 3, V - 1, 5].filter((i) => i < V));
        const u = new SeededRandom(s + 77).next();
        const fake = { next: () => u } as unknown as SeededRandom;
        const want = sampleToken(logits, o, seen, fake);
        const got = host.sample(logits, [...seen], resolveSampling(o), u);
        assert.is(got, want, `V ${V} config ${c} seed ${s}`);
        n++;
      }
    }
  }
  assert.ok(n > 300);
});

test('top-k 1 and temperature 0 are argmax; top-p keeps the smallest nucleus', async () => {
  const host = await hostWasm();
  const logits = Float32Array.from([0.1, 2.5, -1, 2.4, 0]);
  for (let i = 0; i < 20; i++) {
    assert.is(host.sample(logits, [], resolveSampling({ doSample: true, topK: 1 }), i / 20), 1);
    assert.is(host.sample(logits, [], resolveSampling({ doSample: true, temperature: 0 }), i / 20), 1);
  }
  // probs ∝ e^2.5, e^2.4, ...: top two: 0.47 + 0.43 ≥ 0.8; top-p 0.4 keeps only the first (p = 0.47).
  for (let i = 0; i < 20; i++) assert.is(host.sample(logits, [], resolveSampling({ doSample: true, topP: 0.4 }), i / 20), 1);
  const seen = new Set<number>();
  for (let i = 0; i < 50; i++) seen.add(host.sample(logits, [], resolveSampling({ doSample: true, topP: 0.8 }), i / 50));
  assert.equal([...seen].sort(), [1, 3]);
});

test('repetition penalty divides positive and multiplies negative logits of seen ids', async () => {
  const host = await hostWasm();
  const logits = Float32Array.from([1.0, 1.9, -0.5]);
  // Token 1 penalised by 2 → 0.95 < 1.0, so argmax moves to token 0.
  assert.is(host.sample(logits, [1], resolveSampling({ repetitionPenalty: 2 }), 0), 0);
  assert.is(host.sample(logits, [], resolveSampling({ repetitionPenalty: 2 }), 0), 1);
});

test('draw frequencies follow the softmax (chi-square, 4000 draws)', async () => {
  const host = await hostWasm();
  const logits = Float32Array.from([0, 1, 2, 0.5]);
  const p = Array.from(logits, (l) => Math.exp(l));
  const Z = p.reduce((a, b) => a + b);
  const counts = [0, 0, 0, 0];
  const rng = new SeededRandom(5);
  const N = 4000;
  for (let i = 0; i < N; i++) counts[host.sample(logits, [], resolveSampling({ doSample: true, temperature: 1 }), rng.next())]++;
  let chi = 0;
  for (let i = 0; i < 4; i++) { const e = (N * p[i]) / Z; chi += (counts[i] - e) ** 2 / e; }
  assert.ok(chi < 16.27, `chi-square ${chi} (3 dof, p = 0.001)`);
});

test('seeded generator repeats; bad knobs are typed errors', () => {
  const a = new SeededRandom(9), b = new SeededRandom(9), c = new SeededRandom(10);
  const sa = Array.from({ length: 8 }, () => a.next());
  assert.equal(sa, Array.from({ length: 8 }, () => b.next()));
  assert.not.equal(sa, Array.from({ length: 8 }, () => c.next()));
  assert.ok(sa.every((x) => x >= 0 && x < 1));
  assert.throws(() => validateSampling({ temperature: -1 }), (e: unknown) => e instanceof InputError);
  assert.throws(() => validateSampling({ topP: 0 }), (e: unknown) => e instanceof InputError);
  assert.throws(() => validateSampling({ topK: 1.5 }), (e: unknown) => e instanceof InputError);
  assert.throws(() => validateSampling({ repetitionPenalty: 0 }), (e: unknown) => e instanceof InputError);
});

test('doSample decides, as in transformers: a temperature alone stays greedy', async () => {
  const host = await hostWasm();
  const logits = Float32Array.from([0.1, 2.5, -1, 2.4, 0]);
  const rng = new SeededRandom(3);
  for (const o of [{ temperature: 1.5 }, { temperature: 0.7, topP: 0.9, topK: 3 }, { doSample: false, temperature: 2 }] as SamplingOptions[]) {
    assert.ok(isGreedy(o), JSON.stringify(o));
    assert.is(resolveSampling(o).doSample, false);
    // u near 1 would pick the least likely kept token if sampling were on.
    for (const u of [0, 0.5, 0.999]) assert.is(host.sample(logits, [], resolveSampling(o), u), 1, `${JSON.stringify(o)} u ${u}`);
    assert.is(sampleToken(logits, o, new Set(), rng), 1);
  }
  assert.not.ok(isGreedy({ doSample: true, temperature: 1.5 }));
  assert.ok(isGreedy({ doSample: true, temperature: 0 }), 'temperature 0 is argmax even with doSample');
  assert.is(host.sample(logits, [], resolveSampling({ doSample: true, temperature: 1.5 }), 0.999), 2, "sampling on: the least likely token");
  assert.throws(() => validateSampling({ doSample: 'yes' as unknown as boolean }), (e: unknown) => e instanceof InputError);
});

test.run();
