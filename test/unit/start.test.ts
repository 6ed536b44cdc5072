// `npm start` (scripts/start.mjs): the README's main job. It must run a real generation on the
// bundled trained default model with no arguments and no network, point to its model card (no
// random-weights notice any more), and honour --prompt. The generated ids are checked against the
// library run in this process (not hard-coded), and the text must look like English words.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('../../', import.meta.url).pathname;

function start(args: string[]) {
  return spawnSync(process.execPath, ['scripts/start.mjs', ...args], {
    cwd: root, encoding: 'utf8', env: { ...process.env, MSL_SKIP_SETUP: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, timeout: 180_000,
  });
}

async function libraryGreedy(promptIds: number[]): Promise<number[]> {
  const { loadModel } = await import('../../src/index.node.ts');
  const model = await loadModel(`${root}assets/default-model`);
  try {
    const seq = await model.generate(promptIds, { maxNewTokens: 32, repetitionPenalty: 1.3 });
    return seq.slice(promptIds.length);
  } finally {
    await model.dispose();
  }
}

/** Share of whitespace-separated words made of letters (plus trailing punctuation). */
function wordShare(text: string): number {
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  if (words.length === 0) return 0;
  return words.filter((w) => /^["'(]?[A-Za-z][a-z]*(['-][a-z]+)*[.,;:!?"')]*$/.test(w)).length / words.length;
}

test('npm start generates 32 tokens of English on the trained default model and links its model card', async () => {
  const r = start(['--json']);
  assert.is(r.status, 0, r.stderr);
  assert.not.match(r.stderr, /RANDOM/i);
  assert.match(r.stderr, /assets\/default-model\/README\.md/);
  assert.ok(existsSync(`${root}assets/default-model/README.md`), 'the linked model card exists');
  const out = JSON.parse(r.stdout);
  assert.is(out.arch, 'zamba2');
  assert.ok(out.ids.length > 0 && out.ids.length <= 32);
  assert.type(out.text, 'string');
  assert.equal(await libraryGreedy(out.promptIds), out.ids, 'npm start = the library (greedy, repetition penalty 1.3)');
  const share = wordShare(out.text);
  assert.ok(share >= 0.8, `mostly English words: ${(share * 100).toFixed(0)}% in ${JSON.stringify(out.text)}`);
});

test('npm start -- --prompt "..." runs that prompt; text mode prints the prompt and the continuation', async () => {
  const prompt = 'Call me Ishmael. Some years ago';
  const r = start(['--prompt', prompt, '--text', '-n', '8']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /assets\/default-model\/README\.md/);
  assert.ok(r.stdout.includes(`prompt: ${prompt}\n`), r.stdout);
  const j = start(['--prompt', prompt, '--json', '-n', '8']);
  assert.is(j.status, 0, j.stderr);
  const out = JSON.parse(j.stdout);
  assert.is(out.prompt, prompt);
  assert.ok(r.stdout.endsWith(`continuation:\n${out.text}\n`), `text mode shows the same continuation:\n${r.stdout}`);
});

test.run();
