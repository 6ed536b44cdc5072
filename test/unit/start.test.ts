// `npm start` (scripts/start.mjs): the README's main job. It must run a real generation on the
// bundled default model with no arguments and no network, and say that the weights are random.
// The generated ids are checked against the library run in this process (not hard-coded).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';

const root = new URL('../../', import.meta.url).pathname;

test('npm start generates up to 32 tokens on the default model and says the weights are random', async () => {
  const r = spawnSync(process.execPath, ['scripts/start.mjs', '--json'], {
    cwd: root, encoding: 'utf8', env: { ...process.env, MSL_SKIP_SETUP: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, timeout: 120_000,
  });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /RANDOM weights/);
  const out = JSON.parse(r.stdout);
  assert.is(out.arch, 'zamba2');
  assert.ok(out.ids.length > 0 && out.ids.length <= 32);
  assert.type(out.text, 'string');
  // The same greedy generation through the library gives the same ids.
  const { loadModel } = await import('../../src/index.node.ts');
  const model = await loadModel(`${root}assets/default-model`);
  try {
    const seq = await model.generate(out.promptIds, { maxNewTokens: 32 });
    assert.equal(seq.slice(out.promptIds.length), out.ids);
  } finally {
    await model.dispose();
  }
});

test.run();
