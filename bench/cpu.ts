// CPU comparison (issue 13): our Wasm backend vs node-llama-cpp (llama.cpp's prebuilt CPU build)
// vs our WebGPU backend on the machine's software adapter (lavapipe), on the same random
// mamba2-130m weights, the same GGUF file per format (written by src/io/gguf-writer.ts
// encodeMamba2Gguf from one set of f32 values), the same thread count: pp512 (one 512-token
// prompt, tok/s) and tg128 (128 greedy tokens from a fresh sequence, tok/s), on 1 and 2 threads.
//
//   node --import ./scripts/register.mjs bench/cpu.ts [--quick] [--threads 1,2] [--formats f16,bf16,q8_0,q4_k] [--engines wasm,wasm-relaxed,lavapipe,llama]
//
// node-llama-cpp is not a dependency: it is installed on demand into .cache/llama
// (`npm install --no-save node-llama-cpp`); when it cannot be installed or loaded its rows say so.
// Each engine and thread count runs in a child process (lavapipe's thread count is LP_NUM_THREADS,
// read when the driver loads; relaxed SIMD needs a V8 flag on Node 20). The load average is
// printed with the figures: on a shared 2-core machine read the ratios, not the absolute rates.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { QUICK, jsonLine, table } from './common.ts';
import { mamba2_130mConfig } from './synthetic.ts';
import { encodeMamba2Gguf, type GgufDataType } from '../src/io/gguf-writer.ts';
import { parseConfig } from '../src/models/parse-config.ts';
import { expectedTensors } from '../src/models/layout.ts';
import { mulberry32 } from '../test/fixtures/rng.ts';

const root = new URL('..', import.meta.url).pathname;
const OUT = join(root, 'bench/.out/cpu');
const LLAMA_DIR = join(root, '.cache/llama');
const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : dflt; };

type Format = 'f16' | 'bf16' | 'q8_0' | 'q4_k';
type Engine = 'wasm' | 'wasm-relaxed' | 'lavapipe' | 'llama';
const GGUF_TYPE: Record<Format, { matrix: GgufDataType; output?: GgufDataType }> = {
  f16: { matrix: 'F16' }, bf16: { matrix: 'BF16' }, q8_0: { matrix: 'Q8_0' }, q4_k: { matrix: 'Q4_K', output: 'Q6_K' },
};
const PP = 512, TG = 128;

interface Row { engine: Engine; threads: number; format: Format; pp512?: number; tg128?: number; loadS?: number; device?: string; error?: string }

// ---- the weights: one random mamba2-130m, one GGUF file per format ----------------------------

/** Random values in mamba2's ranges (A_log from A in [1, 16], dt_bias = softplus⁻¹ of dt in [1e-3, 0.1]). */
function randomWeights(): Map<string, { shape: number[]; values: Float32Array }> {
  const cfg = parseConfig(mamba2_130mConfig());
  const r = mulberry32(1301);
  const normal = () => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const t of expectedTensors(cfg)) {
    const shape = [...t.shape];
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    const name = t.name;
    if (name.endsWith('A_log')) for (let i = 0; i < n; i++) v[i] = Math.log(1 + 15 * r());
    else if (name.endsWith('dt_bias')) for (let i = 0; i < n; i++) { const dt = Math.exp(Math.log(1e-3) + r() * Math.log(100)); v[i] = dt + Math.log(-Math.expm1(-dt)); }
    else if (name.endsWith('.D') || name.endsWith('norm.weight') || name.endsWith('norm_f.weight')) v.fill(1);
    else if (name.endsWith('conv1d.bias')) for (let i = 0; i < n; i++) v[i] = 0.1 * normal();
    else {
      const K = shape[shape.length - 1];
      const s = name.includes('embed') ? 0.5 : 1 / Math.sqrt(K);
      for (let i = 0; i < n; i++) v[i] = s * normal();
    }
    out.set(name, { shape, values: v });
  }
  return out;
}

