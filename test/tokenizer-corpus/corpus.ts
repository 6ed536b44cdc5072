// Deterministic tokenizer parity corpus: `generateCorpus(seed)` returns the same strings for the
// same seed on every machine (mulberry32 PRNG, no Math.random, no locale-dependent calls).
// Categories follow issue 5: prose, code, numbers, whitespace runs, tabs/newlines, leading and
// trailing spaces, CJK, emoji and ZWJ sequences, combining marks, special-token strings inside
// text, lone surrogates, long (>= 100 KB) inputs, and mixtures of all of these.

export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: Rng, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1)); // inclusive
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const WORDS = (
  'the of and to in is that it was for on are as with his they at be this have from or one had by word but not ' +
  'what all were we when your can said there use an each which she do how their if will up other about out many ' +
  'then them these so some her would make like him into time has look two more write go see number no way could ' +
  'people my than first water been call who oil its now find long down day did get come made may part over new ' +
  'tokenizer model state space recurrent scan kernel memory throughput latency gradient attention convolution ' +
  'Zamba Mamba WebGPU Hugging Face London Paris Tokyo October Wednesday naïve café résumé façade coöperate ' +
  'don\'t can\'t I\'m you\'re they\'ll we\'ve she\'d it\'s DON\'T I\'M THEY\'LL WE\'VE O\'Neill rock\'n\'roll'
).split(' ');

const PUNCT = ['.', ',', '!', '?', ';', ':', '...', ' -', ' —', '"', '\'', '(', ')', '[', ']'];

function sentence(r: Rng): string {
  const n = int(r, 3, 18);
  const ws: string[] = [];
  for (let i = 0; i < n; i++) {
    let w = pick(r, WORDS);
    if (i === 0 || r() < 0.05) w = w[0]!.toUpperCase() + w.slice(1);
    if (r() < 0.03) w = w.toUpperCase();
    if (r() < 0.08) w += pick(r, PUNCT.slice(0, 5));
    ws.push(w);
  }
  return ws.join(' ') + pick(r, ['.', '.', '.', '!', '?', '...', '']);
}

function prose(r: Rng): string {
  const k = int(r, 1, 5);
  const s: string[] = [];
  for (let i = 0; i < k; i++) s.push(sentence(r));
  return s.join(pick(r, [' ', ' ', '  ', '\n', '\n\n']));
}

const CODE = [
  'function add(a, b) {\n  return a + b;\n}\n',
  'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
  '#include <stdio.h>\nint main(void) {\n\tprintf("hello %d\\n", 42);\n\treturn 0;\n}\n',
  'const x = arr.map((v, i) => v * i).filter(Boolean);\n',
  'SELECT id, name FROM users WHERE age >= 18 ORDER BY name;',
  '<div class="a"><span id=\'b\'>&nbsp;x &lt; y</span></div>',
  'for (let i = 0; i < n; i++) { sum += a[i] ** 2; }',
  '{"key": [1, 2.5, -3e10, null, true], "s": "q\\"uote"}',
  'x <<= 2; y >>>= 1; z ??= w?.v ?? 0; a !== b && c != d || e == f',
  '    \tindented_with_mixed_ws = 1  \n\t\t\tdeep()\n',
  'fn main() -> Result<(), Box<dyn Error>> { let v: Vec<u8> = vec![0; 16]; Ok(()) }',
  '$ git commit -m "fix: handle \\r\\n" && npm test -- --grep=\'tok\'',
  '# Title\n\n- item *one*\n- item __two__\n\n```ts\nconst a = 1;\n```\n',
  'https://huggingface.co/Zyphra/Zamba2-1.2B/resolve/main/tokenizer.json?download=true#L10',
  'user@example.com, 127.0.0.1:8080, /usr/local/bin/node, C:\\Program Files\\x',
];

function code(r: Rng): string {
  const k = int(r, 1, 3);
  let s = '';
  for (let i = 0; i < k; i++) s += pick(r, CODE);
  if (r() < 0.3) s = s.replaceAll('  ', '\t');
  return s;
}

