// bench/batch: decode throughput of continuous batching (MambaModel.createBatcher over
// Engine.runBatch) at B = 1, 4 and 16 sequences, aggregate and per sequence, on small synthetic
// checkpoints: Zamba2-1.2B widths with 2 layers (1 mamba + 1 hybrid, BF16) and Mamba2-130m widths
// with 4 layers. All B sequences are submitted at once with 8-token prompts; the decode window
// runs from the moment every sequence has its first token to the end, so prefill is excluded.
// With weights read once per step for all rows, the aggregate should grow with B until the step
// stops being bound by reading the weights; the ratio to B = 1 is printed beside it.
// Also: session snapshot sizes (Session.saveState, what the prefix cache and chat --save keep),
// measured on the 2-layer Zamba2-1.2B-width model and scaled to the full 38 layers / 6 KV sites.
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

/** Snapshot bytes at two lengths: the constant part per mamba layer and the KV bytes per token per site. */
async function snapshotFigures(model: MambaModel): Promise<{ perLayer: number; kvPerTokenSite: number; header: number }> {
  const d = model.engine.runner.cacheDims();
  const sizes: number[] = [];
  for (const T of [8, 72]) {
    const s = model.createSession();
    await s.append(Array.from({ length: T }, (_, i) => (i * 7 + 1) % model.config.vocabSize));
    sizes.push((await s.saveState()).byteLength);
    s.dispose();
  }
  // The header grows by a digit between the two lengths: whole bytes per token.
  const kvPerTokenSite = Math.floor((sizes[1] - sizes[0]) / 64 / Math.max(1, d.numKvSites));
  const perLayer = d.convStateBytes + d.ssmStateBytes;
  return { perLayer, kvPerTokenSite, header: sizes[0] - d.numMambaLayers * perLayer - 8 * d.numKvSites * kvPerTokenSite };
}

const rows: Row[] = [];
let snap: Awaited<ReturnType<typeof snapshotFigures>> | undefined;
for (const m of models) {
  const model = await loadModel(syntheticCheckpoint(m.config).source, { device: ctx, noTokenizer: true, prefillChunk: 64 });
  try {
    if (m.name.startsWith('zamba2')) snap = await snapshotFigures(model);
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
if (snap) {
  // Zamba2-1.2B: 38 mamba mixers, 6 attention call sites.
  const full = (T: number) => 38 * snap!.perLayer + 6 * T * snap!.kvPerTokenSite + snap!.header;
  const MiBf = (b: number) => b / 2 ** 20;
  table(`session snapshot of Zamba2-1.2B shapes (state ${MiBf(38 * snap.perLayer).toFixed(1)} MiB, whatever the length; KV ${(6 * snap.kvPerTokenSite / 1024).toFixed(0)} KiB per token)`,
    ['tokens', 'snapshot MiB', 'of which KV MiB'], [1, 256, 1024, 4096].map((T) => [T, MiBf(full(T)), MiBf(6 * T * snap!.kvPerTokenSite)]));
  jsonLine('batch.snapshot', { adapter, model: 'zamba2-1.2B', stateBytes: 38 * snap.perLayer, kvBytesPerToken: 6 * snap.kvPerTokenSite, bytesAt: Object.fromEntries([256, 1024, 4096].map((T) => [T, full(T)])) });
}
await ctx.destroy();
