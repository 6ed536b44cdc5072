// CPU comparison (issue 13): our Wasm backend vs node-llama-cpp (llama.cpp's prebuilt CPU build)
// vs our WebGPU backend on the machine's software adapter (lavapipe), on the same random
// mamba2-130m weights, the same GGUF file per format (written by src/io/gguf-writer.ts
// encodeMamba2Gguf from one set of f32 values), the same thread count: pp512 (one 512-token
// prompt, tok/s) and tg128 (128 greedy tokens from a fresh sequence, tok/s), on 1 and 2 threads.
//
//   node --import ./scripts/register.mjs bench/cpu.ts [--quick] [--threads 1,2] [--formats f16,bf16,q8_0,q4_k]
//     [--engines wasm,wasm-relaxed,lavapipe,llama] [--rounds 3]
//
// node-llama-cpp is not a dependency: it is installed on demand into .cache/llama
// (`npm install --no-save node-llama-cpp`); when it cannot be installed or loaded its rows say so.
// Each engine and thread count is a child process holding every format loaded (lavapipe's thread count is LP_NUM_THREADS,
// read when the driver loads; relaxed SIMD needs a V8 flag on Node 20). The load average is
// printed with the figures: on a shared 2-core machine read the ratios, not the absolute rates.
import { spawn, spawnSync } from 'node:child_process';
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

// ---- children: one per engine and thread count, every format loaded, measuring on request ----
//
// The parent interleaves the engines (round by round, format by format), so all of them see the
// machine in the same state; each child answers `pp <format>` / `tg <format>` with one rate.

function randomIds(n: number, seed: number, V = 50288): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: n }, () => 1 + Math.floor(r() * (V - 1)));
}

interface Measurer {
  device: Record<string, string>;
  errors: Record<string, string>;
  loadS: Record<string, number>;
  pp(f: Format): Promise<number>;
  tg(f: Format): Promise<number>;
}

/** Ours (Wasm or WebGPU on lavapipe), one backend for every format: pp512 = one 512-token block, tg128 = 128 greedy argmax steps. */
async function oursMeasurer(engine: Engine, threads: number, files: Record<Format, string>, formats: Format[]): Promise<Measurer> {
  const { loadModel } = await import('../src/index.node.ts');
  const { WasmBackend } = await import('../src/backends/wasm/backend.ts');
  const { WebGpuBackend } = await import('../src/backends/webgpu/backend.ts');
  const be = engine === 'lavapipe' ? await WebGpuBackend.create() : await WasmBackend.create({ threads, relaxed: engine === 'wasm-relaxed' });
  const m: Measurer & { models: Map<Format, Awaited<ReturnType<typeof loadModel>>> } = {
    device: {}, errors: {}, loadS: {}, models: new Map(),
    async pp(f) {
      const model = m.models.get(f)!;
      const cache = model.engine.createCache();
      const s = performance.now();
      await model.engine.run(cache, randomIds(PP, 7), 'last');
      const t = performance.now() - s;
      cache.dispose();
      return PP / (t / 1000);
    },
    async tg(f) {
      const model = m.models.get(f)!;
      const cache = model.engine.createCache();
      let tok = await model.engine.runArgmax(cache, [1]);
      const s = performance.now();
      for (let j = 0; j < TG; j++) tok = await model.engine.runArgmax(cache, [tok]);
      const t = performance.now() - s;
      cache.dispose();
      return TG / (t / 1000);
    },
  };
  for (const f of formats) {
    try {
      const t0 = performance.now();
      const model = await loadModel(files[f], { backend: be, noTokenizer: true, prefillChunk: PP, maxTokens: PP + TG + 16 });
      m.loadS[f] = (performance.now() - t0) / 1000;
      m.device[f] = model.deviceName;
      m.models.set(f, model);
    } catch (e) {
      m.errors[f] = (e as Error).message.split('\n')[0];
    }
  }
  return m;
}

