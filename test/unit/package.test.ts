// The published surface: `import('mamba-scan-lite')` resolves through package.json `exports` to
// the built Node bundle (npm test builds first), the browser bundle has no top-level `node:`
// imports, and the declaration files exist for both entries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';

const root = new URL('../../', import.meta.url).pathname;

test('package self-reference resolves to the built Node entry with the public API', async () => {
  assert.ok(existsSync(`${root}dist/node.js`), 'dist/node.js exists (run npm run build)');
  const m = await import('mamba-scan-lite');
  for (const name of ['loadModel', 'MambaModel', 'Tokenizer', 'planMemory', 'AutoModelForCausalLM', 'AutoTokenizer',
    'parseConfig', 'GpuContext', 'CheckpointError', 'InputError', 'OutOfMemoryError', 'downloadHubModel']) {
    assert.ok(name in m, `exports ${name}`);
  }
  assert.type(m.loadModel, 'function');
});

test('browser bundle has no top-level node: imports; types are emitted', () => {
  const js = readFileSync(`${root}dist/browser.js`, 'utf8');
  const staticNode = js.split('\n').filter((l) => /^import .* from ["']node:/.test(l) || /^import ["']node:/.test(l));
  assert.equal(staticNode, [], 'no static node: imports');
  assert.ok(existsSync(`${root}dist/types/index.node.d.ts`));
  assert.ok(existsSync(`${root}dist/types/index.browser.d.ts`));
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
  assert.is(pkg.exports['.'].node, './dist/node.js');
  assert.is(pkg.exports['.'].browser, './dist/browser.js');
});

test.run();
