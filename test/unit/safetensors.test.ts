// safetensors header validation: a valid file round-trips through the writer and reader; each
// malformed input ends in a CheckpointError naming the file, the tensor where there is one,
// and the reason. Also the shard index parser, the in-memory source and the layout table.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeSafetensors } from '../../src/io/safetensors-writer.ts';
import { parseSafetensors, parseShardIndex, readSafetensorsHeader, MAX_HEADER_BYTES } from '../../src/io/safetensors.ts';
import { MemorySource, parseContentRange, resolveSource } from '../../src/io/sources.ts';
import { CheckpointError } from '../../src/errors.ts';
import { parseConfig } from '../../src/models/parse-config.ts';
import { expectedTensors } from '../../src/models/layout.ts';

function bytesOf(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 17) & 0xff;
  return b;
}

const VALID = encodeSafetensors([
  { name: 'a', dtype: 'F32', shape: [3, 5], data: bytesOf(60, 1) },
  { name: 'b', dtype: 'BF16', shape: [7], data: bytesOf(14, 2) },
  { name: 'empty', dtype: 'F16', shape: [0, 4], data: new Uint8Array(0) },
  { name: 'c', dtype: 'F16', shape: [1, 3, 1], data: bytesOf(6, 3) },
], { format: 'pt' });

/** A file with a hand-written header (padded to 8) and `dataLen` data bytes. */
function craft(header: unknown, dataLen: number, lengthField?: bigint): Uint8Array {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  while (json.length % 8) json += ' ';
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.byteLength + dataLen);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(hb.byteLength), true);
  out.set(hb, 8);
  return out;
}

function expectError(fn: () => unknown, reason: RegExp, tensor: string | undefined, label: string) {
  try {
    fn();
  } catch (e) {
    assert.instance(e, CheckpointError, `${label}: class (${(e as Error).message})`);
    const ce = e as CheckpointError;
    assert.is(ce.file, 'f.safetensors', `${label}: file`);
    assert.is(ce.tensor, tensor, `${label}: tensor (${ce.message})`);
    assert.match(ce.message, reason, `${label}: reason`);
    return;
  }
  assert.unreachable(`${label}: accepted`);
}

test('valid file: entries, absolute offsets, metadata', () => {
  const h = parseSafetensors('f.safetensors', VALID);
  assert.is(h.tensors.size, 4);
  const a = h.tensors.get('a')!;
  assert.equal([a.dtype, a.shape, a.byteLength], ['F32', [3, 5], 60]);
  assert.is(a.offset, h.dataOffset);
  assert.equal([...VALID.subarray(a.offset, a.offset + 60)], [...bytesOf(60, 1)]);
  const c = h.tensors.get('c')!;
  assert.equal([...VALID.subarray(c.offset, c.offset + 6)], [...bytesOf(6, 3)]);
  assert.equal(h.metadata, { format: 'pt' });
  assert.is(h.tensors.get('empty')!.byteLength, 0);
  assert.is(h.dataOffset % 8, 0);
});

