// The fixture generator: deterministic bytes, valid safetensors whose data decode to exactly the
// `weights` values, correct shard index, dtype rounding, the HF tensor names of docs/model.md, and
// config.json text in the real-world spellings (bare Infinity, {"__float__": ...}).
// The safetensors parsing here is a minimal independent reader (not src/io) on purpose.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FIXTURE_DTYPES, MAMBA2_VARIANTS, ZAMBA2_SPELLINGS, ZAMBA2_VARIANTS, makeFixture, parseConfigJson, roundToDType,
  shardFileName, writeFixture, type Fixture, type FixtureOptions,
} from '../fixtures/index.ts';
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, bf16BitsToF32 } from '../fixtures/dtype.ts';

interface StEntry { dtype: string; shape: number[]; data_offsets: [number, number] }

function readSafetensors(bytes: Uint8Array): { header: Record<string, StEntry>; data: Uint8Array } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  assert.is((8 + n) % 8, 0, 'data section 8-aligned');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, StEntry>;
  delete (header as Record<string, unknown>).__metadata__;
  return { header, data: bytes.subarray(8 + n) };
}

function decode(e: StEntry, data: Uint8Array): Float64Array {
  const [b, end] = e.data_offsets;
  const raw = data.slice(b, end);
  const dv = new DataView(raw.buffer);
  const item = e.dtype === 'F32' ? 4 : 2;
  const out = new Float64Array(raw.byteLength / item);
  for (let i = 0; i < out.length; i++) {
    if (e.dtype === 'F32') out[i] = dv.getFloat32(4 * i, true);
    else if (e.dtype === 'F16') out[i] = f16BitsToF32(dv.getUint16(2 * i, true));
    else if (e.dtype === 'BF16') out[i] = bf16BitsToF32(dv.getUint16(2 * i, true));
    else throw new Error(`dtype ${e.dtype}`);
  }
  return out;
}

/** Every tensor of every safetensors file, with its decoded values. */
function allTensors(fx: Fixture): Map<string, { dtype: string; shape: number[]; values: Float64Array; file: string }> {
  const out = new Map<string, { dtype: string; shape: number[]; values: Float64Array; file: string }>();
  for (const [file, bytes] of fx.files) {
    if (!file.endsWith('.safetensors')) continue;
    const { header, data } = readSafetensors(bytes);
    let end = 0;
    for (const [name, e] of Object.entries(header)) {
      assert.not.ok(out.has(name), `${name} stored twice`);
      out.set(name, { dtype: e.dtype, shape: e.shape, values: decode(e, data), file });
      end = Math.max(end, e.data_offsets[1]);
    }
    assert.is(end, data.byteLength, `${file}: no trailing bytes`);
  }
  return out;
}

const ALL: FixtureOptions[] = [];
for (const variant of ZAMBA2_VARIANTS) for (const dtype of FIXTURE_DTYPES) for (const spelling of ZAMBA2_SPELLINGS) {
  ALL.push({ arch: 'zamba2', variant, dtype, spelling, seed: 5 });
}
for (const variant of MAMBA2_VARIANTS) for (const dtype of FIXTURE_DTYPES) ALL.push({ arch: 'mamba2', variant, dtype, seed: 5 });

test('same options => byte-identical files; another seed => different weights', () => {
  for (const o of ALL) {
    const a = makeFixture(o), b = makeFixture(o);
    assert.is(a.name, b.name);
    assert.equal([...a.files.keys()], [...b.files.keys()]);
    for (const [f, bytes] of a.files) assert.ok(Buffer.from(bytes).equals(Buffer.from(b.files.get(f)!)), `${a.name} ${f}`);
    const c = makeFixture({ ...o, seed: 6 });
    assert.not.ok(Buffer.from(c.files.get('model.safetensors')!).equals(Buffer.from(a.files.get('model.safetensors')!)));
  }
});

test('safetensors data decode to exactly the weights values, with the right dtype and shape', () => {
  for (const o of ALL) {
    const fx = makeFixture(o);
    const st = allTensors(fx);
    assert.equal([...st.keys()].sort(), [...fx.weights.keys()].sort(), fx.name);
    const want = { f32: 'F32', f16: 'F16', bf16: 'BF16' }[o.dtype];
    for (const [name, w] of fx.weights) {
      const t = st.get(name)!;
      assert.is(t.dtype, want);
      assert.equal(t.shape, [...w.shape]);
      assert.is(t.values.length, w.values.length);
      for (let i = 0; i < t.values.length; i++) {
        if (t.values[i] !== w.values[i]) assert.unreachable(`${fx.name} ${name}[${i}]: file ${t.values[i]} vs weights ${w.values[i]}`);
      }
    }
  }
});

