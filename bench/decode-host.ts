// Host work of one greedy decode step at Zamba2-1.2B shapes (38 layers, real widths, BF16): kernel
// launches per token, milliseconds the host spends recording and submitting a step (JS plus
// WebGPU/Dawn calls; the step starts with the GPU idle, so this is the host's own work), and the
// milliseconds then spent waiting for the GPU. On a real GPU the host part, not the weight reads,
// can set the speed; on a software adapter the wait is the emulated GPU.
//
// Run alone: node --import ./scripts/register.mjs bench/decode-host.ts [--quick]
// (bench/speed.ts runs it too). Prints a table and the JSON line `speed.decodeHost`.
import { loadModel } from '../src/api.ts';
import type { GpuContext } from '../src/backends/webgpu/context.ts';
import { syntheticCheckpoint, zamba2_1p2bConfig } from './synthetic.ts';
import { QUICK, benchGpu, jsonLine, table } from './common.ts';

export interface DecodeHostFigures {
  model: string;
  dispatchesPerToken: number;
  hostEncodeMsPerToken: number;
  gpuWaitMsPerToken: number;
  shadersCompiledAfterWarmup: number;
}

export async function measureDecodeHost(ctx: GpuContext, steps = QUICK ? 3 : 6): Promise<DecodeHostFigures> {
  const name = 'zamba2-1.2B';
  const model = await loadModel(syntheticCheckpoint(zamba2_1p2bConfig()).source, { device: ctx, noTokenizer: true, prefillChunk: 256 });
  try {
    const session = model.createSession();
    // Warm-up past 64 tokens of context so every decode variant (split-K + combine) has run.
    await session.append(Array.from({ length: 70 }, (_, i) => 3 + i));
    await session.generate([5], { maxNewTokens: 2, eosTokenIds: [] });
    const compiledBefore = ctx.compiledKernels;
    const enc: number[] = [], wait: number[] = [], disp: number[] = [];
    await session.generate([7], {
      maxNewTokens: steps, eosTokenIds: [],
      onToken: () => {
        const s = model.engine.lastStep!;
        enc.push(s.encodeMs); wait.push(s.waitMs); disp.push(s.dispatches);
      },
    });
    session.dispose();
    const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    return {
      model: name,
      dispatchesPerToken: median(disp),
      hostEncodeMsPerToken: median(enc),
      gpuWaitMsPerToken: median(wait),
      shadersCompiledAfterWarmup: ctx.compiledKernels - compiledBefore,
    };
  } finally {
    await model.dispose();
  }
}

export function reportDecodeHost(adapter: string, f: DecodeHostFigures): void {
  table(`Decode host work per token (${f.model}, batch 1, greedy)`, ['dispatches', 'host encode ms', 'GPU wait ms', 'compiles after warm-up'],
    [[f.dispatchesPerToken, f.hostEncodeMsPerToken, f.gpuWaitMsPerToken, f.shadersCompiledAfterWarmup]]);
  jsonLine('speed.decodeHost', { adapter, ...f });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ctx = await benchGpu();
  reportDecodeHost(ctx.adapter.name, await measureDecodeHost(ctx));
  await ctx.destroy();
}
