// bench/speed: decode tok/s at batch 1 and prefill tok/s (T = 512) for the Zamba2-1.2B shape in
// BF16 and a Mamba2-130m shape, beside the adapter's own limits measured in the same run:
//   decode roofline  = weight bytes read per token × tok/s ÷ device copy bandwidth
//   prefill roofline = achieved FLOP/s ÷ best GEMM FLOP/s (our matmul at a 256×2048×8192 shape)
// plus where the time goes per op class (timestamp queries), and recurrent vs chunked scan at
// the model level for T = 512 and 2048; then the host's work per decode step (bench/decode-host.ts:
// dispatches, host encode ms, GPU wait ms) under the real-GPU and the adapter's decisions.
import { loadModel, type MambaModel } from '../src/api.ts';
import { matmul } from '../src/backends/webgpu/kernels/matmul.ts';
import { opClass } from '../src/backends/webgpu/profiler.ts';
import { STORAGE_RW } from '../src/backends/webgpu/flags.ts';
import type { GpuContext } from '../src/backends/webgpu/context.ts';
import type { GpuTensor } from '../src/backends/webgpu/tensor.ts';
import { syntheticCheckpoint, zamba2_1p2bConfig, mamba2_130mConfig } from './synthetic.ts';
import { QUICK, benchGpu, jsonLine, table } from './common.ts';
import { measureCopyBandwidth } from './roofline.ts';
import { measureDecodeHostSets, reportDecodeHost } from './decode-host.ts';

const ctx = await benchGpu();
const adapter = ctx.adapter.name;
console.log(`adapter: ${adapter} (f16 ${ctx.features.shaderF16}, subgroups ${ctx.features.subgroups}, timestamps ${ctx.features.timestampQuery})${QUICK ? ' [quick]' : ''}`);

// --- the adapter's own limits -------------------------------------------------------------
const copyGBps = await measureCopyBandwidth(ctx);
async function bestGemmFlops(): Promise<number> {
  const M = 256, K = 2048, N = 8192;
  const w = ctx.alloc.create('bench:w', N * K * 2, STORAGE_RW);
  const x = ctx.alloc.create('bench:x', M * K * 4, STORAGE_RW);
  const y = ctx.alloc.create('bench:y', M * N * 4, STORAGE_RW);
  const tensor: GpuTensor = { name: 'bench.w', dtype: 'bf16', shape: [N, K], parts: [{ buffer: w, rowStart: 0, rows: N }], byteLength: N * K * 2 };
  await matmul(ctx, { x, M, w: tensor, y });
  await ctx.sync();
  const reps = QUICK ? 2 : 4;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await matmul(ctx, { x, M, w: tensor, y });
  await ctx.sync();
  const s = (performance.now() - t0) / 1000 / reps;
  for (const b of [w, x, y]) ctx.alloc.destroy(b);
  return (2 * M * K * N) / s;
}
const gemmFlops = await bestGemmFlops();
console.log(`device copy ${copyGBps.toFixed(2)} GB/s; best GEMM ${(gemmFlops / 1e9).toFixed(2)} GFLOP/s`);
jsonLine('speed.limits', { adapter, copyGBps, gemmGflops: gemmFlops / 1e9 });

// --- models -----------------------------------------------------------------------------
function paramCount(m: MambaModel): number {
  // Parameters that prefill multiplies: bf16 matrices (2 bytes each; vectors are small) minus
  // the embedding, which is a gather (a tied head is not run for prefill-only blocks).
  return m.weightBytes / 2 - m.config.vocabSize * m.config.hiddenSize;
}

async function profile(fn: () => Promise<void>): Promise<Record<string, number>> {
  if (!ctx.startProfiling()) return {};
  await fn();
  const totals = await ctx.stopProfiling();
  const byClass: Record<string, number> = {};
  for (const [k, v] of totals) byClass[opClass(k)] = (byClass[opClass(k)] ?? 0) + v.ns / 1e6;
  return byClass;
}

interface ModelRow { name: string; prefillTokS: number; decodeTokS: number; decodeRoofline: number; prefillRoofline: number; breakdown: Record<string, number> }
const rows: ModelRow[] = [];

