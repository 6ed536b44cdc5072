// Zamba2 (docs/model.md §Zamba2): mamba layers plus hybrid layers that call a shared transformer block
// (attention + MLP with per-call-site LoRA adapters) on concat(x, embeddings) before their mixer.
//
// Per block of T tokens (H hidden, A = nHeads·hd attention width, F intermediate):
//   x [T,H] = E[ids]; orig [T,H] = x
//   mamba layer l:  x += Mixer_l(RMSNorm_l(x))
//   hybrid layer l (call site j, shared block b = j mod numMemBlocks):
//     s  [T,2H] = RMSNorm_in_b(concat(x, orig))
//     q|k|v [T, A+2kvW] = s·W{q,k,v}ᵀ (+ LoRA), side by side per row; RoPE(q, k) at absolute
//     positions; k, v appended to site j's KV cache; att [T,A] = causal attention over the cache
//     a  [T,H]  = RMSNorm_preff_b(att·Woᵀ)
//     h  [T,F]  = gelu(g)·u where [g|u] = a·gate_upᵀ + (a·A_mlpᵀ)·B_mlpᵀ
//     t  [T,H]  = (h·downᵀ)·linear_lᵀ
//     x += Mixer_l(RMSNorm_l(x + t))
//   hn [T,H] = RMSNorm_final(x)
import { type Backend, type Buf, type WeightTensor, convStateBytes, ropeInvFreq } from '../backends/backend.ts';
import { LayerKind, type Zamba2Config } from './config.ts';
import type { WeightSet } from './weights.ts';
import type { BlockOptions, ModelRunner } from './runner.ts';
import { mixerForward, mixerScratch, mixerWeights, SLOT_XBC, SLOT_YN, SLOT_ZXBCDT, type MixerInput, type MixerWeights } from './mixer.ts';
import { KV_BLOCK, type Block, type CacheDims, type Workspace } from './state.ts';

/** LoRA pair: y += (x·downᵀ)·upᵀ; down [r, in], up [out, r]. */
interface Lora { readonly down: WeightTensor; readonly up: WeightTensor }

interface SharedBlock {
  readonly inputNorm: Buf;         // [2H]
  readonly preFfNorm: Buf;         // [H]
  readonly q: WeightTensor;        // [A, 2H]
  readonly k: WeightTensor;        // [kvW, 2H]
  readonly v: WeightTensor;        // [kvW, 2H]
  readonly o: WeightTensor;        // [H, A]
  readonly gateUp: WeightTensor;   // [2F, H]
  readonly down: WeightTensor;     // [H, F]
}

interface HybridSite {
  readonly block: SharedBlock;
  readonly linear: WeightTensor;   // [H, H]
  readonly qLora?: Lora;
  readonly kLora?: Lora;
  readonly vLora?: Lora;
  readonly mlpLora: Lora;
}

type Layer =
  | { kind: LayerKind.Mamba; norm: Buf; mixer: MixerWeights; stateIndex: number }
  | { kind: LayerKind.Hybrid; norm: Buf; mixer: MixerWeights; stateIndex: number; site: HybridSite; siteIndex: number };

export class Zamba2Runner implements ModelRunner {
  private readonly layers: Layer[] = [];
  private readonly embed: WeightTensor;
  private readonly finalNorm: Buf;
  readonly headWeight: WeightTensor;
  private readonly kvWidth: number;
  private readonly attnWidth: number;
  /** RoPE inv_freq [hd / 2] f32, held for the model's life (undefined without RoPE). */
  private readonly invFreq: Buf | undefined;

