// GGUF reader (src/io/gguf.ts) and writer (src/io/gguf-writer.ts):
//   - a file built byte by byte here from the format description parses to the expected header;
//   - write -> read round trips metadata of every value type (arrays, strings, 64-bit extremes),
//     tensors of every supported type and rank, versions 2 and 3, custom alignments;
//   - every kind of malformed header gives a CheckpointError (or UnsupportedError for valid GGUF we
//     do not handle), naming the file and the tensor where there is one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CheckpointError, UnsupportedError } from '../../src/errors.ts';
import { GgufType, metaFloat, metaInt, metaString, metaStringArray, readGgufHeader, type GgufKV } from '../../src/io/gguf.ts';
import { encodeGguf, encodeTensorData, gguf, type GgufDataType, type GgufTensorIn } from '../../src/io/gguf-writer.ts';
import { ggufBytesToF32 } from '../../src/io/gguf-mamba2.ts';
import { MemorySource } from '../../src/io/sources.ts';
import { GGML_TYPE } from '../../src/quant/formats.ts';
import { dequantizeBlocks, quantizeBlocks } from '../../src/quant/reference.ts';
import { bf16BitsToNumber, f16BitsToNumber, f32ToBf16Bits, f32ToF16Bits, roundToF16 } from '../../src/quant/half.ts';
import type { QuantFormat } from '../../src/quant/formats.ts';

const QFMT: Record<string, QuantFormat | undefined> = { Q8_0: 'q8_0', Q4_0: 'q4_0', Q5_0: 'q5_0', Q4_K: 'q4_k', Q6_K: 'q6_k' };
import { quantInputs } from '../helpers/quant-inputs.ts';

const read = (bytes: Uint8Array, file = 'm.gguf') => readGgufHeader(new MemorySource({ [file]: bytes }), file);

async function rejects(bytes: Uint8Array, cls: typeof CheckpointError | typeof UnsupportedError, re: RegExp, tensor?: string) {
  try {
    await read(bytes);
  } catch (e) {
    assert.instance(e, cls, `${(e as Error).message}`);
    assert.match((e as Error).message, re, (e as Error).message);
    assert.match((e as Error).message, /m\.gguf/);
    if (tensor !== undefined) assert.is((e as CheckpointError).tensor, tensor);
    return;
  }
  assert.unreachable(`accepted; expected ${re}`);
}

/** Little-endian byte builder for hand-made files. */
class B {
  bytes: number[] = [];
  u8(v: number) { this.bytes.push(v & 0xff); return this; }
  u32(v: number) { for (let i = 0; i < 4; i++) this.u8((v >>> (8 * i)) & 0xff); return this; }
  u64(v: number | bigint) { let b = BigInt(v); for (let i = 0; i < 8; i++) { this.u8(Number(b & 0xffn)); b >>= 8n; } return this; }
  str(s: string) { const e = new TextEncoder().encode(s); this.u64(e.length); e.forEach((x) => this.u8(x)); return this; }
  f32(v: number) { const a = new Uint8Array(new Float32Array([v]).buffer); a.forEach((x) => this.u8(x)); return this; }
  padTo(n: number) { while (this.bytes.length % n) this.u8(0); return this; }
  out() { return Uint8Array.from(this.bytes); }
}

/** Header of a v3 file: magic, version, counts. */
const head = (nTensors: number, nKv: number, version = 3) => new B().u32(0x46554747).u32(version).u64(nTensors).u64(nKv);
/** b followed by n zero bytes, so count bounds derived from the file size do not trip first. */
const tail = (b: B, n = 256) => { for (let i = 0; i < n; i++) b.u8(0); return b.out(); };

test('a hand-built file: one u32 KV, one F32 [2, 3] tensor (ne = [3, 2]) at the 32-aligned data start', async () => {
  const b = head(1, 1).str('general.architecture').u32(GgufType.STRING).str('x')
    .str('w').u32(2).u64(3).u64(2).u32(GGML_TYPE.F32).u64(0);
  const headerBytes = b.bytes.length;
  b.padTo(32);
  for (let i = 0; i < 6; i++) b.f32(i + 0.5);
  const h = await read(b.out());
  assert.is(h.version, 3);
  assert.is(h.alignment, 32);
  assert.is(h.headerBytes, headerBytes);
  assert.is(h.dataOffset, Math.ceil(headerBytes / 32) * 32);
  assert.is(metaString(h, 'general.architecture'), 'x');
  const t = h.tensors.get('w')!;
  assert.equal([t.ne, t.shape, t.type.name, t.numel, t.offset, t.byteLength], [[3, 2], [2, 3], 'F32', 6, h.dataOffset, 24]);
  const data = b.out().subarray(t.offset, t.offset + t.byteLength);
  assert.equal([...ggufBytesToF32(t.type, data, 6)], [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]);
});

