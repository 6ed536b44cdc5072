// A host as another runtime would present it, for test/wasm/hosts.test.ts. Flags (before anything
// of the library loads): --no-threads removes SharedArrayBuffer, Atomics.wait and worker_threads
// (Cloudflare Workers / Vercel Edge / a page without cross-origin isolation); --no-webgpu-module
// makes the `webgpu` package unloadable. Then it loads <dir> with the built Node bundle
// (dist/node.js) on --backend (default auto), runs a greedy generation and prints one JSON line.
import { register } from 'node:module';

const args = process.argv.slice(2);
const flag = (f) => args.includes(f);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const blocked = [];
if (flag('--no-threads')) blocked.push('node:worker_threads', 'worker_threads');
if (flag('--no-webgpu-module')) blocked.push('webgpu');
if (blocked.length) {
  const src = `const B = ${JSON.stringify(blocked)};
export async function resolve(s, c, next) { if (B.includes(s)) throw new Error('module ' + s + ' is not available in this host'); return next(s, c); }`;
  register(`data:text/javascript,${encodeURIComponent(src)}`);
}
// After register(): Node's own loader hooks need SharedArrayBuffer (the library must not).
if (flag('--no-threads')) {
  delete globalThis.SharedArrayBuffer;
  delete Atomics.wait;
}
const t0 = performance.now();
const { loadModel } = await import(new URL('../../../dist/node.js', import.meta.url).href);
const model = await loadModel(opt('--model'), { backend: opt('--backend', 'auto'), noTokenizer: true, kvDtype: 'f32', prefillChunk: 16 });
const loadMs = performance.now() - t0;
const prompt = JSON.parse(opt('--prompt', '[1,2,3,4,5]'));
const ids = await model.generate(prompt, { maxNewTokens: 8, eosTokenIds: [] });
const { data } = await model.forward([prompt]);
console.log(JSON.stringify({ backend: model.backend, deviceName: model.deviceName, ids, logits: Array.from(data.subarray(0, 64)), loadMs, sab: typeof SharedArrayBuffer }));
await model.dispose();
