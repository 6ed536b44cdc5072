// Hub model ids and URLs: id parsing (table), the local-path rule, transformers.js-style URL
// templates, env overrides (MSL_REMOTE_HOST, HF_TOKEN, MSL_CACHE_DIR, XDG_CACHE_HOME), shard
// lists from an index, and that the shared/browser modules import nothing from node:.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  authHeaders,
  hubFileUrl,
  hubModelBaseUrl,
  isHubModelId,
  parseHubModelId,
  shardFilesFromIndex,
} from '../../src/io/hub.ts';
import { defaultHubCacheDir, hubModelDir } from '../../src/io/hub-cache-node.ts';
import { CheckpointError, InputError } from '../../src/errors.ts';

/** Runs `fn` with the given environment variables set (undefined = unset), then restores them. */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const VALID: [string, string, string, string | undefined][] = [
  // id, org, name, revision
  ['Zyphra/Zamba2-1.2B-instruct', 'Zyphra', 'Zamba2-1.2B-instruct', undefined],
  ['state-spaces/mamba2-130m', 'state-spaces', 'mamba2-130m', undefined],
  ['a/b@main', 'a', 'b', 'main'],
  ['org_1/name.v2@refs/pr/1', 'org_1', 'name.v2', 'refs/pr/1'],
  ['org/name@0123456789abcdef0123456789abcdef01234567', 'org', 'name', '0123456789abcdef0123456789abcdef01234567'],
];
for (const [id, org, name, revision] of VALID) {
  test(`parseHubModelId accepts ${id}`, () => {
    const ref = parseHubModelId(id);
    assert.ok(ref, id);
    assert.is(ref!.org, org);
    assert.is(ref!.name, name);
    assert.is(ref!.repo, `${org}/${name}`);
    assert.is(ref!.revision, revision);
    assert.ok(isHubModelId(id, () => false));
  });
}

const INVALID = [
  '', 'name-only', 'a/b/c', 'https://huggingface.co/a/b', 'http://localhost:8080/m', 'file:///tmp/a/b',
  './a/b', '../a/b', '/abs/path', '~/x', 'a\\b', 'C:/models', '-a/b', 'a/b.', '.a/b', 'a--x/b', 'a/b..c',
  'a/b@', 'a/b@../x', 'a/b@/x', 'a/b@x y', 'a/ b', 'a/b c', `a/${'x'.repeat(100)}`, 'a//b',
];
for (const id of INVALID) {
  test(`parseHubModelId rejects ${JSON.stringify(id.length > 30 ? `${id.slice(0, 30)}...` : id)}`, () => {
    assert.is(parseHubModelId(id), null);
    assert.is(isHubModelId(id, () => false), false);
  });
}

