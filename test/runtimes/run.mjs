// One greedy generation on a model directory in whatever runtime runs this file (Node, Deno, Bun),
// for test/runtimes/runtimes.test.ts:
//   <runtime> test/runtimes/run.mjs <bundle: browser|node> <backend: webgpu|wasm|auto> <model dir> <prompt ids JSON> <new tokens>
// Loads the built bundle (dist/browser.js: navigator.gpu; dist/node.js: Dawn), reads the files
// with node:fs into memory (every runtime here has it) and prints one JSON line.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [bundle, backend, dir, promptJson, newTokens] = (globalThis.Deno ? Deno.args : process.argv.slice(2));
const root = new URL('../../', import.meta.url);
const lib = await import(new URL(bundle === 'browser' ? 'dist/browser.js' : 'dist/node.js', root).href);
const files = new Map(readdirSync(dir).filter((f) => !f.endsWith('.md')).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
const runtime = globalThis.Deno ? `deno ${Deno.version.deno}` : globalThis.Bun ? `bun ${Bun.version}` : `node ${process.versions.node}`;
let model;
try {
  model = await lib.loadModel(files, { backend, noTokenizer: true });
} catch (e) {
  console.log(JSON.stringify({ runtime, bundle, backend, error: `${e?.name}: ${e?.message}` }));
  process.exit(0);
}
const prompt = JSON.parse(promptJson);
const t0 = performance.now();
const ids = await model.generate(prompt, { maxNewTokens: Number(newTokens), eosTokenIds: [] });
const ms = performance.now() - t0;
console.log(JSON.stringify({ runtime, bundle, backend: model.backend, deviceName: model.deviceName, ids: ids.slice(prompt.length), ms }));
await model.dispose();
process.exit(0);
