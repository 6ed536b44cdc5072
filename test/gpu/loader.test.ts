// Checkpoint loader on the GPU: hand-built tiny Zamba2/Mamba2 checkpoints (odd sizes, random
// data) written with the safetensors writer, loaded from memory, a directory, and a local HTTP
// server with Range support; values read back and compared bit-exactly with the file (or with
// float64 references of the conversion); split parts; bounded host memory; every failure frees
// what it allocated. Comparisons are exact: loading moves bits, and each conversion has one
// correct IEEE result.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testModelBackend, rng, randn } from '../helpers/gpu.ts';
import { encodeSafetensors, writeCheckpointDir, type SafetensorsDType } from '../../src/io/safetensors-writer.ts';
import { loadCheckpoint, planParts, type LoadedCheckpoint } from '../../src/io/loader.ts';
import { MemorySource, type CheckpointSource } from '../../src/io/sources.ts';
import { parseConfig } from '../../src/models/parse-config.ts';
import { expectedTensors } from '../../src/models/layout.ts';
import type { WeightTensor } from '../../src/backends/tensor.ts';
import type { Backend } from '../../src/backends/backend.ts';
import { AbortError, CheckpointError, MambaScanError, UnsupportedError } from '../../src/errors.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures

const ZAMBA2 = {
  model_type: 'zamba2', hidden_size: 6, num_hidden_layers: 4, vocab_size: 37, mamba_d_state: 3, n_mamba_heads: 4,
  mamba_ngroups: 2, mamba_expand: 2, layers_block_type: ['mamba', 'hybrid', 'mamba', 'hybrid'], num_attention_heads: 4,
  num_key_value_heads: 2, num_mem_blocks: 2, use_shared_attention_adapter: true, adapter_rank: 3, intermediate_size: 10,
  use_mem_rope: true, time_step_limit: [0, 'INF'],
};
const ZAMBA2_JSON = JSON.stringify(ZAMBA2).replace('"INF"', 'Infinity'); // bare Infinity, as Python writes it
const MAMBA2 = {
  model_type: 'mamba2', hidden_size: 5, num_hidden_layers: 2, vocab_size: 23, num_heads: 2, head_dim: 5, state_size: 3,
  n_groups: 1, expand: 2, tie_word_embeddings: false, eos_token_id: 0,
};

const ITEM: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Random element bytes for a dtype: finite values only, subnormals included for 16-bit. */
function randomBytes(dtype: SafetensorsDType, n: number, seed: number): Uint8Array {
  const r = rng(seed);
  if (dtype === 'F32') {
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = randn(r) * (i % 7 === 0 ? 1e-3 : 1);
    return new Uint8Array(f.buffer);
  }
  const h = new Uint16Array(n);
  const maxExp = dtype === 'F16' ? 31 : 255;
  const manBits = dtype === 'F16' ? 10 : 7;
  for (let i = 0; i < n; i++) {
    const e = Math.floor(r() * maxExp); // never all-ones: no inf/NaN
    const m = Math.floor(r() * (1 << manBits));
    h[i] = (r() < 0.5 ? 0x8000 : 0) | (e << manBits) | m;
  }
  return new Uint8Array(h.buffer);
}

interface Built { files: Record<string, Uint8Array | string>; data: Map<string, { dtype: SafetensorsDType; bytes: Uint8Array }> }