/** node-llama-cpp: the same files, CPU only, a context with a 512-token batch and `threads` threads each. */
async function llamaMeasurer(threads: number, files: Record<Format, string>, formats: Format[]): Promise<Measurer> {
  const m: Measurer = { device: {}, errors: {}, loadS: {}, pp: async () => NaN, tg: async () => NaN };
  let mod: { getLlama: (o: Record<string, unknown>) => Promise<any> };
  try {
    mod = await import(join(LLAMA_DIR, 'node_modules/node-llama-cpp/dist/index.js'));
  } catch (e) {
    for (const f of formats) m.errors[f] = `node-llama-cpp not loadable: ${(e as Error).message.split('\n')[0]}`;
    return m;
  }
  const llama = await mod.getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: threads });
  const seqs = new Map<Format, any>();
  for (const f of formats) {
    try {
      const t0 = performance.now();
      const model = await llama.loadModel({ modelPath: files[f], gpuLayers: 0 });
      const ctx = await model.createContext({ contextSize: 1024, batchSize: PP, threads, sequences: 1 });
      m.loadS[f] = (performance.now() - t0) / 1000;
      m.device[f] = `llama.cpp CPU (node-llama-cpp ${JSON.parse((await import('node:fs')).readFileSync(join(LLAMA_DIR, 'node_modules/node-llama-cpp/package.json'), 'utf8')).version}) ${threads} thread${threads === 1 ? '' : 's'}`;
      seqs.set(f, ctx.getSequence());
    } catch (e) {
      m.errors[f] = (e as Error).message.split('\n')[0];
    }
  }
  m.pp = async (f) => {
    const seq = seqs.get(f);
    await seq.clearHistory();
    const s = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(randomIds(PP, 7));
    return PP / ((performance.now() - s) / 1000);
  };
  m.tg = async (f) => {
    const seq = seqs.get(f);
    await seq.clearHistory();
    let n = 0, s = 0;
    // The first token comes from evaluating the one-token prompt; time the 128 after it.
    for await (const _ of seq.evaluate([1], { temperature: 0 })) {
      if (n === 0) s = performance.now();
      if (++n > TG) break;
    }
    return TG / ((performance.now() - s) / 1000);
  };
  return m;
}

async function child(engine: Engine, threads: number, formats: Format[]): Promise<void> {
  const files = Object.fromEntries(formats.map((f) => [f, join(OUT, `mamba2-130m-random-${f}.gguf`)])) as Record<Format, string>;
  const m = engine === 'llama' ? await llamaMeasurer(threads, files, formats) : await oursMeasurer(engine, threads, files, formats);
  console.log(`READY ${JSON.stringify({ device: m.device, errors: m.errors, loadS: m.loadS })}`);
  const { createInterface } = await import('node:readline');
  for await (const line of createInterface({ input: process.stdin })) {
    const [what, f] = line.trim().split(' ') as ['pp' | 'tg' | 'quit', Format];
    if (what === 'quit') break;
    try {
      const rate = what === 'pp' ? await m.pp(f) : await m.tg(f);
      console.log(`RESULT ${JSON.stringify({ rate })}`);
    } catch (e) {
      console.log(`RESULT ${JSON.stringify({ error: (e as Error).message.split('\n')[0] })}`);
    }
  }
  process.exit(0);
}