test('f16/bf16 fixtures hold the f32 fixture values rounded to nearest even', () => {
  for (const base of [ALL[0], ALL.find((o) => o.arch === 'mamba2')!]) {
    const f32 = makeFixture({ ...base, dtype: 'f32' });
    for (const dtype of ['f16', 'bf16'] as const) {
      const q = makeFixture({ ...base, dtype });
      let changed = 0;
      for (const [name, w] of f32.weights) {
        const v = q.weights.get(name)!.values;
        for (let i = 0; i < v.length; i++) {
          const r = roundToDType(w.values[i], dtype);
          if (v[i] !== r) assert.unreachable(`${q.name} ${name}[${i}]`);
          if (r !== w.values[i]) changed++;
        }
      }
      assert.ok(changed > 0, 'rounding did something');
    }
  }
});

test('16-bit rounding: ties to even, subnormals, overflow', () => {
  assert.is(f32ToF16Bits(1 / 3), 0x3555);
  assert.is(f32ToF16Bits(65504), 0x7bff);
  assert.is(f32ToF16Bits(65519), 0x7bff); // below the midpoint to 65536
  assert.is(f32ToF16Bits(65520), 0x7c00); // midpoint, ties to even = infinity
  assert.is(f32ToF16Bits(2 ** -24), 0x0001);
  assert.is(f32ToF16Bits(2 ** -25), 0x0000); // tie between 0 and the smallest subnormal -> even (0)
  assert.is(f32ToF16Bits(1.5 * 2 ** -25), 0x0001);
  assert.is(f32ToF16Bits(-2), 0xc000);
  assert.is(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie -> even mantissa 0
  assert.is(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even mantissa 2
  assert.is(f16BitsToF32(0x3555), 0.333251953125);
  assert.is(f16BitsToF32(0x0001), 2 ** -24);
  assert.is(f32ToBf16Bits(1 + 2 ** -8), 0x3f80);
  assert.is(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
  assert.is(f32ToBf16Bits(-1.5), 0xbfc0);
  assert.is(bf16BitsToF32(0x3f82), 1.015625);
});

test('sharded checkpoints: index maps every tensor once to the file holding it; same values as unsharded', () => {
  for (const base of [ALL[0], ALL.find((o) => o.arch === 'zamba2' && o.variant === 'hybrid-2blocks' && o.dtype === 'bf16')!,
    ALL.find((o) => o.arch === 'mamba2')!]) {
    const one = makeFixture(base);
    for (const shards of [2, 3, 5]) {
      const fx = makeFixture({ ...base, shards });
      const names = [...fx.files.keys()];
      const shardNames = Array.from({ length: shards }, (_, i) => shardFileName(i, shards));
      assert.equal(names.sort(), ['config.json', 'model.safetensors.index.json', ...shardNames].sort());
      assert.is(shardNames[0], `model-00001-of-0000${shards}.safetensors`);
      const index = JSON.parse(new TextDecoder().decode(fx.files.get('model.safetensors.index.json')!)) as
        { metadata: { total_size: number }; weight_map: Record<string, string> };
      const st = allTensors(fx);
      assert.equal(Object.keys(index.weight_map).sort(), [...one.weights.keys()].sort());
      let total = 0;
      const perFile = new Map<string, number>();
      for (const [name, file] of Object.entries(index.weight_map)) {
        const t = st.get(name)!;
        assert.is(t.file, file, name);
        perFile.set(file, (perFile.get(file) ?? 0) + 1);
        total += t.values.length * (base.dtype === 'f32' ? 4 : 2);
        assert.equal(t.values, one.weights.get(name)!.values);
      }
      assert.is(index.metadata.total_size, total);
      assert.is(perFile.size, shards, 'every shard holds tensors');
      assert.equal(fx.configJson, one.configJson);
    }
  }
});

function names(fx: Fixture): Set<string> { return new Set(fx.weights.keys()); }

test('zamba2 hybrid-1block: docs/model.md tensor names and shapes', () => {
  const fx = makeFixture({ arch: 'zamba2', variant: 'hybrid-1block', dtype: 'f32', seed: 1 });
  const n = names(fx);
  const H = 32, V = 203, s = 'model.layers.1.shared_transformer';
  const shape = (k: string) => fx.weights.get(k)?.shape;
  assert.equal(shape('model.embed_tokens.weight'), [V, H]);
  assert.equal(shape('model.final_layernorm.weight'), [H]);
  assert.not.ok(n.has('lm_head.weight'));
  // mamba layers 0, 2, 4; hybrid 1, 3 with their own mamba under mamba_decoder.
  for (const l of [0, 2, 4]) {
    assert.equal(shape(`model.layers.${l}.mamba.in_proj.weight`), [64 + 96 + 8, H]);
    assert.equal(shape(`model.layers.${l}.mamba.conv1d.weight`), [96, 1, 4]);
    assert.ok(n.has(`model.layers.${l}.input_layernorm.weight`));
  }
  for (const l of [1, 3]) {
    assert.equal(shape(`model.layers.${l}.linear.weight`), [H, H]);
    assert.ok(n.has(`model.layers.${l}.mamba_decoder.input_layernorm.weight`));
    assert.equal(shape(`model.layers.${l}.mamba_decoder.mamba.out_proj.weight`), [H, 64]);
  }
  // One shared block, stored under layer 1 only, with adapters for call sites 0 and 1.
  assert.not.ok([...n].some((k) => k.startsWith('model.layers.3.shared_transformer')));
  assert.equal(shape(`${s}.input_layernorm.weight`), [2 * H]);
  assert.equal(shape(`${s}.self_attn.q_proj.weight`), [64, 64]);
  assert.equal(shape(`${s}.self_attn.o_proj.weight`), [H, 64]);
  for (const j of [0, 1]) {
    for (const p of ['q', 'k', 'v']) {
      assert.equal(shape(`${s}.self_attn.linear_${p}_adapter_list.${j}.0.weight`), [4, 64]);
      assert.equal(shape(`${s}.self_attn.linear_${p}_adapter_list.${j}.1.weight`), [64, 4]);
    }
    assert.equal(shape(`${s}.feed_forward.gate_up_proj_adapter_list.${j}.0.weight`), [4, H]);
    assert.equal(shape(`${s}.feed_forward.gate_up_proj_adapter_list.${j}.1.weight`), [96, 4]);
  }
  assert.equal(shape(`${s}.feed_forward.gate_up_proj.weight`), [96, H]);
  assert.equal(shape(`${s}.feed_forward.down_proj.weight`), [H, 48]);
  // embed + final norm; 3 mamba layers x (norm + 8 mixer); 2 hybrid x (linear + norm + 8 mixer);
  // shared block: 2 norms + q,k,v,o + 3 x 2 sites x 2 attention adapter halves + gate_up, down + 2 x 2 MLP.
  assert.is(n.size, 2 + 3 * 9 + 2 * 10 + (2 + 4 + 12 + 2 + 4));
});

test('zamba2 hybrid-2blocks: two blocks under layers 2 and 5, adapters only where j mod 2 == b, GQA k/v', () => {
  const fx = makeFixture({ arch: 'zamba2', variant: 'hybrid-2blocks', dtype: 'f32', seed: 1 });
  const n = names(fx);
  const shared = [...n].filter((k) => k.includes('shared_transformer'));
  assert.ok(shared.every((k) => k.startsWith('model.layers.2.') || k.startsWith('model.layers.5.')));
  assert.not.ok(shared.some((k) => k.includes('self_attn.linear_')), 'no attention adapters');
  const ad = (l: number) => shared.filter((k) => k.startsWith(`model.layers.${l}.`) && k.includes('adapter_list'))
    .map((k) => Number(k.split('adapter_list.')[1].split('.')[0]));
  assert.equal([...new Set(ad(2))].sort(), [0, 2]);
  assert.equal([...new Set(ad(5))], [1]);
  assert.equal(fx.weights.get('model.layers.5.shared_transformer.self_attn.k_proj.weight')!.shape, [16, 64]);
  assert.equal(fx.weights.get('model.layers.5.shared_transformer.self_attn.q_proj.weight')!.shape, [64, 64]);
  assert.equal(fx.weights.get('model.layers.6.mamba_decoder.mamba.in_proj.weight')!.shape, [64 + 128 + 8, 32]);
  assert.equal(fx.config.hybrid_layer_ids, [2, 5, 6]);
  assert.is(fx.config.num_key_value_heads, 2);
});

test('mamba2: tied has no lm_head, untied does; names per transformers Mamba2ForCausalLM', () => {
  const t = makeFixture({ arch: 'mamba2', variant: 'tied-g1', dtype: 'f32', seed: 1 });
  const u = makeFixture({ arch: 'mamba2', variant: 'untied-g2', dtype: 'f32', seed: 1 });
  assert.not.ok(t.weights.has('lm_head.weight'));
  assert.equal(u.weights.get('lm_head.weight')!.shape, [173, 24]);
  assert.equal(t.weights.get('backbone.embeddings.weight')!.shape, [173, 32]);
  assert.ok(t.weights.has('backbone.norm_f.weight'));
  assert.equal(u.weights.get('backbone.layers.2.mixer.in_proj.weight')!.shape, [48 + 112 + 6, 24]);
  assert.equal(u.weights.get('backbone.layers.2.mixer.norm.weight')!.shape, [48]);
  assert.is(t.config.tie_word_embeddings, true);
  assert.is(u.config.tie_word_embeddings, false);
});

test('weights have the intended ranges (A in [-1, -0.1], dt_bias -> dt0 in [0.01, 0.1])', () => {
  for (const o of ALL.filter((x) => x.dtype === 'f32')) {
    const fx = makeFixture(o);
    for (const [name, w] of fx.weights) {
      if (name.endsWith('.A_log')) for (const v of w.values) assert.ok(-Math.exp(v) <= -0.1 + 1e-6 && -Math.exp(v) >= -1 - 1e-6);
      if (name.endsWith('.dt_bias')) for (const v of w.values) { const d = Math.log1p(Math.exp(v)); assert.ok(d > 0.0099 && d < 0.1001, `${d}`); }
    }
  }
});

test('config.json text: spellings, bare Infinity and {"__float__": "Infinity"}, round trip', () => {
  for (const o of ALL) {
    const fx = makeFixture(o);
    assert.equal(parseConfigJson(fx.configJson), fx.config);
    assert.is(new TextDecoder().decode(fx.files.get('config.json')!), fx.configJson);
  }
  const mk = (spelling: 'zyphra' | 'transformers' | 'layer_types') =>
    makeFixture({ arch: 'zamba2', variant: 'hybrid-1block', dtype: 'bf16', seed: 1, spelling });
  const zy = mk('zyphra'), tr = mk('transformers'), lt = mk('layer_types');
  assert.equal(zy.config.layers_block_type, ['m', 'g', 'm', 'g', 'm']);
  assert.ok('state_size' in zy.config && 'lora_rank' in zy.config && 'use_shared_attention_lora' in zy.config);
  assert.equal(tr.config.layers_block_type, ['mamba', 'hybrid', 'mamba', 'hybrid', 'mamba']);
  assert.ok(/"time_step_limit": \[\s*0,\s*Infinity\s*\]/.test(tr.configJson), tr.configJson);
  assert.throws(() => JSON.parse(tr.configJson)); // the real-world quirk: not valid JSON
  assert.equal(lt.config.layer_types, ['linear_attention', 'hybrid', 'linear_attention', 'hybrid', 'linear_attention']);
  assert.equal((lt.config.time_step_limit as unknown[])[1], { __float__: 'Infinity' });
  assert.equal(lt.config.rope_parameters, { rope_type: 'default', rope_theta: 10000 });
  assert.is(tr.config.torch_dtype, 'bfloat16');
  const m = makeFixture({ arch: 'mamba2', variant: 'untied-g2', dtype: 'f32', seed: 1 });
  assert.equal(m.config.time_step_limit, [0.008, 0.08]);
});

test('writeFixture writes exactly the files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'msl-fx-'));
  try {
    const fx = makeFixture({ arch: 'zamba2', variant: 'hybrid-2blocks', dtype: 'f16', seed: 3, shards: 2 });
    await writeFixture(fx, dir);
    assert.equal((await readdir(dir)).sort(), [...fx.files.keys()].sort());
    for (const [f, bytes] of fx.files) assert.ok((await readFile(join(dir, f))).equals(Buffer.from(bytes)), f);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
