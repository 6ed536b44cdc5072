// Tokenizer throughput: our Wasm tokenizer vs @huggingface/tokenizers (the JS reference) in the
// same process on the same inputs, for both families (llama2 = Mistral v0.1 / Zamba2 SentencePiece
// BPE, llama3 = byte-level BPE), for short prompts (the seeded parity corpus, ~10k strings) and
// one long document (no pre-tokenizer on the SentencePiece path: the whole text is one BPE word).
//
//   node --import ./scripts/register.mjs bench/tokenizer.ts [--quick] [--long-kb 100] [--min-ms 1000] [--family llama2,llama3]
// (--quick: --min-ms 200, for `npm run bench -- --quick`)
//
// MB/s counts UTF-8 bytes of the text (encode: input text; decode: output text). Each figure is the
// best of repeated passes after one warm-up pass, with passes repeated until --min-ms has elapsed;
// "1st pass" is our warm-up pass (the long document goes first, so its piece cache starts cold).
// Prints a table, then one JSON line per figure on stdout.
import { Tokenizer as Oracle } from '@huggingface/tokenizers';
import { generateCorpus, longDocument, mulberry32 } from '../test/tokenizer-corpus/corpus.ts';
import { type Family, loadOurs, readFiles } from '../test/tokenizer-corpus/load.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const longKb = Number(arg('long-kb') ?? 100);
const minMs = Number(arg('min-ms') ?? (process.argv.includes('--quick') ? 200 : 1000));
const families = (arg('family') ?? 'llama2,llama3').split(',') as Family[];

const enc = new TextEncoder();
const bytesOf = (xs: string[]): number => xs.reduce((n, s) => n + enc.encode(s).length, 0);

/**
 * Best pass time in ms (one warm-up pass, then passes until minMs elapsed; at least 2). The
 * warm-up pass time is kept in `lastFirst`: for ours it is the cold-piece-cache figure.
 */
let lastFirst = 0;
function timeIt(f: () => void): number {
  const t00 = performance.now();
  f();
  lastFirst = performance.now() - t00;
  let best = Infinity, total = 0, passes = 0;
  while (passes < 2 || total < minMs) {
    const t0 = performance.now();
    f();
    const dt = performance.now() - t0;
    best = Math.min(best, dt);
    total += dt;
    passes++;
  }
  return best;
}

interface Row { family: Family; op: 'encode' | 'decode'; input: 'short' | 'long'; ours: number; oursFirst: number; oracle: number; bytes: number }
const rows: Row[] = [];

const corpus = generateCorpus().filter((c) => c.category !== 'long').map((c) => c.text);
const long = longDocument(mulberry32(77), longKb * 1024);

for (const family of families) {
  const { json, config } = readFiles(family);
  const t0 = performance.now();
  const ours = await loadOurs(family);
  const loadOursMs = performance.now() - t0;
  const t1 = performance.now();
  const oracle = new Oracle(JSON.parse(json), JSON.parse(config));
  const loadOracleMs = performance.now() - t1;
  console.error(`${family}: load ours ${loadOursMs.toFixed(0)} ms (incl. JSON.parse), oracle ${loadOracleMs.toFixed(0)} ms (+ JSON.parse)`);

  // Long first, on a fresh instance, so its first pass meets a cold piece cache.
  for (const [input, texts] of [['long', [long]], ['short', corpus]] as const) {
    const bytes = bytesOf(texts as string[]);
    const oursEnc = timeIt(() => { for (const s of texts) ours.encode(s); });
    const oursEncFirst = lastFirst;
    const oracleEnc = timeIt(() => { for (const s of texts) oracle.encode(s); });
    rows.push({ family, op: 'encode', input, ours: oursEnc, oursFirst: oursEncFirst, oracle: oracleEnc, bytes });
    const ids = (texts as string[]).map((s) => ours.encode(s)).filter((x) => x.length > 0);
    const outBytes = bytesOf(ids.map((x) => ours.decode(x)));
    const oursDec = timeIt(() => { for (const x of ids) ours.decode(x); });
    const oursDecFirst = lastFirst;
    const oracleDec = timeIt(() => { for (const x of ids) oracle.decode(x); });
    rows.push({ family, op: 'decode', input, ours: oursDec, oursFirst: oursDecFirst, oracle: oracleDec, bytes: outBytes });
  }
}

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1e3);
const pad = (s: string, n: number): string => s.padStart(n);
console.log(`${'family'.padEnd(8)}${'op'.padEnd(8)}${'input'.padEnd(7)}${pad('MB', 7)}${pad('ours MB/s', 11)}${pad('1st pass', 10)}${pad('HF MB/s', 10)}${pad('speedup', 9)}`);
for (const r of rows) {
  console.log(`${r.family.padEnd(8)}${r.op.padEnd(8)}${r.input.padEnd(7)}${pad((r.bytes / 1e6).toFixed(2), 7)}${pad(mbps(r.bytes, r.ours).toFixed(2), 11)}${pad(mbps(r.bytes, r.oursFirst).toFixed(2), 10)}${pad(mbps(r.bytes, r.oracle).toFixed(2), 10)}${pad((r.oracle / r.ours).toFixed(1) + 'x', 9)}`);
}
for (const r of rows) {
  console.log(JSON.stringify({
    bench: 'tokenizer', family: r.family, op: r.op, input: r.input, bytes: r.bytes,
    oursMBps: +mbps(r.bytes, r.ours).toFixed(3), oursFirstPassMBps: +mbps(r.bytes, r.oursFirst).toFixed(3), hfMBps: +mbps(r.bytes, r.oracle).toFixed(3),
    oursMs: +r.ours.toFixed(2), hfMs: +r.oracle.toFixed(2), speedup: +(r.oracle / r.ours).toFixed(2),
  }));
}