  constructor(private readonly be: Backend, readonly config: Zamba2Config, w: WeightSet) {
    const c = config;
    this.embed = w.matrix('model.embed_tokens.weight');
    this.finalNorm = w.vector('model.final_layernorm.weight');
    this.headWeight = !c.tieWordEmbeddings && w.has('lm_head.weight') ? w.matrix('lm_head.weight') : this.embed;
    this.kvWidth = c.numKeyValueHeads * c.attentionHeadDim;
    this.attnWidth = c.numAttentionHeads * c.attentionHeadDim;
    if (c.useMemRope && c.hybridLayerIds.length > 0) {
      const table = ropeInvFreq(c.attentionHeadDim, c.ropeTheta);
      this.invFreq = be.alloc('weights:rope_inv_freq', table.byteLength);
      be.write(this.invFreq, 0, table);
    }

    const blocks: SharedBlock[] = [];
    // A Zamba2 without hybrid layers (a pure mamba stack) stores no shared block.
    for (let b = 0; b < Math.min(c.numMemBlocks, c.hybridLayerIds.length); b++) {
      const p = `model.layers.${c.hybridLayerIds[b]}.shared_transformer`;
      blocks.push({
        inputNorm: w.vector(`${p}.input_layernorm.weight`),
        preFfNorm: w.vector(`${p}.pre_ff_layernorm.weight`),
        q: w.matrix(`${p}.self_attn.q_proj.weight`),
        k: w.matrix(`${p}.self_attn.k_proj.weight`),
        v: w.matrix(`${p}.self_attn.v_proj.weight`),
        o: w.matrix(`${p}.self_attn.o_proj.weight`),
        gateUp: w.matrix(`${p}.feed_forward.gate_up_proj.weight`),
        down: w.matrix(`${p}.feed_forward.down_proj.weight`),
      });
    }
    let stateIndex = 0;
    let siteIndex = 0;
    c.layerKinds.forEach((kind, l) => {
      if (kind === LayerKind.Mamba) {
        this.layers.push({
          kind, stateIndex: stateIndex++,
          norm: w.vector(`model.layers.${l}.input_layernorm.weight`),
          mixer: mixerWeights(w, `model.layers.${l}.mamba`),
        });
        return;
      }
      const j = siteIndex;
      const b = j % c.numMemBlocks;
      const p = `model.layers.${c.hybridLayerIds[b]}.shared_transformer`;
      const lora = (list: string): Lora => ({ down: w.matrix(`${p}.${list}.${j}.0.weight`), up: w.matrix(`${p}.${list}.${j}.1.weight`) });
      const site: HybridSite = {
        block: blocks[b],
        linear: w.matrix(`model.layers.${l}.linear.weight`),
        qLora: c.useSharedAttentionAdapter ? lora('self_attn.linear_q_adapter_list') : undefined,
        kLora: c.useSharedAttentionAdapter ? lora('self_attn.linear_k_adapter_list') : undefined,
        vLora: c.useSharedAttentionAdapter ? lora('self_attn.linear_v_adapter_list') : undefined,
        mlpLora: lora('feed_forward.gate_up_proj_adapter_list'),
      };
      this.layers.push({
        kind, stateIndex: stateIndex++, site, siteIndex: siteIndex++,
        norm: w.vector(`model.layers.${l}.mamba_decoder.input_layernorm.weight`),
        mixer: mixerWeights(w, `model.layers.${l}.mamba_decoder.mamba`),
      });
    });
  }

  cacheDims(): CacheDims {
    const c = this.config;
    return {
      numMambaLayers: c.numLayers,
      convStateBytes: convStateBytes(c.convDim, c.convKernel),
      ssmStateBytes: 4 * c.nHeads * c.headDim * c.dState,
      numKvSites: c.hybridLayerIds.length,
      kvWidth: this.kvWidth,
      kvBlock: KV_BLOCK,
    };
  }

  scratch(T: number): Record<string, number> { return zamba2Scratch(this.config, T); }

  dispose(): void {
    if (this.invFreq) this.be.free(this.invFreq);
  }

  async block(ids: Buf, blk: Block, ws: Workspace, opts: BlockOptions): Promise<Buf> {
    const { be, config: c } = this;
    const H = c.hiddenSize;
    const T = blk.rows;
    const sz = zamba2Scratch(c, T);
    const x = ws.get('x', sz.x);
    const orig = ws.get('orig', sz.orig);
    const normed = ws.get('normed', sz.normed);
    await be.embedding({ ids, T, table: this.embed, out: x });
    be.copy(x, 0, orig, 0, 4 * T * H);
    for (const layer of this.layers) {
      let u: MixerInput;
      if (layer.kind === LayerKind.Mamba) {
        u = { x, norm: { weight: layer.norm, eps: c.rmsNormEps, out: normed } };
      } else {
        const t = await this.sharedBlock(layer.site, blk, layer.siteIndex, x, orig, ws);
        u = { x, norm: { weight: layer.norm, eps: c.rmsNormEps, out: normed, add: t } };
      }
      await mixerForward(be, c, layer.mixer, layer.stateIndex, u, x, blk, ws, opts.scan);
    }
    const hn = normed; // the last mixer is done with `normed`
    await be.rmsNorm({ x, weight: this.finalNorm, out: hn, T, H, eps: c.rmsNormEps });
    return hn;
  }

