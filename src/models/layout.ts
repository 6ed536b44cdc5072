// Which tensors a config implies: exact Hugging Face names, PyTorch-order shapes, and how each is
// stored on the GPU. The loader validates every checkpoint header against this list before it
// allocates anything. Names follow docs/model.md §Tensor names, §Mamba2.
import { type Mamba2Config, type ModelConfig, type Zamba2Config, LayerKind } from './config.ts';
import type { TensorQuantRole } from '../quant/formats.ts';

/**
 * matrix    : a weight used by matmul; keeps the checkpoint's 16-bit dtype (or the requested one).
 * embedding : the token table (also the tied lm_head); stored like a matrix.
 * vector    : norms, biases, A_log, D, dt_bias and the conv taps; always f32 on the GPU.
 */
export type TensorRole = 'matrix' | 'embedding' | 'vector';

export interface ExpectedTensor {
  /** Canonical name: the key under which the loader stores the tensor. */
  readonly name: string;
  /** Shape as stored in the checkpoint (PyTorch order). */
  readonly shape: readonly number[];
  /**
   * Shape on the GPU when it differs from the checkpoint's (conv1d.weight [C,1,K] -> [C,K]);
   * same element order, so only the metadata changes.
   */
  readonly gpuShape?: readonly number[];
  readonly role: TensorRole;
  /**
   * How `loadModel(src, { quantize })` treats the tensor (src/quant/formats.ts recipeFormat):
   * 'output' for an lm_head, 'tied-embedding' / 'embedding' for the token table, 'high-precision'
   * for what is never quantized (LoRA adapters; vectors are never quantized either), else 'matrix'.
   */
  readonly quant: TensorQuantRole;
  /** Other names the checkpoint may use for this tensor (older exports). */
  readonly aliases?: readonly string[];
}

/** The mixer tensors under `prefix` (e.g. `model.layers.3.mamba.`). */
function mixerTensors(cfg: ModelConfig, prefix: string): ExpectedTensor[] {
  const { hiddenSize: H, dInner: di, convDim, inProjDim, nHeads: NH, convKernel: K } = cfg;
  return [
    { name: `${prefix}in_proj.weight`, shape: [inProjDim, H], role: 'matrix', quant: 'matrix' },
    { name: `${prefix}conv1d.weight`, shape: [convDim, 1, K], gpuShape: [convDim, K], role: 'vector', quant: 'high-precision' },
    { name: `${prefix}conv1d.bias`, shape: [convDim], role: 'vector', quant: 'high-precision' },
    { name: `${prefix}dt_bias`, shape: [NH], role: 'vector', quant: 'high-precision' },
    { name: `${prefix}A_log`, shape: [NH], role: 'vector', quant: 'high-precision' },
    { name: `${prefix}D`, shape: [NH], role: 'vector', quant: 'high-precision' },
    { name: `${prefix}norm.weight`, shape: [di], role: 'vector', quant: 'high-precision' },
    { name: `${prefix}out_proj.weight`, shape: [H, di], role: 'matrix', quant: 'matrix' },
  ];
}

