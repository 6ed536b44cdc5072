// bench/batch: decode throughput of continuous batching (MambaModel.createBatcher over
// Engine.runBatch) at B = 1, 4 and 16 sequences, aggregate and per sequence, on small synthetic
// checkpoints: Zamba2-1.2B widths with 2 layers (1 mamba + 1 hybrid, BF16) and Mamba2-130m widths
// with 4 layers. All B sequences are submitted at once with 8-token prompts; the decode window
// runs from the moment every sequence has its first token to the end, so prefill is excluded.
// With weights read once per step for all rows, the aggregate should grow with B until the step
// stops being bound by reading the weights; the ratio to B = 1 is printed beside it.
import { loadModel, type MambaModel } from '../src/api.ts';
import { syntheticCheckpoint, zamba2_1p2bConfig, mamba2_130mConfig } from './synthetic.ts';
import { QUICK, benchGpu, jsonLine, table } from './common.ts';

const ctx = await benchGpu();
const adapter = ctx.adapter.name;
console.log(`adapter: ${adapter}${QUICK ? ' [quick]' : ''}`);

const models: { name: string; config: Record<string, unknown> }[] = [
  { name: 'zamba2-1.2B widths, 2 layers', config: zamba2_1p2bConfig({ layers: 2, hybridIds: [1] }) },
  { name: 'mamba2-130m widths, 4 layers', config: { ...mamba2_130mConfig(), num_hidden_layers: 4 } },
];
const BATCHES = [1, 4, 16];
const STEPS = QUICK ? 3 : 8;

interface Row { model: string; B: number; aggregate: number; perSequence: number; steps: number }

async function decodeRate(model: MambaModel, B: number): Promise<{ aggregate: number; steps: number }> {
  const V = model.config.vocabSize;
  const batcher = await model.createBatcher({ maxBatch: B });
  try {
    const times: number[][] = Array.from({ length: B }, () => []);
    const handles = Array.from({ length: B }, (_, i) => batcher.submit({
      prompt: Array.from({ length: 8 }, (_, t) => (i * 131 + t * 17 + 3) % V),
      maxNewTokens: STEPS + 1, eosTokenIds: [],
      onToken: () => times[i].push(performance.now()),
    }));
    const steps0 = batcher.stats().steps;
    await Promise.all(handles.map((h) => h.result));
    // From the last first token (all are decoding) to the last token.
    const start = Math.max(...times.map((t) => t[0]));
    const end = Math.max(...times.map((t) => t.at(-1)!));
    const tokens = times.reduce((a, t) => a + t.filter((x) => x > start).length, 0);
    return { aggregate: tokens / ((end - start) / 1000), steps: batcher.stats().steps - steps0 };
  } finally {
    await batcher.close();
  }
}

const rows: Row[] = [];
for (const m of models) {
  const model = await loadModel(syntheticCheckpoint(m.config).source, { device: ctx, noTokenizer: true, prefillChunk: 64 });
  try {
    // One run at the largest batch first: kernels for every step shape are built, pools sized.
    await decodeRate(model, BATCHES.at(-1)!);
    for (const B of BATCHES) {
      const r = await decodeRate(model, B);
      rows.push({ model: m.name, B, aggregate: r.aggregate, perSequence: r.aggregate / B, steps: r.steps });
    }
  } finally {
    await model.dispose();
  }
}

const base = new Map(rows.filter((r) => r.B === 1).map((r) => [r.model, r.aggregate]));
table(`batch decode on ${adapter} (${STEPS} decode steps per sequence)`, ['model', 'B', 'aggregate tok/s', 'per sequence tok/s', '× B=1', 'steps'],
  rows.map((r) => [r.model, r.B, r.aggregate, r.perSequence, r.aggregate / base.get(r.model)!, r.steps]));
for (const r of rows) {
  jsonLine('batch.decode', { adapter, model: r.model, B: r.B, aggregateTokS: r.aggregate, perSequenceTokS: r.perSequence, speedupVsB1: r.aggregate / base.get(r.model)!, steps: r.steps });
}
await ctx.destroy();