function buildCheckpoint(configJson: string, dtype: SafetensorsDType, seed: number, o: { shards?: number; rename?: Record<string, string>; vectorDtype?: SafetensorsDType; extra?: boolean } = {}): Built {
  const cfg = parseConfig(configJson);
  const list = expectedTensors(cfg).map((e, i) => {
    const dt = e.role === 'vector' && o.vectorDtype ? o.vectorDtype : dtype;
    const n = e.shape.reduce((a, b) => a * b, 1);
    return { name: o.rename?.[e.name] ?? e.name, canonical: e.name, dtype: dt, shape: [...e.shape], data: randomBytes(dt, n, seed * 1000 + i) };
  });
  if (o.extra) list.push({ name: 'unused.position_ids', canonical: '', dtype: 'F32', shape: [3], data: randomBytes('F32', 3, 5) });
  const data = new Map(list.map((t) => [t.canonical || t.name, { dtype: t.dtype, bytes: t.data }]));
  const files: Record<string, Uint8Array | string> = { 'config.json': configJson };
  const shards = o.shards ?? 1;
  if (shards === 1) {
    files['model.safetensors'] = encodeSafetensors(list);
  } else {
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const mine = list.filter((_, i) => i % shards === s);
      for (const t of mine) weightMap[t.name] = name;
      files[name] = encodeSafetensors(mine);
    }
    files['model.safetensors.index.json'] = JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap });
  }
  return { files, data };
}

// ---------------------------------------------------------------------------------------------
// Independent float references (IEEE definitions, float64)

function decode(bits: number, expBits: number, manBits: number): number {
  const sign = (bits >> (expBits + manBits)) & 1 ? -1 : 1;
  const e = (bits >> manBits) & ((1 << expBits) - 1);
  const m = bits & ((1 << manBits) - 1);
  const bias = (1 << (expBits - 1)) - 1;
  if (e === (1 << expBits) - 1) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** (1 - bias - manBits);
  return sign * (1 + m / 2 ** manBits) * 2 ** (e - bias);
}
const FMT = { f16: [5, 10], bf16: [8, 7] } as const;

/** Round-to-nearest-even of x into a 16-bit format, by bracketing (IEEE overflow rule). */
function roundRef(x: number, fmt: 'f16' | 'bf16'): number {
  const [eb, mb] = FMT[fmt];
  const infBits = ((1 << eb) - 1) << mb;
  const s = x < 0 || Object.is(x, -0) ? 1 << (eb + mb) : 0;
  const a = Math.abs(x);
  const val = (h: number) => (h === infBits ? 2 ** (1 << (eb - 1)) : decode(h, eb, mb));
  let lo = 0, hi = infBits;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (val(mid) <= a) lo = mid; else hi = mid - 1; }
  if (lo === infBits) return s | infBits;
  const dl = a - val(lo), du = val(lo + 1) - a;
  return s | (dl < du ? lo : du < dl ? lo + 1 : lo & 1 ? lo + 1 : lo);
}

/** The source tensor as float64 values. */
function valuesOf(dtype: SafetensorsDType, bytes: Uint8Array): number[] {
  if (dtype === 'F32') return [...new Float32Array(bytes.slice().buffer)];
  const h = new Uint16Array(bytes.slice().buffer);
  const [eb, mb] = dtype === 'F16' ? FMT.f16 : FMT.bf16;
  return [...h].map((b) => decode(b, eb, mb));
}

/** Reads a GPU tensor back (all parts, in order) as raw bytes. */
async function readTensor(be: Backend, t: WeightTensor): Promise<Uint8Array> {
  const item = t.dtype === 'f32' ? 4 : 2;
  const rowElems = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Uint8Array(t.byteLength);
  let off = 0;
  for (const p of t.parts) {
    const n = p.rows * rowElems * item;
    out.set(new Uint8Array(await be.read(p.buffer, 0, n)), off);
    off += n;
  }
  assert.is(off, t.byteLength, `${t.name}: parts cover the tensor`);
  return out;
}

