// bench/gpu-run: the figures a real GPU run should produce, in one JSON file: for Zamba2-1.2B and
// 2.7B shapes (synthetic weights, full depth) in bf16, q8_0 and q4_k, decode tok/s, the fraction of
// the device's copy bandwidth that decode reaches on the weight bytes, prefill tok/s (T = 512),
// host milliseconds per decode token spent encoding, dispatches per token, and peak memory
// (planned and measured). bench/gpu-run.sh runs it on a machine that has nothing installed.
//
//   node --import ./scripts/register.mjs bench/gpu-run.ts [--out file.json] [--quick]
// --quick: small depth, for checking the script on a software adapter.
import { writeFileSync } from 'node:fs';
import { loadModel } from '../src/api.ts';
import { planMemory } from '../src/runtime/planner.ts';
import { syntheticCheckpoint, zamba2_1p2bConfig, zamba2_2p7bConfig } from './synthetic.ts';
import { QUICK, benchGpu, jsonLine, table } from './common.ts';
import { measureCopyBandwidth } from './roofline.ts';

const outFile = (() => { const i = process.argv.indexOf('--out'); return i > 0 ? process.argv[i + 1] : 'bench/.out/gpu-run.json'; })();
const ctx = await benchGpu();
const copyGBps = await measureCopyBandwidth(ctx);
const adapter = { name: ctx.adapter.name, vendor: ctx.adapter.vendor, description: ctx.adapter.description, software: ctx.adapter.isSoftware, f16: ctx.features.shaderF16, subgroups: ctx.features.subgroups };
console.log(`adapter ${adapter.name} (${adapter.description}); device copy ${copyGBps.toFixed(1)} GB/s`);

const shapes = [
  { name: 'zamba2-1.2B', config: QUICK ? zamba2_1p2bConfig({ layers: 2, hybridIds: [1] }) : zamba2_1p2bConfig() },
  { name: 'zamba2-2.7B', config: QUICK ? zamba2_2p7bConfig({ layers: 3, hybridIds: [1, 2] }) : zamba2_2p7bConfig() },
];
const prefillLen = QUICK ? 64 : 512;
const decodeTokens = QUICK ? 3 : 32;
const results: Record<string, unknown>[] = [];
for (const shape of shapes) {
  for (const quantize of ['none', 'q8_0', 'q4_k'] as const) {
    const t0 = performance.now();
    const model = await loadModel(syntheticCheckpoint(shape.config).source, { device: ctx, noTokenizer: true, quantize, prefillChunk: 256, maxContext: 1 << 20 });
    const loadS = (performance.now() - t0) / 1000;
    try {
      model.resetPeak();
      const s = model.createSession();
      const ids = Array.from({ length: prefillLen }, (_, i) => 3 + ((i * 7919) % 30000));
      let t = performance.now();
      await s.append(ids);
      await ctx.sync();
      const prefillS = (performance.now() - t) / 1000;
      const enc: number[] = [], disp: number[] = [];
      t = performance.now();
      await s.generate([5], { maxNewTokens: decodeTokens, eosTokenIds: [], onToken: () => { enc.push(model.engine.lastStep!.encodeMs); disp.push(model.engine.lastStep!.dispatches); } });
      const decodeS = (performance.now() - t) / 1000;
      s.dispose();
      const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
      const st = model.memoryStats();
      const plan = planMemory(model.config, { maxTokens: prefillLen + decodeTokens + 1, weightBytes: model.weightBytes, kvDtype: model.engine.opts.kvDtype, prefillChunk: 256 });
      const decodeTokS = decodeTokens / decodeS;
      const r = {
        model: shape.name, weights: quantize === 'none' ? 'bf16' : quantize, weightBytes: model.weightBytes, loadSeconds: loadS,
        prefillTokS: prefillLen / prefillS, decodeTokS, decodeCopyFraction: (model.weightBytes * decodeTokS) / (copyGBps * 1e9),
        hostEncodeMsPerToken: median(enc), dispatchesPerToken: median(disp),
        peakBytes: st.peakBytes - st.baselineBytes, plannedBytes: plan.total, kvDtype: model.engine.opts.kvDtype,
      };
      results.push(r);
      jsonLine('gpuRun.model', r);
    } finally {
      await model.dispose();
    }
  }
}
table(`Speed and memory on ${adapter.name}`, ['model', 'weights', 'prefill tok/s', 'decode tok/s', 'of copy BW', 'host ms/token', 'dispatches', 'peak MiB'],
  results.map((r) => [r.model as string, r.weights as string, r.prefillTokS as number, r.decodeTokS as number, r.decodeCopyFraction as number,
    r.hostEncodeMsPerToken as number, r.dispatchesPerToken as number, (r.peakBytes as number) / 2 ** 20]));
writeFileSync(outFile, JSON.stringify({ adapter, copyGBps, quick: QUICK, results }, null, 2));
console.log(`wrote ${outFile}`);
await ctx.destroy();
