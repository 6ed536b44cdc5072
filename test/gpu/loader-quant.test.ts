// Quantized weights at load (src/io/loader.ts): `quantize` on float checkpoints and GGUF files of
// every block type. Every stored part must be byte-identical to the TypeScript reference of the
// format (src/quant/reference.ts) applied to that part's rows: quantizeToDevice for float sources,
// repackToDevice of the file's own blocks for GGUF. Also: the recipe (which tensors get which
// format, what stays high precision), splits of quantized tensors under a small binding limit,
// the exact weight-byte plan, typed errors before allocation, and nothing leaked on failure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testModelBackend as testBackend } from '../helpers/gpu.ts';
import { makeFixture, type FixtureOptions } from '../fixtures/index.ts';
import { loadCheckpoint, plannedWeightBytes } from '../../src/io/loader.ts';
import { MemorySource } from '../../src/io/sources.ts';
import { encodeMamba2Gguf, type GgufDataType } from '../../src/io/gguf-writer.ts';
import { readGgufHeader } from '../../src/io/gguf.ts';
import { deviceLayout, type QuantFormat } from '../../src/quant/formats.ts';
import { quantizeToDevice, repackToDevice } from '../../src/quant/reference.ts';
import { isQuantDType, type WeightTensor } from '../../src/backends/tensor.ts';
import type { Backend } from '../../src/backends/backend.ts';
import { CheckpointError, UnsupportedError } from '../../src/errors.ts';
import { quantizedFixture } from '../helpers/quant-fixture.ts';

async function partBytes(be: Backend, t: WeightTensor, i: number): Promise<Uint8Array> {
  const p = t.parts[i];
  const K = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const n = isQuantDType(t.dtype) ? deviceLayout(t.dtype, p.rows, K).totalBytes : p.buffer.size;
  return new Uint8Array(await be.read(p.buffer, 0, n));
}

const FLOAT_CASES: { opts: FixtureOptions; mode: 'q8_0' | 'q4_k' }[] = [
  { opts: { arch: 'mamba2', variant: 'wide-256', dtype: 'bf16', seed: 31 }, mode: 'q4_k' },
  { opts: { arch: 'mamba2', variant: 'wide-256', dtype: 'f32', seed: 32 }, mode: 'q8_0' },
  { opts: { arch: 'zamba2', variant: 'wide-256', dtype: 'f16', seed: 33 }, mode: 'q4_k' },
  { opts: { arch: 'zamba2', variant: 'hybrid-1block', dtype: 'bf16', seed: 34 }, mode: 'q4_k' }, // K = 32, 64: q5_0 / q8_0 fallbacks
  { opts: { arch: 'mamba2', variant: 'untied-g2', dtype: 'f32', seed: 35 }, mode: 'q8_0' },       // K = 24: stays f32
];

