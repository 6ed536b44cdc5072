// tokenizer.json -> the text-side pipeline: added-token splitting, normalizer, pre-tokenizer.
// These run in JS because they are string operations the engine does natively (replaceAll,
// normalize, RegExp with \p{..}); their output (a text and the [start, end) ranges of its
// pieces) goes to Wasm as UTF-8 in one call. Semantics follow @huggingface/tokenizers (the parity
// oracle), which follows the Rust crate except where noted.

import { UnsupportedError } from '../errors.ts';
import { compilePattern } from './regex.ts';

type Json = Record<string, unknown>;

export interface AddedTokenSpec {
  id: number;
  content: string;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export function parseAddedTokens(list: unknown): AddedTokenSpec[] {
  if (list == null) return [];
  if (!Array.isArray(list)) throw new UnsupportedError('tokenizer.json: added_tokens is not a list');
  return list.map((t: Json) => {
    const special = Boolean(t.special ?? false);
    return {
      id: Number(t.id), content: String(t.content),
      lstrip: Boolean(t.lstrip ?? false), rstrip: Boolean(t.rstrip ?? false),
      // Like HF: an added token is normalized unless it is special, when the file does not say.
      normalized: Boolean(t.normalized ?? !special), special,
    };
  });
}

/**
 * Longest-match splitter over a set of strings (HF's DictionarySplitter): scanning left to
 * right, at each position the longest listed string starting there is cut out. Implemented as
 * one RegExp alternation sorted longest first (the engine tries alternatives in order, so the
 * first that matches is the longest), without the u flag so it works on UTF-16 units like HF's
 * trie does.
 */
export class DictionarySplitter {
  private readonly re: RegExp | null;
  readonly empty: boolean;