function ggufFiles(formats: Format[]): Record<Format, string> {
  mkdirSync(OUT, { recursive: true });
  const paths = {} as Record<Format, string>;
  let weights: ReturnType<typeof randomWeights> | undefined;
  for (const f of formats) {
    const path = join(OUT, `mamba2-130m-random-${f}.gguf`);
    paths[f] = path;
    if (existsSync(path)) continue;
    weights ??= randomWeights();
    const t0 = performance.now();
    const { bytes } = encodeMamba2Gguf({ config: mamba2_130mConfig(), tensors: weights, matrixType: GGUF_TYPE[f].matrix, outputType: GGUF_TYPE[f].output, name: 'mamba2-130m-random' });
    writeFileSync(path, bytes);
    console.error(`wrote ${path} (${(bytes.length / 2 ** 20).toFixed(0)} MiB) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  return paths;
}

// ---- children -------------------------------------------------------------------------------

function randomIds(n: number, seed: number, V = 50288): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => 1 + Math.floor(r() * (V - 1)));
}

/** Ours (Wasm or WebGPU): pp512 = one 512-token block, tg128 = 128 greedy argmax steps; best of `reps`. */
async function childOurs(engine: Engine, threads: number, files: Record<Format, string>, formats: Format[]): Promise<void> {
  const { loadModel } = await import('../src/index.node.ts');
  const { WasmBackend } = await import('../src/backends/wasm/backend.ts');
  const reps = engine === 'lavapipe' || QUICK ? 1 : 2;
  for (const format of formats) {
    const row: Row = { engine, threads, format };
    try {
      const t0 = performance.now();
      const backend = engine === 'lavapipe' ? 'webgpu' as const : await WasmBackend.create({ threads, relaxed: engine === 'wasm-relaxed' });
      const model = await loadModel(files[format], { backend, noTokenizer: true, prefillChunk: PP, maxTokens: PP + TG + 16 });
      row.loadS = (performance.now() - t0) / 1000;
      row.device = model.deviceName;
      try {
        const prompt = randomIds(PP, 7);
        let best = Infinity;
        for (let i = 0; i <= reps; i++) { // the first run warms caches and the allocator
          const cache = model.engine.createCache();
          const s = performance.now();
          await model.engine.run(cache, prompt, 'last');
          if (i > 0) best = Math.min(best, performance.now() - s);
          cache.dispose();
        }
        row.pp512 = PP / (best / 1000);
        best = Infinity;
        for (let i = 0; i < reps; i++) {
          const cache = model.engine.createCache();
          let tok = await model.engine.runArgmax(cache, [1]);
          const s = performance.now();
          for (let j = 0; j < TG; j++) tok = await model.engine.runArgmax(cache, [tok]);
          best = Math.min(best, performance.now() - s);
          cache.dispose();
        }
        row.tg128 = TG / (best / 1000);
      } finally {
        await model.dispose();
        if (typeof backend === 'object') await backend.destroy();
      }
    } catch (e) {
      row.error = (e as Error).message.split('\n')[0];
    }
    console.log(`ROW ${JSON.stringify(row)}`);
  }
}

/** node-llama-cpp: the same file, CPU only, a context with a 512-token batch and `threads` threads. */
async function childLlama(threads: number, files: Record<Format, string>, formats: Format[]): Promise<void> {
  const reps = QUICK ? 1 : 2;
  let mod: { getLlama: (o: Record<string, unknown>) => Promise<any> };
  try {
    mod = await import(join(LLAMA_DIR, 'node_modules/node-llama-cpp/dist/index.js'));
  } catch (e) {
    for (const format of formats) console.log(`ROW ${JSON.stringify({ engine: 'llama', threads, format, error: `node-llama-cpp not loadable: ${(e as Error).message.split('\n')[0]}` })}`);
    return;
  }
  const llama = await mod.getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: threads });
  for (const format of formats) {
    const row: Row = { engine: 'llama', threads, format };
    try {
      const t0 = performance.now();
      const model = await llama.loadModel({ modelPath: files[format], gpuLayers: 0 });
      const ctx = await model.createContext({ contextSize: 1024, batchSize: PP, threads, sequences: 1 });
      row.loadS = (performance.now() - t0) / 1000;
      row.device = `llama.cpp CPU ${threads} thread${threads === 1 ? '' : 's'}`;
      try {
        const seq = ctx.getSequence();
        const prompt = randomIds(PP, 7);
        let best = Infinity;
        for (let i = 0; i <= reps; i++) {
          await seq.clearHistory();
          const s = performance.now();
          await seq.evaluateWithoutGeneratingNewTokens(prompt);
          if (i > 0) best = Math.min(best, performance.now() - s);
        }
        row.pp512 = PP / (best / 1000);
        best = Infinity;
        for (let i = 0; i < reps; i++) {
          await seq.clearHistory();
          let n = 0, s = 0;
          // The first token comes from the one-token prompt's evaluation; time the 128 after it.
          for await (const _ of seq.evaluate([1], { temperature: 0 })) {
            if (n === 0) s = performance.now();
            if (++n > TG) break;
          }
          best = Math.min(best, performance.now() - s);
        }
        row.tg128 = TG / (best / 1000);
      } finally {
        await ctx.dispose();
        await model.dispose();
      }
    } catch (e) {
      row.error = (e as Error).message.split('\n')[0];
    }
    console.log(`ROW ${JSON.stringify(row)}`);
  }
  await llama.dispose?.();
}

// ---- parent ---------------------------------------------------------------------------------

/** node-llama-cpp in .cache/llama: installed on demand (never a dependency); undefined when it works, else why not. */
function ensureLlama(): string | undefined {
  const entry = join(LLAMA_DIR, 'node_modules/node-llama-cpp/dist/index.js');
  if (!existsSync(entry)) {
    mkdirSync(LLAMA_DIR, { recursive: true });
    if (!existsSync(join(LLAMA_DIR, 'package.json'))) writeFileSync(join(LLAMA_DIR, 'package.json'), '{"name":"msl-bench-llama","private":true,"type":"module"}\n');
    console.error('installing node-llama-cpp into .cache/llama (bench only) ...');
    const r = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', 'node-llama-cpp'], { cwd: LLAMA_DIR, encoding: 'utf8', timeout: 900_000 });
    if (r.status !== 0 || !existsSync(entry)) return `npm install node-llama-cpp failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  }
  return undefined;
}

async function main(): Promise<void> {
  const formats = arg('--formats', QUICK ? 'f16,q8_0' : 'f16,bf16,q8_0,q4_k').split(',') as Format[];
  const threadList = arg('--threads', QUICK ? '2' : '1,2').split(',').map(Number);
  const engines = arg('--engines', 'wasm,wasm-relaxed,lavapipe,llama').split(',') as Engine[];
  const load0 = loadavg();
  const files = ggufFiles(formats);
  const llamaProblem = engines.includes('llama') ? ensureLlama() : undefined;
  const relaxedFlag = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-wasm-relaxed-simd'] : [];
  const rows: Row[] = [];
  const t0 = Date.now();
  for (const engine of engines) {
    for (const threads of threadList) {
      if (engine === 'llama' && llamaProblem) {
        for (const format of formats) rows.push({ engine, threads, format, error: llamaProblem });
        continue;
      }
      const env: Record<string, string> = { ...process.env as Record<string, string>, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
      if (engine === 'lavapipe') env.LP_NUM_THREADS = String(threads);
      const flags = engine === 'wasm-relaxed' ? relaxedFlag : [];
      const r = spawnSync(process.execPath, [...flags, '--import', './scripts/register.mjs', 'bench/cpu.ts', '--child', engine, '--threads', String(threads), '--formats', formats.join(','), ...(QUICK ? ['--quick'] : [])],
        { cwd: root, encoding: 'utf8', env, timeout: 1_800_000, maxBuffer: 64 << 20 });
      const got = (r.stdout ?? '').split('\n').filter((l) => l.startsWith('ROW ')).map((l) => JSON.parse(l.slice(4)) as Row);
      for (const format of formats) {
        rows.push(got.find((x) => x.format === format) ?? { engine, threads, format, error: `child failed (${r.status ?? r.signal}): ${(r.stderr ?? '').trim().split('\n').slice(-1)[0]}` });
      }
      for (const x of got) console.error(`  ${engine} ${threads}T ${x.format}: ${x.error ?? `pp512 ${x.pp512?.toFixed(1)} tg128 ${x.tg128?.toFixed(1)} tok/s`}`);
    }
  }
  const load1 = loadavg();
  const get = (e: Engine, t: number, f: Format) => rows.find((x) => x.engine === e && x.threads === t && x.format === f);
  const v = (x: number | undefined) => (x === undefined ? '–' : x);
  const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined ? a / b : undefined);
  const tableRows: (string | number)[][] = [];
  for (const f of formats) for (const t of threadList) {
    const w = get('wasm', t, f), wr = get('wasm-relaxed', t, f), lp = get('lavapipe', t, f), ll = get('llama', t, f);
    tableRows.push([f, t, v(w?.pp512), v(w?.tg128), v(wr?.pp512), v(wr?.tg128), v(lp?.pp512), v(lp?.tg128), v(ll?.pp512), v(ll?.tg128),
      v(ratio(w?.pp512, ll?.pp512)), v(ratio(w?.tg128, ll?.tg128)), v(ratio(w?.pp512, lp?.pp512)), v(ratio(w?.tg128, lp?.tg128))]);
  }
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  table(`CPU, random mamba2-130m, tok/s (load average ${la(load0)} before, ${la(load1)} after; ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    ['format', 'thr', 'wasm pp512', 'wasm tg128', 'relaxed pp', 'relaxed tg', 'lavapipe pp', 'lavapipe tg', 'llama pp', 'llama tg', 'pp/llama', 'tg/llama', 'pp/lavapipe', 'tg/lavapipe'], tableRows);
  if (threadList.includes(1) && threadList.includes(2)) {
    const sc: (string | number)[][] = [];
    for (const e of engines) for (const f of formats) {
      const a = get(e, 1, f), b = get(e, 2, f);
      sc.push([e, f, v(ratio(b?.pp512, a?.pp512)), v(ratio(b?.tg128, a?.tg128))]);
    }
    table('thread scaling 1 -> 2 (rate at 2 threads / rate at 1 thread)', ['engine', 'format', 'pp512', 'tg128'], sc);
  }
  for (const r of rows.filter((x) => x.error)) console.log(`note: ${r.engine} ${r.threads}T ${r.format}: ${r.error}`);
  for (const r of rows.filter((x) => x.device && x.threads === threadList[0] && x.format === formats[0])) console.log(`device: ${r.engine} = ${r.device}`);
  jsonLine('cpu', { model: 'mamba2-130m random', pp: PP, tg: TG, loadavgBefore: load0, loadavgAfter: load1, node: process.versions.node, rows });
}

if (argv.includes('--child')) {
  const engine = arg('--child', 'wasm') as Engine;
  const threads = Number(arg('--threads', '1'));
  const formats = arg('--formats', 'f16').split(',') as Format[];
  const files = Object.fromEntries(formats.map((f) => [f, join(OUT, `mamba2-130m-random-${f}.gguf`)])) as Record<Format, string>;
  if (engine === 'llama') await childLlama(threads, files, formats);
  else await childOurs(engine, threads, files, formats);
  process.exit(0);
} else {
  await main();
}
