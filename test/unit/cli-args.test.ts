// CLI pieces that need no GPU: argument parsing (usage errors, numeric checks, output mode),
// figure formatting, the progress bar text, and the chat transcript's new-turn text.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { helpText, parseCommandLine, UsageError } from '../../src/cli/args.ts';
import { formatBytes, formatSeconds, ProgressBar, runFigures, statsLine } from '../../src/cli/format.ts';
import { ChatTranscript } from '../../src/cli/chat.ts';
import { errorLine, exitCodeFor } from '../../src/cli/report.ts';
import { CheckpointError } from '../../src/errors.ts';

const usage = (argv: string[], re: RegExp) => {
  try {
    parseCommandLine(argv, true);
  } catch (e) {
    assert.ok(e instanceof UsageError, `expected UsageError for ${argv.join(' ')}, got ${e}`);
    assert.match((e as Error).message, re);
    assert.not.match((e as Error).message, /\n/);
    return;
  }
  assert.unreachable(`no usage error for ${argv.join(' ')}`);
};

test('generate: options map to typed values', () => {
  const a = parseCommandLine(['generate', '-m', 'dir', '--prompt', 'hi there', '-n', '7', '--temperature', '0.7', '--top-k', '5',
    '--top-p', '0.9', '--repetition-penalty', '1.1', '--seed', '42', '--prefill-chunk', '33', '--dtype', 'f16',
    '-q', 'q4_k', '--kv-dtype', 'f32', '--backend', 'wasm'], true);
  assert.equal(a, {
    command: 'generate', prompt: 'hi there', ids: undefined, model: 'dir', dtype: 'f16', prefillChunk: 33, json: false, quiet: false, verbose: false,
    quantize: 'q4_k', kvDtype: 'f32', backend: 'wasm',
    maxNewTokens: 7, temperature: 0.7, topK: 5, topP: 0.9, repetitionPenalty: 1.1, seed: 42,
  });
  for (const [flag, bad] of [['--quantize', 'q3'], ['--kv-dtype', 'bf16'], ['--backend', 'cuda']]) {
    assert.throws(() => parseCommandLine(['generate', '-m', 'd', flag, bad], true), (e: unknown) => e instanceof UsageError && e.message.includes(flag), flag);
  }
});

test('generate: defaults, --ids, output mode follows the terminal', () => {
  const a = parseCommandLine(['generate', '--model', 'x/y', '--ids', '1, 2,3'], false);
  assert.ok(a.command === 'generate');
  if (a.command !== 'generate') return;
  assert.equal(a.ids, [1, 2, 3]);
  assert.is(a.maxNewTokens, 64);
  assert.is(a.temperature, undefined);
  assert.is(a.json, true, 'stdout not a TTY → machine output');
  const b = parseCommandLine(['generate', '--model', 'd', '-p', 'x', '--text'], false);
  assert.is(b.command === 'generate' && b.json, false, '--text forces human output');
  const c = parseCommandLine(['generate', '--model', 'd', '-p', 'x', '--json'], true);
  assert.is(c.command === 'generate' && c.json, true);
});

test('usage errors are one line each', () => {
  usage(['frobnicate'], /unknown command "frobnicate"/);
  usage(['--model', 'x'], /put the command first/);
  usage(['generate', '--prompt', 'x'], /--model is required/);
  usage(['generate', '--model', 'd'], /needs --prompt/);
  usage(['generate', '--model', 'd', '--prompt', 'x', '--ids', '1'], /either --prompt or --ids/);
  usage(['generate', '--model', 'd', '--prompt', 'x', '--bogus'], /bogus/);
  usage(['generate', '--model', 'd', '--prompt', 'x', '-n', '2.5'], /--max-new-tokens must be an integer/);
  usage(['generate', '--model', 'd', '--prompt', 'x', '--max-new-tokens=-1'], /≥ 0/);
  usage(['generate', '--model', 'd', '--prompt', 'x', '--top-p', '0'], /--top-p must be > 0/);
  usage(['generate', '--model', 'd', '--prompt', 'x', '--top-p', '1.5'], /≤ 1/);
  usage(['generate', '--model', 'd', '--prompt', 'x', '--temperature', 'hot'], /must be a number, got "hot"/);
  usage(['generate', '--model', 'd', '--prompt', 'x', '--dtype', 'int4'], /--dtype must be/);
  usage(['generate', '--model', 'd', '--ids', '1,-2'], /non-negative integers/);
  usage(['generate', '--model', 'd', '--prompt', 'x', 'stray'], /unexpected argument "stray"/);
  usage(['generate', '--model', 'd', '--prompt', 'x', '--json', '--text'], /exclude each other/);
  usage(['info', '--model', 'd', '--prompt', 'x'], /prompt/);
  usage(['info', '--model', 'd', '--max-tokens', '0'], /≥ 1/);
});