/** Checks every loaded tensor against the source bytes (exactly, or through the reference conversion). */
async function verifyAll(be: Backend, ck: LoadedCheckpoint, built: Built, label: string): Promise<number> {
  let checked = 0;
  for (const [name, t] of ck.tensors) {
    const src = built.data.get(name);
    assert.ok(src, `${label}: ${name} has a source`);
    const got = await readTensor(be, t);
    const srcDt = src!.dtype.toLowerCase();
    if (t.dtype === srcDt) {
      assert.ok(got.every((b, i) => b === src!.bytes[i]) && got.length === src!.bytes.length, `${label}: ${name} bytes differ`);
    } else if (t.dtype === 'f32') {
      const want = valuesOf(src!.dtype, src!.bytes);
      const f = new Float32Array(got.buffer);
      for (let i = 0; i < want.length; i++) if (!Object.is(f[i], Math.fround(want[i]))) assert.unreachable(`${label}: ${name}[${i}] ${f[i]} != ${want[i]}`);
    } else {
      const want = valuesOf(src!.dtype, src!.bytes);
      const h = new Uint16Array(got.buffer);
      for (let i = 0; i < want.length; i++) {
        const w = roundRef(want[i], t.dtype as 'f16' | 'bf16');
        if (h[i] !== w) assert.unreachable(`${label}: ${name}[${i}] bits ${h[i].toString(16)} != ${w.toString(16)}`);
      }
    }
    checked++;
  }
  return checked;
}

function weightsLive(ctx: Backend): number { return ctx.memoryStats().byLabel.weights ?? 0; }

// ---------------------------------------------------------------------------------------------

test('zamba2: F32/F16/BF16 checkpoints load bit-exactly; vectors become f32; dispose frees all', async () => {
  const be = await testModelBackend(); const ctx = be;
  for (const dt of ['F32', 'F16', 'BF16'] as const) {
    const built = buildCheckpoint(ZAMBA2_JSON, dt, 11, { extra: true });
    const before = ctx.memoryStats().liveBytes;
    const ck = await loadCheckpoint(be, new MemorySource(built.files));
    assert.is(ctx.memoryStats().liveBytes - before, ck.weightBytes, `${dt}: weightBytes is what was allocated`);
    assert.is(ck.config.arch, 'zamba2');
    assert.is(ck.config.dtMax, Infinity);
    assert.is(ck.tensors.size, built.data.size - 1, 'all but the unused extra tensor');
    assert.equal(ck.unusedTensors, ['unused.position_ids']);
    const emb = ck.tensors.get('model.embed_tokens.weight')!;
    assert.is(emb.dtype, dt.toLowerCase(), 'matrices keep the checkpoint dtype');
    assert.is(ck.tensors.get('model.layers.1.shared_transformer.input_layernorm.weight')!.dtype, 'f32');
    const conv = ck.tensors.get('model.layers.0.mamba.conv1d.weight')!;
    assert.equal(conv.shape, [24, 4], 'conv taps stored as [convDim, K]');
    assert.not.ok(ck.tensors.has('lm_head.weight'), 'tied: no lm_head');
    const n = await verifyAll(be, ck, built, dt);
    assert.is(n, ck.tensors.size);
    ck.dispose();
    ck.dispose();
    assert.is(weightsLive(ctx), 0, `${dt}: no weights left`);
  }
});

test('mamba2: sharded BF16 with the old embedding name, untied lm_head; dtype conversions', async () => {
  const be = await testModelBackend(); const ctx = be;
  const json = JSON.stringify(MAMBA2);
  const built = buildCheckpoint(json, 'BF16', 21, { shards: 3, rename: { 'backbone.embeddings.weight': 'backbone.embedding.weight' } });
  let ck = await loadCheckpoint(be, new MemorySource(built.files));
  assert.ok(ck.tensors.has('backbone.embeddings.weight'), 'alias stored under the canonical name');
  assert.ok(ck.tensors.has('lm_head.weight'));
  assert.is(ck.files.length, 3);
  await verifyAll(be, ck, built, 'bf16 auto');
  ck.dispose();
  for (const [srcDt, want] of [['BF16', 'f32'], ['F32', 'bf16'], ['F32', 'f16'], ['BF16', 'f16'], ['F16', 'bf16'], ['F32', 'f32']] as const) {
    const b = buildCheckpoint(json, srcDt, 31, {});
    ck = await loadCheckpoint(be, new MemorySource(b.files), { dtype: want, chunkBytes: 64 });
    assert.is(ck.tensors.get('backbone.layers.0.mixer.in_proj.weight')!.dtype, want, `${srcDt} -> ${want}`);
    assert.is(ck.tensors.get('backbone.layers.0.mixer.D')!.dtype, 'f32');
    await verifyAll(be, ck, b, `${srcDt} -> ${want}`);
    ck.dispose();
  }
  assert.is(weightsLive(ctx), 0);
});

