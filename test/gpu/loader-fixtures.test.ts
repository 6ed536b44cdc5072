// The loader against the independent fixture generator (test/fixtures): every Zamba2 variant and
// config spelling and every Mamba2 variant, in f32/f16/bf16, sharded and not. Each loaded value
// must equal the generator's stored value exactly (it records the values after dtype rounding).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testModelBackend } from '../helpers/gpu.ts';
import { makeFixture, ZAMBA2_VARIANTS, ZAMBA2_SPELLINGS, MAMBA2_VARIANTS, FIXTURE_DTYPES, type FixtureOptions } from '../fixtures/index.ts';
import { loadCheckpoint } from '../../src/io/loader.ts';
import { MemorySource } from '../../src/io/sources.ts';
import type { WeightTensor } from '../../src/backends/tensor.ts';
import type { Backend } from '../../src/backends/backend.ts';

function decode(bits: number, expBits: number, manBits: number): number {
  const sign = (bits >> (expBits + manBits)) & 1 ? -1 : 1;
  const e = (bits >> manBits) & ((1 << expBits) - 1);
  const m = bits & ((1 << manBits) - 1);
  const bias = (1 << (expBits - 1)) - 1;
  if (e === (1 << expBits) - 1) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** (1 - bias - manBits);
  return sign * (1 + m / 2 ** manBits) * 2 ** (e - bias);
}

async function values(be: Backend, t: WeightTensor): Promise<number[]> {
  const rowElems = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (const p of t.parts) {
    const n = p.rows * rowElems;
    const raw = await be.read(p.buffer, 0, n * (t.dtype === 'f32' ? 4 : 2));
    if (t.dtype === 'f32') out.push(...new Float32Array(raw));
    else out.push(...[...new Uint16Array(raw)].map((h) => (t.dtype === 'f16' ? decode(h, 5, 10) : decode(h, 8, 7))));
  }
  return out;
}

const cases: FixtureOptions[] = [];
for (const variant of ZAMBA2_VARIANTS) for (const spelling of ZAMBA2_SPELLINGS) for (const dtype of FIXTURE_DTYPES) {
  cases.push({ arch: 'zamba2', variant, spelling, dtype, seed: 5, shards: dtype === 'f16' ? 3 : 1, vocabSize: 31 });
}
for (const variant of MAMBA2_VARIANTS) for (const dtype of FIXTURE_DTYPES) {
  cases.push({ arch: 'mamba2', variant, dtype, seed: 6, shards: dtype === 'bf16' ? 2 : 1, vocabSize: 29 });
}

test(`fixtures: ${cases.length} generated checkpoints load with every value exact`, async () => {
  const be = await testModelBackend();
  for (const opts of cases) {
    const fx = makeFixture(opts);
    const ck = await loadCheckpoint(be, new MemorySource(fx.files), { maxBindingBytes: 256 });
    const label = fx.name;
    assert.is(ck.config.arch, fx.arch, label);
    assert.is(ck.tensors.size, fx.weights.size, `${label}: every fixture tensor is expected, and no more`);
    for (const [name, w] of fx.weights) {
      const canonical = name === 'backbone.embedding.weight' ? 'backbone.embeddings.weight' : name;
      const t = ck.tensors.get(canonical);
      assert.ok(t, `${label}: ${name} loaded`);
      const got = await values(be, t!);
      assert.is(got.length, w.values.length, `${label}: ${name} size`);
      for (let i = 0; i < got.length; i++) {
        if (!Object.is(got[i], w.values[i])) assert.unreachable(`${label}: ${name}[${i}] = ${got[i]}, stored ${w.values[i]}`);
      }
    }
    ck.dispose();
  }
});

test.run();