test('help: overview and per command', () => {
  assert.equal(parseCommandLine([], true), { command: 'help', topic: undefined });
  assert.equal(parseCommandLine(['chat', '--help'], true), { command: 'help', topic: 'chat' });
  const all = helpText();
  for (const c of ['generate', 'chat', 'info']) assert.ok(all.includes(c));
  const g = helpText('generate');
  for (const o of ['--prompt', '--max-new-tokens', '--temperature', '--top-k', '--top-p', '--repetition-penalty', '--seed', '--prefill-chunk', '--json']) {
    assert.ok(g.includes(o), `generate help lists ${o}`);
  }
});

test('serve and chat: options, defaults, refusals', () => {
  const a = parseCommandLine(['serve', '-m', 'org/name', '--port', '0', '--max-batch', '4', '--max-queue', '9', '--api-key', 'k', '--prefix-cache', '0', '-q', 'q8_0'], true);
  assert.equal(a, {
    command: 'serve', model: 'org/name', dtype: undefined, quantize: 'q8_0', kvDtype: undefined, backend: undefined, prefillChunk: undefined,
    json: false, quiet: false, verbose: false, host: '127.0.0.1', port: 0, apiKey: 'k', modelName: 'org/name', maxBatch: 4, maxQueue: 9,
    maxTokensLimit: 4096, prefixCacheMiB: 0,
  });
  const b = parseCommandLine(['serve', '--model', 'dir/', '--host', '0.0.0.0', '--model-name', 'm', '--quiet'], false);
  assert.ok(b.command === 'serve' && b.host === '0.0.0.0' && b.modelName === 'm' && b.port === 8080 && b.maxBatch === 16 && b.quiet);
  assert.ok(b.command === 'serve' && b.json === false, 'serve logs, it has no JSON output');
  usage(['serve', '--model', 'd', '--port', '70000'], /--port must be ≤ 65535/);
  usage(['serve', '--model', 'd', '--max-batch', '0'], /--max-batch must be ≥ 1/);
  usage(['serve', '--model', 'd', '--api-key', ''], /--api-key must not be empty/);
  usage(['serve', '--model', 'd', '--prompt', 'x'], /prompt/);
  const c = parseCommandLine(['chat', '--model', 'd', '--load', 'a.chat', '--save', 'b.chat', '--quiet'], true);
  assert.ok(c.command === 'chat' && c.load === 'a.chat' && c.save === 'b.chat' && c.quiet);
  usage(['chat', '--model', 'd', '--load', 'a', '--system', 'x'], /exclude each other/);
  usage(['chat', '--model', 'd', '--save', ''], /--save needs a file name/);
  assert.ok(helpText('serve').includes('--api-key') && helpText().includes('serve'));
});

test('errorLine: one line, usage hint, unexpected errors point at --verbose', () => {
  assert.is(errorLine(new UsageError('bad')), 'error: bad (see mamba-scan-lite --help)');
  assert.is(errorLine(new CheckpointError('config.json', 'missing'), ), 'error: config.json: missing');
  const l = errorLine(new TypeError('x is not a function\n    at foo'));
  assert.not.match(l, /\n/);
  assert.match(l, /--verbose/);
  assert.is(exitCodeFor(new UsageError('u')), 2);
  assert.is(exitCodeFor(new CheckpointError('a', 'b')), 1);
});

