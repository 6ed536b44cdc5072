// Quantizing at load on worker threads (LoadOptions.quantizeThreads, src/io/quantize-pool.ts):
//   - every tensor's device bytes equal those of a load quantizing on the loading thread, and
//     every quantized part equals the TS reference, for bf16/f16/f32 sources, q8_0 and q4_k
//     recipes (q6_k head, q5_0/q8_0 fallbacks), parts split under a small binding limit, and tiny
//     chunks (a few rows, odd counts, the last one short);
//   - a NaN weight fails the load with CheckpointError: the GPU's live bytes return to where they
//     were and no worker is left; an abort mid-load does the same with AbortError;
//   - the host high-water mark counts the pool's buffers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testModelBackend as testBackend } from '../helpers/gpu.ts';
import { makeFixture, type FixtureOptions } from '../fixtures/index.ts';
import { loadCheckpoint, type LoadedCheckpoint } from '../../src/io/loader.ts';
import { MemorySource } from '../../src/io/sources.ts';
import { deviceLayout, type QuantFormat } from '../../src/quant/formats.ts';
import { quantizeToDevice } from '../../src/quant/reference.ts';
import { isQuantDType, type WeightTensor } from '../../src/backends/tensor.ts';
import type { Backend } from '../../src/backends/backend.ts';
import { AbortError, CheckpointError } from '../../src/errors.ts';
import { liveQuantWorkers } from '../../src/io/quantize-pool.ts';

async function partBytes(be: Backend, t: WeightTensor, i: number): Promise<Uint8Array> {
  const p = t.parts[i];
  const K = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const n = isQuantDType(t.dtype) ? deviceLayout(t.dtype, p.rows, K).totalBytes : p.buffer.size;
  return new Uint8Array(await be.read(p.buffer, 0, n));
}

async function settleWorkers(base: number): Promise<void> {
  for (let i = 0; i < 200 && liveQuantWorkers() > base; i++) await new Promise((r) => setTimeout(r, 10));
}

const CASES: { opts: FixtureOptions; mode: 'q8_0' | 'q4_k'; limit?: number }[] = [
  { opts: { arch: 'mamba2', variant: 'wide-256', dtype: 'bf16', seed: 51 }, mode: 'q4_k' },
  { opts: { arch: 'mamba2', variant: 'wide-256', dtype: 'f32', seed: 52 }, mode: 'q8_0', limit: 40_000 },
  { opts: { arch: 'zamba2', variant: 'wide-256', dtype: 'f16', seed: 53 }, mode: 'q4_k', limit: 40_000 },
  { opts: { arch: 'zamba2', variant: 'hybrid-1block', dtype: 'bf16', seed: 54 }, mode: 'q4_k' }, // q5_0 / q8_0 fallbacks
];

