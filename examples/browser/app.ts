// The browser demo: pick a model folder (or give a URL / Hub id), watch it load, stream tokens.
// Query parameters drive it without clicks (the end-to-end test uses them):
//   ?model=<url or id>&prompt=<text>&n=<new tokens>&autorun=1
// autorun loads, generates greedily and publishes the result on window.__mslResult and as
// document.body.dataset.state = 'done' | 'error'.
import { loadModel, type MambaModel, type GenerateStats } from '../../src/index.browser.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const folder = $<HTMLInputElement>('folder');
const modelUrl = $<HTMLInputElement>('model-url');
const loadBtn = $<HTMLButtonElement>('load');
const status = $<HTMLSpanElement>('status');
const progress = $<HTMLProgressElement>('progress');
const promptEl = $<HTMLTextAreaElement>('prompt');
const maxNewEl = $<HTMLInputElement>('max-new');
const temperatureEl = $<HTMLInputElement>('temperature');
const topPEl = $<HTMLInputElement>('top-p');
const genBtn = $<HTMLButtonElement>('generate');
const stopBtn = $<HTMLButtonElement>('stop');
const output = $<HTMLDivElement>('output');
const statsEl = $<HTMLParagraphElement>('stats');

export interface DemoResult {
  promptIds: number[];
  ids: number[];
  text: string;
  stats: GenerateStats;
  peakBytes: number;
  adapter: string;
}

declare global {
  interface Window { __mslResult?: DemoResult; __mslError?: string }
}

let model: MambaModel | undefined;
let running: AbortController | undefined;

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function setState(state: 'idle' | 'loading' | 'ready' | 'generating' | 'done' | 'error'): void {
  document.body.dataset.state = state;
  const busy = state === 'loading' || state === 'generating';
  loadBtn.disabled = busy;
  genBtn.disabled = busy || model === undefined;
  stopBtn.disabled = state !== 'generating';
}

function showError(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  status.textContent = '';
  statsEl.innerHTML = '';
  const p = document.createElement('span');
  p.className = 'error';
  p.textContent = `error: ${msg}`;
  statsEl.append(p);
  window.__mslError = msg;
  console.error(e);
  setState('error');
}

/** Label and byte counts of a load progress event: Hub downloads (per file), then weight uploads. */
function progressOf(p: { phase: string; loadedBytes: number; totalBytes?: number; file?: string }): { loaded: number; total?: number; label: string } | undefined {
  if (p.phase === 'done') return undefined;
  const label = p.phase === 'download' ? `downloading ${p.file?.split('/').pop() ?? ''}` : p.phase === 'weights' ? 'uploading weights' : p.phase;
  return { loaded: p.loadedBytes, total: p.totalBytes, label };
}

/** What the model field means: a Hub id stays as it is; anything else is a URL relative to the page. */
function resolveModelInput(s: string): string {
  const v = s.trim();
  if (/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+(@[\w./-]+)?$/.test(v) && !v.startsWith('.')) return v;
  const url = new URL(v, location.href).href;
  return url.endsWith('/') ? url : `${url}/`;
}

async function load(source: string | FileList): Promise<void> {
  if (model) { await model.dispose(); model = undefined; }
  setState('loading');
  progress.classList.remove('hidden');
  progress.removeAttribute('value');
  const t0 = performance.now();
  const label = typeof source === 'string' ? source : `${source.length} picked files`;
  status.textContent = ` loading ${label}…`;
  try {
    model = await loadModel(typeof source === 'string' ? resolveModelInput(source) : source, {
      onProgress: (p) => {
        const f = progressOf(p);
        if (!f) return;
        const s = (performance.now() - t0) / 1000;
        if (f.total) { progress.max = f.total; progress.value = f.loaded; }
        const rate = s > 0.2 ? ` · ${(f.loaded / s / 1e6).toFixed(1)} MB/s` : '';
        status.textContent = ` ${f.label}: ${(f.loaded / 1e6).toFixed(1)}${f.total ? ` / ${(f.total / 1e6).toFixed(1)}` : ''} MB${rate}`;
      },
    });
  } catch (e) {
    progress.classList.add('hidden');
    showError(e);
    throw e;
  }
  progress.classList.add('hidden');
  const c = model.config;
  status.textContent = ` ${c.arch}, ${c.numLayers} layers, ${mib(model.weightBytes)} of weights on ${model.deviceName} ` +
    `(${((performance.now() - t0) / 1000).toFixed(1)} s)${model.tokenizer ? '' : ' · no tokenizer.json: cannot encode text'}`;
  $('note').classList.toggle('hidden', !/default-model/.test(label));
  setState('ready');
}

