// Plain Mamba2 (SPEC.md §Mamba2): x = E[ids]; per layer x += Mixer(RMSNorm(x)); logits =
// RMSNorm_f(x) · headᵀ with the head tied to the embedding unless lm_head.weight is stored.
import type { GpuContext } from '../backends/webgpu/context.ts';
import type { GpuTensor } from '../backends/webgpu/tensor.ts';
import type { Mamba2Config } from './config.ts';
import type { WeightSet } from './weights.ts';
import type { BlockOptions, ModelRunner } from './runner.ts';
import { mixerForward, mixerScratch, mixerWeights, type MixerWeights } from './mixer.ts';
import type { CacheDims, HybridCache } from '../runtime/cache.ts';
import type { Workspace } from '../runtime/workspace.ts';
import { convStateBytes } from '../backends/webgpu/kernels/conv1d.ts';
import { embedding, matmul } from '../backends/webgpu/kernels/matmul.ts';
import { rmsNorm } from '../backends/webgpu/kernels/norm.ts';

export class Mamba2Runner implements ModelRunner {
  private readonly layers: { norm: GPUBuffer; mixer: MixerWeights }[] = [];
  private readonly embed: GpuTensor;
  private readonly finalNorm: GPUBuffer;
  readonly headWeight: GpuTensor;

  constructor(private readonly ctx: GpuContext, readonly config: Mamba2Config, w: WeightSet) {
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
      numKvSites: 0, kvWidth: 0, kvBlock: 256,
    };
  }

  scratch(T: number): Record<string, number> { return mamba2Scratch(this.config, T); }

  async block(ids: GPUBuffer, T: number, cache: HybridCache, ws: Workspace, opts: BlockOptions): Promise<GPUBuffer> {
    const { ctx, config: c } = this;
    const H = c.hiddenSize;
    const sz = mamba2Scratch(c, T);
    const x = ws.get('x', sz.x);
    const normed = ws.get('normed', sz.normed);
    await embedding(ctx, { ids, T, table: this.embed, out: x });
    for (let l = 0; l < this.layers.length; l++) {
      const layer = this.layers[l];
      await rmsNorm(ctx, { x, weight: layer.norm, out: normed, T, H, eps: c.rmsNormEps });
      await mixerForward(ctx, c, layer.mixer, cache.mamba[l], normed, x, T, ws, opts.scan);
    }
    const hn = normed; // the last mixer has consumed `normed`
    await rmsNorm(ctx, { x, weight: this.finalNorm, out: hn, T, H, eps: c.rmsNormEps });
    return hn;
  }

  async head(hn: GPUBuffer, rowStart: number, rows: number, logits: GPUBuffer): Promise<void> {
    const H = this.config.hiddenSize;
    await matmul(this.ctx, { x: hn, xOffset: rowStart * H, M: rows, w: this.headWeight, y: logits });
  }
}

/** Workspace buffers (name → bytes) a Mamba2 block of T tokens uses (planner and block agree). */
export function mamba2Scratch(c: Mamba2Config, T: number): Record<string, number> {
  const H = c.hiddenSize;
  return { x: 4 * T * H, normed: 4 * T * H, ...mixerScratch(c, T) };
}