for (const { opts, mode } of FLOAT_CASES) {
  for (const limit of [undefined, 40_000]) {
    test(`loader quantize ${mode}: ${opts.arch}/${opts.variant}/${opts.dtype}${limit ? ` split at ${limit} B` : ''}: parts byte-identical to the reference`, async () => {
      const be = await testBackend();
      const fx = makeFixture(opts);
      const q = quantizedFixture(fx, mode);
      be.trimPool();
      const before = be.memoryStats().liveBytes;
      const ck = await loadCheckpoint(be, new MemorySource(fx.files), { quantize: mode, maxBindingBytes: limit, chunkBytes: 4096 });
      assert.is(be.memoryStats().liveBytes - before, ck.weightBytes, 'live bytes = weight bytes');
      try {
        let quantized = 0, split = 0;
        for (const [name, t] of ck.tensors) {
          assert.is(t.dtype, q.dtypes.get(name), `${name}: dtype`);
          if (name.includes('adapter_list')) assert.ok(!isQuantDType(t.dtype), `${name}: LoRA adapters stay 16/32-bit`);
          if (!isQuantDType(t.dtype)) continue;
          quantized++;
          if (t.parts.length > 1) split++;
          const src = fx.weights.get(name) ?? fx.weights.get('backbone.embedding.weight')!;
          const K = t.shape[1];
          for (let i = 0; i < t.parts.length; i++) {
            const p = t.parts[i];
            const rows = Float32Array.from(src.values.subarray(p.rowStart * K, (p.rowStart + p.rows) * K));
            const want = quantizeToDevice(t.dtype as QuantFormat, rows, p.rows, K);
            const got = await partBytes(be, t, i);
            assert.is(got.byteLength, want.byteLength, `${name}#${i}: size`);
            for (let b = 0; b < want.byteLength; b++) if (got[b] !== want[b]) assert.unreachable(`${name}#${i}: byte ${b} is ${got[b]}, reference ${want[b]}`);
          }
        }
        if (opts.variant === 'untied-g2') assert.is(quantized, 0, 'rows of 24 values cannot be block-quantized');
        else assert.ok(quantized > 0, 'some tensors quantized');
        if (limit && opts.variant === 'wide-256') assert.ok(split > 0, 'some quantized tensors split into parts');
        assert.is(ck.weightBytes, plannedWeightBytes(ck.config, { srcDtype: ({ f32: 'F32', f16: 'F16', bf16: 'BF16' } as const)[opts.dtype], quantize: mode, maxBindingBytes: limit ?? be.limits.maxBindingBytes }), 'planned weight bytes');
      } finally {
        ck.dispose();
      }
      be.trimPool(); // readback staging of the checks above
      assert.is(be.memoryStats().liveBytes, before, 'dispose frees every part');
    });
  }
}

test('loader quantize: q4_k recipe on a wide Mamba2: q6_k tied head, q4_k matrices, f32 vectors', async () => {
  const be = await testBackend();
  const fx = makeFixture({ arch: 'mamba2', variant: 'wide-256', dtype: 'bf16', seed: 36 });
  const ck = await loadCheckpoint(be, new MemorySource(fx.files), { quantize: 'q4_k' });
  try {
    assert.is(ck.tensors.get('backbone.embeddings.weight')!.dtype, 'q6_k');
    assert.is(ck.tensors.get('backbone.layers.0.mixer.in_proj.weight')!.dtype, 'q4_k');
    assert.is(ck.tensors.get('backbone.layers.1.mixer.out_proj.weight')!.dtype, 'q4_k');
    for (const v of ['conv1d.weight', 'conv1d.bias', 'A_log', 'D', 'dt_bias', 'norm.weight']) {
      assert.is(ck.tensors.get(`backbone.layers.0.mixer.${v}`)!.dtype, 'f32', v);
    }
  } finally {
    ck.dispose();
  }
});

const GGUF_TYPES: GgufDataType[] = ['Q8_0', 'Q4_0', 'Q5_0', 'Q4_K', 'Q6_K', 'F16', 'BF16', 'F32'];