function numbers(r: Rng): string {
  const parts: string[] = [];
  const k = int(r, 1, 6);
  for (let i = 0; i < k; i++) {
    switch (int(r, 0, 8)) {
      case 0: parts.push(String(int(r, 0, 9))); break;
      case 1: parts.push(String(int(r, 0, 1e9))); break;
      case 2: parts.push((r() * 1e6 - 5e5).toFixed(int(r, 0, 6))); break;
      case 3: parts.push(`${int(r, 1, 12)}/${int(r, 1, 28)}/${int(r, 1900, 2100)}`); break;
      case 4: parts.push(`${int(r, 0, 999)},${String(int(r, 0, 999)).padStart(3, '0')},${String(int(r, 0, 999)).padStart(3, '0')}.${int(r, 0, 99)}`); break;
      case 5: { let d = ''; const n = int(r, 10, 60); for (let j = 0; j < n; j++) d += String(int(r, 0, 9)); parts.push(d); break; }
      case 6: parts.push(`+1 (${int(r, 100, 999)}) ${int(r, 100, 999)}-${int(r, 1000, 9999)}`); break;
      case 7: parts.push(`${r() < 0.5 ? '-' : ''}${(r() * 10).toExponential(3)}`); break;
      default: parts.push(pick(r, ['٣٤٥', '१२३', '１２３', '½', '²³', 'Ⅻ', '0x1F', '1e-7', '3.14159'])); break;
    }
  }
  return parts.join(pick(r, [' ', ', ', '', ' + ', '\n', '\t']));
}

const WS = [' ', '  ', '   ', '\t', '\n', '\r\n', '\r', '\n\n', '\u00a0', '\u3000', '\u2003', '\u0085', '\ufeff', '\u000b', '\u000c', '\u2028', ' \n ', '\t\t', '    '];

function whitespace(r: Rng): string {
  const k = int(r, 1, 8);
  let s = '';
  for (let i = 0; i < k; i++) {
    let w = '';
    const m = int(r, 1, 4);
    for (let j = 0; j < m; j++) w += pick(r, WS);
    s += (r() < 0.6 ? pick(r, WORDS) : '') + w;
  }
  return s;
}

function leadTrail(r: Rng): string {
  const lead = ' '.repeat(int(r, 0, 4)) + (r() < 0.3 ? pick(r, ['\t', '\n', '\u00a0']) : '');
  const trail = (r() < 0.3 ? pick(r, ['\t', '\n', '\r\n']) : '') + ' '.repeat(int(r, 0, 4));
  return lead + (r() < 0.5 ? sentence(r) : pick(r, WORDS)) + trail;
}

function range(r: Rng, lo: number, hi: number): string { return String.fromCodePoint(int(r, lo, hi)); }

function cjk(r: Rng): string {
  let s = '';
  const n = int(r, 1, 40);
  for (let i = 0; i < n; i++) {
    const c = int(r, 0, 9);
    if (c < 4) s += range(r, 0x4e00, 0x9fff); // CJK unified
    else if (c < 5) s += range(r, 0x3041, 0x3096); // hiragana
    else if (c < 6) s += range(r, 0x30a1, 0x30fa); // katakana
    else if (c < 7) s += range(r, 0xac00, 0xd7a3); // hangul
    else if (c < 8) s += range(r, 0x20000, 0x2a6df); // CJK ext B (astral)
    else s += pick(r, ['。', '、', '「', '」', '！', '？', ' ', '，', 'の', 'は']);
  }
  return r() < 0.3 ? `${sentence(r)} ${s}` : s;
}

