// A checkpoint that exists only as a function: config.json plus a model.safetensors whose bytes
// are computed on demand from their offset, so a 2.4 GB Zamba2-1.2B-shaped BF16 model streams
// through the real loader without touching the disk or holding the file in memory.
// Values are small (|w| ≤ 0.03) so activations stay finite; they are not meant to be meaningful.
import type { CheckpointSource } from '../src/io/sources.ts';
import { parseConfig } from '../src/models/parse-config.ts';
import { expectedTensors } from '../src/models/layout.ts';

/** Zamba2-1.2B's real dimensions (docs/model.md), optionally with fewer layers. */
export function zamba2_1p2bConfig(opts: { layers?: number; hybridIds?: number[] } = {}): Record<string, unknown> {
  const numLayers = opts.layers ?? 38;
  const hybridIds = opts.hybridIds ?? [5, 11, 17, 23, 29, 35].filter((l) => l < numLayers);
  return {
    model_type: 'zamba2', architectures: ['Zamba2ForCausalLM'], hidden_size: 2048, num_hidden_layers: numLayers,
    layers_block_type: Array.from({ length: numLayers }, (_, l) => (hybridIds.includes(l) ? 'hybrid' : 'mamba')),
    hybrid_layer_ids: hybridIds, num_mem_blocks: 1, mamba_d_state: 128, mamba_d_conv: 4, mamba_expand: 2,
    n_mamba_heads: 64, mamba_headdim: 64, mamba_ngroups: 1, num_attention_heads: 32, num_key_value_heads: 32,
    attention_head_dim: 128, intermediate_size: 8192, vocab_size: 32000, rms_norm_eps: 1e-5, rope_theta: 10000,
    use_mem_rope: true, use_shared_attention_adapter: true, adapter_rank: 128, max_position_embeddings: 4096,
    chunk_size: 256, time_step_min: 0.001, time_step_max: 0.1, time_step_floor: 1e-4, time_step_limit: [0, Infinity],
    tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2, pad_token_id: 0, torch_dtype: 'bfloat16',
    use_conv_bias: true, add_bias_linear: false, hidden_act: 'gelu',
  };
}

/** Zamba2-2.7B's dimensions (docs/model.md): 54 layers, 9 hybrid sites over 2 alternating shared blocks, no RoPE or attention LoRA. */
export function zamba2_2p7bConfig(opts: { layers?: number; hybridIds?: number[] } = {}): Record<string, unknown> {
  const numLayers = opts.layers ?? 54;
  const hybridIds = opts.hybridIds ?? [6, 12, 18, 24, 30, 36, 42, 47, 51].filter((l) => l < numLayers);
  return {
    ...zamba2_1p2bConfig({ layers: numLayers, hybridIds }),
    hidden_size: 2560, num_mem_blocks: 2, mamba_d_state: 64, n_mamba_heads: 80, mamba_headdim: 64,
    num_attention_heads: 32, num_key_value_heads: 32, attention_head_dim: 160, intermediate_size: 10240,
    use_mem_rope: false, use_shared_attention_adapter: false,
  };
}

/**
 * Zamba2-7B's widths (docs/model.md): hidden 3584, 81 layers, 2 shared blocks, 2 SSM groups,
 * 112 heads of 64, d_state 64, attention 32 heads of 224, MLP 14336. The hybrid layer positions
 * here (every 6th from layer 5, 13 sites) stand in for the released config's list: the memory
 * plan depends on their count, not their places.
 */
export function zamba2_7bConfig(opts: { layers?: number; hybridIds?: number[] } = {}): Record<string, unknown> {
  const numLayers = opts.layers ?? 81;
  const hybridIds = opts.hybridIds ?? Array.from({ length: 13 }, (_, i) => 5 + 6 * i).filter((l) => l < numLayers);
  return {
    ...zamba2_1p2bConfig({ layers: numLayers, hybridIds }),
    hidden_size: 3584, num_mem_blocks: 2, mamba_d_state: 64, n_mamba_heads: 112, mamba_headdim: 64, mamba_ngroups: 2,
    num_attention_heads: 32, num_key_value_heads: 32, attention_head_dim: 224, intermediate_size: 14336,
  };
}