test('isHubModelId: an existing local path wins over the Hub', () => {
  assert.is(isHubModelId('models/tiny', (p) => p === 'models/tiny'), false);
  assert.is(isHubModelId('models/other', (p) => p === 'models/tiny'), true);
  // The Node default is fs.existsSync, relative to the working directory.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'msl-hubid-'));
  const cwd = process.cwd();
  try {
    fs.mkdirSync(path.join(tmp, 'localorg', 'tiny'), { recursive: true });
    process.chdir(tmp);
    assert.is(isHubModelId('localorg/tiny'), false);
    assert.is(isHubModelId('localorg/absent'), true);
  } finally {
    process.chdir(cwd);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

const URLS: [string, string, Parameters<typeof hubFileUrl>[2], string][] = [
  ['Zyphra/Zamba2-1.2B-instruct', 'config.json', {}, 'https://huggingface.co/Zyphra/Zamba2-1.2B-instruct/resolve/main/config.json'],
  ['a/b', 'model-00001-of-00002.safetensors', { revision: 'v1.0' }, 'https://huggingface.co/a/b/resolve/v1.0/model-00001-of-00002.safetensors'],
  // Revisions are one encoded path segment, as in transformers.js.
  ['a/b@refs/pr/1', 'config.json', {}, 'https://huggingface.co/a/b/resolve/refs%2Fpr%2F1/config.json'],
  ['a/b', 'onnx/model.onnx', {}, 'https://huggingface.co/a/b/resolve/main/onnx/model.onnx'],
  ['a/b', 'x.json', { remoteHost: 'http://127.0.0.1:8080' }, 'http://127.0.0.1:8080/a/b/resolve/main/x.json'],
  ['a/b', 'x.json', { remoteHost: 'http://mirror/hf/', pathTemplate: 'models/{model}/{revision}' }, 'http://mirror/hf/models/a/b/main/x.json'],
  ['a/b', 'x.json', { pathTemplate: '/{model}/raw/{revision}/' }, 'https://huggingface.co/a/b/raw/main/x.json'],
  ['a/b', 'my file.json', {}, 'https://huggingface.co/a/b/resolve/main/my%20file.json'],
];
for (const [id, file, opts, want] of URLS) {
  test(`hubFileUrl ${id} ${file} ${JSON.stringify(opts)}`, () => {
    withEnv({ MSL_REMOTE_HOST: undefined }, () => assert.is(hubFileUrl(id, file, opts), want));
  });
}

test('hubModelBaseUrl: the folder URL ends in one slash, whatever the template', () => {
  withEnv({ MSL_REMOTE_HOST: undefined }, () => {
    assert.is(hubModelBaseUrl('a/b'), 'https://huggingface.co/a/b/resolve/main/');
    assert.is(hubModelBaseUrl('a/b@refs/pr/1'), 'https://huggingface.co/a/b/resolve/refs%2Fpr%2F1/');
    assert.is(hubModelBaseUrl('a/b', { remoteHost: 'http://m', pathTemplate: '{model}/{revision}' }), 'http://m/a/b/main/');
    // Joined with URL the way a URL source does, the base gives the same URL as hubFileUrl.
    assert.is(new URL('model.safetensors', hubModelBaseUrl('a/b@refs/pr/1')).href, hubFileUrl('a/b@refs/pr/1', 'model.safetensors'));
  });
});

test('hubFileUrl: MSL_REMOTE_HOST replaces the default host, an explicit option beats it', () => {
  withEnv({ MSL_REMOTE_HOST: 'http://localhost:9/' }, () => {
    assert.is(hubFileUrl('a/b', 'config.json'), 'http://localhost:9/a/b/resolve/main/config.json');
    assert.is(hubFileUrl('a/b', 'config.json', { remoteHost: 'http://h' }), 'http://h/a/b/resolve/main/config.json');
  });
});

test('hubFileUrl: bad ids, escaping file names and conflicting revisions throw InputError', () => {
  assert.throws(() => hubFileUrl('not-an-id', 'config.json'), (e: unknown) => e instanceof InputError && /org\/name/.test((e as Error).message));
  for (const f of ['../x', 'a/../../x', '/etc/passwd', 'a\\b', '', 'a//b']) {
    assert.throws(() => hubFileUrl('a/b', f), (e: unknown) => e instanceof InputError, f);
  }
  assert.throws(() => hubFileUrl('a/b@v1', 'c.json', { revision: 'v2' }), (e: unknown) => e instanceof InputError && /conflicts/.test((e as Error).message));
  assert.is(hubFileUrl('a/b@v1', 'c.json', { revision: 'v1' }), 'https://huggingface.co/a/b/resolve/v1/c.json');
});

test('authHeaders: HF_TOKEN becomes a bearer token; an explicit token wins; none without', () => {
  withEnv({ HF_TOKEN: 'hf_env' }, () => {
    assert.equal(authHeaders(), { Authorization: 'Bearer hf_env' });
    assert.equal(authHeaders('hf_opt'), { Authorization: 'Bearer hf_opt' });
  });
  withEnv({ HF_TOKEN: undefined }, () => assert.equal(authHeaders(), {}));
  withEnv({ HF_TOKEN: '' }, () => assert.equal(authHeaders(), {}));
});

test('shardFilesFromIndex: unique shards in first-seen order; escaping names are a CheckpointError', () => {
  const index = { metadata: {}, weight_map: { a: 's-2.safetensors', b: 's-1.safetensors', c: 's-2.safetensors' } };
  assert.equal(shardFilesFromIndex(index, 'idx'), ['s-2.safetensors', 's-1.safetensors']);
  for (const bad of [{}, { weight_map: {} }, { weight_map: { a: 3 } }, { weight_map: { a: '../../x' } }, { weight_map: { a: '/abs' } }]) {
    assert.throws(() => shardFilesFromIndex(bad, 'idx'), (e: unknown) => e instanceof CheckpointError, JSON.stringify(bad));
  }
});

test('cache dir: MSL_CACHE_DIR, else XDG_CACHE_HOME, else ~/.cache; model folder layout', () => {
  withEnv({ MSL_CACHE_DIR: '/tmp/msl-x', XDG_CACHE_HOME: '/tmp/xdg' }, () => assert.is(defaultHubCacheDir(), '/tmp/msl-x'));
  withEnv({ MSL_CACHE_DIR: undefined, XDG_CACHE_HOME: '/tmp/xdg' }, () => assert.is(defaultHubCacheDir(), '/tmp/xdg/mamba-scan-lite/hub'));
  withEnv({ MSL_CACHE_DIR: undefined, XDG_CACHE_HOME: undefined }, () =>
    assert.is(defaultHubCacheDir(), path.join(os.homedir(), '.cache', 'mamba-scan-lite', 'hub')),
  );
  assert.is(hubModelDir('Zyphra/Zamba2-1.2B-instruct', { cacheDir: '/c' }), '/c/Zyphra--Zamba2-1.2B-instruct/main');
  assert.is(hubModelDir('a/b@refs/pr/1', { cacheDir: '/c' }), '/c/a--b/refs%2Fpr%2F1');
});

test('hub.ts and hub-cache-browser.ts import nothing from node: (they are bundled for browsers)', () => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const f of ['hub.ts', 'hub-cache-browser.ts']) {
    const src = fs.readFileSync(path.join(here, '../../src/io', f), 'utf8');
    assert.not.match(src, /(from|import\()\s*['"]node:/, f);
    assert.not.match(src, /require\(/, f);
  }
});

test.run();