async function benchModel(name: string, config: Record<string, unknown>, promptLen: number, decodeTokens: number): Promise<void> {
  const t0 = performance.now();
  const syn = syntheticCheckpoint(config);
  const model = await loadModel(syn.source, { device: ctx, prefillChunk: 256, noTokenizer: true, maxContext: 1 << 20 });
  const loadS = (performance.now() - t0) / 1000;
  const ids = Array.from({ length: promptLen }, (_, i) => 3 + ((i * 7919) % 30000));
  // Warm-up: compiles every pipeline variant the measured paths use (both scans, decode).
  const warm = model.createSession();
  await warm.generate(ids.slice(0, Math.min(promptLen, 70)), { maxNewTokens: 2 });
  warm.dispose();

  const session = model.createSession();
  let t = performance.now();
  await session.append(ids);
  await ctx.sync();
  const prefillS = (performance.now() - t) / 1000;
  t = performance.now();
  await session.generate([5], { maxNewTokens: decodeTokens, eosTokenIds: [] });
  const decodeS = (performance.now() - t) / 1000;
  const decodeTokS = decodeTokens / decodeS;
  const prefillTokS = promptLen / prefillS;
  // Weight bytes each decode step streams (all of them: every layer plus the head).
  const decodeRoofline = (model.weightBytes * decodeTokS) / (copyGBps * 1e9);
  const prefillFlops = 2 * paramCount(model) * promptLen / prefillS;
  const prefillRoofline = prefillFlops / gemmFlops;
  const breakdown = await profile(async () => {
    await session.generate([5], { maxNewTokens: 2, eosTokenIds: [] });
    await session.append(ids.slice(0, profileBlock));
  });
  session.dispose();
  console.log(`${name}: load ${loadS.toFixed(1)} s, ${(model.weightBytes / 1e9).toFixed(3)} GB weights`);
  rows.push({ name, prefillTokS, decodeTokS, decodeRoofline, prefillRoofline, breakdown });
  jsonLine('speed.model', { adapter, model: name, weightBytes: model.weightBytes, promptLen, prefillTokS, decodeTokS,
    decodeRoofline, prefillGflops: prefillFlops / 1e9, prefillRoofline, timeByOpMs: breakdown, loadSeconds: loadS });
  await model.dispose();
}

async function scanComparison(T: number, layers: number): Promise<void> {
  // Zamba2-1.2B mixer widths, mamba layers only: the scan's share is what changes.
  const config = zamba2_1p2bConfig({ layers, hybridIds: [] });
  const syn = syntheticCheckpoint(config);
  const res: Record<string, number> = {};
  for (const scan of ['recurrent', 'chunked'] as const) {
    const model = await loadModel(syn.source, { device: ctx, prefillChunk: 256, noTokenizer: true, scan, maxContext: 1 << 20 });
    const ids = Array.from({ length: T }, (_, i) => 3 + ((i * 31) % 30000));
    const w = model.createSession(); await w.append(ids.slice(0, 256)); w.dispose();
    const s = model.createSession();
    const t0 = performance.now();
    await s.append(ids);
    await ctx.sync();
    res[scan] = T / ((performance.now() - t0) / 1000);
    s.dispose();
    await model.dispose();
  }
  const winner = res.chunked > res.recurrent ? 'chunked' : 'recurrent';
  console.log(`scan at T=${T} (${layers} mamba layers, 1.2B width): recurrent ${res.recurrent.toFixed(1)} tok/s, chunked ${res.chunked.toFixed(1)} tok/s → ${winner}`);
  jsonLine('speed.scan', { adapter, T, layers, recurrentTokS: res.recurrent, chunkedTokS: res.chunked, winner });
}