test(`loader GGUF: Mamba2 files of every type (${GGUF_TYPES.join(', ')}) load with blocks repacked byte for byte`, async () => {
  const be = await testBackend();
  const fx = makeFixture({ arch: 'mamba2', variant: 'wide-256', dtype: 'f32', seed: 37 });
  const tensors = new Map([...fx.weights].map(([k, v]) => [k, { shape: v.shape, values: v.values }]));
  for (const type of GGUF_TYPES) {
    const { bytes } = encodeMamba2Gguf({ config: fx.config, tensors, matrixType: type });
    const header = await readGgufHeader(new MemorySource({ 'm.gguf': bytes }), 'm.gguf');
    be.trimPool();
    const before = be.memoryStats().liveBytes;
    const ck = await loadCheckpoint(be, new MemorySource({ 'm.gguf': bytes }), { chunkBytes: 2048, maxBindingBytes: 60_000 });
    try {
      assert.is(ck.config.arch, 'mamba2');
      assert.ok(ck.tokenizer, `${type}: the placeholder tokenizer comes from the metadata`);
      const inProj = ck.tensors.get('backbone.layers.0.mixer.in_proj.weight')!;
      const g = header.tensors.get('blk.0.ssm_in.weight')!;
      const file = bytes.subarray(g.offset, g.offset + g.byteLength);
      const K = inProj.shape[1];
      if (isQuantDType(inProj.dtype)) {
        assert.is(inProj.dtype, type.toLowerCase(), `${type}: kept as the file's block format`);
        const blockBytes = g.byteLength / (inProj.shape[0] * K) * K; // bytes per row
        for (let i = 0; i < inProj.parts.length; i++) {
          const p = inProj.parts[i];
          const want = repackToDevice(inProj.dtype as QuantFormat, file.subarray(p.rowStart * blockBytes, (p.rowStart + p.rows) * blockBytes), p.rows, K);
          const got = await partBytes(be, inProj, i);
          for (let b = 0; b < want.byteLength; b++) if (got[b] !== want[b]) assert.unreachable(`${type} part ${i}: byte ${b}`);
        }
      } else {
        assert.is(inProj.dtype, type.toLowerCase(), `${type}: float kept`);
      }
      // A_log comes back from A = -exp(A_log) within f32 rounding.
      const aLog = new Float32Array(await be.read(ck.tensors.get('backbone.layers.1.mixer.A_log')!.parts[0].buffer, 0, 4 * 8));
      const want = fx.weights.get('backbone.layers.1.mixer.A_log')!.values;
      for (let h = 0; h < 8; h++) assert.ok(Math.abs(aLog[h] - want[h]) <= 2e-7 * Math.max(1, Math.abs(want[h])), `A_log[${h}]`);
    } finally {
      ck.dispose();
    }
    be.trimPool();
    assert.is(be.memoryStats().liveBytes, before, `${type}: freed`);
  }
});

test('loader GGUF and quantize: typed errors before anything is allocated; a NaN weight fails quantization and frees the partial load', async () => {
  const be = await testBackend();
  const fx = makeFixture({ arch: 'mamba2', variant: 'tied-g1', dtype: 'f32', seed: 38 });
  be.trimPool();
  const before = be.memoryStats().liveBytes;
  const expect = async (label: string, fn: () => Promise<unknown>, cls: new (...a: never[]) => Error, re: RegExp) => {
    try { await fn(); assert.unreachable(`${label}: loaded`); } catch (e) {
      assert.instance(e, cls, `${label}: ${(e as Error).message}`);
      assert.match((e as Error).message, re, label);
    }
    assert.is(be.memoryStats().liveBytes, before, `${label}: nothing left allocated`);
  };
  await expect('unknown quantize', () => loadCheckpoint(be, new MemorySource(fx.files), { quantize: 'q3_k' as never }), UnsupportedError, /quantize/);
  const tensors = new Map([...fx.weights].map(([k, v]) => [k, { shape: v.shape, values: v.values }]));
  const good = encodeMamba2Gguf({ config: fx.config, tensors, matrixType: 'Q8_0' }).bytes;
  await expect('truncated GGUF', () => loadCheckpoint(be, new MemorySource({ 'm.gguf': good.subarray(0, good.byteLength - 100) })), CheckpointError, /./);
  const two = new MemorySource({ 'a.gguf': good, 'b.gguf': good });
  await expect('two GGUF files', () => loadCheckpoint(be, two), CheckpointError, /several GGUF/);
  // A NaN in the middle of a matrix: the tensors before it were already on the device.
  const files = new Map(fx.files);
  const bad = makeFixture({ arch: 'mamba2', variant: 'wide-256', dtype: 'f32', seed: 39 });
  const st = new Uint8Array(bad.files.get('model.safetensors')!);
  const hdrLen = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + hdrLen)));
  const [s0] = header['backbone.layers.1.mixer.out_proj.weight'].data_offsets as [number, number];
  new DataView(st.buffer, st.byteOffset).setFloat32(8 + hdrLen + s0 + 4 * 300, NaN, true);
  files.clear();
  for (const [k, v] of bad.files) files.set(k, k === 'model.safetensors' ? st : v);
  await expect('NaN weight', () => loadCheckpoint(be, new MemorySource(files), { quantize: 'q8_0' }), CheckpointError, /NaN or infinite/);
});

test.run();
