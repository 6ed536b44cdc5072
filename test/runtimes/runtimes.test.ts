// Deno and Bun as hosts (issue 13 "Runtimes"): a greedy generation on the default model
// (assets/default-model) under Deno (its own WebGPU through navigator.gpu with the browser bundle
// dist/browser.js, and the Wasm backend) and Bun (the Wasm backend, and Dawn through the `webgpu`
// package with dist/node.js); every id sequence must equal Node's. The runtimes are not
// dependencies: they are installed on demand from the npm packages `deno` and `bun` into
// .cache/runtimes (MSL_RUNTIMES_DIR). Where one cannot be installed or started, or a WebGPU
// adapter cannot be had, that case is skipped with the reason printed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
const cache = process.env.MSL_RUNTIMES_DIR ?? join(root, '.cache/runtimes');
const MODEL = join(root, 'assets/default-model');
const PROMPT = [1, 415, 2936, 9060, 285, 1142]; // "The quick brown fox" with <s>
const NEW = 16;
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', NO_COLOR: '1' };

function sh(cmd: string, args: string[], cwd: string, timeout = 900_000) {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env, maxBuffer: 16 << 20 });
}

/** `npm install --no-save deno bun` into the cache (once); Bun's binary from its platform package when npm left it out. */
function install(): { deno?: string; bun?: string; notes: string[] } {
  const notes: string[] = [];
  mkdirSync(cache, { recursive: true });
  if (!existsSync(join(cache, 'package.json'))) writeFileSync(join(cache, 'package.json'), '{"name":"msl-runtimes","private":true}\n');
  const nm = join(cache, 'node_modules');
  const denoBins = [join(nm, `@deno/${process.platform}-${process.arch}-glibc/deno`), join(nm, 'deno/deno'), join(nm, `@deno/${process.platform}-${process.arch}/deno`)];
  const bunBins = [join(cache, 'package/bin/bun'), join(nm, `@oven/bun-${process.platform}-${process.arch}/bin/bun`)];
  const found = (list: string[]) => list.find((p) => existsSync(p) && sh(p, ['--version'], cache, 30_000).status === 0);
  if (!found(denoBins) || !existsSync(join(nm, 'bun/package.json'))) {
    const r = sh('npm', ['install', '--no-save', '--no-audit', '--no-fund', 'deno', 'bun'], cache);
    if (r.status !== 0) notes.push(`npm install deno bun failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
  }
  if (!found(bunBins) && existsSync(join(nm, 'bun/package.json'))) {
    // npm can leave the platform package's bin/ empty (its postinstall, not run, would place the
    // binary): take the binary from that package's tarball.
    const version = JSON.parse(readFileSync(join(nm, 'bun/package.json'), 'utf8')).version as string;
    const pkg = `@oven/bun-${process.platform}-${process.arch}@${version}`;
    const r = sh('npm', ['pack', '--silent', pkg], cache);
    const tgz = r.stdout.trim().split('\n').pop();
    if (r.status === 0 && tgz) sh('tar', ['-xzf', tgz], cache);
    else notes.push(`npm pack ${pkg} failed: ${(r.stderr || '').trim().split('\n').pop()}`);
  }
  return { deno: found(denoBins), bun: found(bunBins), notes };
}

interface Result { runtime?: string; backend?: string; deviceName?: string; ids?: number[]; error?: string }

function generate(cmd: string, pre: string[], bundle: 'browser' | 'node', backend: string): Result {
  const r = sh(cmd, [...pre, join(root, 'test/runtimes/run.mjs'), bundle, backend, MODEL, JSON.stringify(PROMPT), String(NEW)], root, 300_000);
  const line = (r.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) return { error: `exit ${r.status ?? r.signal}: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ')}` };
  return JSON.parse(line) as Result;
}

const built = existsSync(join(root, 'dist/node.js')) && existsSync(join(root, 'dist/browser.js'));

test('Deno (navigator.gpu, Wasm) and Bun (Wasm, Dawn) generate the same greedy ids as Node', async () => {
  if (!built) { console.log('  skipped: dist/ is not built (node scripts/build.mjs)'); return; }
  const node = generate(process.execPath, [], 'node', 'wasm');
  assert.ok(node.ids, `node: ${node.error}`);
  const nodeGpu = generate(process.execPath, [], 'node', 'webgpu');
  if (nodeGpu.ids) assert.equal(nodeGpu.ids, node.ids, 'Node WebGPU = Node Wasm');
  const { deno, bun, notes } = install();
  for (const n of notes) console.log(`  note: ${n}`);
  const cases: [string, string | undefined, string[], 'browser' | 'node', string][] = [
    ['deno webgpu (navigator.gpu)', deno, ['run', '--allow-read', '--allow-env', '--unstable-webgpu'], 'browser', 'webgpu'],
    ['deno wasm', deno, ['run', '--allow-read', '--allow-env'], 'browser', 'wasm'],
    ['bun wasm', bun, [], 'node', 'wasm'],
    ['bun webgpu (Dawn)', bun, [], 'node', 'webgpu'],
  ];
  let ran = 0;
  for (const [label, bin, pre, bundle, backend] of cases) {
    if (!bin) { console.log(`  skipped ${label}: the runtime could not be installed or started here`); continue; }
    const r = generate(bin, pre, bundle, backend);
    if (!r.ids) {
      // No adapter (or no WebGPU at all) is the host's limit, not a wrong result.
      if (backend === 'webgpu' && /adapter|WebGPU is not available|DeviceError/i.test(r.error ?? '')) { console.log(`  skipped ${label}: ${r.error}`); continue; }
      assert.unreachable(`${label}: ${r.error}`);
    }
    assert.is(r.backend, backend, `${label}: ran on ${r.backend} (${r.deviceName})`);
    assert.equal(r.ids, node.ids, `${label} (${r.runtime}, ${r.deviceName}) vs node`);
    console.log(`  ${label}: ${r.runtime} on ${r.deviceName}: ids = Node's`);
    ran++;
  }
  if (ran === 0) console.log('  skipped: neither Deno nor Bun could run here');
});

test.run();
