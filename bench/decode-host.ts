// Host work of one greedy decode step at Zamba2-1.2B shapes (38 layers, real widths, BF16): kernel
// launches per token, milliseconds the host spends recording and submitting a step (JS plus
// WebGPU/Dawn calls; the step starts with the GPU idle, so this is the host's own work), and the
// milliseconds then spent waiting for the GPU. On a real GPU the host part, not the weight reads,
// can set the speed; on a software adapter the wait is the emulated GPU.
//
// Two decision sets in one run, side by side: the real-GPU one (DeviceOptions tuning 'gpu' with
// WebGPU's default limits: the fused GEMV prologues, tiled GEMM, workgroup GEMV traversal) and the
// adapter's own (on a CPU emulation: software tuning, norms as their own dispatches).
//
// Run alone: node --import ./scripts/register.mjs bench/decode-host.ts [--quick]
// (bench/speed.ts runs it too). Prints a table and one JSON line `speed.decodeHost` per set.
import { loadModel } from '../src/api.ts';
import { GpuContext, type DeviceOptions } from '../src/backends/webgpu/context.ts';
import { setGpuProvider } from '../src/backends/webgpu/provider.ts';
import { nodeGpu } from '../src/backends/webgpu/node-gpu.ts';
import { syntheticCheckpoint, zamba2_1p2bConfig } from './synthetic.ts';
import { QUICK, jsonLine, table } from './common.ts';

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

/** The decision sets measured: [label, device options]. */
export const DECISION_SETS: [string, DeviceOptions][] = [
  ['gpu-decisions', { tuning: 'gpu', limits: 'default' }],
  ['adapter-decisions', {}],
];

/** Measures every decision set on a fresh device each (one at a time: one model in memory). */
export async function measureDecodeHostSets(): Promise<(DecodeHostFigures & { adapter: string; decisions: string })[]> {
  setGpuProvider(nodeGpu);
  const out: (DecodeHostFigures & { adapter: string; decisions: string })[] = [];
  for (const [decisions, opts] of DECISION_SETS) {
    const ctx = await GpuContext.create(opts);
    try {
      out.push({ adapter: ctx.adapter.name, decisions, ...(await measureDecodeHost(ctx)) });
    } finally {
      await ctx.destroy();
    }
  }
  return out;
}

export function reportDecodeHost(rows: (DecodeHostFigures & { adapter: string; decisions: string })[]): void {
  table(`Decode host work per token (${rows[0]?.model}, batch 1, greedy, BF16)`,
    ['decisions', 'dispatches', 'host encode ms', 'GPU wait ms', 'compiles after warm-up'],
    rows.map((f) => [f.decisions, f.dispatchesPerToken, f.hostEncodeMsPerToken, f.gpuWaitMsPerToken, f.shadersCompiledAfterWarmup]));
  for (const f of rows) jsonLine('speed.decodeHost', { ...f });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  reportDecodeHost(await measureDecodeHostSets());
}