test('split parts: maxBindingBytes forces dim-0 splits at even elements; data exact', async () => {
  const be = await testModelBackend(); const ctx = be;
  for (const dt of ['BF16', 'F32'] as const) {
    const built = buildCheckpoint(JSON.stringify(MAMBA2), dt, 41);
    const limit = 68; // lm_head [23, 5] bf16: 10-byte rows, odd row size -> 6 rows (60 bytes) per part
    const ck = await loadCheckpoint(be, new MemorySource(built.files), { maxBindingBytes: limit, chunkBytes: 24 });
    let split = 0;
    for (const t of ck.tensors.values()) {
      const rowElems = t.shape.slice(1).reduce((a, b) => a * b, 1);
      let next = 0;
      for (const p of t.parts) {
        assert.is(p.rowStart, next, `${t.name}: parts are contiguous`);
        assert.is((p.rowStart * rowElems) % 2, 0, `${t.name}: part starts at an even element`);
        assert.ok(p.buffer.size <= limit, `${t.name}: part buffer ${p.buffer.size} <= ${limit}`);
        next += p.rows;
      }
      assert.is(next, t.shape[0]);
      if (t.parts.length > 1) split++;
    }
    assert.ok(split >= 5, `${dt}: several tensors split (${split})`);
    const lm = ck.tensors.get('lm_head.weight')!;
    assert.is(lm.parts.length, dt === 'BF16' ? 4 : 12);
    await verifyAll(be, ck, built, `split ${dt}`);
    ck.dispose();
  }
  // A row pair larger than the limit cannot be split: a clear UnsupportedError.
  assert.throws(() => planParts('w', [4, 33], 2, 64), (e: Error) => e instanceof UnsupportedError && /row pair/.test(e.message));
  assert.equal(planParts('w', [7, 3], 4, 1 << 20).length, 1);
});

test('streaming: host high-water stays far below the largest tensor; reads are chunk-sized', async () => {
  const be = await testModelBackend(); const ctx = be;
  const cfg = { ...MAMBA2, vocab_size: 2001 };
  const built = buildCheckpoint(JSON.stringify(cfg), 'F32', 51);
  const mem = new MemorySource(built.files);
  let maxRead = 0, total = 0;
  const counting: CheckpointSource = {
    description: 'counting', exists: (n) => mem.exists(n), size: (n) => mem.size(n), readText: (n) => mem.readText(n),
    readTextIfExists: (n) => mem.readTextIfExists(n),
    readRange: async (n, s, e, into) => { if (s >= 8) { maxRead = Math.max(maxRead, e - s); } total += e - s; return mem.readRange(n, s, e, into); },
  };
  const chunk = 512;
  const progress: number[] = [];
  const ck = await loadCheckpoint(be, counting, { chunkBytes: chunk, dtype: 'bf16', onProgress: (p) => { if (p.phase === 'weights') progress.push(p.loadedBytes); } });
  const largest = 2001 * 5 * 4;
  const headerBytes = (built.files['model.safetensors'] as Uint8Array).length - [...built.data.values()].reduce((s, d) => s + d.bytes.length, 0);
  assert.ok(maxRead <= Math.max(chunk, headerBytes), `largest read ${maxRead}`);
  // One chunk buffer + the Wasm in/out scratch (f32-sized), or the header: a constant.
  assert.ok(ck.hostHighWaterBytes <= Math.max(3 * chunk, headerBytes), `high-water ${ck.hostHighWaterBytes}`);
  assert.ok(ck.hostHighWaterBytes < largest / 10, `high-water ${ck.hostHighWaterBytes} vs largest tensor ${largest}`);
  assert.is(total, (built.files['model.safetensors'] as Uint8Array).length, 'every byte read once');
  assert.ok(progress.length > 10 && progress.every((v, i) => i === 0 || v >= progress[i - 1]), 'progress is monotone');
  await verifyAll(be, ck, built, 'streamed');
  ck.dispose();
});