test('formatting: bytes, seconds, stats line', () => {
  assert.is(formatBytes(512), '512 B');
  assert.is(formatBytes(1536), '1.5 KiB');
  assert.is(formatBytes(300 * 2 ** 20), '300 MiB');
  assert.is(formatSeconds(0.123), '0.12 s');
  assert.is(formatSeconds(125), '2m05s');
  // 10 prompt tokens in 0.5 s = 20 tok/s; 5 new tokens, the first from prefill, 4 in 2 s = 2 tok/s.
  const f = runFigures({ promptTokens: 10, newTokens: 5, timeToFirstToken: 0.5, prefillSeconds: 0.5, decodeSeconds: 2, stoppedBy: 'length' }, 3 * 2 ** 20, 'llvmpipe');
  assert.is(f.prefillTokPerS, 20);
  assert.is(f.decodeTokPerS, 2);
  const line = statsLine(f);
  for (const part of ['10 prompt tokens', 'prefill 20.0 tok/s', 'decode 2.0 tok/s', 'TTFT 0.50 s', 'peak 3.0 MiB', 'llvmpipe']) assert.ok(line.includes(part), `${line} has ${part}`);
  // One new token: no decode interval, so no rate rather than a division by zero.
  assert.is(runFigures({ promptTokens: 3, newTokens: 1, timeToFirstToken: 0.1, prefillSeconds: 0.1, decodeSeconds: 0, stoppedBy: 'eos' }, 0, 'x').decodeTokPerS, undefined);
});

test('progress bar: bytes, MB/s, ETA; throttled; cleared at the end', () => {
  let t = 0;
  let out = '';
  const bar = new ProgressBar((s) => { out += s; }, 100, () => t);
  // 25 MB of 100 MB after 2.5 s: 10 MB/s, 75 MB left → 7.5 s.
  const s = bar.render(25e6, 100e6, 'download', 2.5);
  assert.match(s, /25\.0 MB\/100 MB/);
  assert.match(s, /10\.0 MB\/s/);
  assert.match(s, /ETA 7\.50 s/);
  assert.match(s, / 25%/);
  assert.not.match(bar.render(5e6, undefined, 'upload', 1), /ETA|%/);
  assert.is(bar.render(0, 0, 'config', 0.5), 'config…', 'no bytes yet: just the phase');
  bar.update(1, 10);
  t = 50;
  bar.update(2, 10);
  assert.is(out.split('\r').length - 1, 1, 'second update within 100 ms is skipped');
  bar.update(3, 10, 'x', true);
  assert.is(out.split('\r').length - 1, 2, 'forced update draws');
  bar.done();
  assert.ok(out.endsWith('\r\x1b[K'));
});

// A Mistral-style template: assistant turns end with </s>, the generation prompt adds nothing.
const mistral = (m: { role: string; content: string }[], _gen: boolean) =>
  '<s>' + m.map((x) => (x.role === 'user' ? `[INST] ${x.content} [/INST]` : x.role === 'assistant' ? `${x.content}</s>` : '')).join('');

test('chat transcript: each turn feeds only its new text', () => {
  const t = new ChatTranscript(mistral);
  assert.equal(t.nextTurnText('hi'), { text: '<s>[INST] hi [/INST]', restart: false });
  t.recordReply('Hello', true, ['</s>']);
  assert.equal(t.nextTurnText('more'), { text: '[INST] more [/INST]', restart: false });
  // Cut off by the length limit: the template's </s> has not been consumed, so it is fed first.
  t.recordReply('Long answer', false, ['</s>']);
  assert.equal(t.nextTurnText('again'), { text: '</s>[INST] again [/INST]', restart: false });
  t.reset();
  assert.equal(t.nextTurnText('new'), { text: '<s>[INST] new [/INST]', restart: false });
});

test('chat transcript: a template that rewrites history asks for a restart', () => {
  // Puts a "(last)" marker on the final user message only, so earlier renderings are not prefixes.
  const tpl = (m: { role: string; content: string }[]) => m.map((x, i) => `${x.role}:${x.content}${i === m.length - 1 && x.role === 'user' ? '(last)' : ''};`).join('');
  const t = new ChatTranscript(tpl, 'be brief');
  assert.equal(t.nextTurnText('a'), { text: 'system:be brief;user:a(last);', restart: false });
  t.recordReply('b', true, []);
  const n = t.nextTurnText('c');
  assert.is(n.restart, true);
  assert.is(n.text, 'system:be brief;user:a;assistant:b;user:c(last);');
});

test.run();