/** mamba2-130m (HF port) dimensions. */
export function mamba2_130mConfig(): Record<string, unknown> {
  return {
    model_type: 'mamba2', hidden_size: 768, num_hidden_layers: 24, num_heads: 24, head_dim: 64, state_size: 128,
    expand: 2, conv_kernel: 4, n_groups: 1, chunk_size: 256, vocab_size: 50288, layer_norm_epsilon: 1e-5,
    time_step_limit: [0, Infinity], tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0, pad_token_id: 0,
    use_bias: false, use_conv_bias: true, torch_dtype: 'bfloat16',
  };
}

function jsonWithInfinity(o: unknown): string {
  return JSON.stringify(o, (_k, v) => (v === Infinity ? '__INF__' : v)).replace(/"__INF__"/g, 'Infinity');
}

export interface SyntheticModel {
  source: CheckpointSource;
  /** Bytes of tensor data in the safetensors file. */
  dataBytes: number;
}

export function syntheticCheckpoint(config: Record<string, unknown>, dtype: 'bf16' | 'f32' = 'bf16'): SyntheticModel {
  const cfg = parseConfig(config);
  const elem = dtype === 'bf16' ? 2 : 4;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of expectedTensors(cfg)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    header[t.name] = { dtype: dtype === 'bf16' ? 'BF16' : 'F32', shape: t.shape, data_offsets: [offset, offset + n * elem] };
    offset += n * elem;
  }
  let headerText = JSON.stringify(header);
  headerText += ' '.repeat((8 - (headerText.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(headerText);
  const prefix = new Uint8Array(8 + headerBytes.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  prefix.set(headerBytes, 8);
  const dataStart = prefix.length;
  const fileSize = dataStart + offset;
  const configText = jsonWithInfinity(config);

  // Element value from its index: a cheap integer hash → uniform in [-0.03, 0.03].
  const valueAt = (i: number) => {
    let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b);
    h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
    return ((h >>> 0) / 4294967296 - 0.5) * 0.06;
  };
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);

  const files: Record<string, () => number> = { 'config.json': () => configText.length, 'model.safetensors': () => fileSize };
  const source: CheckpointSource = {
    description: 'synthetic checkpoint',
    async exists(name) { return name in files; },
    async size(name) { if (!(name in files)) throw new Error(`no ${name}`); return files[name](); },
    async readText(name) { if (name !== 'config.json') throw new Error(`no ${name}`); return configText; },
    async readTextIfExists(name) { return name === 'config.json' ? configText : undefined; },
    async readRange(name, start, end, into) {
      if (name === 'config.json') return new TextEncoder().encode(configText).subarray(start, end);
      const out = into && into.length >= end - start ? into.subarray(0, end - start) : new Uint8Array(end - start);
      let p = start;
      // Fast path: whole elements written as 16/32-bit words (8 MiB chunks are aligned).
      if (start >= dataStart && (start - dataStart) % elem === 0 && out.byteOffset % elem === 0) {
        const n = Math.floor((end - start) / elem);
        const first = (start - dataStart) / elem;
        if (elem === 2) {
          const words = new Uint16Array(out.buffer, out.byteOffset, n);
          for (let i = 0; i < n; i++) { f32[0] = valueAt(first + i); words[i] = u32[0] >>> 16; }
        } else {
          const words = new Float32Array(out.buffer, out.byteOffset, n);
          for (let i = 0; i < n; i++) words[i] = valueAt(first + i);
        }
        p = start + n * elem;
      }
      for (; p < end; p++) {
        if (p < dataStart) { out[p - start] = prefix[p]; continue; }
        const o = p - dataStart;
        const idx = Math.floor(o / elem);
        f32[0] = valueAt(idx);
        const bits = dtype === 'bf16' ? (u32[0] >>> 16) : u32[0];
        out[p - start] = (bits >>> (8 * (o % elem))) & 0xff;
      }
      return out;
    },
  } as CheckpointSource;
  return { source, dataBytes: offset };
}