  constructor(words: string[]) {
    const ws = [...new Set(words.filter((w) => w.length > 0))].sort((a, b) => b.length - a.length);
    this.empty = ws.length === 0;
    this.re = this.empty ? null : new RegExp(ws.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  }

  /** Splits text into pieces; matched words are returned as pieces of their own. */
  split(text: string): string[] {
    const re = this.re;
    if (re === null) return [text];
    const out: string[] = [];
    let start = 0;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m.index > start) out.push(text.slice(start, m.index));
      out.push(m[0]);
      start = m.index + m[0].length;
    }
    if (start === 0) return [text];
    if (start < text.length) out.push(text.slice(start));
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Normalizers
// ---------------------------------------------------------------------------------------------

export type Normalize = (s: string) => string;

export function buildNormalizer(cfg: Json | null | undefined): Normalize | null {
  if (cfg == null) return null;
  const type = cfg.type as string;
  switch (type) {
    case 'Sequence': {
      const parts = ((cfg.normalizers as Json[]) ?? []).map(buildNormalizer).filter((f): f is Normalize => f !== null);
      return (s) => { for (const f of parts) s = f(s); return s; };
    }
    case 'Prepend': {
      const p = String(cfg.prepend ?? '');
      return (s) => p + s;
    }
    case 'Replace': {
      const pat = cfg.pattern as Json;
      const content = String(cfg.content ?? '');
      if (typeof pat?.String === 'string') {
        const from = pat.String as string;
        return (s) => s.replaceAll(from, content);
      }
      const re = compilePattern(pat, 'normalizer Replace');
      return (s) => s.replace(re, content);
    }
    case 'NFC': return (s) => s.normalize('NFC');
    case 'NFD': return (s) => s.normalize('NFD');
    case 'NFKC': return (s) => s.normalize('NFKC');
    case 'NFKD': return (s) => s.normalize('NFKD');
    case 'Lowercase': return (s) => s.toLowerCase();
    case 'Strip': {
      const left = Boolean(cfg.strip_left ?? false), right = Boolean(cfg.strip_right ?? false); // as HF JS
      return (s) => (left && right ? s.trim() : left ? s.trimStart() : right ? s.trimEnd() : s);
    }
    default:
      throw new UnsupportedError(`tokenizer.json: normalizer type "${type}" is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers: (text, pieces) -> (text', pieces'). `ranges` holds [start, end) pairs in UTF-16
// units, or null for "the whole text is one piece" (no allocation on the SentencePiece path).
// ---------------------------------------------------------------------------------------------

export interface Pieces { text: string; ranges: number[] | null }
export type PreTokenize = (p: Pieces, sectionIndex: number) => Pieces;

// GPT-2's split, as HF's JS ByteLevel pre-tokenizer writes it (note: JS \s, not \p{White_Space}).
const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

function forEachPiece(p: Pieces, f: (s: number, e: number) => void): void {
  if (p.ranges === null) { f(0, p.text.length); return; }
  const r = p.ranges;
  for (let i = 0; i < r.length; i += 2) f(r[i]!, r[i + 1]!);
}

/** Rewrites every piece's text with fn, rebuilding the text and the ranges. */
function mapPieces(p: Pieces, fn: (piece: string) => string): Pieces {
  if (p.ranges === null) { const t = fn(p.text); return { text: t, ranges: null }; }
  const parts: string[] = [];
  const ranges: number[] = [];
  let pos = 0;
  forEachPiece(p, (s, e) => {
    const t = fn(p.text.slice(s, e));
    parts.push(t);
    ranges.push(pos, pos + t.length);
    pos += t.length;
  });
  return { text: parts.join(''), ranges };
}

type Mode = 'isolated' | 'removed' | 'matches';

function regexPieces(p: Pieces, re: RegExp, mode: Mode): Pieces {
  const text = p.text;
  const out: number[] = [];
  forEachPiece(p, (s, e) => {
    const sub = s === 0 && e === text.length ? text : text.slice(s, e);
    re.lastIndex = 0;
    let prev = 0;
    for (let m = re.exec(sub); m !== null; m = re.exec(sub)) {
      const a = m.index, b = a + m[0].length;
      if (b === a) {
        // Empty match: step over one code point (what String.prototype.matchAll does).
        const cp = sub.codePointAt(a) ?? 0;
        re.lastIndex = a + (cp > 0xffff ? 2 : 1);
        if (mode === 'matches') continue;
      }
      if (mode !== 'matches' && a > prev) out.push(s + prev, s + a);
      if (mode !== 'removed' && b > a) out.push(s + a, s + b);
      prev = b;
    }
    if (mode !== 'matches' && prev < sub.length) out.push(s + prev, s + sub.length);
  });
  return { text, ranges: out };
}

export interface PreTokenizerPlan {
  run: PreTokenize | null;
  /** A ByteLevel step is present: the model works on bytes, vocab strings use GPT-2's byte alphabet. */
  byteLevel: boolean;
  /**
   * The whole pre-tokenizer is one split the Wasm module implements natively (NativeSplit), so
   * the text can go to Wasm unsplit; `run` stays the JS equivalent.
   */
  native?: NativeSplit;
}

/** Split patterns with a native matcher in assembly/tokenizer (values are the Wasm kind codes). */
export enum NativeSplit { Llama3 = 1, Qwen2 = 2, Gpt2 = 3 }

const NATIVE_REGEX = new Map<string, NativeSplit>([
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NativeSplit.Llama3],
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NativeSplit.Qwen2],
]);

export function buildPreTokenizer(cfg: Json | null | undefined): PreTokenizerPlan {
  if (cfg == null) return { run: null, byteLevel: false };
  const type = cfg.type as string;
  switch (type) {
    case 'Sequence': {
      const steps = ((cfg.pretokenizers as Json[]) ?? []).map(buildPreTokenizer);
      const runs = steps.map((s) => s.run).filter((r): r is PreTokenize => r !== null);
      const active = steps.filter((s) => s.run !== null);
      return {
        byteLevel: steps.some((s) => s.byteLevel),
        native: active.length === 1 ? active[0]!.native : undefined,
        run: runs.length === 0 ? null : (p, si) => { for (const r of runs) p = r(p, si); return p; },
      };
    }
    case 'Split': {
      const invert = Boolean(cfg.invert ?? false);
      const behavior = String(cfg.behavior ?? 'Isolated');
      if (!invert && behavior !== 'Isolated' && behavior !== 'Removed') {
        throw new UnsupportedError(`tokenizer.json: Split pre-tokenizer behavior "${behavior}" is not supported (Isolated, Removed)`);
      }
      const re = compilePattern(cfg.pattern, 'pre_tokenizer Split');
      const mode: Mode = invert ? 'matches' : behavior === 'Removed' ? 'removed' : 'isolated';
      const native = mode === 'isolated' ? NATIVE_REGEX.get(String((cfg.pattern as Json)?.Regex)) : undefined;
      return { byteLevel: false, native, run: (p) => regexPieces(p, re, mode) };
    }
    case 'ByteLevel': {
      const prefix = Boolean(cfg.add_prefix_space ?? false);
      const useRegex = Boolean(cfg.use_regex ?? true);
      const re = new RegExp(GPT2_PATTERN.source, 'gu');
      if (!prefix && !useRegex) return { byteLevel: true, run: null };
      return {
        byteLevel: true,
        native: useRegex && !prefix ? NativeSplit.Gpt2 : undefined,
        run: (p) => {
          if (prefix) p = mapPieces(p, (t) => (t.startsWith(' ') ? t : ' ' + t));
          return useRegex ? regexPieces(p, re, 'matches') : p;
        },
      };
    }
    case 'Metaspace': {
      const rep = String(cfg.replacement ?? '\u2581');
      let scheme = String(cfg.prepend_scheme ?? 'always');
      if (cfg.prepend_scheme === undefined && cfg.add_prefix_space === false) scheme = 'never';
      // HF's JS Metaspace never splits on the replacement (the Rust one does when split=true);
      // we follow the oracle, which is what our parity tests check.
      return {
        byteLevel: false,
        run: (p, si) => mapPieces(p, (t) => {
          const n = t.replaceAll(' ', rep);
          const add = !n.startsWith(rep) && (scheme === 'always' || (scheme === 'first' && si === 0));
          return add ? rep + n : n;
        }),
      };
    }
    // Simple splitters, with the patterns HF JS uses (keeping only the matches).
    case 'Digits': {
      const re = new RegExp(`[^\\d]+|\\d${cfg.individual_digits ? '' : '+'}`, 'gu');
      return { byteLevel: false, run: (p) => regexPieces(p, re, 'matches') };
    }
    case 'Punctuation': {
      const P = '\\p{P}\\u0021-\\u002F\\u003A-\\u0040\\u005B-\\u0060\\u007B-\\u007E';
      const re = new RegExp(`[^${P}]+|[${P}]+`, 'gu');
      return { byteLevel: false, run: (p) => regexPieces(p, re, 'matches') };
    }
    case 'WhitespaceSplit': {
      const re = /\S+/g;
      return { byteLevel: false, run: (p) => regexPieces(p, re, 'matches') };
    }
    case 'Whitespace': {
      const re = /\w+|[^\w\s]+/g;
      return { byteLevel: false, run: (p) => regexPieces(p, re, 'matches') };
    }
    default:
      throw new UnsupportedError(`tokenizer.json: pre_tokenizer type "${type}" is not supported (supported: Sequence, Split, ByteLevel, Metaspace, Digits, Punctuation, WhitespaceSplit, Whitespace)`);
  }
}

// ---------------------------------------------------------------------------------------------
// GPT-2 byte <-> unicode alphabet
// ---------------------------------------------------------------------------------------------

export const BYTE_TO_CHAR: string[] = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const map: string[] = new Array(256);
  for (const b of bs) map[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCharCode(256 + n++);
  return map;
})();
export const CHAR_TO_BYTE: Map<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));
// UTF-16 unit -> byte, -1 outside the alphabet (every alphabet character is below U+0144).
const UNIT_TO_BYTE: Int16Array = (() => {
  const t = new Int16Array(0x200).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => { t[c.charCodeAt(0)] = b; });
  return t;
})();

/**
 * A byte-level vocab string as raw bytes, or null if it uses a character outside the alphabet.
 * With `lenient`, unknown characters become 0 (what HF JS's ByteLevel decoder does).
 */
export function byteLevelBytes(token: string, lenient = false): Uint8Array | null {
  const out = new Uint8Array(token.length);
  let n = 0;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < 0x200 ? UNIT_TO_BYTE[c]! : -1;
    if (b < 0) {
      if (!lenient) return null;
      // A surrogate pair is one character: one 0 byte, like HF's [...text].map(...).
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < token.length) i++;
      out[n++] = 0;
      continue;
    }
    out[n++] = b;
  }
  return out.subarray(0, n);
}