  /**
   * t [rows, H] = the shared transformer block's output for call site `siteIndex` (no residual).
   * Projections and the MLP run over all rows; RoPE, the KV append and attention per sequence.
   */
  private async sharedBlock(site: HybridSite, batch: Block, siteIndex: number,
    x: Buf, orig: Buf, ws: Workspace): Promise<Buf> {
    const { be, config: c } = this;
    const H = c.hiddenSize;
    const F = c.intermediateSize;
    const A = this.attnWidth;
    const kvW = this.kvWidth;
    const hd = c.attentionHeadDim;
    const T = batch.rows;
    const single = batch.seqs.length === 1 ? batch.seqs[0] : undefined;
    const blk = site.block;

    const sz = zamba2Scratch(c, T);
    const s = ws.get('hybrid.s', sz['hybrid.s']);
    await be.rmsNorm({ x, x2: orig, weight: blk.inputNorm, out: s, T, H, eps: c.rmsNormEps });

    // q, k and v side by side in one row per token, qkv [T, A + 2 kvW] (the layout a fused q|k|v
    // projection writes): RoPE then rotates the q and k heads of a row in one pass, and the new k
    // and v rows go from there into this site's cache rows pos0 .. pos0+T-1 in the cache's dtype.
    const W = A + 2 * kvW;
    const qkv = ws.get(SLOT_QKV, sz[SLOT_QKV]);
    const loraTmp = ws.get('hybrid.lora', sz['hybrid.lora']);
    await be.matmul({ x: s, M: T, w: blk.q, y: qkv, yRowStride: W });
    if (site.qLora) await this.lora(site.qLora, s, qkv, 0, W, T, loraTmp);
    await be.matmul({ x: s, M: T, w: blk.k, y: qkv, yOffset: A, yRowStride: W });
    if (site.kLora) await this.lora(site.kLora, s, qkv, A, W, T, loraTmp);
    await be.matmul({ x: s, M: T, w: blk.v, y: qkv, yOffset: A + kvW, yRowStride: W });
    if (site.vLora) await this.lora(site.vLora, s, qkv, A + kvW, W, T, loraTmp);
    if (c.useMemRope) {
      // One position per row: the sequence's own (pos0 + t), or the block's table over several.
      // The q heads and then the k heads fill the first A + kvW values of a row.
      const where = single ? { pos0: single.state.position } : { pos0: 0, positions: batch.positions! };
      await be.rope({ x: qkv, rowStride: W, T, nHeads: c.numAttentionHeads + c.numKeyValueHeads, headDim: hd, invFreq: this.invFreq!, ...where });
    }
    const att = ws.get(SLOT_ATT, sz[SLOT_ATT]);
    for (const seq of batch.seqs) {
      const st = seq.state;
      const kv = st.kv[siteIndex];
      const row0 = seq.rowStart * W;
      // The row's k and v halves into the two caches in one op.
      await be.kvWrite({ src: qkv, srcOffset: row0 + A, srcRowStride: W, T: seq.T, width: kvW, dst: kv.k, dst2: kv.v, dstRow: st.position, dtype: st.kvDtype });
      // With several sequences each one's output goes through s (dead since the projections), then
      // to its rows of att.
      const out = single ? att : s;
      await be.attention({
        q: qkv, qOffset: row0, qRowStride: W, kCache: kv.k, vCache: kv.v, kvDtype: st.kvDtype, out, T: seq.T, pos0: st.position,
        nHeads: c.numAttentionHeads, nKvHeads: c.numKeyValueHeads, headDim: hd, scale: (hd / 2) ** -0.5,
        scratch: ws.opScratch(),
      });
      if (!single) be.copy(s, 0, att, 4 * seq.rowStart * A, 4 * seq.T * A);
    }
    const a0 = ws.get('hybrid.a0', sz['hybrid.a0']);
    await be.matmul({ x: att, M: T, w: blk.o, y: a0 });
    const a = ws.get('hybrid.a', sz['hybrid.a']);
    await be.rmsNorm({ x: a0, weight: blk.preFfNorm, out: a, T, H, eps: c.rmsNormEps });

    const gu = ws.get(SLOT_GU, sz[SLOT_GU]);
    await be.matmul({ x: a, M: T, w: blk.gateUp, y: gu });
    await this.lora(site.mlpLora, a, gu, 0, 2 * F, T, loraTmp);
    const h = ws.get(SLOT_H, sz[SLOT_H]);
    const mlp = a0; // a0 is dead once a = RMSNorm(a0) exists
    // down takes the GELU gate as its input transform (fused into the decode GEMV; h otherwise).
    await be.matmul({ x: gu, M: T, w: blk.down, y: mlp, input: { kind: 'geluGate', scratch: h } });
    const t = a; // a is dead once [g|u] exists
    await be.matmul({ x: mlp, M: T, w: site.linear, y: t });
    return t;
  }