for (const { opts, mode, limit } of CASES) {
  test(`pooled quantize ${mode}: ${opts.arch}/${opts.variant}/${opts.dtype}${limit ? ` split at ${limit} B` : ''}: same bytes as the loading thread and the reference`, async () => {
    const be = await testBackend();
    const fx = makeFixture(opts);
    be.trimPool();
    const before = be.memoryStats().liveBytes;
    const common = { quantize: mode, maxBindingBytes: limit, chunkBytes: 3000 } as const;
    let pooled: LoadedCheckpoint | undefined, single: LoadedCheckpoint | undefined;
    try {
      pooled = await loadCheckpoint(be, new MemorySource(fx.files), { ...common, quantizeThreads: 2 });
      single = await loadCheckpoint(be, new MemorySource(fx.files), { ...common, quantizeThreads: 0 });
      // The pool holds 4 chunk buffers and two workers' Wasm memories (at least 1 MiB each).
      assert.ok(pooled.hostHighWaterBytes >= single.hostHighWaterBytes + 4 * 3000 + (2 << 20) - 3000 - (1 << 16),
        `high-water ${pooled.hostHighWaterBytes} (loading thread alone: ${single.hostHighWaterBytes}) counts the pool`);
      let quantized = 0;
      for (const [name, t] of pooled.tensors) {
        const u = single.tensors.get(name)!;
        assert.is(t.dtype, u.dtype, `${name}: dtype`);
        assert.is(t.parts.length, u.parts.length, `${name}: parts`);
        const src = fx.weights.get(name) ?? fx.weights.get('backbone.embedding.weight')!;
        for (let i = 0; i < t.parts.length; i++) {
          const got = await partBytes(be, t, i), ref = await partBytes(be, u, i);
          assert.is(got.byteLength, ref.byteLength, `${name}#${i}: size`);
          for (let b = 0; b < ref.byteLength; b++) if (got[b] !== ref[b]) assert.unreachable(`${name}#${i}: byte ${b} is ${got[b]} pooled, ${ref[b]} on the loading thread`);
          if (!isQuantDType(t.dtype)) continue;
          quantized++;
          const p = t.parts[i], K = t.shape[1];
          const want = quantizeToDevice(t.dtype as QuantFormat, Float32Array.from(src.values.subarray(p.rowStart * K, (p.rowStart + p.rows) * K)), p.rows, K);
          for (let b = 0; b < want.byteLength; b++) if (got[b] !== want[b]) assert.unreachable(`${name}#${i}: byte ${b} is ${got[b]}, reference ${want[b]}`);
        }
      }
      assert.ok(quantized > 0, 'some parts quantized');
    } finally {
      pooled?.dispose();
      single?.dispose();
    }
    be.trimPool();
    assert.is(be.memoryStats().liveBytes, before, 'dispose frees every part');
  });
}

test('pooled quantize: a NaN weight fails with CheckpointError, an abort with AbortError; nothing left on the GPU, no worker left', async () => {
  const be = await testBackend();
  const base = liveQuantWorkers();
  const fx = makeFixture({ arch: 'mamba2', variant: 'wide-256', dtype: 'f32', seed: 55 });
  const st = new Uint8Array(fx.files.get('model.safetensors')!);
  const hdrLen = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + hdrLen)));
  const [s0] = header['backbone.layers.1.mixer.out_proj.weight'].data_offsets as [number, number];
  const bad = st.slice();
  new DataView(bad.buffer).setFloat32(8 + hdrLen + s0 + 4 * 300, NaN, true);
  const badFiles = new Map(fx.files);
  badFiles.set('model.safetensors', bad);
  be.trimPool();
  const before = be.memoryStats().liveBytes;
  for (const mode of ['q8_0', 'q4_k'] as const) {
    try {
      await loadCheckpoint(be, new MemorySource(badFiles), { quantize: mode, quantizeThreads: 2, chunkBytes: 3000 });
      assert.unreachable(`${mode}: NaN weight loaded`);
    } catch (e) {
      assert.instance(e, CheckpointError, (e as Error).message);
      assert.match((e as Error).message, /NaN or infinite/);
      assert.match((e as Error).message, /out_proj/);
    }
    be.trimPool();
    assert.is(be.memoryStats().liveBytes, before, `${mode} NaN: nothing left allocated`);
    await settleWorkers(base);
    assert.is(liveQuantWorkers(), base, `${mode} NaN: workers terminated`);
  }
  // Abort once a few chunks have been written.
  const ac = new AbortController();
  let events = 0;
  try {
    await loadCheckpoint(be, new MemorySource(fx.files), {
      quantize: 'q4_k', quantizeThreads: 2, chunkBytes: 3000, signal: ac.signal,
      onProgress: (p) => { if (p.phase === 'weights' && ++events === 5) ac.abort(new Error('stop now')); },
    });
    assert.unreachable('aborted load finished');
  } catch (e) {
    assert.instance(e, AbortError, (e as Error).message);
  }
  be.trimPool();
  assert.is(be.memoryStats().liveBytes, before, 'abort: nothing left allocated');
  await settleWorkers(base);
  assert.is(liveQuantWorkers(), base, 'abort: workers terminated');
});

test.run();