const ALL_KVS: [string, GgufKV][] = [
  ['u8', gguf.u8(255)], ['i8', gguf.i8(-128)], ['u16', gguf.u16(65535)], ['i16', gguf.i16(-32768)],
  ['u32', gguf.u32(4294967295)], ['i32', gguf.i32(-2147483648)], ['f32', gguf.f32(Math.fround(-1.5e-7))],
  ['bool.t', gguf.bool(true)], ['bool.f', gguf.bool(false)], ['str', gguf.str('héllo ✓ 🙂')], ['str.empty', gguf.str('')],
  ['u64', gguf.u64(18446744073709551615n)], ['i64', gguf.i64(-9223372036854775808n)], ['f64', gguf.f64(Math.PI)],
  ['a.u8', { type: GgufType.ARRAY, itemType: GgufType.UINT8, value: Uint8Array.of(0, 7, 255) }],
  ['a.i8', { type: GgufType.ARRAY, itemType: GgufType.INT8, value: Int8Array.of(-128, 0, 127) }],
  ['a.u16', { type: GgufType.ARRAY, itemType: GgufType.UINT16, value: Uint16Array.of(1, 65535) }],
  ['a.i16', { type: GgufType.ARRAY, itemType: GgufType.INT16, value: Int16Array.of(-32768, 5) }],
  ['a.u32', { type: GgufType.ARRAY, itemType: GgufType.UINT32, value: Uint32Array.of(4294967295, 0) }],
  ['a.i32', gguf.i32s([-1, 2, -3])],
  ['a.f32', gguf.f32s([0.25, -2])],
  ['a.bool', { type: GgufType.ARRAY, itemType: GgufType.BOOL, value: [true, false, true] }],
  ['a.str', gguf.strings(['a', '', 'Ġthe', '日本'])],
  ['a.u64', { type: GgufType.ARRAY, itemType: GgufType.UINT64, value: BigUint64Array.of(0n, 2n ** 64n - 1n) }],
  ['a.i64', { type: GgufType.ARRAY, itemType: GgufType.INT64, value: BigInt64Array.of(-(2n ** 63n), 3n) }],
  ['a.f64', { type: GgufType.ARRAY, itemType: GgufType.FLOAT64, value: Float64Array.of(1e300, -0) }],
  ['a.empty', gguf.strings([])],
];

