// GGUF reader + Mamba2 mapping fuzz: a small valid Mamba2 GGUF (fixture weights, Q8_0 matrices,
// metadata of many value types) mutated in four ways; every outcome must be a successful parse or a
// CheckpointError / UnsupportedError, never another exception, and never slow:
//   1. truncation at every byte of the header and at sampled points of the data;
//   2. every u64 field (counts, string lengths, array lengths, dimensions, offsets) and every u32
//      type field replaced by lying values, located by an independent walker written here from the
//      format description;
//   3. random 1-4 byte flips anywhere in the header;
//   4. random bytes in the tensor data (must still parse: data is not interpreted by the reader).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CheckpointError, UnsupportedError } from '../../src/errors.ts';
import { readGgufMamba2 } from '../../src/io/gguf-mamba2.ts';
import { encodeMamba2Gguf, gguf } from '../../src/io/gguf-writer.ts';
import { MemorySource } from '../../src/io/sources.ts';
import { makeFixture } from '../fixtures/index.ts';
import { mulberry32 } from '../fixtures/rng.ts';

const fx = makeFixture({ arch: 'mamba2', variant: 'untied-g2', dtype: 'f32', seed: 11, vocabSize: 40 });
const tensors = new Map([...fx.weights].map(([k, v]) => [k, { shape: v.shape, values: v.values }]));
const FILE = encodeMamba2Gguf({
  config: fx.config, tensors, matrixType: 'Q8_0', outputType: 'Q8_0',
  extraMetadata: [
    ['test.i64', gguf.i64(-5)], ['test.f64', gguf.f64(0.5)], ['test.bools', { type: 9, itemType: 7, value: [true, false] }],
    ['test.u16s', { type: 9, itemType: 2, value: Uint16Array.of(1, 2, 3) }], ['test.str', gguf.str('fuzz')],
  ],
}).bytes;

/** Offsets of the u64 and u32-type fields of a GGUF header, walked from the spec (independent of src/io/gguf.ts). */
function fieldMap(b: Uint8Array): { u64: number[]; types: number[]; headerEnd: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u64: number[] = [8, 16], types: number[] = [];
  let p = 24;
  const str = () => { u64.push(p); const n = Number(dv.getBigUint64(p, true)); p += 8 + n; };
  const SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const nT = Number(dv.getBigUint64(8, true)), nKv = Number(dv.getBigUint64(16, true));
  for (let i = 0; i < nKv; i++) {
    str();
    types.push(p);
    const t = dv.getUint32(p, true); p += 4;
    if (t === 8) str();
    else if (t === 9) {
      types.push(p);
      const it = dv.getUint32(p, true); p += 4;
      u64.push(p);
      const n = Number(dv.getBigUint64(p, true)); p += 8;
      if (it === 8) for (let j = 0; j < n; j++) str(); else p += n * SIZE[it];
    } else p += SIZE[t];
  }
  for (let i = 0; i < nT; i++) {
    str();
    const nd = dv.getUint32(p, true); p += 4;
    for (let d = 0; d < nd; d++) { u64.push(p); p += 8; }
    types.push(p); p += 4;
    u64.push(p); p += 8;
  }
  return { u64, types, headerEnd: p };
}

async function outcome(bytes: Uint8Array): Promise<string> {
  const t0 = performance.now();
  let r: string;
  try {
    const m = await readGgufMamba2(new MemorySource({ 'f.gguf': bytes }), 'f.gguf');
    r = m.tensors.size > 0 ? 'ok' : 'empty';
  } catch (e) {
    if (e instanceof CheckpointError) {
      if (e.file !== 'f.gguf') throw new Error(`CheckpointError without the file name: ${e.message}`);
      r = 'CheckpointError';
    } else if (e instanceof UnsupportedError) r = 'UnsupportedError';
    else throw new Error(`untyped ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`);
  }
  const ms = performance.now() - t0;
  if (ms > 2000) throw new Error(`parse took ${ms.toFixed(0)} ms`);
  return r;
}

test('the unmutated file parses and the walker agrees with the reader', async () => {
  assert.is(await outcome(FILE), 'ok');
  const { headerEnd } = fieldMap(FILE);
  const m = await readGgufMamba2(new MemorySource({ 'f.gguf': FILE }), 'f.gguf');
  assert.is(m.header.headerBytes, headerEnd);
});

test('truncation at every header byte and at sampled data offsets is a CheckpointError', async () => {
  const { headerEnd } = fieldMap(FILE);
  const r = mulberry32(5);
  const cuts = [...Array(headerEnd + 1).keys()];
  for (let i = 0; i < 200; i++) cuts.push(headerEnd + 1 + Math.floor(r() * (FILE.length - headerEnd - 1)));
  for (const n of cuts) {
    const o = await outcome(FILE.subarray(0, n));
    if (o !== 'CheckpointError') assert.unreachable(`cut at ${n} of ${FILE.length}: ${o}`);
  }
});

test('lying u64 fields and type fields: typed errors or a valid parse', async () => {
  const { u64, types } = fieldMap(FILE);
  const lies = [0n, 1n, 7n, 2n ** 31n, 2n ** 32n + 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];
  const counts: Record<string, number> = {};
  for (const at of u64) {
    const orig = new DataView(FILE.buffer).getBigUint64(at, true);
    for (const v of [...lies, orig + 1n, orig > 0n ? orig - 1n : 3n, orig * 2n]) {
      const f = FILE.slice();
      new DataView(f.buffer).setBigUint64(at, BigInt.asUintN(64, v), true);
      const o = await outcome(f);
      counts[o] = (counts[o] ?? 0) + 1;
    }
  }
  for (const at of types) {
    for (const v of [0, 1, 3, 4, 8, 9, 12, 13, 30, 31, 39, 99, 0xffffffff]) {
      const f = FILE.slice();
      new DataView(f.buffer).setUint32(at, v, true);
      const o = await outcome(f);
      counts[o] = (counts[o] ?? 0) + 1;
    }
  }
  console.log(`gguf lies: ${u64.length} u64 fields, ${types.length} type fields`, counts);
  assert.ok(counts.CheckpointError > 0 && counts.UnsupportedError > 0);
});

test('random byte flips in the header and random data bytes', async () => {
  const { headerEnd } = fieldMap(FILE);
  const r = mulberry32(99);
  const counts: Record<string, number> = {};
  const t0 = performance.now();
  for (let it = 0; it < 3000; it++) {
    const f = FILE.slice();
    const inData = it % 10 === 9;
    for (let k = 1 + Math.floor(r() * 4); k > 0; k--) {
      const i = inData ? headerEnd + Math.floor(r() * (f.length - headerEnd)) : Math.floor(r() * headerEnd);
      f[i] = r() < 0.7 ? f[i] ^ (1 << Math.floor(r() * 8)) : Math.floor(r() * 256);
    }
    const o = await outcome(f);
    const key = `${inData ? 'data' : 'header'}:${o}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  console.log(`gguf flips: 3000 cases in ${((performance.now() - t0) / 1000).toFixed(1)} s`, counts);
  assert.ok((counts['header:ok'] ?? 0) > 0, 'some header flips still parse (e.g. inside strings)');
  assert.ok((counts['header:CheckpointError'] ?? 0) > 0);
  assert.is(counts['data:ok'], 300, 'data bytes are never interpreted by the header reader');
});

test.run();