async function generate(opts: { prompt: string; maxNewTokens: number; temperature: number; topP: number }): Promise<DemoResult> {
  if (!model) throw new Error('load a model first');
  const tok = model.tokenizer;
  if (!tok) throw new Error('this checkpoint has no tokenizer.json, so the demo cannot encode text');
  setState('generating');
  output.textContent = '';
  statsEl.textContent = '';
  running = new AbortController();
  const promptIds = tok.encode(opts.prompt, { addSpecialTokens: true });
  const eos = [...new Set([...model.config.eosTokenIds, ...tok.eosTokenIds])];
  const decoder = tok.createStreamDecoder({ skipSpecialTokens: true });
  const ids: number[] = [];
  let text = '';
  model.resetPeak();
  const it = model.generateStream(promptIds, {
    // The page's slider follows OpenAI's rule (0 = greedy); the library samples only with doSample.
    maxNewTokens: opts.maxNewTokens, doSample: opts.temperature > 0, temperature: opts.temperature, topP: opts.topP < 1 ? opts.topP : undefined,
    eosTokenIds: eos, signal: running.signal,
  });
  let stats: GenerateStats;
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) { stats = r.value; break; }
      ids.push(r.value);
      const piece = decoder.push(r.value);
      text += piece;
      output.textContent += piece;
      statsEl.textContent = `${ids.length} tokens…`;
    }
  } finally {
    running = undefined;
  }
  const tail = decoder.flush();
  text += tail;
  output.textContent += tail;
  const peakBytes = model.memoryStats().peakBytes;
  const decodeRate = stats.newTokens > 1 && stats.decodeSeconds > 0 ? (stats.newTokens - 1) / stats.decodeSeconds : undefined;
  const prefillRate = stats.prefillSeconds > 0 ? stats.promptTokens / stats.prefillSeconds : undefined;
  statsEl.textContent = [
    `${stats.promptTokens} prompt tokens`,
    `prefill ${prefillRate?.toFixed(1) ?? '–'} tok/s`,
    `${stats.newTokens} new (${stats.stoppedBy})`,
    `decode ${decodeRate?.toFixed(1) ?? '–'} tok/s`,
    `first token after ${(stats.timeToFirstToken * 1000).toFixed(0)} ms`,
    `peak GPU memory ${mib(peakBytes)}`,
    model.deviceName,
  ].join(' · ');
  setState('done');
  return { promptIds, ids, text, stats, peakBytes, adapter: model.deviceName };
}

function formOptions() {
  return {
    prompt: promptEl.value,
    maxNewTokens: Math.max(1, Math.floor(Number(maxNewEl.value) || 64)),
    temperature: Math.max(0, Number(temperatureEl.value) || 0),
    topP: Math.min(1, Math.max(0.01, Number(topPEl.value) || 1)),
  };
}

loadBtn.addEventListener('click', () => {
  const files = folder.files;
  if (files && files.length > 0) load(files).catch(() => undefined);
  else if (modelUrl.value.trim()) load(modelUrl.value).catch(() => undefined);
  else showError(new Error('pick a model folder or enter a URL / model id first'));
});
folder.addEventListener('change', () => { if (folder.files?.length) modelUrl.value = ''; });
genBtn.addEventListener('click', () => { generate(formOptions()).catch(showError); });
stopBtn.addEventListener('click', () => running?.abort());

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  modelUrl.value = params.get('model') ?? '../../assets/default-model/';
  if (params.has('prompt')) promptEl.value = params.get('prompt')!;
  if (params.has('n')) maxNewEl.value = params.get('n')!;
  if (!('gpu' in navigator) || !navigator.gpu) {
    const msg = 'WebGPU is not available in this browser, so models cannot run here. Use a recent Chrome or Edge ' +
      '(113+) on a machine with a GPU, or start Chromium with --enable-unsafe-webgpu (Linux).';
    const el = $('no-webgpu');
    el.textContent = msg;
    el.classList.remove('hidden');
    loadBtn.disabled = true;
    window.__mslError = msg;
    document.body.dataset.state = 'error';
    return;
  }
  setState('idle');
  if (params.get('autorun') === '1') {
    try {
      await load(modelUrl.value);
      // Greedy, so the result can be compared token for token with the Node library.
      window.__mslResult = await generate({ ...formOptions(), temperature: 0, topP: 1 });
    } catch (e) {
      if (document.body.dataset.state !== 'error') showError(e);
    }
  }
}

main().catch(showError);