function tensorsOfEveryType(): { t: GgufTensorIn; values: Float32Array }[] {
  const specs: [string, GgufDataType, number[]][] = [
    ['f32.scalar', 'F32', []], ['f32.v', 'F32', [7]], ['f16.m', 'F16', [3, 5]], ['bf16.3d', 'BF16', [2, 3, 4]],
    ['q8.m', 'Q8_0', [3, 64]], ['q4.m', 'Q4_0', [2, 32]], ['q5.4d', 'Q5_0', [2, 1, 2, 32]], ['q4k.m', 'Q4_K', [3, 256]],
    ['q6k.m', 'Q6_K', [1, 512]], ['empty', 'F32', [0, 4]],
  ];
  return specs.map(([name, type, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = quantInputs(60 + i, n, 'normal');
    return { t: { name, shape, type: GGML_TYPE[type], data: encodeTensorData(type, values, shape) }, values };
  });
}

for (const version of [3, 2] as const) {
  for (const alignment of [32, 64, 1]) {
    test(`write -> read round trip: every metadata type and tensor type (v${version}, alignment ${alignment})`, async () => {
      const ts = tensorsOfEveryType();
      const bytes = encodeGguf(ALL_KVS, ts.map((x) => x.t), { version, alignment });
      const h = await read(bytes);
      assert.is(h.version, version);
      assert.is(h.alignment, alignment);
      const expectKeys = ALL_KVS.map(([k]) => k);
      if (alignment !== 32) expectKeys.push('general.alignment');
      assert.equal([...h.metadata.keys()], expectKeys);
      for (const [k, kv] of ALL_KVS) {
        const got = h.metadata.get(k)!;
        assert.is(got.type, kv.type, k);
        if (kv.type === GgufType.ARRAY && got.type === GgufType.ARRAY) {
          assert.is(got.itemType, kv.itemType, k);
          assert.equal(Array.from(got.value as ArrayLike<unknown>), Array.from(kv.value as ArrayLike<unknown>), k);
          assert.is(Object.getPrototypeOf(got.value), Object.getPrototypeOf(kv.value), `${k}: item container`);
        } else {
          assert.ok(Object.is(got.value, kv.value), `${k}: ${String(got.value)} vs ${String(kv.value)}`);
        }
      }
      assert.equal([...h.tensors.keys()], ts.map((x) => x.t.name));
      for (const { t, values } of ts) {
        const info = h.tensors.get(t.name)!;
        assert.equal(info.shape, t.shape, t.name);
        assert.is(info.type.id, t.type);
        assert.is((info.offset - h.dataOffset) % alignment, 0, `${t.name} aligned`);
        const data = bytes.subarray(info.offset, info.offset + info.byteLength);
        assert.equal(data, t.data, `${t.name} bytes`);
        const back = ggufBytesToF32(info.type, data, info.numel);
        const fmt = QFMT[info.type.name];
        const want = info.type.name === 'F32' ? values
          : info.type.name === 'F16' ? values.map((v) => roundToF16(v))
            : info.type.name === 'BF16' ? values.map((v) => bf16BitsToNumber(f32ToBf16Bits(v)))
              : dequantizeBlocks(fmt!, quantizeBlocks(fmt!, values));
        assert.equal([...back], [...want], `${t.name} values`);
      }
      assert.is(metaInt(h, 'u32'), 4294967295);
      assert.is(metaFloat(h, 'f64'), Math.PI);
      assert.equal(metaStringArray(h, 'a.str'), ['a', '', 'Ġthe', '日本']);
      assert.throws(() => metaInt(h, 'u64'), (e: unknown) => e instanceof CheckpointError && /out of range/.test((e as Error).message));
      assert.throws(() => metaString(h, 'u8'), (e: unknown) => e instanceof CheckpointError && /must be a string/.test((e as Error).message));
    });
  }
}

test('F16 tensor bytes are the round-to-nearest-even halves', () => {
  const v = [1, 1 + 2 ** -11, 65520, -0, 2 ** -25];
  const d = new Uint16Array(encodeTensorData('F16', v, [5]).buffer);
  assert.equal([...d], v.map((x) => f32ToF16Bits(x)));
  assert.equal([...d].map(f16BitsToNumber), [1, 1, Infinity, -0, 0]);
});

// ---------------------------------------------------------------------------------------------
// Malformed headers

const okTensor = () => head(1, 0).str('t').u32(1).u64(8).u32(GGML_TYPE.F32).u64(0);

test('magic, version and endianness', async () => {
  await rejects(new B().u32(0x46554746).u32(3).u64(0).u64(0).out(), CheckpointError, /not a GGUF file/);
  await rejects(head(0, 0, 0).out(), CheckpointError, /version 0/);
  await rejects(head(0, 0, 1).out(), UnsupportedError, /version 1 is not supported/);
  await rejects(head(0, 0, 4).out(), UnsupportedError, /version 4/);
  await rejects(head(0, 0, 0x03000000).out(), UnsupportedError, /big-endian/);
  await rejects(new Uint8Array(10), CheckpointError, /truncated/);
  const h = await read(head(0, 0, 2).out());
  assert.equal([h.version, h.tensors.size, h.metadata.size, h.dataOffset], [2, 0, 0, 24]);
});

test('lying counts and lengths are refused before allocation', async () => {
  await rejects(head(2 ** 40, 0).out(), CheckpointError, /tensor count is 1099511627776, more than the file can hold/);
  await rejects(head(0, 2n ** 63n as unknown as number).out(), CheckpointError, /metadata count/);
  await rejects(tail(head(0, 1).u64(2n ** 62n)), CheckpointError, /claims \d+ bytes/);
  await rejects(tail(head(0, 1).str('k').u32(GgufType.STRING).u64(1 << 30)), CheckpointError, /string value of "k".*claims/);
  await rejects(tail(head(0, 1).str('k').u32(GgufType.ARRAY).u32(GgufType.UINT32).u64(2 ** 50)), CheckpointError, /array "k" length/);
  await rejects(tail(head(0, 1).str('k').u32(GgufType.ARRAY).u32(GgufType.STRING).u64(1000).u64(0)), CheckpointError, /string array "k" length/);
  await rejects(tail(head(0, 1).str('k').u32(GgufType.ARRAY).u32(GgufType.STRING).u64(3).str('a').u64(9999)), CheckpointError, /item 1 of "k"/);
});

test('metadata: types, duplicates, bools, nested arrays, alignment', async () => {
  await rejects(tail(head(0, 1).str('k').u32(13).u32(0)), CheckpointError, /unknown value type 13/);
  await rejects(tail(head(0, 1).str('k').u32(GgufType.ARRAY).u32(77).u64(1).u32(0)), CheckpointError, /unknown value type 77/);
  await rejects(tail(head(0, 1).str('k').u32(GgufType.ARRAY).u32(GgufType.ARRAY).u64(0)), UnsupportedError, /array of arrays/);
  await rejects(tail(head(0, 2).str('k').u32(GgufType.UINT8).u8(1).str('k').u32(GgufType.UINT8).u8(1)), CheckpointError, /duplicate metadata key "k"/);
  await rejects(tail(head(0, 1).str('').u32(GgufType.UINT8).u8(1)), CheckpointError, /key 0 is empty/);
  await rejects(tail(head(0, 1).str('b').u32(GgufType.BOOL).u8(2)), CheckpointError, /bool value 2/);
  await rejects(tail(head(0, 1).str('general.alignment').u32(GgufType.UINT32).u32(24)), CheckpointError, /not a power of two/);
  await rejects(tail(head(0, 1).str('general.alignment').u32(GgufType.UINT32).u32(0)), CheckpointError, /not a power of two/);
  await rejects(tail(head(0, 1).str('general.alignment').u32(GgufType.UINT64).u64(32)), CheckpointError, /must be a u32/);
});

test('tensor infos: names, dims, types, blocks, offsets, overlap, truncation', async () => {
  const withData = (b: B, bytes: number) => { b.padTo(32); for (let i = 0; i < bytes; i++) b.u8(0); return b.out(); };
  assert.is((await read(withData(okTensor(), 32))).tensors.get('t')!.byteLength, 32);
  await rejects(withData(head(1, 0).str('').u32(1).u64(8).u32(0).u64(0), 32), CheckpointError, /empty name/);
  await rejects(withData(head(1, 0).str('x'.repeat(64)).u32(1).u64(8).u32(0).u64(0), 32), CheckpointError, /fewer than 64 bytes/);
  await rejects(withData(head(2, 0).str('t').u32(1).u64(8).u32(0).u64(0).str('t').u32(1).u64(8).u32(0).u64(32), 64), CheckpointError, /duplicate tensor name/, 't');
  await rejects(withData(head(1, 0).str('t').u32(5).u64(1).u64(1).u64(1).u64(1).u64(1).u32(0).u64(0), 4), CheckpointError, /5 dimensions/, 't');
  await rejects(withData(head(1, 0).str('t').u32(1).u64(8).u32(99).u64(0), 32), UnsupportedError, /unknown ggml tensor type id 99/);
  await rejects(withData(head(1, 0).str('t').u32(1).u64(8).u32(4).u64(0), 32), UnsupportedError, /type id 4/); // retired Q4_2
  await rejects(withData(head(1, 0).str('t').u32(1).u64(48).u32(GGML_TYPE.Q8_0).u64(0), 64), CheckpointError, /not a whole number of Q8_0 blocks/, 't');
  await rejects(withData(head(1, 0).str('t').u32(1).u64(8).u32(0).u64(4), 64), CheckpointError, /not a multiple of the alignment/, 't');
  await rejects(withData(okTensor(), 31), CheckpointError, /runs past the end/, 't');
  await rejects(withData(head(1, 0).str('t').u32(1).u64(8).u32(0).u64(2n ** 63n as unknown as number), 32), CheckpointError, /runs past the end/, 't');
  await rejects(withData(head(1, 0).str('t').u32(2).u64(2 ** 26).u64(2 ** 26).u32(0).u64(0), 32), CheckpointError, /runs past the end/, 't');
  await rejects(withData(head(1, 0).str('t').u32(2).u64(2 ** 31).u64(2 ** 31).u32(0).u64(0), 32), CheckpointError, /too many elements/, 't');
  await rejects(withData(head(2, 0).str('a').u32(1).u64(16).u32(0).u64(0).str('b').u32(1).u64(8).u32(0).u64(32), 64), CheckpointError, /overlaps a/, 'b');
  await rejects(okTensor().out(), CheckpointError, /data section would start|runs past/);
  await rejects(head(1, 0).str('t').u32(2).u64(8).u32(0).out(), CheckpointError, /truncated: shape, type and offset of t/);
  await rejects(head(1, 0).str('t').u32(1).u64(8).out(), CheckpointError, /tensor count is 1, more than the file can hold/);
});

test('header reads are bounded range reads, never the whole file', async () => {
  const big = new Uint8Array(8 << 20);
  const file = encodeGguf([['k', gguf.str('v')]], [{ name: 'w', shape: [big.byteLength / 4], type: GGML_TYPE.F32, data: big }]);
  let maxRead = 0;
  const src = new MemorySource({ 'm.gguf': file });
  const orig = src.readRange.bind(src);
  src.readRange = (n, s, e, into) => { maxRead = Math.max(maxRead, e - s); return orig(n, s, e, into); };
  const h = await readGgufHeader(src, 'm.gguf');
  assert.is(h.tensors.get('w')!.byteLength, big.byteLength);
  assert.ok(maxRead <= 1 << 20, `largest read ${maxRead}`);
});

test.run();
