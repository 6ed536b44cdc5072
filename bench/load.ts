// bench/load: checkpoint load time with quantize 'none' (bf16 kept), 'q8_0' and 'q4_k' (the
// Q4_K_M recipe), side by side in one run on the WebGPU backend, for synthetic BF16 checkpoints
// of Zamba2-1.2B and mamba2-130m shapes (bench/synthetic.ts: bytes computed on demand, nothing on
// disk). Issue 10's target is the ratio to the bf16 load: quantizing costs at most 2x.
// Quantized loads run with the quantization worker pool at its default size (one worker per core)
// and on the loading thread alone (quantizeThreads 0), so the pool's gain shows in the same run.
// Each figure is the best of --repeat loads (default 1; loads are long and the machine is shared).
// Also reported: host high-water bytes (LoadedCheckpoint.hostHighWaterBytes: chunk buffers, Wasm
// scratch and the workers' memories), which the bounded pipeline keeps flat whatever the model size.
//
//   node --import ./scripts/register.mjs bench/load.ts [--quick] [--repeat 2] [--models zamba2-1.2b,mamba2-130m]
import os from 'node:os';
import { WebGpuBackend } from '../src/backends/webgpu/backend.ts';
import { loadCheckpoint, type LoadOptions } from '../src/io/loader.ts';
import { mamba2_130mConfig, syntheticCheckpoint, zamba2_1p2bConfig } from './synthetic.ts';
import { QUICK, benchGpu, jsonLine, mib, table } from './common.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const repeat = Math.max(1, Number(arg('repeat') ?? 1));
const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;

const MODELS: Record<string, () => Record<string, unknown>> = {
  // --quick: the same widths with fewer layers (load time is linear in depth).
  'zamba2-1.2b': () => (QUICK ? zamba2_1p2bConfig({ layers: 6, hybridIds: [5] }) : zamba2_1p2bConfig()),
  'mamba2-130m': () => mamba2_130mConfig(),
};
const models = (arg('models') ?? 'zamba2-1.2b,mamba2-130m').split(',');

interface Variant { label: string; quantize: 'none' | 'q8_0' | 'q4_k'; threads?: number }
const variants: Variant[] = [
  { label: 'bf16', quantize: 'none' },
  { label: 'q8_0', quantize: 'q8_0' },
  { label: 'q8_0 1 thread', quantize: 'q8_0', threads: 0 },
  { label: 'q4_k', quantize: 'q4_k' },
  { label: 'q4_k 1 thread', quantize: 'q4_k', threads: 0 },
];

const ctx = await benchGpu();
const be = new WebGpuBackend(ctx, false);
console.log(`adapter: ${ctx.adapter.name}; ${cores} cores; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at start`);

const rows: (string | number)[][] = [];
for (const name of models) {
  const make = MODELS[name];
  if (!make) throw new Error(`unknown model ${name}: ${Object.keys(MODELS).join(', ')}`);
  const syn = syntheticCheckpoint(make());
  let bf16Seconds = NaN;
  for (const v of variants) {
    let best = Infinity, high = 0, weightBytes = 0;
    for (let r = 0; r < repeat; r++) {
      const opts: LoadOptions = { quantize: v.quantize, ...(v.threads !== undefined ? { quantizeThreads: v.threads } : {}) };
      const t0 = performance.now();
      const ck = await loadCheckpoint(be, syn.source, opts);
      await be.sync();
      const s = (performance.now() - t0) / 1000;
      best = Math.min(best, s);
      high = Math.max(high, ck.hostHighWaterBytes);
      weightBytes = ck.weightBytes;
      ck.dispose();
      be.trimPool?.();
    }
    if (v.quantize === 'none') bf16Seconds = best;
    const ratio = best / bf16Seconds;
    const threads = v.quantize === 'none' ? '-' : v.threads === 0 ? 'main' : `${cores} workers`;
    rows.push([name, v.label, threads, best, syn.dataBytes / 2 ** 30 / best, ratio, mib(weightBytes), mib(high)]);
    jsonLine('load.quantize', {
      adapter: ctx.adapter.name, model: name, quick: QUICK, quantize: v.quantize, quantizeThreads: v.threads ?? 'default', cores,
      seconds: best, srcBytes: syn.dataBytes, srcGiBs: syn.dataBytes / 2 ** 30 / best, ratioToBf16: ratio,
      weightBytes, hostHighWaterBytes: high, loadAverage: os.loadavg()[0], repeat,
    });
  }
}
table(`checkpoint load, synthetic BF16 checkpoints (best of ${repeat}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} at end)`,
  ['model', 'load', 'quantize on', 'seconds', 'GiB/s (src)', 'x bf16', 'weights MiB', 'host high-water MiB'], rows);