  /** y[rows at yOffset, stride] += (x·downᵀ)·upᵀ, unscaled (docs/model.md: adapters add before RoPE). */
  private async lora(l: Lora, x: Buf, y: Buf, yOffset: number, yRowStride: number, T: number, tmp: Buf): Promise<void> {
    await this.be.matmul({ x, M: T, w: l.down, y: tmp });
    await this.be.matmul({ x: tmp, M: T, w: l.up, y, yOffset, yRowStride, accumulate: true });
  }

  async head(hn: Buf, rowStart: number, rows: number, logits: Buf): Promise<void> {
    const H = this.config.hiddenSize;
    await this.be.matmul({ x: hn, xOffset: rowStart * H, M: rows, w: this.headWeight, y: logits });
  }
}

/** Bytes of the RoPE table a Zamba2 model holds (0 without RoPE or attention). */
export function ropeTableBytes(c: Zamba2Config): number {
  return c.useMemRope && c.hybridLayerIds.length > 0 ? Math.max(4, 4 * (c.attentionHeadDim >> 1)) : 0;
}

/**
 * Workspace buffers (name → bytes) a Zamba2 block of T tokens uses (planner and block agree).
 * Slot reuse inside the shared block: q|k|v rows, att, [g|u], h live in the mixer's slots
 * (never live at the same time as the mixer's own data); the MLP output goes into a0's buffer and
 * t into a's, each after the previous occupant is dead (x + t is never stored: the hybrid layer's
 * norm adds it on the fly).
 */
export function zamba2Scratch(c: Zamba2Config, T: number): Record<string, number> {
  const H = c.hiddenSize;
  const A = c.numAttentionHeads * c.attentionHeadDim;
  const F = c.intermediateSize;
  const out: Record<string, number> = { x: 4 * T * H, orig: 4 * T * H, normed: 4 * T * H, ...mixerScratch(c, T) };
  if (c.hybridLayerIds.length > 0) {
    const grow = (name: string, bytes: number) => { out[name] = Math.max(out[name] ?? 0, bytes); };
    grow(SLOT_QKV, 4 * T * (A + 2 * c.numKeyValueHeads * c.attentionHeadDim));
    grow(SLOT_ATT, 4 * T * A);
    grow(SLOT_GU, 4 * T * 2 * F);
    grow(SLOT_H, 4 * T * F);
    Object.assign(out, {
      'hybrid.s': 4 * T * 2 * H, 'hybrid.lora': 4 * T * Math.max(c.adapterRank, 1),
      'hybrid.a0': 4 * T * H, 'hybrid.a': 4 * T * H,
    });
  }
  return out;
}

/** q | k | v rows; dead (the new k and v in the cache, attention done) before [g|u] is written. */
const SLOT_QKV = SLOT_ZXBCDT;
const SLOT_ATT = SLOT_YN;
const SLOT_GU = SLOT_ZXBCDT;
const SLOT_H = SLOT_XBC;
