// The built CLI (dist/cli.js) as a user runs it: exit codes and one-line errors for mistakes, and
// `info`, `generate` and `chat` on the shipped default model (assets/default-model) with their
// machine-readable output checked against the checkpoint files themselves.
// Needs `npm run build`. Runs the model on the default WebGPU adapter (a few seconds per command).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
// MSL_TEST_CLI: test another build of the CLI (e.g. an installed package's).
const CLI = process.env.MSL_TEST_CLI ?? join(root, 'dist/cli.js');
const MODEL = join(root, 'assets/default-model');

interface Run { code: number | null; stdout: string; stderr: string }

function cli(args: string[], input?: string): Run {
  assert.ok(existsSync(CLI), 'dist/cli.js is missing: run "npm run build" first');
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: root, input, encoding: 'utf8', timeout: 120_000,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', FORCE_COLOR: '0' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');
// Dawn itself logs these to stderr when it creates a device on lavapipe (native code, not ours,
// and not suppressible from JS); everything else on stderr is the CLI's.
const DAWN_NOISE = /^Warning: maxDynamic\w+ artificially reduced/;
const ours = (stderr: string) => lines(stderr).filter((l) => !DAWN_NOISE.test(l));

function oneLineError(r: Run, code: number, re: RegExp): void {
  assert.is(r.code, code, `exit code (stderr: ${r.stderr})`);
  const err = ours(r.stderr);
  assert.is(err.length, 1, `exactly one stderr line, got:\n${r.stderr}`);
  assert.match(err[0], /^error: /);
  assert.match(err[0], re);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
}

/** Tensor names → shapes from the safetensors header, read independently of the library. */
function safetensorsShapes(file: string): Record<string, number[]> {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { shape: number[] }>;
  delete header.__metadata__;
  return Object.fromEntries(Object.entries(header).map(([k, v]) => [k, v.shape]));
}

test('usage errors: exit 2, one line, nothing on stdout', () => {
  oneLineError(cli(['generate', '--prompt', 'hi']), 2, /--model is required/);
  oneLineError(cli(['bake', '--model', 'x']), 2, /unknown command "bake"/);
  oneLineError(cli(['generate', '--model', MODEL, '--prompt', 'x', '--top-p', '2']), 2, /--top-p must be ≤ 1/);
  oneLineError(cli(['info', '--model', MODEL, '--colour']), 2, /colour/);
  assert.is(cli(['generate', '--prompt', 'hi']).stdout, '');
});