/** The parent's handle on a child: send a line, await the next RESULT/READY line. */
class ChildProc {
  private buf = '';
  private waiters: ((line: string) => void)[] = [];
  private lines: string[] = [];
  readonly proc: ReturnType<typeof spawn>;
  stderr = '';
  constructor(args: string[], env: Record<string, string>) {
    this.proc = spawn(process.execPath, args, { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        if (!/^(READY|RESULT) /.test(line)) continue;
        const w = this.waiters.shift();
        if (w) w(line); else this.lines.push(line);
      }
    });
    this.proc.stderr!.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.proc.on('exit', () => { for (const w of this.waiters.splice(0)) w('EXIT'); });
  }
  next(): Promise<string> {
    const l = this.lines.shift();
    if (l) return Promise.resolve(l);
    if (this.proc.exitCode !== null) return Promise.resolve('EXIT');
    return new Promise((r) => this.waiters.push(r));
  }
  async ask(cmd: string): Promise<{ rate?: number; error?: string }> {
    this.proc.stdin!.write(`${cmd}\n`);
    const l = await this.next();
    if (l === 'EXIT') return { error: `child exited: ${this.stderr.trim().split('\n').pop()}` };
    return JSON.parse(l.slice(7));
  }
  quit(): void { this.proc.stdin!.end('quit\n'); }
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
  const rounds = Number(arg('--rounds', QUICK ? '1' : '3'));
  const load0 = loadavg();
  ggufFiles(formats);
  const llamaProblem = engines.includes('llama') ? ensureLlama() : undefined;
  const relaxedFlag = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-wasm-relaxed-simd'] : [];
  const rows: Row[] = [];
  const t0 = Date.now();
  const procs = new Map<string, ChildProc>();
  for (const engine of engines) for (const threads of threadList) {
    const key = `${engine}/${threads}`;
    if (engine === 'llama' && llamaProblem) {
      for (const format of formats) rows.push({ engine, threads, format, error: llamaProblem });
      continue;
    }
    const env: Record<string, string> = { ...process.env as Record<string, string>, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
    if (engine === 'lavapipe') env.LP_NUM_THREADS = String(threads);
    const flags = engine === 'wasm-relaxed' ? relaxedFlag : [];
    const c = new ChildProc([...flags, '--import', './scripts/register.mjs', 'bench/cpu.ts', '--child', engine, '--threads', String(threads), '--formats', formats.join(',')], env);
    const ready = await c.next();
    if (ready === 'EXIT') {
      for (const format of formats) rows.push({ engine, threads, format, error: `child failed: ${c.stderr.trim().split('\n').pop()}` });
      continue;
    }
    const info = JSON.parse(ready.slice(6)) as { device: Record<string, string>; errors: Record<string, string>; loadS: Record<string, number> };
    for (const format of formats) rows.push({ engine, threads, format, device: info.device[format], loadS: info.loadS[format], error: info.errors[format] });
    procs.set(key, c);
    console.error(`  ${key}: loaded (${formats.map((f) => `${f} ${info.errors[f] ? 'failed' : `${info.loadS[f]?.toFixed(1)} s`}`).join(', ')})`);
  }
  const row = (e: Engine, t: number, f: Format) => rows.find((x) => x.engine === e && x.threads === t && x.format === f)!;
  // Interleaved: every round measures each format on every engine back to back (best of the rounds;
  // the first round also warms the JIT tiers). lavapipe, 3-15x slower, runs in the first round only.
  for (let r = 0; r < rounds; r++) {
    for (const f of formats) for (const t of threadList) for (const e of engines) {
      const c = procs.get(`${e}/${t}`);
      const x = row(e, t, f);
      if (!c || x.error || (e === 'lavapipe' && r > 0)) continue;
      for (const what of ['pp', 'tg'] as const) {
        const res = await c.ask(`${what} ${f}`);
        if (res.error) { x.error = res.error; break; }
        const k = what === 'pp' ? 'pp512' : 'tg128';
        x[k] = Math.max(x[k] ?? 0, res.rate!);
      }
      console.error(`  round ${r + 1} ${e} ${t}T ${f}: ${x.error ?? `pp512 ${x.pp512?.toFixed(1)} tg128 ${x.tg128?.toFixed(1)} tok/s (load ${loadavg()[0].toFixed(1)})`}`);
    }
  }
  for (const c of procs.values()) c.quit();
  const load1 = loadavg();
  const get = (e: Engine, t: number, f: Format) => rows.find((x) => x.engine === e && x.threads === t && x.format === f);
  const v = (x: number | undefined) => (x === undefined ? '–' : x);
  const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined ? a / b : undefined);
  const tableRows: (string | number)[][] = [];
  for (const f of formats) for (const t of threadList) {
    const w = get('wasm', t, f), wr = get('wasm-relaxed', t, f), lp = get('lavapipe', t, f), ll = get('llama', t, f);
    tableRows.push([f, t, v(w?.pp512), v(w?.tg128), v(wr?.pp512), v(wr?.tg128), v(lp?.pp512), v(lp?.tg128), v(ll?.pp512), v(ll?.tg128),
      v(ratio(w?.pp512, ll?.pp512)), v(ratio(w?.tg128, ll?.tg128)), v(ratio(wr?.pp512, ll?.pp512)), v(ratio(wr?.tg128, ll?.tg128)), v(ratio(w?.pp512, lp?.pp512)), v(ratio(w?.tg128, lp?.tg128))]);
  }
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  table(`CPU, random mamba2-130m, tok/s, best of ${rounds} interleaved round(s) (load average ${la(load0)} before, ${la(load1)} after; ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    ['format', 'thr', 'wasm pp512', 'wasm tg128', 'relaxed pp', 'relaxed tg', 'lavapipe pp', 'lavapipe tg', 'llama pp', 'llama tg',
      'pp/llama', 'tg/llama', 'rlx pp/llama', 'rlx tg/llama', 'pp/lavapipe', 'tg/lavapipe'], tableRows);
  if (threadList.includes(1) && threadList.includes(2)) {
    const sc: (string | number)[][] = [];
    for (const e of engines) for (const f of formats) {
      const a = get(e, 1, f), b = get(e, 2, f);
      sc.push([e, f, v(ratio(b?.pp512, a?.pp512)), v(ratio(b?.tg128, a?.tg128))]);
    }
    table('thread scaling 1 -> 2 (rate at 2 threads / rate at 1 thread)', ['engine', 'format', 'pp512', 'tg128'], sc);
  }
  for (const r of rows.filter((x) => x.error)) console.log(`note: ${r.engine} ${r.threads}T ${r.format}: ${r.error}`);
  for (const r of rows.filter((x) => x.device && x.format === formats[0])) console.log(`device: ${r.engine} ${r.threads}T = ${r.device}`);
  jsonLine('cpu', { model: 'mamba2-130m random', pp: PP, tg: TG, rounds, loadavgBefore: load0, loadavgAfter: load1, node: process.versions.node, rows });
}

if (argv.includes('--child')) {
  await child(arg('--child', 'wasm') as Engine, Number(arg('--threads', '1')), arg('--formats', 'f16').split(',') as Format[]);
} else {
  await main();
}
