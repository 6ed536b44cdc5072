// bench/memory: peak device memory of prefill at growing prompt lengths, split into weights,
// recurrent state, KV cache and scratch, for a Zamba2-1.2B-shaped model (real widths, random
// BF16 weights generated on the fly). Depth is reduced to 2 layers (one mamba, one hybrid):
// scratch does not depend on depth, state and KV scale linearly with it, and the full-depth
// figures are printed from the planner beside the measured ones. Next to each row: what
// transformers' naive chunked scan would allocate for one mixer call at that length (docs/model.md).
import { loadModel } from '../src/api.ts';
import { planMemory } from '../src/runtime/planner.ts';
import { parseConfig } from '../src/models/parse-config.ts';
import { syntheticCheckpoint, zamba2_1p2bConfig } from './synthetic.ts';
import { QUICK, benchGpu, jsonLine, mib, table } from './common.ts';

// transformers' torch_forward for one Zamba2-1.2B mixer call in f32 at batch 1, per 256-token
// chunk: the (b, c, Q, Q, heads, N) tensor (2 GiB), Y_diag (1 GiB), and 104 MiB of the rest
// (docs/model.md: 3,176 MiB at T=256, 6,348 at 512, 12,709 at 1024).
function naiveMixerBytes(T: number): number {
  const chunks = Math.ceil(T / 256);
  return chunks * (3176 * 2 ** 20);
}

const ctx = await benchGpu();
const lengths = QUICK ? [256, 1024] : [256, 1024, 4096, 16384];
// Software adapters compute ~3 tok/s at this width: prompts over 256 tokens run allocation-only (every
// buffer is allocated exactly as in a real run, the kernels are skipped), so their memory figures
// are exact and they carry no speed figure.
const computeUpTo = ctx.adapter.isSoftware ? 256 : Infinity;
const prefillChunk = 256;
const smallConfig = zamba2_1p2bConfig({ layers: 2, hybridIds: [1] });
const fullConfig = parseConfig(zamba2_1p2bConfig());
const syn = syntheticCheckpoint(smallConfig);
const model = await loadModel(syn.source, { device: ctx, prefillChunk, maxContext: 1 << 20, noTokenizer: true });
const rows: (string | number)[][] = [];
console.log(`adapter: ${ctx.adapter.name}; model: Zamba2-1.2B widths, 2 of 38 layers (1 mamba + 1 hybrid), bf16 weights; prefill blocks of ${prefillChunk}`);
for (const T of lengths) {
  if (T > model.engine.kvTokenLimit) {
    console.log(`T=${T}: skipped: one KV buffer of ${T} tokens exceeds this adapter's ${mib(ctx.limits.maxStorageBufferBindingSize).toFixed(0)} MiB storage binding limit (at most ${model.engine.kvTokenLimit} tokens here)`);
    jsonLine('memory', { adapter: ctx.adapter.name, T, skipped: 'kv buffer over the storage binding limit', kvTokenLimit: model.engine.kvTokenLimit });
    continue;
  }
  const ids = Array.from({ length: T }, (_, i) => 3 + ((i * 7919) % 31000));
  const session = model.createSession();
  model.resetPeak();
  ctx.allocationOnly = T > computeUpTo;
  const t0 = performance.now();
  await session.append(ids);
  await ctx.sync();
  const seconds = ctx.allocationOnly ? NaN : (performance.now() - t0) / 1000;
  ctx.allocationOnly = false;
  const st = model.memoryStats();
  const weights = st.byLabel.weights ?? 0;
  const state = st.byLabel.state ?? 0;
  const kv = st.byLabel.kv ?? 0;
  const scratch = st.peakBytes - st.baselineBytes - weights - state - kv;
  const plan = planMemory(model.config, { maxTokens: T, prefillChunk, weightBytes: model.weightBytes });
  const full = planMemory(fullConfig, { maxTokens: T, prefillChunk, dtype: 'bf16' });
  const naive = naiveMixerBytes(T);
  rows.push([T, mib(weights), mib(state), mib(kv), mib(scratch), mib(st.peakBytes - st.baselineBytes), mib(plan.total),
    mib(full.total), mib(naive), naive + full.weights > 4 * 2 ** 30 ? 'no' : 'yes', Number.isNaN(seconds) ? 'alloc-only' : T / seconds]);
  jsonLine('memory', { adapter: ctx.adapter.name, T, layers: 2, weightsBytes: weights, stateBytes: state, kvBytes: kv,
    scratchBytes: scratch, peakBytes: st.peakBytes - st.baselineBytes, plannedBytes: plan.total,
    fullDepthPlannedBytes: full.total, fullDepthKvBytes: full.kvCache, fullDepthStateBytes: full.state,
    naiveMixerBytes: naive, prefillTokPerS: Number.isNaN(seconds) ? null : T / seconds, allocationOnly: Number.isNaN(seconds) });
  session.dispose();
}
table('Prefill peak device memory (MiB)', ['T', 'weights', 'state', 'KV', 'scratch', 'peak', 'planned', 'full-depth plan',
  'naive mixer', 'naive fits 4GB', 'tok/s'], rows);
await model.dispose();
await ctx.destroy();
