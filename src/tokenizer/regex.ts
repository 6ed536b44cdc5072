// Oniguruma (the regex engine of the Rust `tokenizers` crate) -> JavaScript RegExp, for the Split
// pre-tokenizer and Replace normalizer patterns that real checkpoints use. Only the constructs
// that change meaning between the two engines are rewritten; anything we cannot translate
// faithfully throws UnsupportedError naming the construct, rather than silently matching
// something else.
//
// Rewrites (the same ones @huggingface/tokenizers applies, which our parity tests compare to):
//   \s \S       -> \p{White_Space} / \P{White_Space}   (JS \s adds U+FEFF and misses U+0085)
//   \d \D       -> \p{Nd} / \P{Nd}                      (Oniguruma digits are Unicode digits)
//   \w \W       -> Oniguruma's Unicode word class
//   (?i:abc)    -> (?:[aA][bB][cC])                     (ASCII case folding, no classes inside)
//   \A \z \Z    -> lookarounds

import { UnsupportedError } from '../errors.ts';

const WORD_IN_CLASS = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}';
const WORD = `[${WORD_IN_CLASS}\\u00B2\\u00B3\\u00B9\\u00BC-\\u00BE]`;
const NON_WORD = `[^${WORD_IN_CLASS}\\u00B2\\u00B3\\u00B9\\u00BC-\\u00BE]`;

const OUTSIDE: Record<string, string> = {
  s: '\\p{White_Space}', S: '\\P{White_Space}', d: '\\p{Nd}', D: '\\P{Nd}', w: WORD, W: NON_WORD,
  A: '(?<![\\s\\S])', z: '(?![\\s\\S])', Z: '(?=\\n?(?![\\s\\S]))', a: '\\x07', e: '\\x1B',
};
const INSIDE: Record<string, string> = {
  s: '\\p{White_Space}', S: '\\P{White_Space}', d: '\\p{Nd}', D: '\\P{Nd}', w: WORD_IN_CLASS, a: '\\x07', e: '\\x1B',
};

/** Translates an Oniguruma pattern to JS source for a `u`-flag RegExp. */
export function translateOniguruma(src: string): string {
  let out = '';
  let inClass = false;
  // Stack of open groups; true where the group is a (?i:...) group.
  const groups: boolean[] = [];
  let caseless = 0;
  const fail = (what: string): never => {
    throw new UnsupportedError(`tokenizer regex ${JSON.stringify(src)}: ${what} is not supported`);
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) fail('a trailing backslash');
      if (n === 'p' || n === 'P') {
        const m = /^\\[pP]\{([^}]*)\}/.exec(src.slice(i));
        if (!m) fail(`\\${n} without braces`);
        out += `\\${n}{${propertyName(m![1]!)}}`;
        i += m![0].length - 1;
        continue;
      }
      if (n === 'x' && src[i + 2] === '{') {
        const m = /^\\x\{([0-9A-Fa-f]+)\}/.exec(src.slice(i));
        if (!m) fail('a malformed \\x{...}');
        out += `\\u{${m![1]}}`;
        i += m![0].length - 1;
        continue;
      }
      const table = inClass ? INSIDE : OUTSIDE;
      if (table[n!] !== undefined) out += table[n!];
      else if ('GbBhHKRXy'.includes(n!)) fail(`\\${n}`);
      else if (/[A-Za-z0-9]/.test(n!)) out += `\\${n}`; // \r \n \t \f \v \u.... \x.. \0 \1..
      else out += `\\${n}`; // escaped punctuation keeps its literal meaning in both engines
      i++;
      continue;
    }
    if (inClass) {
      if (c === '[') fail('a nested character class');
      if (c === '&' && src[i + 1] === '&') fail('class intersection (&&)');
      if (c === ']') inClass = false;
      if (caseless > 0 && /[A-Za-z]/.test(c)) fail('a character class inside (?i:...)');
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      if (src[i + 1] === '^') { out += '^'; i++; }
      if (src[i + 1] === ']') { out += '\\]'; i++; } // a leading ] is literal in Oniguruma
      continue;
    }
    if (c === '(') {
      if (src.startsWith('(?i:', i)) { groups.push(true); caseless++; out += '(?:'; i += 3; continue; }
      if (src.startsWith('(?>', i)) fail('an atomic group');
      if (/^\(\?[imx-]+[):]/.test(src.slice(i))) fail('an inline flag group');
      groups.push(false);
      out += c;
      continue;
    }
    if (c === ')') {
      if (groups.pop()) caseless--;
      out += c;
      continue;
    }
    if ((c === '+' || c === '*' || c === '?' || c === '}') && src[i + 1] === '+') fail('a possessive quantifier');
    if (caseless > 0 && /[A-Za-z]/.test(c)) { out += `[${c.toLowerCase()}${c.toUpperCase()}]`; continue; }
    out += c;
  }
  if (inClass) fail('an unterminated character class');
  return out;
}

function propertyName(name: string): string {
  try { new RegExp(`\\p{${name}}`, 'u'); return name; } catch { /* a script name, e.g. Han */ }
  try { new RegExp(`\\p{Script=${name}}`, 'u'); return `Script=${name}`; } catch { /* fall through */ }
  throw new UnsupportedError(`tokenizer regex: Unicode property \\p{${name}} is not known to this JS engine`);
}

/** Compiles a tokenizer.json pattern ({Regex} or {String}) to a global, Unicode-aware RegExp. */
export function compilePattern(pattern: unknown, where: string): RegExp {
  const p = pattern as { Regex?: string; String?: string } | null;
  if (p && typeof p.Regex === 'string') {
    const source = translateOniguruma(p.Regex);
    try {
      return new RegExp(source, 'gu');
    } catch (e) {
      throw new UnsupportedError(`${where}: regex ${JSON.stringify(p.Regex)} does not compile in JS (${(e as Error).message})`);
    }
  }
  if (p && typeof p.String === 'string') {
    return new RegExp(p.String.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
  }
  throw new UnsupportedError(`${where}: pattern ${JSON.stringify(pattern)} has neither Regex nor String`);
}