function zamba2Tensors(cfg: Zamba2Config): ExpectedTensor[] {
  const H = cfg.hiddenSize;
  const out: ExpectedTensor[] = [
    { name: 'model.embed_tokens.weight', shape: [cfg.vocabSize, H], role: 'embedding', quant: cfg.tieWordEmbeddings ? 'tied-embedding' : 'embedding' },
  ];
  const hd = cfg.attentionHeadDim;
  const qDim = cfg.numAttentionHeads * hd;
  const kvDim = cfg.numKeyValueHeads * hd;
  const I = cfg.intermediateSize;
  const r = cfg.adapterRank;
  const nHybrid = cfg.hybridLayerIds.length;
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    if (cfg.layerKinds[l] === LayerKind.Mamba) {
      out.push({ name: `${p}input_layernorm.weight`, shape: [H], role: 'vector', quant: 'high-precision' });
      out.push(...mixerTensors(cfg, `${p}mamba.`));
      continue;
    }
    out.push({ name: `${p}linear.weight`, shape: [H, H], role: 'matrix', quant: 'matrix' });
    out.push({ name: `${p}mamba_decoder.input_layernorm.weight`, shape: [H], role: 'vector', quant: 'high-precision' });
    out.push(...mixerTensors(cfg, `${p}mamba_decoder.mamba.`));
    // Shared block b is stored once, under the first hybrid layer that uses it (j = b); its adapter
    // lists hold entries only at the call-site indices j' with j' mod numMemBlocks == b.
    const j = cfg.hybridLayerIds.indexOf(l);
    if (j >= cfg.numMemBlocks) continue;
    const s = `${p}shared_transformer.`;
    out.push(
      { name: `${s}input_layernorm.weight`, shape: [2 * H], role: 'vector', quant: 'high-precision' },
      { name: `${s}pre_ff_layernorm.weight`, shape: [H], role: 'vector', quant: 'high-precision' },
      { name: `${s}self_attn.q_proj.weight`, shape: [qDim, 2 * H], role: 'matrix', quant: 'matrix' },
      { name: `${s}self_attn.k_proj.weight`, shape: [kvDim, 2 * H], role: 'matrix', quant: 'matrix' },
      { name: `${s}self_attn.v_proj.weight`, shape: [kvDim, 2 * H], role: 'matrix', quant: 'matrix' },
      { name: `${s}self_attn.o_proj.weight`, shape: [H, qDim], role: 'matrix', quant: 'matrix' },
      { name: `${s}feed_forward.gate_up_proj.weight`, shape: [2 * I, H], role: 'matrix', quant: 'matrix' },
      { name: `${s}feed_forward.down_proj.weight`, shape: [H, I], role: 'matrix', quant: 'matrix' },
    );
    for (let k = j; k < nHybrid; k += cfg.numMemBlocks) {
      if (cfg.useSharedAttentionAdapter) {
        for (const [x, dim] of [['q', qDim], ['k', kvDim], ['v', kvDim]] as const) {
          out.push(
            { name: `${s}self_attn.linear_${x}_adapter_list.${k}.0.weight`, shape: [r, 2 * H], role: 'matrix', quant: 'high-precision' },
            { name: `${s}self_attn.linear_${x}_adapter_list.${k}.1.weight`, shape: [dim, r], role: 'matrix', quant: 'high-precision' },
          );
        }
      }
      out.push(
        { name: `${s}feed_forward.gate_up_proj_adapter_list.${k}.0.weight`, shape: [r, H], role: 'matrix', quant: 'high-precision' },
        { name: `${s}feed_forward.gate_up_proj_adapter_list.${k}.1.weight`, shape: [2 * I, r], role: 'matrix', quant: 'high-precision' },
      );
    }
  }
  out.push({ name: 'model.final_layernorm.weight', shape: [H], role: 'vector', quant: 'high-precision' });
  if (!cfg.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [cfg.vocabSize, H], role: 'matrix', quant: 'output' });
  return out;
}

function mamba2Tensors(cfg: Mamba2Config): ExpectedTensor[] {
  const H = cfg.hiddenSize;
  const out: ExpectedTensor[] = [
    // transformers' Mamba2 port names it `embeddings`; older exports used `embedding`.
    { name: 'backbone.embeddings.weight', shape: [cfg.vocabSize, H], role: 'embedding', quant: cfg.tieWordEmbeddings ? 'tied-embedding' : 'embedding', aliases: ['backbone.embedding.weight'] },
  ];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `backbone.layers.${l}.`;
    out.push({ name: `${p}norm.weight`, shape: [H], role: 'vector', quant: 'high-precision' });
    out.push(...mixerTensors(cfg, `${p}mixer.`));
  }
  out.push({ name: 'backbone.norm_f.weight', shape: [H], role: 'vector', quant: 'high-precision' });
  if (!cfg.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [cfg.vocabSize, H], role: 'matrix', quant: 'output' });
  return out;
}

/** Every tensor the config implies, in a stable order (embedding first, final norm/lm_head last). */
export function expectedTensors(cfg: ModelConfig): ExpectedTensor[] {
  return cfg.arch === 'zamba2' ? zamba2Tensors(cfg) : mamba2Tensors(cfg);
}

/** The canonical name of the token embedding for this architecture. */
export function embeddingName(cfg: ModelConfig): string {
  return cfg.arch === 'zamba2' ? 'model.embed_tokens.weight' : 'backbone.embeddings.weight';
}
