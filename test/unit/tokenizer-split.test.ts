// The native (Wasm) pre-tokenizer split for the Llama 3, Qwen 2 and GPT-2 patterns against JS
// RegExp running the same patterns (as @huggingface/tokenizers compiles them), on the corpus and
// on random Unicode; then end to end against the oracle for the Qwen 2 and GPT-2 variants (no
// such tokenizer ships in node_modules, so they are the Llama 3 file with the pre-tokenizer
// swapped: same vocab, different split). Also checks the generated Unicode table is current.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tokenizer as Oracle } from '@huggingface/tokenizers';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { NativeSplit } from '../../src/tokenizer/pipeline.ts';
import { translateOniguruma } from '../../src/tokenizer/regex.ts';
import { TokenizerWasm } from '../../src/tokenizer/wasm.ts';
import { generateCorpus, mulberry32, randomUnicode } from '../tokenizer-corpus/corpus.ts';
import { readFiles } from '../tokenizer-corpus/load.ts';

const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = LLAMA3.replace('\\p{N}{1,3}', '\\p{N}');
const GPT2 = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu; // HF JS ByteLevel's own

/** JS reference: regex_split (matches and the gaps between them), as pieces. */
function jsSplit(text: string, re: RegExp): string[] {
  const out: string[] = [];
  let prev = 0;
  for (const m of text.matchAll(re)) {
    if (m.index! > prev) out.push(text.slice(prev, m.index));
    if (m[0].length > 0) out.push(m[0]);
    prev = m.index! + m[0].length;
  }
  if (prev < text.length) out.push(text.slice(prev));
  return out;
}

const enc = new TextEncoder(), dec = new TextDecoder('utf-8', { ignoreBOM: true });
function wasmSplit(w: TokenizerWasm, text: string, kind: NativeSplit): string[] {
  const cap = text.length * 3 + 8;
  const p = w.x.inputBuffer(cap);
  const len = enc.encodeInto(text, w.u8.subarray(p, p + cap)).written;
  const n = w.x.splitOnly(len, kind);
  const o = w.x.outputPtr() >> 2;
  const bytes = w.u8.slice(p, p + len);
  const ends = Array.from(w.i32.subarray(o, o + n));
  const out: string[] = [];
  let prev = 0;
  for (let i = 0; i < ends.length; i += 2) {
    if (ends[i]! > prev) out.push(dec.decode(bytes.subarray(prev, ends[i])));
    out.push(dec.decode(bytes.subarray(ends[i], ends[i + 1])));
    prev = ends[i + 1]!;
  }
  if (prev < len) out.push(dec.decode(bytes.subarray(prev, len)));
  return out;
}

const cases: [string, NativeSplit, RegExp][] = [
  ['llama3', NativeSplit.Llama3, new RegExp(translateOniguruma(LLAMA3), 'gu')],
  ['qwen2', NativeSplit.Qwen2, new RegExp(translateOniguruma(QWEN2), 'gu')],
  ['gpt2', NativeSplit.Gpt2, GPT2],
];

test('native split equals JS RegExp on the corpus and on random Unicode (all three patterns)', async () => {
  const w = await TokenizerWasm.create();
  const corpus = generateCorpus(23, 150, 1).map((c) => c.text);
  const r = mulberry32(99);
  for (let i = 0; i < 1000; i++) corpus.push(randomUnicode(r, 60));
  // Well-formed only: Wasm sees UTF-8, so a lone surrogate arrives as U+FFFD; both are "other"
  // (neither letter, number nor space) so the split is the same, which the oracle tests cover.
  for (let i = 0; i < corpus.length; i++) corpus[i] = corpus[i]!.replace(/\p{Cs}/gu, '\ufffd');
  corpus.push("'S 'T 'RE 'Ve 'mM 'LL 'D 's't're've'm'll'd ' s", '\r\n\r\n  \t\n x', ' \u0085\ufeff\u00a0x', '  1234567 x١٢٣٤');
  for (const [name, kind, re] of cases) {
    for (const text of corpus) {
      const want = jsSplit(text, re);
      const got = wasmSplit(w, text, kind);
      if (got.length !== want.length || got.some((g, k) => g !== want[k])) {
        assert.equal(got, want, `${name}: ${JSON.stringify(text)}`);
      }
    }
  }
});

test('Qwen 2, GPT-NeoX and JS-split byte-level variants match the oracle end to end (native and JS split)', async () => {
  const { json } = readFiles('llama3');
  const texts = generateCorpus(29, 60, 0).map((c) => c.text);
  const r = mulberry32(7);
  for (let i = 0; i < 300; i++) texts.push(randomUnicode(r, 50));
  texts.push('a  b     c        d\u0065\u0301 \u212b', '        x');
  const variants: [string, (o: any) => void][] = [
    ['qwen2', (o) => { o.pre_tokenizer.pretokenizers[0].pattern.Regex = QWEN2; }],
    // GPT-NeoX shape (mamba2-130m): NFC normalizer, ByteLevel with its built-in regex, and
    // normalized, non-special added tokens for runs of spaces.
    ['gpt2', (o) => {
      o.normalizer = { type: 'NFC' };
      o.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true };
      for (let k = 2; k <= 8; k += 3) o.added_tokens.push({ id: 128300 + k, content: ' '.repeat(k), single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
    }],
    // Splitters that stay in JS (not native), composed in a Sequence, per-piece prefix space.
    ['digits+punctuation', (o) => {
      o.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, { type: 'Punctuation', behavior: 'Isolated' }, { type: 'ByteLevel', add_prefix_space: true, use_regex: false }] };
    }],
    ['whitespace', (o) => { o.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'ByteLevel', add_prefix_space: false, use_regex: false }] }; }],
  ];
  for (const [name, edit] of variants) {
    const obj = JSON.parse(json);
    edit(obj);
    // The first 40k merges keep loading quick; both sides get the same (smaller) tokenizer.
    obj.model.merges = obj.model.merges.slice(0, 40000);
    const oracle = new Oracle(obj, {});
    const native = await Tokenizer.fromJSON(obj, null);
    const viaJs = name === 'qwen2' || name === 'gpt2' ? await Tokenizer.fromJSON(obj, null, { nativeSplit: false }) : null;
    for (const s of texts) {
      const want = oracle.encode(s).ids;
      assert.equal(native.encode(s), want, `${name} native ${JSON.stringify(s)}`);
      if (viaJs) assert.equal(viaJs.encode(s), want, `${name} js ${JSON.stringify(s)}`);
    }
  }
});

test('unicode-tables.ts matches a fresh generation from this JS engine', () => {
  const file = readFileSync(fileURLToPath(new URL('../../assembly/tokenizer/unicode-tables.ts', import.meta.url)), 'utf8');
  const version = /Unicode ([\d.]+)/.exec(file)?.[1];
  if (version !== process.versions.unicode) {
    // A different Node has different Unicode data: regenerating is the fix, not a test failure here.
    console.log(`  (skipped: table is Unicode ${version}, this Node has ${process.versions.unicode})`);
    return;
  }
  const script = fileURLToPath(new URL('../../scripts/gen-unicode-tables.mjs', import.meta.url));
  execFileSync(process.execPath, [script, '--check'], { stdio: 'pipe' });
});

test.run();
