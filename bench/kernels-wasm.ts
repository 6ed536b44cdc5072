// bench/kernels-wasm: the Wasm CPU kernels (assembly/kernels/) side by side on 1 and 2 threads (and
// the relaxed-SIMD build beside the plain one), in one run:
//   - GEMV GB/s per weight format at mamba2-130m shapes (in_proj 3352x768, out_proj 768x1536, the
//     tied 50288x768 head) and Zamba2-1.2B shapes (in_proj 8512x2048, out_proj 2048x4096, gate_up
//     16384x4096, down 2048x8192, lm_head 32000x2048), bytes = stored weight bytes;
//   - GEMM GFLOP/s at M = 512 (prefill) and the GEMV/GEMM crossover in M;
//   - scan time per token (decode T = 1, prefill T = 512) and the other mixer kernels;
//   - a synthetic mamba2-130m forward (24 layers of random weights, bf16 or q8_0): decode tok/s and
//     512-token prefill tok/s, against the issue 13 targets (>= 20 tok/s decode, >= 140 tok/s
//     prefill with bf16 on 2 threads).
// Prints tables and one JSON line ({"bench":"kernels-wasm", ...}).
//
//   node --import ./scripts/register.mjs bench/kernels-wasm.ts [--quick] [--formats bf16,q8_0] [--no-zamba]
//
// Node 20 validates relaxed SIMD only with --experimental-wasm-relaxed-simd: the script re-runs
// itself with that flag (unless --no-relaxed) so both builds are measured in the same process.
// Timing: a warm-up call, then batches of calls of >= 60 ms each, best of 3 (the machine is shared:
// best-of is the least noisy figure; ratios between columns of one run are what to read).
// Weights are random but well-formed (normal-range values and block scales, no denormals).
import { spawnSync } from 'node:child_process';
import { WasmKernels, GEMV_MAX_M, type WasmBuffer, type WasmTensor } from '../src/backends/wasm/kernels.ts';
import { bytesPerValue, WEIGHT_FORMATS } from '../src/backends/wasm/formats.ts';
import { wasmFeatures } from '../src/backends/wasm/features.ts';
import { deviceLayout, isQuantFormat } from '../src/quant/formats.ts';
import type { DType } from '../src/backends/tensor.ts';

const RELAXED_FLAG = '--experimental-wasm-relaxed-simd';
if (!wasmFeatures().relaxedSimd && !process.argv.includes('--no-relaxed') && !process.execArgv.includes(RELAXED_FLAG) && !process.env.MSL_WASM_BENCH_CHILD) {
  const r = spawnSync(process.execPath, [RELAXED_FLAG, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, MSL_WASM_BENCH_CHILD: '1' } });
  process.exit(r.status ?? 1);
}

const QUICK = process.argv.includes('--quick') || process.env.MSL_BENCH_QUICK === '1';
function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const FORMATS = (arg('formats')?.split(',') as DType[] | undefined) ?? WEIGHT_FORMATS;
const ZAMBA = !process.argv.includes('--no-zamba') && !QUICK;

