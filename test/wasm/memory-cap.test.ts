// The wasm32 4 GiB cap in the planner and at load: planMemory({ backend: 'wasm' }) says whether a
// model fits; loadModel on the Wasm backend refuses one that cannot (OutOfMemoryError with needed
// vs available, before any weight is allocated) and names a quantization under which it would.
// Real shapes: Zamba2-2.7B (bf16 5.4 GB: fits as q8_0), Zamba2-7B (bf16 15 GB: does not fit even as
// q4_k, not with its 2048-token KV cache on top), streamed from a synthetic checkpoint (headers
// only are read before the refusal). A small memory cap does the same for a fixture that fits as q4_k.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/api.ts';
import { OutOfMemoryError } from '../../src/errors.ts';
import { parseConfig } from '../../src/models/parse-config.ts';
import { checkWasmFits, planMemory } from '../../src/runtime/planner.ts';
import { WasmBackend } from '../../src/backends/wasm/backend.ts';
import { WASM32_MAX_BYTES } from '../../src/backends/wasm/memory.ts';
import { syntheticCheckpoint, zamba2_1p2bConfig, zamba2_2p7bConfig, zamba2_7bConfig } from '../../bench/synthetic.ts';
import { makeFixture } from '../fixtures/index.ts';

async function refusal(p: Promise<unknown>): Promise<OutOfMemoryError> {
  try { await p; } catch (e) {
    assert.instance(e, OutOfMemoryError, String((e as Error).message));
    return e as OutOfMemoryError;
  }
  assert.unreachable('expected OutOfMemoryError');
  throw new Error('unreachable');
}

test('planMemory with backend wasm: the 4 GiB limit and whether each released size fits', () => {
  const plan = (cfg: Record<string, unknown>, quantize?: 'q8_0' | 'q4_k') => planMemory(parseConfig(cfg), { backend: 'wasm', quantize, maxTokens: 2048, kvDtype: 'f16' });
  assert.is(plan(zamba2_1p2bConfig()).limitBytes, WASM32_MAX_BYTES);
  assert.ok(plan(zamba2_1p2bConfig()).fits, '1.2B bf16 fits');
  assert.not.ok(plan(zamba2_2p7bConfig()).fits, '2.7B bf16 does not');
  assert.ok(plan(zamba2_2p7bConfig(), 'q8_0').fits, '2.7B q8_0 does');
  assert.not.ok(plan(zamba2_7bConfig(), 'q4_k').fits, '7B q4_k does not');
  assert.is(planMemory(parseConfig(zamba2_2p7bConfig())).limitBytes, Infinity, 'WebGPU: no such limit known');
  assert.throws(() => checkWasmFits(parseConfig(zamba2_2p7bConfig()), { backend: 'wasm', kvDtype: 'f16' }), /fits with quantize: 'q8_0'/);
  assert.throws(() => checkWasmFits(parseConfig(zamba2_7bConfig()), { backend: 'wasm', kvDtype: 'f16' }), /does not fit even with quantize: 'q4_k'/);
  checkWasmFits(parseConfig(zamba2_2p7bConfig()), { backend: 'wasm', kvDtype: 'f16', quantize: 'q8_0' });
  checkWasmFits(parseConfig(zamba2_7bConfig()), { backend: 'webgpu' });
});

test('loadModel on Wasm refuses a model that cannot fit, before allocating, naming a quantization that fits', async () => {
  const be = await WasmBackend.create({ threads: 1 });
  try {
    for (const [cfg, re] of [[zamba2_2p7bConfig(), /fits with quantize: 'q8_0'/], [zamba2_7bConfig(), /does not fit even with quantize: 'q4_k'/]] as const) {
      const e = await refusal(loadModel(syntheticCheckpoint(cfg).source, { backend: be, noTokenizer: true }));
      assert.match(e.message, re);
      assert.match(e.message, /4 GiB/);
      assert.ok(e.neededBytes > e.availableBytes && e.availableBytes <= WASM32_MAX_BYTES, `needed ${e.neededBytes} vs available ${e.availableBytes}`);
      assert.is(be.memoryStats().peakBytes, 0, 'nothing was allocated');
    }
  } finally {
    await be.destroy();
  }
});

test('a smaller memory cap: f32 refused with the quantization named, and that quantization loads and runs', async () => {
  const fx = makeFixture({ arch: 'mamba2', variant: 'wide-256', dtype: 'f32', seed: 5 });
  const probe = await WasmBackend.create({ threads: 1 });
  const roomy = await loadModel(new Map(fx.files), { backend: probe, noTokenizer: true, warmup: false, maxTokens: 64, prefillChunk: 8 });
  const f32Bytes = roomy.weightBytes;
  await roomy.dispose();
  await probe.destroy();
  // A cap (whole 64 KiB pages) between the q4_k plan and the f32 weights alone.
  const cap = Math.floor((f32Bytes * 0.8) / 65536) * 65536;
  const be = await WasmBackend.create({ threads: 1, maxMemoryBytes: cap });
  try {
    const e = await refusal(loadModel(new Map(fx.files), { backend: be, noTokenizer: true, warmup: false, maxTokens: 64, prefillChunk: 8 }));
    assert.match(e.message, /fits with quantize: 'q(8_0|4_k)'/);
    assert.is(be.memoryStats().liveBytes, 0);
    const q = /quantize: '(q8_0|q4_k)'/.exec(e.message)![1] as 'q8_0' | 'q4_k';
    const model = await loadModel(new Map(fx.files), { backend: be, noTokenizer: true, warmup: false, maxTokens: 64, prefillChunk: 8, quantize: q });
    try {
      const out = await model.generate([1, 2, 3], { maxNewTokens: 4, eosTokenIds: [] });
      assert.is(out.length, 7);
      assert.ok(model.memoryStats().peakBytes <= cap);
    } finally {
      await model.dispose();
    }
  } finally {
    await be.destroy();
  }
});

test.run();
