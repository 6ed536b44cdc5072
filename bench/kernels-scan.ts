// Recurrent vs chunked selective scan at Zamba2-1.2B mixer shapes (NH 64, P 64, N 128, G 1;
// docs/model.md §Released configurations): milliseconds per ssmScan call and the scratch it takes, for
// T = 256, 1024, 4096. One JSON line per result on stdout.
//
//   node --import ./scripts/register.mjs bench/kernels-scan.ts [--t 256,1024,4096] [--q 64,256] [--reps N]
//
// Time is host wall time from recording the call to the queue finishing it (one call per submit),
// after a warm-up call that compiles the kernels (best of 2 at T <= 256, one call above, so the
// default run stays near 2 minutes on lavapipe even on a loaded 2-core machine; --q 64,256 adds a
// chunk size). ms includes one submit + fence wait (~0.1-1 ms), which matters only at small T. Inputs use the real layout (x/B/C slices of xbc [T, convDim]);
// dt is given compact ([T, NH]) so no buffer exceeds a 128 MiB binding at T = 4096.
import { GpuContext } from '../src/backends/webgpu/context.ts';
import { setGpuProvider } from '../src/backends/webgpu/provider.ts';
import { nodeGpu } from '../src/backends/webgpu/node-gpu.ts';
import { STORAGE_RW } from '../src/backends/webgpu/flags.ts';
import { ssmScan, scanScratchBytes, type ScanAlgorithm, type SsmScanArgs } from '../src/backends/webgpu/kernels/scan.ts';

const NH = 64, P = 64, N = 128, G = 1;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const Ts = (arg('t') ?? '256,1024,4096').split(',').map(Number);
const Qs = (arg('q') ?? '64').split(',').map(Number);
const repsOverride = arg('reps') !== undefined ? Number(arg('reps')) : undefined;

/** Fills a Float32Array with values in [-scale, scale) from a cheap LCG (timing does not need normals). */
function fill(n: number, seed: number, scale: number, bias = 0): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = bias + scale * (s / 2147483648 - 1);
  }
  return out;
}

setGpuProvider(nodeGpu);
const ctx = await GpuContext.create();
const di = NH * P, convDim = di + 2 * G * N;
const Tmax = Math.max(...Ts);
const xbc = ctx.upload('bench:xbc', fill(Tmax * convDim, 1, 1));
const dt = ctx.upload('bench:dt', fill(Tmax * NH, 2, 1, -1));
const dtBias = ctx.upload('bench:dtBias', fill(NH, 3, 1, -3));
const aLog = ctx.upload('bench:aLog', fill(NH, 4, 1, 1.5));
const D = ctx.upload('bench:D', fill(NH, 5, 1));
const state = ctx.alloc.create('bench:state', 4 * NH * P * N, STORAGE_RW);
const y = ctx.alloc.create('bench:y', 4 * Tmax * di, STORAGE_RW);

function args(T: number, algorithm: ScanAlgorithm, Q: number): SsmScanArgs {
  return {
    T, nHeads: NH, headDim: P, dState: N, nGroups: G,
    x: { buffer: xbc, offset: 0, rowStride: convDim }, B: { buffer: xbc, offset: di, rowStride: convDim },
    C: { buffer: xbc, offset: di + G * N, rowStride: convDim }, dt: { buffer: dt, offset: 0, rowStride: NH },
    dtBias, aLog, D, state, y, dtMin: 1e-4, dtMax: Infinity, algorithm, chunkSize: Q,
  };
}

const variants: { algorithm: ScanAlgorithm; Q: number }[] = [{ algorithm: 'recurrent', Q: 0 }, ...Qs.map((Q) => ({ algorithm: 'chunked' as const, Q }))];
for (const v of variants) {
  await ssmScan(ctx, args(Math.min(16, Tmax), v.algorithm, v.Q || 64)); // compile + warm up
  await ctx.sync();
}
for (const T of Ts) {
  for (const v of variants) {
    const Q = v.Q || 64;
    const reps = repsOverride ?? (T <= 256 ? 2 : 1);
    ctx.alloc.trimPool();
    ctx.alloc.resetPeak();
    const base = ctx.alloc.memoryStats().liveBytes;
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await ssmScan(ctx, args(T, v.algorithm, Q));
      await ctx.sync();
      times.push(performance.now() - t0);
    }
    const peak = ctx.alloc.memoryStats().peakBytes - base;
    const ms = Math.min(...times);
    console.log(JSON.stringify({
      bench: 'ssm_scan', adapter: ctx.adapter.name, subgroups: ctx.features.subgroups, algorithm: v.algorithm,
      chunkSize: v.algorithm === 'chunked' ? Math.min(Q, T) : undefined, T, NH, P, N, G, reps,
      ms: Number(ms.toFixed(2)), msAll: times.map((t) => Number(t.toFixed(2))),
      tokensPerS: Math.round((T / ms) * 1000),
      // The recurrence's useful work, 4 flops per state element per token (2 FMAs), for both
      // algorithms: a like-for-like rate, not the chunked form's own (larger) flop count.
      gflops: Number(((4 * T * NH * P * N) / (ms * 1e6)).toFixed(3)),
      scratchBytes: scanScratchBytes({ T, nHeads: NH, algorithm: v.algorithm, chunkSize: Q }),
      peakScratchBytes: peak, stateBytes: 4 * NH * P * N,
    }));
  }
}
for (const b of [xbc, dt, dtBias, aLog, D, state, y]) ctx.alloc.destroy(b);
ctx.alloc.trimPool();
await ctx.destroy();
