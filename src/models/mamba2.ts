// Plain Mamba2 (docs/model.md §Mamba2): x = E[ids]; per layer x += Mixer(RMSNorm(x)); logits =
// RMSNorm_f(x) · headᵀ with the head tied to the embedding unless lm_head.weight is stored.
import { type Backend, type Buf, type WeightTensor, convStateBytes } from '../backends/backend.ts';
import type { Mamba2Config } from './config.ts';
import type { WeightSet } from './weights.ts';
import type { BlockOptions, ModelRunner } from './runner.ts';
import { mixerForward, mixerScratch, mixerWeights, type MixerWeights } from './mixer.ts';
import { KV_BLOCK, type Block, type CacheDims, type Workspace } from './state.ts';

export class Mamba2Runner implements ModelRunner {
  private readonly layers: { norm: Buf; mixer: MixerWeights }[] = [];
  private readonly embed: WeightTensor;
  private readonly finalNorm: Buf;
  readonly headWeight: WeightTensor;

  constructor(private readonly be: Backend, readonly config: Mamba2Config, w: WeightSet) {
    // Older conversions spell the embedding `backbone.embedding.weight`.
    this.embed = w.has('backbone.embeddings.weight') ? w.matrix('backbone.embeddings.weight') : w.matrix('backbone.embedding.weight');
    this.finalNorm = w.vector('backbone.norm_f.weight');
    this.headWeight = !config.tieWordEmbeddings && w.has('lm_head.weight') ? w.matrix('lm_head.weight') : this.embed;
    for (let l = 0; l < config.numLayers; l++) {
      this.layers.push({ norm: w.vector(`backbone.layers.${l}.norm.weight`), mixer: mixerWeights(w, `backbone.layers.${l}.mixer`) });
    }
  }

  cacheDims(): CacheDims {
    const c = this.config;
    return {
      numMambaLayers: c.numLayers,
      convStateBytes: convStateBytes(c.convDim, c.convKernel),
      ssmStateBytes: 4 * c.nHeads * c.headDim * c.dState,
      numKvSites: 0, kvWidth: 0, kvBlock: KV_BLOCK,
    };
  }

  scratch(T: number): Record<string, number> { return mamba2Scratch(this.config, T); }

  dispose(): void { /* holds no buffers of its own */ }

  async block(ids: Buf, blk: Block, ws: Workspace, opts: BlockOptions): Promise<Buf> {
    const { be, config: c } = this;
    const T = blk.rows;
    const H = c.hiddenSize;
    const sz = mamba2Scratch(c, T);
    const x = ws.get('x', sz.x);
    const normed = ws.get('normed', sz.normed);
    await be.embedding({ ids, T, table: this.embed, out: x });
    for (let l = 0; l < this.layers.length; l++) {
      const layer = this.layers[l];
      const u = { x, norm: { weight: layer.norm, eps: c.rmsNormEps, out: normed } };
      await mixerForward(be, c, layer.mixer, l, u, x, blk, ws, opts.scan);
    }
    const hn = normed; // the last mixer is done with `normed`
    await be.rmsNorm({ x, weight: this.finalNorm, out: hn, T, H, eps: c.rmsNormEps });
    return hn;
  }

  async head(hn: Buf, rowStart: number, rows: number, logits: Buf): Promise<void> {
    const H = this.config.hiddenSize;
    await this.be.matmul({ x: hn, xOffset: rowStart * H, M: rows, w: this.headWeight, y: logits });
  }
}

/** Workspace buffers (name → bytes) a Mamba2 block of T tokens uses (planner and block agree). */
export function mamba2Scratch(c: Mamba2Config, T: number): Record<string, number> {
  const H = c.hiddenSize;
  return { x: 4 * T * H, normed: 4 * T * H, ...mixerScratch(c, T) };
}