test('help and version exit 0', () => {
  const h = cli(['--help']);
  assert.is(h.code, 0);
  assert.match(h.stdout, /generate --model/);
  const g = cli(['generate', '--help']);
  assert.is(g.code, 0);
  assert.match(g.stdout, /--repetition-penalty/);
  const v = cli(['--version']);
  assert.is(v.stdout.trim(), JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
});

test('bad model path: exit 1, one line, no stack; --verbose shows it; --json adds an error object', () => {
  const missing = join(root, 'no/such/model-dir');
  oneLineError(cli(['info', '--model', missing, '--text']), 1, /no\/such\/model-dir|not found|no such|missing/i);
  const v = cli(['info', '--model', missing, '--verbose']);
  assert.is(v.code, 1);
  assert.match(ours(v.stderr)[0], /^error: /);
  assert.match(v.stderr, /\n\s+at /, '--verbose prints the stack');
  const j = cli(['info', '--model', missing, '--json']);
  assert.is(j.code, 1);
  const obj = JSON.parse(j.stdout) as { error: { type: string; message: string } };
  assert.ok(obj.error.message.length > 0);
  assert.match(obj.error.type, /Error$/);
});

test('info --json on the default model matches its files', () => {
  const r = cli(['info', '--model', MODEL, '--json', '--max-tokens', '1000']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(ours(r.stderr), [], 'machine mode prints nothing decorative');
  const info = JSON.parse(r.stdout);
  // config.json spells time_step_limit's upper end as a bare Infinity, as Python's json writes it.
  const cfg = JSON.parse(readFileSync(join(MODEL, 'config.json'), 'utf8').replace(/\bInfinity\b/g, '1e999'));
  const shapes = safetensorsShapes(join(MODEL, 'model.safetensors'));
  const params = Object.values(shapes).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
  assert.is(info.arch, 'zamba2');
  assert.is(info.parameters, params, 'parameter count = sum of the checkpoint tensor sizes');
  assert.is(info.dtype, 'bf16');
  const hybrid = cfg.layers_block_type.filter((k: string) => k === 'hybrid').length;
  assert.is(info.layers, `${cfg.num_hidden_layers} layers: ${cfg.num_hidden_layers - hybrid} mamba, ${hybrid} hybrid (1 shared block)`);
  assert.equal(info.hybridLayerIds, cfg.hybrid_layer_ids);
  assert.match(info.adapters, new RegExp(`rank ${cfg.adapter_rank}`));
  // KV: K and V per hybrid layer, 2 * kvHeads * headDim elements per token in the cache's dtype
  // (f16 where the adapter has shader-f16, else f32; --kv-dtype f32 below).
  assert.ok(info.memory.kvDtype === 'f16' || info.memory.kvDtype === 'f32', info.memory.kvDtype);
  const kvPerToken = hybrid * 2 * cfg.num_key_value_heads * cfg.attention_head_dim * (info.memory.kvDtype === 'f16' ? 2 : 4);
  assert.is(info.memory.kvBytesPerToken, kvPerToken);
  assert.is(info.memory.kvPer1024Tokens, kvPerToken * 1024);
  // State: the conv ring (K inputs of convDim channels) + SSM state [NH, P, N], f32, per layer, each
  // starting on the device's view alignment (at most 256 bytes); plus, for prompts longer than one
  // prefill block, one unaligned copy to roll a failed prefill back (docs/architecture.md).
  const convDim = cfg.mamba_expand * cfg.hidden_size + 2 * cfg.mamba_ngroups * cfg.mamba_d_state;
  const exact = cfg.num_hidden_layers * (4 * cfg.mamba_d_conv * convDim + 4 * cfg.n_mamba_heads * cfg.mamba_headdim * cfg.mamba_d_state);
  const backup = 1000 - 1 > info.memory.prefillChunk ? exact : 0;
  const slot = info.memory.state - backup;
  assert.ok(slot >= exact && slot <= exact + cfg.num_hidden_layers * 2 * 255, `state slot ${slot} for ${exact} bytes of state`);
  assert.ok(info.memory.weights > 0 && info.memory.scratch > 0);
  assert.is(info.memory.total, info.memory.weights + info.memory.state + info.memory.kvCache + info.memory.scratch);
  assert.is(typeof info.device.adapter, 'string');
  const r32 = cli(['info', '--model', MODEL, '--json', '--max-tokens', '1000', '--kv-dtype', 'f32']);
  assert.is(r32.code, 0, r32.stderr);
  const m32 = JSON.parse(r32.stdout).memory;
  assert.is(m32.kvDtype, 'f32');
  assert.is(m32.kvBytesPerToken, 2 * kvPerToken, 'an f32 cache takes twice the bytes');
  assert.is(m32.kvCache, 2 * info.memory.kvCache);
});

test('info text mode is readable', () => {
  const r = cli(['info', '--model', MODEL, '--text']);
  assert.is(r.code, 0, r.stderr);
  for (const k of ['parameters', 'layers', 'adapters', 'KV cache', 'per 1024 tokens', 'scratch']) assert.match(r.stdout, k);
});

test('generate --json gives one object; --ids with --text streams the same continuation', () => {
  const n = 8;
  const a = cli(['generate', '--model', MODEL, '--prompt', 'Once upon a time', '-n', String(n), '--json']);
  assert.is(a.code, 0, a.stderr);
  assert.is(lines(a.stdout).length, 1, 'one JSON line');
  const out = JSON.parse(a.stdout);
  assert.is(out.promptIds[0], 1, 'BOS first');
  assert.ok(out.ids.length >= 1 && out.ids.length <= n);
  assert.is(out.stats.newTokens, out.ids.length);
  assert.is(out.stats.promptTokens, out.promptIds.length);
  assert.ok(out.stats.peakDeviceBytes >= out.stats.weightBytes, 'peak includes the weights');
  assert.ok(out.stats.timeToFirstTokenS > 0);
  assert.is(out.stats.stoppedBy, out.ids.length === n ? 'length' : 'eos');
  // The same prompt as ids, greedy both times: the same continuation, streamed as plain text.
  const c = cli(['generate', '--model', MODEL, '--ids', out.promptIds.join(','), '-n', String(n), '--text']);
  assert.is(c.code, 0, c.stderr);
  assert.is(c.stdout, `${out.text}\n`, 'streamed text = the JSON text');
  // The stats line goes to stderr also when nothing is a terminal (no progress bar, though).
  const err = ours(c.stderr);
  assert.is(err.length, 1, `one stats line, got:\n${c.stderr}`);
  assert.match(err[0], new RegExp(`^${out.promptIds.length} prompt tokens · prefill .* tok/s · ${out.ids.length} new \\(\\w+\\) · decode .* · TTFT .* · peak .* · .+`));
  const q = cli(['generate', '--model', MODEL, '--ids', out.promptIds.join(','), '-n', String(n), '--text', '--quiet']);
  assert.is(q.stdout, c.stdout);
  assert.equal(ours(q.stderr), [], '--quiet: nothing on stderr');
});

test('chat: state carries over, the second turn feeds only its own tokens', async () => {
  const r = cli(['chat', '--model', MODEL, '-n', '4', '--json'], 'hello there\nand again\n');
  assert.is(r.code, 0, r.stderr);
  const turns = lines(r.stdout).map((l) => JSON.parse(l));
  assert.is(turns.length, 2);
  assert.is(turns[1].user, 'and again');
  // Expected feeds from the checkpoint's own template: turn 1 is the whole rendered prompt;
  // turn 2 is only the text after the first reply (close of that turn, the new user turn and
  // the generation prompt), not the conversation again.
  const { Tokenizer } = await import('../../src/tokenizer/index.ts');
  const tok = await Tokenizer.fromJSON(readFileSync(join(MODEL, 'tokenizer.json'), 'utf8'), readFileSync(join(MODEL, 'tokenizer_config.json'), 'utf8'));
  const m1 = [{ role: 'user', content: 'hello there' }];
  assert.equal(turns[0].promptIds, tok.encode(tok.applyChatTemplate(m1, { addGenerationPrompt: true }), { addSpecialTokens: false }));
  const withReply = [...m1, { role: 'assistant', content: turns[0].reply }];
  const before = tok.applyChatTemplate(withReply, { addGenerationPrompt: false });
  const full = tok.applyChatTemplate([...withReply, { role: 'user', content: 'and again' }], { addGenerationPrompt: true });
  assert.ok(full.startsWith(before));
  assert.equal(turns[1].promptIds, tok.encode(full.slice(before.length), { addSpecialTokens: false }));
  // The session also feeds the reply's last token, chosen but not yet consumed.
  assert.is(turns[1].stats.promptTokens, turns[1].promptIds.length + 1);
});

test('chat --save then --load continues exactly like one uninterrupted chat', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'msl-chat-'));
  try {
    const file = join(dir, 'c.chat');
    const whole = cli(['chat', '--model', MODEL, '-n', '5', '--json'], 'hello there\nand again\n');
    assert.is(whole.code, 0, whole.stderr);
    const [w1, w2] = lines(whole.stdout).map((l) => JSON.parse(l));
    const first = cli(['chat', '--model', MODEL, '-n', '5', '--json', '--save', file], 'hello there\n');
    assert.is(first.code, 0, first.stderr);
    assert.equal(JSON.parse(lines(first.stdout)[0]).ids, w1.ids);
    assert.ok(existsSync(file));
    const second = cli(['chat', '--model', MODEL, '-n', '5', '--json', '--load', file], 'and again\n');
    assert.is(second.code, 0, second.stderr);
    const s2 = JSON.parse(lines(second.stdout)[0]);
    assert.equal(s2.promptIds, w2.promptIds, 'the loaded chat feeds only the new turn');
    assert.equal(s2.ids, w2.ids, 'and answers as the uninterrupted chat did');
    const bad = cli(['chat', '--model', MODEL, '--json', '--load', join(root, 'README.md')], 'x\n');
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /not a saved mamba-scan-lite chat/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