// Software adapters emulate the GPU on the CPU (~1-2 GFLOP/s GEMM here): full-depth 1.2B prefill
// of 512 tokens would take tens of minutes. There, prefill is measured on 128 tokens and, for the
// 1.2B shape, on 2 of its 38 layers (1 mamba + 1 hybrid, real widths); decode always runs the full model.
const soft = ctx.adapter.isSoftware;
const profileBlock = soft ? 64 : 256;
const prefillLen = soft ? 128 : 512;
await benchModel('mamba2-130m', mamba2_130mConfig(), QUICK ? 64 : prefillLen, QUICK ? 4 : 8);
if (soft) {
  await benchModel('zamba2-1.2B (decode; prefill of 16)', zamba2_1p2bConfig(), 16, QUICK ? 2 : 4);
  await benchModel('zamba2-1.2B width, 2 layers', zamba2_1p2bConfig({ layers: 2, hybridIds: [1] }), QUICK ? 64 : prefillLen, 4);
} else {
  await benchModel('zamba2-1.2B', zamba2_1p2bConfig(), prefillLen, 16);
}
for (const T of QUICK ? [128] : soft ? [256, 1024] : [512, 2048]) await scanComparison(T, soft ? 1 : 4);

// Decode by weight format: the same synthetic model in bf16 and quantized at load to q8_0 and
// q4_k, all three loaded at once and decoded in interleaved rounds (best round each), so every
// format sees the machine in the same state. Fewer bytes per weight should decode faster.
async function formatComparison(name: string, config: Record<string, unknown>, tokens: number, rounds: number): Promise<void> {
  const syn = syntheticCheckpoint(config);
  const formats = [undefined, 'q8_0', 'q4_k'] as const;
  const models = [];
  for (const quantize of formats) models.push(await loadModel(syn.source, { device: ctx, noTokenizer: true, quantize, prefillChunk: 64 }));
  try {
    const best = formats.map(() => 0);
    for (const m of models) { const w = m.createSession(); await w.generate([3, 4, 5], { maxNewTokens: 2, eosTokenIds: [] }); w.dispose(); }
    for (let r = 0; r < rounds; r++) {
      for (const [i, m] of models.entries()) {
        const s = m.createSession();
        await s.append([3, 4, 5, 6]);
        await ctx.sync();
        const t0 = performance.now();
        await s.generate([7], { maxNewTokens: tokens, eosTokenIds: [] });
        best[i] = Math.max(best[i], tokens / ((performance.now() - t0) / 1000));
        s.dispose();
      }
    }
    table(`Decode by weight format (${name}, batch 1, best of ${rounds} interleaved rounds of ${tokens} tokens)`,
      ['weights', 'weight MiB', 'decode tok/s', 'vs bf16'],
      models.map((m, i) => [formats[i] ?? 'bf16', m.weightBytes / 2 ** 20, best[i], best[i] / best[0]]));
    jsonLine('speed.formats', { adapter, model: name, tokens, rounds, ...Object.fromEntries(models.map((m, i) => [formats[i] ?? 'bf16', { weightBytes: m.weightBytes, decodeTokS: best[i], vsBf16: best[i] / best[0] }])) });
  } finally {
    for (const m of models) await m.dispose();
  }
}
await formatComparison('mamba2-130m', mamba2_130mConfig(), QUICK ? 3 : 8, QUICK ? 1 : 3);
// All 38 layers in three formats at once do not fit a CPU emulation's time: there, 2 of them
// (one mamba, one hybrid) at full width, with the full 32000 x 2048 head.
if (!soft) await formatComparison('zamba2-1.2B', zamba2_1p2bConfig(), 16, 3);
else await formatComparison('zamba2-1.2B widths, 2 layers', zamba2_1p2bConfig({ layers: 2, hybridIds: [1] }), QUICK ? 3 : 8, QUICK ? 1 : 3);

table('Speed (batch 1)', ['model', 'prefill tok/s', 'decode tok/s', 'decode roofline', 'prefill roofline'],
  rows.map((r) => [r.name, r.prefillTokS, r.decodeTokS, r.decodeRoofline, r.prefillRoofline]));
const classes = [...new Set(rows.flatMap((r) => Object.keys(r.breakdown)))].sort();
if (classes.length) table(`GPU time by op class (ms, 2 decode steps + one ${profileBlock}-token block)`, ['model', ...classes], rows.map((r) => [r.name, ...classes.map((c) => r.breakdown[c] ?? 0)]));
await ctx.destroy();
// Host work per decode step, each decision set on a device of its own (after this one is gone).
reportDecodeHost(await measureDecodeHostSets());