const EMOJI = ['😀', '👍', '👍🏽', '❤️', '🇫🇷', '🇯🇵', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🧑🏾‍💻', '👩‍❤️‍💋‍👨', '1️⃣', '#️⃣', '🤷🏽‍♀️', '🐕‍🦺', '☺', '✌🏿', '🫠', '🦄', '\u200d', '\ufe0f'];

function emoji(r: Rng): string {
  let s = '';
  const n = int(r, 1, 12);
  for (let i = 0; i < n; i++) s += pick(r, EMOJI) + (r() < 0.3 ? pick(r, [' ', '', pick(r, WORDS)]) : '');
  return s;
}

function combining(r: Rng): string {
  let s = '';
  const n = int(r, 1, 20);
  for (let i = 0; i < n; i++) {
    const c = int(r, 0, 5);
    if (c < 2) { s += range(r, 0x61, 0x7a); const m = int(r, 1, 4); for (let j = 0; j < m; j++) s += range(r, 0x300, 0x36f); }
    else if (c === 2) s += pick(r, ['नमस्ते', 'क्षि', 'ਪੰਜਾਬੀ', 'தமிழ்']);
    else if (c === 3) s += pick(r, ['مَرْحَبًا', 'שָׁלוֹם', 'السلام']);
    else if (c === 4) s += pick(r, ['ภาษาไทย', 'ຂອບໃຈ', 'Tiếng Việt', 'Ελληνικά']);
    else s += pick(r, ['e\u0301', 'n\u0303', 'A\u030a', '\u0301', 'ﬁ', 'Å', 'Å']);
    if (r() < 0.3) s += ' ';
  }
  return s;
}

const SPECIALS = ['<s>', '</s>', '<unk>', '<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>', '<|start_header_id|>',
  '<|end_header_id|>', '<|reserved_special_token_7|>', '[INST]', '[/INST]', '<|eot', '< s>', '<s', 's>', '<<s>>', '<|>', '<|eot_id|><|eot_id|>'];

function specials(r: Rng): string {
  let s = '';
  const n = int(r, 1, 6);
  for (let i = 0; i < n; i++) {
    s += pick(r, SPECIALS);
    if (r() < 0.7) s += pick(r, [' ', '', '\n', '  ']) + (r() < 0.5 ? sentence(r) : pick(r, WORDS)) + pick(r, [' ', '', '\n']);
  }
  return s;
}

function loneSurrogates(r: Rng): string {
  let s = r() < 0.5 ? sentence(r) : cjk(r);
  const k = int(r, 1, 3);
  for (let i = 0; i < k; i++) {
    const at = int(r, 0, s.length);
    const lone = String.fromCharCode(r() < 0.5 ? int(r, 0xd800, 0xdbff) : int(r, 0xdc00, 0xdfff));
    s = s.slice(0, at) + lone + s.slice(at); // may also split a pair: more lone surrogates
  }
  return s;
}

const GENERATORS: [string, (r: Rng) => string][] = [
  ['prose', prose], ['code', code], ['numbers', numbers], ['whitespace', whitespace], ['lead-trail', leadTrail],
  ['cjk', cjk], ['emoji', emoji], ['combining', combining], ['specials', specials], ['lone-surrogates', loneSurrogates],
];

function mixture(r: Rng): string {
  const k = int(r, 2, 5);
  let s = '';
  for (let i = 0; i < k; i++) s += pick(r, GENERATORS)[1](r) + pick(r, ['', ' ', '\n']);
  return s;
}

/** A long document (>= minBytes UTF-8) mixing every category except lone surrogates. */
export function longDocument(r: Rng, minBytes: number): string {
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < minBytes) {
    const g = r() < 0.6 ? prose : pick(r, GENERATORS.filter(([n]) => n !== 'lone-surrogates'))[1];
    const p = g(r) + pick(r, [' ', '\n', '\n\n']);
    parts.push(p);
    bytes += new TextEncoder().encode(p).length;
  }
  return parts.join('');
}

export interface CorpusEntry { category: string; text: string }

/**
 * The parity corpus: `perCategory` strings of each category, as many mixtures, the empty string
 * and `longCount` long documents of >= 100 KB.
 */
const memo = new Map<string, CorpusEntry[]>();
export function generateCorpus(seed = 5, perCategory = 920, longCount = 2): CorpusEntry[] {
  const key = `${seed}/${perCategory}/${longCount}`;
  const hit = memo.get(key);
  if (hit) return hit.slice(); // test files in one uvu process share it
  const out = buildCorpus(seed, perCategory, longCount);
  memo.set(key, out);
  return out.slice();
}

function buildCorpus(seed: number, perCategory: number, longCount: number): CorpusEntry[] {
  const r = mulberry32(seed);
  const out: CorpusEntry[] = [{ category: 'empty', text: '' }];
  for (const [name, g] of GENERATORS) for (let i = 0; i < perCategory; i++) out.push({ category: name, text: g(r) });
  for (let i = 0; i < perCategory; i++) out.push({ category: 'mixture', text: mixture(r) });
  for (let i = 0; i < longCount; i++) out.push({ category: 'long', text: longDocument(r, 100 * 1024 + i * 7919) });
  return out;
}

/** Random Unicode: any code point (including unassigned, controls, noncharacters, lone surrogates). */
export function randomUnicode(r: Rng, maxLen: number): string {
  const n = int(r, 0, maxLen);
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = r();
    // Weighted towards ASCII and the BMP so that merges actually happen, with a long tail.
    if (c < 0.35) s += String.fromCharCode(int(r, 0x20, 0x7e));
    else if (c < 0.45) s += pick(r, [' ', '  ', '\n', '\t', '\r\n', '\u00a0']);
    else if (c < 0.8) s += String.fromCharCode(int(r, 0, 0xffff)); // includes lone surrogates
    else s += String.fromCodePoint(int(r, 0x10000, 0x10ffff));
  }
  return s;
}