test('bad inputs: each ends in a CheckpointError with file, tensor and reason', () => {
  const F = 'f.safetensors';
  const ok = { x: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, y: { dtype: 'F16', shape: [3], data_offsets: [16, 22] } };
  const cases: [string, Uint8Array, RegExp, string?][] = [
    ['empty file', new Uint8Array(0), /truncated/],
    ['7 bytes', new Uint8Array(7), /truncated/],
    ['header length larger than file', craft(ok, 22, 10_000n), /header length 10000 is larger than the file/],
    ['header length 2^63', craft(ok, 22, 1n << 63n), /larger than the file/],
    ['truncated data', craft(ok, 20), /out of range.*truncated/, 'y'],
    ['not JSON', craft('{"x": {"dtype": "F32", ', 0), /invalid header JSON/],
    ['not an object', craft('[1,2,3]', 0), /not a JSON object/],
    ['invalid UTF-8', (() => { const f = craft('{"ab": 1}', 0); f[10] = 0xff; return f; })(), /UTF-8/],
    ['entry not object', craft({ x: 5 }, 0), /entry is not an object/, 'x'],
    ['unknown dtype', craft({ x: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype "F33"/, 'x'],
    ['dtype not string', craft({ x: { dtype: 4, shape: [1], data_offsets: [0, 4] } }, 4), /dtype must be a string/, 'x'],
    ['negative dim', craft({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /shape/, 'x'],
    ['fractional dim', craft({ x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4), /shape/, 'x'],
    ['offsets wrong arity', craft({ x: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), /data_offsets/, 'x'],
    ['offsets reversed', craft({ x: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, 4), /end before/, 'x'],
    ['offsets out of range', craft({ x: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, 8), /out of range/, 'x'],
    ['size != shape x dtype', craft({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /byte length 8 does not match shape \[3\] x F32 \(12 bytes\)/, 'x'],
    ['wrong shape for bytes (16-bit)', craft({ x: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 8] } }, 8), /does not match/, 'x'],
    ['overlapping', craft({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /overlaps x/, 'y'],
    ['identical ranges', craft({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 8), /overlaps/],
    ['bad metadata', craft({ __metadata__: { a: 1 } }, 0), /__metadata__/],
    ['huge numel', craft({ x: { dtype: 'F32', shape: [2 ** 40, 2 ** 20], data_offsets: [0, 4] } }, 4), /does not match/, 'x'],
  ];
  for (const [label, file, reason, tensor] of cases) {
    // 'identical ranges' may name either tensor; accept both.
    if (label === 'identical ranges') {
      try { parseSafetensors(F, file); assert.unreachable('accepted'); } catch (e) { assert.instance(e, CheckpointError); assert.match((e as Error).message, reason); }
      continue;
    }
    expectError(() => parseSafetensors(F, file), reason, tensor, label);
  }
  assert.ok(MAX_HEADER_BYTES === 100_000_000);
});

test('known but unsupported dtypes pass header validation (rejected later, only if needed)', () => {
  const f = craft({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] }, w: { dtype: 'F64', shape: [1], data_offsets: [16, 24] } }, 24);
  const h = parseSafetensors('f.safetensors', f);
  assert.is(h.tensors.get('ids')!.dtype, 'I64');
  assert.is(h.tensors.get('w')!.byteLength, 8);
});

test('readSafetensorsHeader through a source reads only the header', async () => {
  let read = 0;
  const mem = new MemorySource({ 'm.safetensors': VALID });
  const counting = Object.assign(Object.create(Object.getPrototypeOf(mem)), mem) as MemorySource;
  const orig = mem.readRange.bind(mem);
  counting.readRange = async (n, s, e, into) => { read += e - s; return orig(n, s, e, into); };
  const h = await readSafetensorsHeader(counting, 'm.safetensors');
  assert.is(h.tensors.size, 4);
  assert.is(read, h.dataOffset, 'reads exactly 8 + N bytes');
  try {
    await readSafetensorsHeader(new MemorySource({ 'm.safetensors': VALID.subarray(0, 30) }), 'm.safetensors');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, CheckpointError);
    assert.match((e as Error).message, /header length \d+ is larger than the file \(30 bytes\)/);
  }
});

test('shard index: weight_map, bad JSON, missing map, path escapes', () => {
  const m = parseShardIndex('i.json', JSON.stringify({ metadata: {}, weight_map: { a: 'model-1.safetensors', b: 'model-2.safetensors' } }));
  assert.is(m.get('b'), 'model-2.safetensors');
  assert.throws(() => parseShardIndex('i.json', '{'), (e: Error) => e instanceof CheckpointError && /invalid JSON/.test(e.message));
  assert.throws(() => parseShardIndex('i.json', '{}'), (e: Error) => e instanceof CheckpointError && /weight_map/.test(e.message));
  assert.throws(() => parseShardIndex('i.json', '{"weight_map": {"a": "../x"}}'), (e: Error) => e instanceof CheckpointError && (e as CheckpointError).tensor === 'a');
});

test('sources: memory source ranges, missing files, resolveSource on records and blobs', async () => {
  const src = await resolveSource({ 'config.json': '{"a":1}', 'x.bin': new Uint8Array([1, 2, 3, 4, 5]).buffer });
  assert.is(await src.readText('config.json'), '{"a":1}');
  assert.equal([...(await src.readRange('x.bin', 1, 4))], [2, 3, 4]);
  const into = new Uint8Array(8);
  const v = await src.readRange('x.bin', 2, 5, into);
  assert.is(v.buffer, into.buffer, 'reads into the given buffer');
  assert.is(await src.exists('nope.json'), false);
  assert.is(await src.readTextIfExists('nope.json'), undefined);
  try { await src.size('nope.json'); assert.unreachable(); } catch (e) { assert.instance(e, CheckpointError); assert.match((e as Error).message, /nope.json.*not found/); }
  try { await src.readRange('x.bin', 3, 9); assert.unreachable(); } catch (e) { assert.instance(e, CheckpointError); assert.match((e as Error).message, /past the end/); }
  // Browser folder pick: names by webkitRelativePath base name.
  const blob = new Blob([new Uint8Array([9, 8, 7, 6])]);
  const file = Object.assign(blob, { name: 'w.safetensors', webkitRelativePath: 'Model/w.safetensors' });
  const cfg = Object.assign(new Blob(['{"b":2}']), { name: 'config.json', webkitRelativePath: 'Model/config.json' });
  const bs = await resolveSource([file, cfg]);
  assert.is(await bs.readText('config.json'), '{"b":2}');
  assert.equal([...(await bs.readRange('w.safetensors', 1, 3))], [8, 7]);
  assert.equal(parseContentRange('bytes 10-19/1234'), { start: 10, end: 20, total: 1234 });
  assert.equal(parseContentRange('bytes 0-0/*'), { start: 0, end: 1, total: undefined });
  assert.is(parseContentRange('garbage'), undefined);
});

test('layout: tensor names and shapes for a small Zamba2 (2 shared blocks, adapters) and Mamba2', () => {
  const z = parseConfig({
    model_type: 'zamba2', hidden_size: 16, num_hidden_layers: 5, vocab_size: 50, mamba_d_state: 4, n_mamba_heads: 4,
    mamba_ngroups: 2, layers_block_type: ['mamba', 'hybrid', 'hybrid', 'mamba', 'hybrid'], num_attention_heads: 4,
    num_key_value_heads: 2, num_mem_blocks: 2, use_shared_attention_adapter: true, adapter_rank: 3, intermediate_size: 24,
  });
  const t = new Map(expectedTensors(z).map((e) => [e.name, e]));
  assert.equal(t.get('model.embed_tokens.weight')!.shape, [50, 16]);
  assert.equal(t.get('model.layers.0.mamba.in_proj.weight')!.shape, [32 + (32 + 16) + 4, 16]);
  assert.equal(t.get('model.layers.0.mamba.conv1d.weight')!.shape, [48, 1, 4]);
  assert.equal(t.get('model.layers.0.mamba.conv1d.weight')!.gpuShape, [48, 4]);
  assert.is(t.get('model.layers.0.mamba.conv1d.weight')!.role, 'vector');
  assert.ok(t.has('model.layers.1.shared_transformer.self_attn.q_proj.weight'), 'block 0 under hybrid layer 1');
  assert.ok(t.has('model.layers.2.shared_transformer.self_attn.q_proj.weight'), 'block 1 under hybrid layer 2');
  assert.not.ok(t.has('model.layers.4.shared_transformer.self_attn.q_proj.weight'), 'layer 4 reuses block 0');
  // hd = 2H/heads = 8; kv dim 2*8.
  assert.equal(t.get('model.layers.1.shared_transformer.self_attn.k_proj.weight')!.shape, [16, 32]);
  assert.equal(t.get('model.layers.1.shared_transformer.self_attn.o_proj.weight')!.shape, [16, 32]);
  // Call sites j = 0, 1, 2: block 0 owns adapters 0 and 2, block 1 owns 1.
  assert.ok(t.has('model.layers.1.shared_transformer.feed_forward.gate_up_proj_adapter_list.2.1.weight'));
  assert.not.ok(t.has('model.layers.1.shared_transformer.feed_forward.gate_up_proj_adapter_list.1.0.weight'));
  assert.equal(t.get('model.layers.2.shared_transformer.self_attn.linear_v_adapter_list.1.1.weight')!.shape, [16, 3]);
  assert.equal(t.get('model.layers.4.mamba_decoder.mamba.out_proj.weight')!.shape, [16, 32]);
  assert.equal(t.get('model.layers.4.linear.weight')!.shape, [16, 16]);
  assert.not.ok(t.has('lm_head.weight'));
  // embed + 5 mixers + 2 mamba norms + 3 x (linear, decoder norm) + 2 blocks x 8 + 3 call sites x (6 attn + 2 mlp adapters) + final norm
  assert.is(t.size, 1 + 5 * 8 + 2 + 3 * 2 + 2 * 8 + 3 * (6 + 2) + 1);

  const m = parseConfig({ model_type: 'mamba2', hidden_size: 8, num_hidden_layers: 2, vocab_size: 11, num_heads: 2, head_dim: 8, state_size: 4, tie_word_embeddings: false });
  const mt = expectedTensors(m);
  assert.equal(mt[0].aliases, ['backbone.embedding.weight']);
  assert.is(mt[mt.length - 1].name, 'lm_head.weight');
  assert.equal(mt.find((e) => e.name === 'backbone.layers.1.mixer.norm.weight')!.shape, [16]);
  assert.is(mt.length, 1 + 2 * 9 + 2);
});

test.run();