test('directory source: loads from disk (Node fs), same values', async () => {
  const be = await testModelBackend(); const ctx = be;
  const dir = await mkdtemp(join(tmpdir(), 'msl-loader-'));
  try {
    const built = buildCheckpoint(ZAMBA2_JSON, 'F16', 61, { shards: 2 });
    await writeCheckpointDir(dir, built.files);
    const ck = await loadCheckpoint(be, dir, { chunkBytes: 100 });
    await verifyAll(be, ck, built, 'dir');
    ck.dispose();
    try { await loadCheckpoint(be, join(dir, 'nope')); assert.unreachable(); } catch (e) { assert.instance(e, CheckpointError); }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A local server for `files`; modes: ranges honoured, Range ignored (200), HEAD refused. */
async function serve(files: Record<string, Uint8Array | string>, mode: 'range' | 'ignore-range' | 'no-head') {
  const log: { method: string; url: string; range?: string }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const name = decodeURIComponent((req.url ?? '/').replace(/^\/ckpt\//, ''));
    log.push({ method: req.method ?? '', url: name, range: req.headers.range });
    const f = files[name];
    if (f === undefined) { res.writeHead(404); res.end(); return; }
    const body = typeof f === 'string' ? Buffer.from(f) : Buffer.from(f.buffer, f.byteOffset, f.byteLength);
    if (req.method === 'HEAD') {
      if (mode === 'no-head') { res.writeHead(405); res.end(); return; }
      res.writeHead(200, { 'Content-Length': body.length }); res.end(); return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (m && mode !== 'ignore-range') {
      const a = Number(m[1]), b = Math.min(Number(m[2]), body.length - 1);
      if (a >= body.length) { res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }); res.end(); return; }
      res.writeHead(206, { 'Content-Range': `bytes ${a}-${b}/${body.length}`, 'Content-Length': b - a + 1 });
      res.end(body.subarray(a, b + 1));
      return;
    }
    res.writeHead(200, { 'Content-Length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/ckpt/`, log, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('URL source: Range requests against a local HTTP server (and servers that ignore Range or HEAD)', async () => {
  const be = await testModelBackend(); const ctx = be;
  const built = buildCheckpoint(JSON.stringify(MAMBA2), 'BF16', 71, { shards: 2 });
  for (const mode of ['range', 'ignore-range', 'no-head'] as const) {
    const srv = await serve(built.files, mode);
    try {
      const ck = await loadCheckpoint(be, srv.url, { chunkBytes: 256 });
      await verifyAll(be, ck, built, `url ${mode}`);
      ck.dispose();
      const ranged = srv.log.filter((l) => l.range);
      assert.ok(ranged.length > 4, `${mode}: ranged requests were made (${ranged.length})`);
      if (mode === 'range') {
        for (const l of ranged) {
          const [a, b] = l.range!.replace('bytes=', '').split('-').map(Number);
          assert.ok(b - a + 1 <= 256 || a === 8, `${mode}: range ${l.range} is at most one chunk (or the header)`);
        }
      }
    } finally {
      await srv.close();
    }
  }
  const empty = await serve({}, 'range');
  try {
    await loadCheckpoint(be, empty.url);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, CheckpointError);
    assert.is((e as CheckpointError).file, 'config.json');
  } finally {
    await empty.close();
  }
});

async function expectFailure(ctx: Backend, label: string, fn: () => Promise<unknown>, cls: new (...a: never[]) => Error, re: RegExp, tensor?: string) {
  const before = ctx.memoryStats().liveBytes;
  try {
    await fn();
    assert.unreachable(`${label}: loaded`);
  } catch (e) {
    assert.instance(e, cls, `${label}: ${(e as Error).stack}`);
    assert.match((e as Error).message, re, label);
    if (tensor !== undefined) assert.is((e as CheckpointError).tensor, tensor, `${label}: tensor`);
  }
  assert.is(ctx.memoryStats().liveBytes, before, `${label}: live bytes unchanged`);
}

test('failures: nothing allocated before validation; partial loads are freed; typed errors', async () => {
  const be = await testModelBackend(); const ctx = be;
  const json = JSON.stringify(MAMBA2);
  const good = buildCheckpoint(json, 'F16', 81);
  const file = good.files['model.safetensors'] as Uint8Array;

  // Missing tensor / shape mismatch: validated before any allocation (peak does not move).
  ctx.resetPeak();
  const peak0 = ctx.memoryStats().peakBytes;
  const noLm = buildCheckpoint(JSON.stringify({ ...MAMBA2, tie_word_embeddings: true }), 'F16', 81);
  await expectFailure(ctx, 'missing lm_head', () => loadCheckpoint(be, new MemorySource({ ...noLm.files, 'config.json': json })),
    CheckpointError, /1 missing tensor\(s\): lm_head.weight/, 'lm_head.weight');
  const wrongCfg = JSON.stringify({ ...MAMBA2, state_size: 4 });
  await expectFailure(ctx, 'shape mismatch', () => loadCheckpoint(be, new MemorySource({ ...good.files, 'config.json': wrongCfg })),
    CheckpointError, /shape mismatch.*in_proj.weight: shape \[28,5\] in model.safetensors, config implies \[30,5\]/);
  assert.is(ctx.memoryStats().peakBytes, peak0, 'no GPU allocation during failed validation');

  // Config problems name config.json.
  await expectFailure(ctx, 'bad config', () => loadCheckpoint(be, new MemorySource({ ...good.files, 'config.json': '{"model_type": "mamba2", "hidden_size": 5' })),
    CheckpointError, /config.json.*not valid JSON/);
  await expectFailure(ctx, 'config field', () => loadCheckpoint(be, new MemorySource({ ...good.files, 'config.json': JSON.stringify({ ...MAMBA2, num_heads: 3 }) })),
    CheckpointError, /config.json.*num_heads/);
  await expectFailure(ctx, 'no weights', () => loadCheckpoint(be, new MemorySource({ 'config.json': json })),
    CheckpointError, /model.safetensors.*not found/);

  // Unsupported dtype on a needed tensor.
  const withF64 = encodeAnyDtype([...parseTensors(file).filter((t) => t.name !== 'backbone.norm_f.weight'),
    { name: 'backbone.norm_f.weight', dtype: 'F64', shape: [5], data: new Uint8Array(40) }]);
  await expectFailure(ctx, 'F64', () => loadCheckpoint(be, new MemorySource({ ...good.files, 'model.safetensors': withF64 })),
    UnsupportedError, /backbone.norm_f.weight.*F64/);

  // A read that breaks mid-stream: buffers of earlier tensors are freed.
  const mem = new MemorySource(good.files);
  let reads = 0;
  const flaky: CheckpointSource = {
    description: 'flaky', exists: (n) => mem.exists(n), size: (n) => mem.size(n), readText: (n) => mem.readText(n),
    readTextIfExists: (n) => mem.readTextIfExists(n),
    readRange: async (n, s, e, into) => { if (s > 8 && ++reads === 12) throw new Error('connection reset'); return mem.readRange(n, s, e, into); },
  };
  await expectFailure(ctx, 'broken read', () => loadCheckpoint(be, flaky, { chunkBytes: 32 }), CheckpointError, /connection reset/);

  // Abort after some progress.
  const ac = new AbortController();
  let seen = 0;
  await expectFailure(ctx, 'abort', () => loadCheckpoint(be, new MemorySource(good.files), {
    chunkBytes: 32, signal: ac.signal, onProgress: (p) => { if (p.phase === 'weights' && ++seen === 7) ac.abort(); },
  }), AbortError, /aborted/);
  assert.ok(seen >= 7);

  // beforeAllocate can refuse (e.g. a memory budget) before anything is allocated.
  await expectFailure(ctx, 'budget', () => loadCheckpoint(be, new MemorySource(good.files), {
    beforeAllocate: (_c, bytes) => { throw new CheckpointError('budget', `needs ${bytes}`); },
  }), CheckpointError, /needs \d+/);
});

/** Re-encodes `file` with one header field changed (offsets, shapes, dtypes, entries). */
function mutateHeader(file: Uint8Array, headerEnd: number, r: () => number): Uint8Array {
  const h = JSON.parse(new TextDecoder().decode(file.subarray(8, headerEnd))) as Record<string, Record<string, unknown>>;
  const names = Object.keys(h).filter((k) => k !== '__metadata__');
  const pick = () => names[Math.floor(r() * names.length)];
  const e = h[pick()];
  const offs = e.data_offsets as number[];
  const shape = e.shape as number[];
  const small = () => (r() < 0.5 ? -1 : 1) * (1 + Math.floor(r() * 16));
  switch (Math.floor(r() * 9)) {
    case 0: offs[0] += small(); break;
    case 1: offs[1] += small(); break;
    case 2: offs[Math.floor(r() * 2)] = [2 ** 53, -1, 1e30, 0.5][Math.floor(r() * 4)]; break;
    case 3: if (shape.length) shape[Math.floor(r() * shape.length)] += small(); break;
    case 4: r() < 0.5 ? shape.push(1 + Math.floor(r() * 3)) : shape.pop(); break;
    case 5: e.dtype = ['F32', 'F16', 'BF16', 'F64', 'I8', 'U8', 'XX', 5, null][Math.floor(r() * 9)]; break;
    case 6: delete h[pick()]; break;
    case 7: { const o = h[pick()]; const t = o.data_offsets; o.data_offsets = e.data_offsets; e.data_offsets = t; break; }
    default: h[`dup.${Math.floor(r() * 100)}`] = { ...e, data_offsets: [offs[0] + Math.floor(r() * 4) * 2, offs[1] + Math.floor(r() * 4) * 2] };
  }
  let text = JSON.stringify(h);
  while (text.length % 8) text += ' ';
  const hb = new TextEncoder().encode(text);
  const data = file.subarray(headerEnd);
  const out = new Uint8Array(8 + hb.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}

/** A safetensors file with any dtype string (the library's writer only writes F32/F16/BF16). */
function encodeAnyDtype(tensors: { name: string; dtype: string; shape: number[]; data: Uint8Array }[]): Uint8Array {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const t of tensors) { header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] }; off += t.data.length; }
  const hb = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const t of tensors) { out.set(t.data, p); p += t.data.length; }
  return out;
}

/** Tensors of a safetensors file via its JSON header (independent of the library's reader). */
function parseTensors(file: Uint8Array): { name: string; dtype: SafetensorsDType; shape: number[]; data: Uint8Array }[] {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const h = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, { dtype: SafetensorsDType; shape: number[]; data_offsets: [number, number] }>;
  return Object.entries(h).filter(([k]) => k !== '__metadata__').map(([name, v]) => ({
    name, dtype: v.dtype, shape: v.shape, data: file.slice(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]),
  }));
}