function table(title: string, header: string[], rows: (string | number)[][]): void {
  const f = (c: string | number) => typeof c === 'number' ? (Math.abs(c) >= 100 ? c.toFixed(0) : Math.abs(c) >= 10 ? c.toFixed(1) : c.toFixed(2)) : c;
  const cells = [header, ...rows.map((r) => r.map(f))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  console.log(`\n${title}`);
  for (const [j, r] of cells.entries()) {
    console.log(r.map((c, i) => String(c).padStart(widths[i])).join('  '));
    if (j === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

/** ms per call: best of 3 batches of >= batchMs each, after one warm-up call. */
function timeIt(fn: () => void, batchMs = QUICK ? 30 : 60): number {
  fn();
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    do { fn(); n++; t = performance.now(); } while (t - t0 < batchMs);
    best = Math.min(best, (t - t0) / n);
  }
  return best;
}

// ---- well-formed random weights ----

let rngState = 0x9e3779b9;
function rnd(): number { // xorshift32
  rngState ^= rngState << 13; rngState >>>= 0;
  rngState ^= rngState >>> 17;
  rngState ^= rngState << 5; rngState >>>= 0;
  return rngState;
}

/** A random f16 scale in [2^-9, 2^-6) (block formats). */
function f16Scale(): number { return ((6 + (rnd() % 3)) << 10) | (rnd() & 0x3ff); }

function weightBytes(dtype: DType, N: number, K: number): Uint8Array {
  const n = N * K;
  if (dtype === 'f32') {
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = ((rnd() & 0xffff) - 32768) * 2 ** -21;
    return new Uint8Array(f.buffer);
  }
  if (dtype === 'f16' || dtype === 'bf16') {
    const h = new Uint16Array(n + (n & 1));
    for (let i = 0; i < n; i++) {
      const r = rnd();
      // sign, exponent in a normal range (f16: 2^-9 .. 2^-2; bf16: 2^-9 .. 2^-2), random mantissa
      h[i] = dtype === 'f16' ? ((r & 0x8000) | ((6 + (r >>> 16) % 8) << 10) | (r & 0x3ff))
        : ((r & 0x8000) | ((118 + (r >>> 16) % 8) << 7) | (r & 0x7f));
    }
    return new Uint8Array(h.buffer);
  }
  if (!isQuantFormat(dtype)) throw new Error(dtype);
  const lay = deviceLayout(dtype, N, K);
  const out = new Uint8Array(lay.totalBytes);
  const u32 = new Uint32Array(out.buffer, 0, lay.totalBytes >> 2);
  for (let i = 0; i < u32.length; i++) u32[i] = rnd();
  const dv = new DataView(out.buffer);
  if (lay.d) for (let b = 0; b < lay.nb; b++) dv.setUint16(lay.d.offset + 2 * b, f16Scale(), true);
  if (dtype === 'q4_k') for (let b = 0; b < lay.nb; b++) { dv.setUint16(144 * b, f16Scale(), true); dv.setUint16(144 * b + 2, f16Scale(), true); }
  return out;
}

function tensor(k: WasmKernels, name: string, dtype: DType, N: number, K: number, bytes: Uint8Array): WasmTensor {
  const buffer = k.upload(`weights:${name}`, bytes);
  return { name, dtype, shape: [N, K], parts: [{ buffer, rowStart: 0, rows: N }], byteLength: bytes.byteLength };
}

function freeTensor(k: WasmKernels, t: WasmTensor): void { for (const p of t.parts) k.heap.free(p.buffer); }

function act(k: WasmKernels, label: string, n: number, scale = 1): WasmBuffer {
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = ((rnd() & 0xffff) / 65536 - 0.5) * scale;
  return k.upload(label, f);
}

// ---- configurations measured side by side ----

interface Config { name: string; k: WasmKernels }
const features = wasmFeatures();
const configs: Config[] = [];
for (const threads of [1, 2]) {
  configs.push({ name: `${threads}T`, k: await WasmKernels.create({ threads, relaxedSimd: false }) });
}
if (features.relaxedSimd) {
  for (const threads of [1, 2]) configs.push({ name: `${threads}T relaxed`, k: await WasmKernels.create({ threads, relaxedSimd: true }) });
}
const json: Record<string, unknown> = {
  node: process.versions.node, threads: configs.map((c) => c.k.threads), relaxedSimd: features.relaxedSimd, quick: QUICK,
};
console.log(`wasm kernels: ${configs.map((c) => `${c.name} = ${c.k.variant} x${c.k.threads}`).join(', ')}; relaxed SIMD ${features.relaxedSimd ? 'on' : 'unavailable'}`);

// ---- GEMV GB/s ----

const SHAPES_130M: [string, number, number][] = [['in_proj', 3352, 768], ['out_proj', 768, 1536], ['head', 50288, 768]];
const SHAPES_1B: [string, number, number][] = [['in_proj', 8512, 2048], ['out_proj', 2048, 4096], ['gate_up', 16384, 4096], ['down', 2048, 8192], ['lm_head', 32000, 2048]];

const gemvJson: Record<string, number> = {};
function gemvTable(model: string, shapes: [string, number, number][]): void {
  const rows: (string | number)[][] = [];
  for (const dtype of FORMATS) {
    for (const [name, N, K] of shapes) {
      const bytes = weightBytes(dtype, N, K);
      const row: (string | number)[] = [dtype, `${name} ${N}x${K}`];
      const figures: number[] = [];
      for (const c of configs) {
        const w = tensor(c.k, name, dtype, N, K, bytes);
        const x = act(c.k, 'act:x', K), y = c.k.heap.alloc('act:y', 4 * N);
        const ms = timeIt(() => c.k.matmul({ x, M: 1, w, y, path: 'gemv' }));
        const gbs = (N * K * bytesPerValue(dtype)) / ms / 1e6;
        figures.push(gbs);
        row.push(gbs);
        gemvJson[`${model}.${name}.${dtype}.${c.name}`] = +gbs.toFixed(2);
        freeTensor(c.k, w); c.k.heap.free(x); c.k.heap.free(y);
      }
      row.push(figures[1] / figures[0]);
      if (configs.length > 2) row.push(figures[2] / figures[0]);
      rows.push(row);
    }
  }
  table(`GEMV GB/s (M = 1, weight bytes), ${model}`, ['dtype', 'shape', ...configs.map((c) => c.name), '2T/1T', ...(configs.length > 2 ? ['relaxed/plain 1T'] : [])], rows);
}
gemvTable('mamba2-130m', SHAPES_130M);
if (ZAMBA) gemvTable('zamba2-1.2b', SHAPES_1B);
json.gemvGBs = gemvJson;

// ---- GEMM GFLOP/s at M = 512, and the GEMV/GEMM crossover ----

const gemmJson: Record<string, number> = {};
{
  const rows: (string | number)[][] = [];
  const M = QUICK ? 128 : 512;
  const gemmFormats = FORMATS.filter((f) => ['f32', 'f16', 'bf16', 'q8_0', 'q4_k'].includes(f));
  const shapes: [string, number, number][] = [['130m in_proj', 3352, 768], ['130m out_proj', 768, 1536], ...(ZAMBA ? [['1.2b out_proj', 2048, 4096] as [string, number, number]] : [])];
  for (const dtype of gemmFormats) {
    for (const [name, N, K] of shapes) {
      const bytes = weightBytes(dtype, N, K);
      const row: (string | number)[] = [dtype, `${name} ${N}x${K}`];
      const f: number[] = [];
      for (const c of configs) {
        const w = tensor(c.k, name, dtype, N, K, bytes);
        const x = act(c.k, 'act:x', M * K), y = c.k.heap.alloc('act:y', 4 * M * N);
        const ms = timeIt(() => c.k.matmul({ x, M, w, y, path: 'gemm' }), 1);
        const gf = (2 * M * N * K) / ms / 1e6;
        f.push(gf);
        row.push(gf);
        gemmJson[`${name}.${dtype}.${c.name}`] = +gf.toFixed(2);
        freeTensor(c.k, w); c.k.heap.free(x); c.k.heap.free(y);
      }
      row.push(f[1] / f[0]);
      if (configs.length > 2) row.push(f[2] / f[0]);
      rows.push(row);
    }
  }
  table(`GEMM GFLOP/s at M = ${M}`, ['dtype', 'shape', ...configs.map((c) => c.name), '2T/1T', ...(configs.length > 2 ? ['relaxed/plain 1T'] : [])], rows);
  json.gemmGflops = gemmJson;

  // Crossover: time per call of GEMV and GEMM for small M (bf16 130m in_proj, 1 thread).
  const c = configs[0];
  const N = 3352, K = 768;
  const w = tensor(c.k, 'in_proj', 'bf16', N, K, weightBytes('bf16', N, K));
  const x = act(c.k, 'act:x', 16 * K), y = c.k.heap.alloc('act:y', 4 * 16 * N);
  const cross: (string | number)[][] = [];
  const crossJson: Record<string, [number, number]> = {};
  for (const m of [1, 2, 3, 4, 6, 8, 12, 16]) {
    const a = timeIt(() => c.k.matmul({ x, M: m, w, y, path: 'gemv' }), 30);
    const b = timeIt(() => c.k.matmul({ x, M: m, w, y, path: 'gemm' }), 30);
    cross.push([m, a, b, a / b]);
    crossJson[m] = [+a.toFixed(3), +b.toFixed(3)];
  }
  table(`GEMV vs GEMM, bf16 3352x768, ${c.name} (ms per call; GEMV_MAX_M = ${GEMV_MAX_M})`, ['M', 'gemv ms', 'gemm ms', 'gemv/gemm'], cross);
  json.crossover = crossJson;
  freeTensor(c.k, w); c.k.heap.free(x); c.k.heap.free(y);
}

// ---- scan and the other mixer kernels ----

const scanJson: Record<string, number> = {};
{
  const rows: (string | number)[][] = [];
  const shapes: [string, number, number, number][] = [['130m', 24, 64, 128], ['1.2b', 64, 64, 128]];
  for (const [model, NH, P, N] of shapes) {
    for (const T of [1, QUICK ? 64 : 512]) {
      const row: (string | number)[] = [model, `NH ${NH} P ${P} N ${N}`, T];
      const f: number[] = [];
      for (const c of configs) {
        const k = c.k;
        const di = NH * P, convDim = di + 2 * N;
        const xbc = act(k, 'act:xbc', T * convDim, 2), dt = act(k, 'act:dt', T * NH, 1);
        const hp = act(k, 'act:hp', NH, 0.1), aLog = act(k, 'act:alog', NH, 1);
        const state = k.heap.alloc('state:ssm', 4 * NH * P * N), y = k.heap.alloc('act:y', 4 * T * di);
        const ms = timeIt(() => k.ssmScan({ T, nHeads: NH, headDim: P, dState: N, nGroups: 1,
          x: { buffer: xbc, offset: 0, rowStride: convDim }, B: { buffer: xbc, offset: di, rowStride: convDim },
          C: { buffer: xbc, offset: di + N, rowStride: convDim }, dt: { buffer: dt, offset: 0, rowStride: NH },
          dtBias: hp, aLog, D: hp, state, y, dtMin: 0, dtMax: Infinity }), T > 1 ? 20 : 60);
        const usPerTok = (ms * 1000) / T;
        f.push(usPerTok);
        row.push(usPerTok);
        scanJson[`${model}.T${T}.${c.name}`] = +usPerTok.toFixed(2);
        for (const b of [xbc, dt, hp, aLog, state, y]) k.heap.free(b);
      }
      row.push(f[0] / f[1]);
      rows.push(row);
    }
  }
  table('recurrent scan, us per token (one layer)', ['model', 'shape', 'T', ...configs.map((c) => c.name), '1T/2T'], rows);
  json.scanUsPerToken = scanJson;
}

// ---- the other per-token kernels ----

const otherJson: Record<string, number> = {};
{
  const rows: (string | number)[][] = [];
  type Case = [string, (k: WasmKernels) => { run: () => void; free: () => void }];
  const T = QUICK ? 64 : 512;
  const conv = (T: number): Case => [`conv1d C 1792 K 4 T ${T}`, (k) => {
    const C = 1792, inp = act(k, 'act:in', T * C), w = act(k, 'w', C * 4), b = act(k, 'b', C), st = k.heap.alloc('st', 16 * C), out = k.heap.alloc('o', 4 * T * C);
    return { run: () => k.conv1d({ T, channels: C, kernelSize: 4, input: { buffer: inp, offset: 0, rowStride: C }, weight: w, bias: b, convState: st, pos0: 0, out }),
      free: () => { for (const x of [inp, w, b, st, out]) k.heap.free(x); } };
  }];
  const gated = (T: number): Case => [`gatedRmsNorm D 1536 T ${T}`, (k) => {
    const D = 1536, y = act(k, 'y', T * D), z = act(k, 'z', T * D), w = act(k, 'w', D), out = k.heap.alloc('o', 4 * T * D);
    return { run: () => k.gatedRmsNorm({ y, z: { buffer: z, offset: 0, rowStride: D }, weight: w, out, T, D, groupSize: D, eps: 1e-5 }),
      free: () => { for (const x of [y, z, w, out]) k.heap.free(x); } };
  }];
  const attn = (T: number, ctx: number, kv: 'f32' | 'f16'): Case => [`attention 32x128 ${kv} KV T ${T} ctx ${ctx}`, (k) => {
    const H = 32, hd = 128, cap = ctx, esz = kv === 'f16' ? 2 : 4;
    const q = act(k, 'q', T * H * hd), kc = k.heap.alloc('k', esz * cap * H * hd), vc = k.heap.alloc('v', esz * cap * H * hd), out = k.heap.alloc('o', 4 * T * H * hd);
    return { run: () => k.attention({ q, qRowStride: H * hd, kCache: kc, vCache: vc, kvDtype: kv, out, T, pos0: ctx - T, nHeads: H, nKvHeads: H, headDim: hd, scale: 0.125 }),
      free: () => { for (const x of [q, kc, vc, out]) k.heap.free(x); } };
  }];
  const cases: Case[] = [conv(1), conv(T), gated(1), gated(T), attn(1, 512, 'f32'), attn(1, 2048, 'f32'), attn(1, 2048, 'f16'), attn(T, T, 'f32')];
  for (const [name, make] of cases) {
    const row: (string | number)[] = [name];
    const f: number[] = [];
    for (const c of configs) {
      const m = make(c.k);
      const us = timeIt(m.run, 40) * 1000;
      m.free();
      f.push(us);
      row.push(us);
      otherJson[`${name}.${c.name}`] = +us.toFixed(1);
    }
    row.push(f[0] / f[1]);
    rows.push(row);
  }
  table('other kernels, us per call', ['kernel', ...configs.map((c) => c.name), '1T/2T'], rows);
  json.otherUs = otherJson;
}

// ---- synthetic mamba2-130m forward ----

interface Layer { inProj: WasmTensor; outProj: WasmTensor; convW: WasmBuffer; convB: WasmBuffer; dtBias: WasmBuffer; aLog: WasmBuffer; D: WasmBuffer;
  normW: WasmBuffer; lnW: WasmBuffer; convState: WasmBuffer; ssmState: WasmBuffer }

function mamba130m(k: WasmKernels, dtype: DType, inBytes: Uint8Array[], outBytes: Uint8Array[], headBytes: Uint8Array) {
  const H = 768, di = 1536, NH = 24, P = 64, N = 128, G = 1, Kc = 4, convDim = di + 2 * G * N, inDim = di + convDim + NH, V = 50288, L = 24;
  const layers: Layer[] = [];
  for (let l = 0; l < L; l++) {
    layers.push({
      inProj: tensor(k, `l${l}.in_proj`, dtype, inDim, H, inBytes[l]), outProj: tensor(k, `l${l}.out_proj`, dtype, H, di, outBytes[l]),
      convW: act(k, 'weights:conv', convDim * Kc, 0.5), convB: act(k, 'weights:convb', convDim, 0.1), dtBias: act(k, 'weights:dtb', NH, 0.1),
      aLog: act(k, 'weights:alog', NH, 1), D: act(k, 'weights:D', NH, 1), normW: act(k, 'weights:norm', di, 1), lnW: act(k, 'weights:ln', H, 1),
      convState: k.heap.alloc('state:conv', 4 * Kc * convDim), ssmState: k.heap.alloc('state:ssm', 4 * NH * P * N),
    });
  }
  const head = tensor(k, 'embed', dtype, V, H, headBytes);
  const lnF = act(k, 'weights:lnf', H, 1);
  const bufs: WasmBuffer[] = [];
  const ws = (Tmax: number) => {
    const a = (label: string, n: number) => { const b = k.heap.alloc(label, 4 * n); bufs.push(b); return b; };
    return { x: a('act:x', Tmax * H), xn: a('act:xn', Tmax * H), zx: a('act:zx', Tmax * inDim), xbc: a('act:xbc', Tmax * convDim),
      y: a('act:y', Tmax * di), yn: a('act:yn', Tmax * di), o: a('act:o', Tmax * H), logits: a('act:logits', V) };
  };
  const w1 = ws(1);
  const forward = (T: number, pos0: number, w: ReturnType<typeof ws>) => {
    for (const ly of layers) {
      k.rmsNorm({ x: w.x, weight: ly.lnW, out: w.xn, T, H, eps: 1e-5 });
      k.matmul({ x: w.xn, M: T, w: ly.inProj, y: w.zx });
      k.conv1d({ T, channels: convDim, kernelSize: Kc, input: { buffer: w.zx, offset: di, rowStride: inDim }, weight: ly.convW, bias: ly.convB,
        convState: ly.convState, pos0, out: w.xbc });
      k.ssmScan({ T, nHeads: NH, headDim: P, dState: N, nGroups: G, x: { buffer: w.xbc, offset: 0, rowStride: convDim },
        B: { buffer: w.xbc, offset: di, rowStride: convDim }, C: { buffer: w.xbc, offset: di + N, rowStride: convDim },
        dt: { buffer: w.zx, offset: di + convDim, rowStride: inDim }, dtBias: ly.dtBias, aLog: ly.aLog, D: ly.D, state: ly.ssmState, y: w.y,
        dtMin: 0, dtMax: Infinity });
      k.gatedRmsNorm({ y: w.y, z: { buffer: w.zx, offset: 0, rowStride: inDim }, weight: ly.normW, out: w.yn, T, D: di, groupSize: di, eps: 1e-5 });
      k.matmul({ x: w.yn, M: T, w: ly.outProj, y: w.o });
      k.add({ a: w.x, b: w.o, out: w.x, n: T * H });
    }
    k.rmsNorm({ x: w.x, weight: lnF, out: w.xn, T, H, eps: 1e-5 });
    k.matmul({ x: w.xn, xOffset: (T - 1) * H, M: 1, w: head, y: w.logits }); // logits of the last token only
  };
  return {
    decodeMs: () => timeIt(() => forward(1, 100, w1), 200),
    prefillMs: (T: number) => { const w = ws(T); const ms = timeIt(() => forward(T, 0, w), 1); return ms; },
    dispose: () => {
      for (const ly of layers) {
        freeTensor(k, ly.inProj); freeTensor(k, ly.outProj);
        for (const b of [ly.convW, ly.convB, ly.dtBias, ly.aLog, ly.D, ly.normW, ly.lnW, ly.convState, ly.ssmState]) k.heap.free(b);
      }
      freeTensor(k, head); k.heap.free(lnF);
      for (const b of bufs) k.heap.free(b);
    },
  };
}

const modelJson: Record<string, number> = {};
{
  const rows: (string | number)[][] = [];
  const T = QUICK ? 128 : 512;
  for (const dtype of (['bf16', 'q8_0'] as DType[]).filter((d) => FORMATS.includes(d))) {
    const inBytes = Array.from({ length: 24 }, () => weightBytes(dtype, 3352, 768));
    const outBytes = Array.from({ length: 24 }, () => weightBytes(dtype, 768, 1536));
    const headBytes = weightBytes(dtype, 50288, 768);
    for (const c of configs) {
      const m = mamba130m(c.k, dtype, inBytes, outBytes, headBytes);
      const dec = 1000 / m.decodeMs();
      const pre = (T * 1000) / m.prefillMs(T);
      rows.push([dtype, c.name, dec, pre]);
      modelJson[`${dtype}.${c.name}.decodeTokS`] = +dec.toFixed(2);
      modelJson[`${dtype}.${c.name}.prefill${T}TokS`] = +pre.toFixed(2);
      m.dispose();
    }
  }
  table(`synthetic mamba2-130m forward (24 layers, tied 50288 head; targets: decode >= 20 tok/s, prefill >= 140 tok/s with bf16 on 2 threads)`,
    ['dtype', 'config', 'decode tok/s', `prefill ${T} tok/s`], rows);
  json.mamba2_130m = modelJson;
}

for (const c of configs) c.k.close();
console.log(JSON.stringify({ bench: 'kernels-wasm', ...json }));