test('fuzz: 2400 mutated checkpoints end in a typed error or a correct load, never a leak or a hang', async () => {
  const be = await testModelBackend(); const ctx = be;
  const json = JSON.stringify({ ...MAMBA2, num_hidden_layers: 1, vocab_size: 7, tie_word_embeddings: true });
  const built = buildCheckpoint(json, 'BF16', 91);
  const file = built.files['model.safetensors'] as Uint8Array;
  const headerEnd = 8 + Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const r = rng(2024);
  const counts: Record<string, number> = {};
  const t0 = Date.now();
  const N = 2400;
  for (let it = 0; it < N; it++) {
    const f = file.slice();
    let cfg = json;
    let target: Uint8Array = f;
    const kind = r();
    let label: string;
    if (kind < 0.2) {
      // Structured: edit one header field and re-encode with a correct length.
      label = 'struct';
      target = mutateHeader(file, headerEnd, r);
    } else if (kind < 0.55) {
      // Flip/replace 1-4 bytes of the length field or header JSON.
      label = 'header';
      for (let k = 1 + Math.floor(r() * 4); k > 0; k--) {
        const i = Math.floor(r() * headerEnd);
        f[i] = r() < 0.5 ? f[i] ^ (1 << Math.floor(r() * 8)) : '0123456789{}[]",:-eE .'.charCodeAt(Math.floor(r() * 22));
      }
    } else if (kind < 0.7) {
      label = 'truncate';
      target = f.subarray(0, Math.floor(r() * f.length));
    } else if (kind < 0.85) {
      label = 'data';
      for (let k = 1 + Math.floor(r() * 8); k > 0; k--) { const i = headerEnd + Math.floor(r() * (f.length - headerEnd)); f[i] = Math.floor(r() * 256); }
    } else {
      label = 'config';
      const c = [...cfg];
      for (let k = 1 + Math.floor(r() * 3); k > 0; k--) c[Math.floor(r() * c.length)] = '0123456789{}[]",:-. aeInfity'.charAt(Math.floor(r() * 28));
      cfg = c.join('');
    }
    let outcome: string;
    const before = ctx.memoryStats().liveBytes;
    try {
      const ck = await Promise.race([
        loadCheckpoint(be, new MemorySource({ 'config.json': cfg, 'model.safetensors': target }), { chunkBytes: 16 }),
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error('HANG')), 10_000)),
      ]);
      // A successful load must hold exactly the bytes the (possibly mutated) file says.
      if (label !== 'config' && it % 2 === 0) {
        const src = parseTensors(target);
        const emb = src.find((t) => t.name === 'backbone.embeddings.weight')!;
        const got = await readTensor(be, ck.tensors.get('backbone.embeddings.weight')!);
        assert.ok(got.every((b, i) => b === emb.data[i]), 'mutated data loaded exactly');
      }
      ck.dispose();
      outcome = 'ok';
    } catch (e) {
      if (!(e instanceof MambaScanError)) assert.unreachable(`iteration ${it} (${label}): untyped ${(e as Error)?.stack ?? e}`);
      outcome = (e as Error).constructor.name;
    }
    counts[`${label}:${outcome}`] = (counts[`${label}:${outcome}`] ?? 0) + 1;
    if (ctx.memoryStats().liveBytes !== before && outcome !== 'ok') assert.unreachable(`iteration ${it} (${label}, ${outcome}) leaked GPU memory`);
    if (weightsLive(ctx) !== 0) assert.unreachable(`iteration ${it}: weights left allocated`);
  }
  const secs = (Date.now() - t0) / 1000;
  console.log(`fuzz: ${N} cases in ${secs.toFixed(1)} s`, counts);
  assert.ok(Object.keys(counts).some((k) => k.endsWith(':ok')), 'some mutations still load');
  assert.ok(Object.keys(counts).some((k) => k.includes('CheckpointError')), 'some are rejected');
});

test.run();
