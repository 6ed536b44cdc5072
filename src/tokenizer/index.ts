// Tokenizer facade: loads a Hugging Face tokenizer.json (+ tokenizer_config.json) for BPE models
// (SentencePiece-style with byte fallback, e.g. Mistral v0.1 / Llama 2 / Zamba2; and GPT-2-style
// byte-level, e.g. GPT-NeoX / Llama 3), encodes and decodes with the BPE core in Wasm, streams
// detokenized text, and renders chat templates with @huggingface/jinja.
//
// Works in Node and browsers (no node: imports here; see ./node.ts for loading from a folder).

import { Template } from '@huggingface/jinja';
import { CheckpointError, InputError, UnsupportedError } from '../errors.ts';
import {
  type AddedTokenSpec, type Normalize, type PreTokenize, BYTE_TO_CHAR, DictionarySplitter,
  buildNormalizer, buildPreTokenizer, byteLevelBytes, parseAddedTokens,
} from './pipeline.ts';
import { compilePattern } from './regex.ts';
import { TokenizerWasm } from './wasm.ts';

type Json = Record<string, any>;

export interface EncodeOptions { addSpecialTokens?: boolean }
export interface LoadOptions {
  /**
   * Use the Wasm matcher for the Llama 3 / Qwen 2 / GPT-2 split patterns (default true). false
   * runs the same split with JS RegExp (a debugging and cross-checking aid; the ids are the same).
   */
  nativeSplit?: boolean;
}
export interface DecodeOptions { skipSpecialTokens?: boolean; cleanUpTokenizationSpaces?: boolean }
export interface ChatMessage { role: string; content: string; [key: string]: unknown }
export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  tokenize?: boolean;
  /** Extra variables for the template (e.g. tools, documents, custom flags). */
  extra?: Record<string, unknown>;
}
export interface StreamDecoder {
  /** Feeds one id; returns the text that became complete (possibly ''). */
  push(id: number): string;
  /** Returns whatever was held back (an incomplete UTF-8 sequence becomes U+FFFD). */
  flush(): string;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true }); // non-streaming uses only

function parseJson(x: string | object, file: string): Json {
  if (typeof x !== 'string') return x as Json;
  try { return JSON.parse(x) as Json; } catch (e) {
    throw new CheckpointError(file, `not valid JSON (${(e as Error).message})`, undefined, { cause: e });
  }
}

/** tokenizer_config.json token fields are a string or an AddedToken-like object. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content;
  return undefined;
}

// HF's decode-time clean-up (transformers `clean_up_tokenization`), applied when the config asks.
const CLEANUP_CANDIDATE = / [.?!,'n]/; // every pattern starts with a space and one of these
function cleanUp(t: string): string {
  if (!CLEANUP_CANDIDATE.test(t)) return t;
  return t.replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',')
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

/** A decoder step applied to each vocab entry at load (string until it becomes bytes). */
type PerTokenStep = (t: string | Uint8Array, added: boolean) => string | Uint8Array;
/** metaIndex: position of the Metaspace step (its "first token starts with a space" rule), or -1. */
interface DecoderPlan { perToken: PerTokenStep[]; metaIndex: number }

function checkPostProcessor(pp: Json | null | undefined): void {
  if (pp == null) return;
  const type = pp.type as string;
  if (type === 'Sequence') { for (const p of (pp.processors ?? []) as Json[]) checkPostProcessor(p); return; }
  if (type !== 'TemplateProcessing' && type !== 'ByteLevel') {
    throw new UnsupportedError(`tokenizer.json: post_processor type "${type}" is not supported (TemplateProcessing, ByteLevel, Sequence)`);
  }
}

/** Whole-string decoder steps that run after Fuse (after the per-token steps joined the text). */
type StringStep = { kind: 'strip'; content: string; start: number; stop: number } | { kind: 'replace'; re: RegExp; content: string };

/** Writes s as UTF-8 with lone surrogates kept as their 3-byte (WTF-8) form; returns the length. */
function encodeWtf8(s: string, out: Uint8Array, at: number): number {
  let w = at;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
    }
    if (c < 0x80) out[w++] = c;
    else if (c < 0x800) { out[w++] = 0xc0 | (c >> 6); out[w++] = 0x80 | (c & 63); }
    else if (c < 0x10000) { out[w++] = 0xe0 | (c >> 12); out[w++] = 0x80 | ((c >> 6) & 63); out[w++] = 0x80 | (c & 63); }
    else { out[w++] = 0xf0 | (c >> 18); out[w++] = 0x80 | ((c >> 12) & 63); out[w++] = 0x80 | ((c >> 6) & 63); out[w++] = 0x80 | (c & 63); }
  }
  return w - at;
}
const LONE_SURROGATE = /\p{Cs}/u;
// String.prototype.isWellFormed (ES2024; Node 20+, current browsers) is a fast native check.
const hasLoneSurrogate: (s: string) => boolean = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
  ? (s) => !(s as unknown as { isWellFormed(): boolean }).isWellFormed()
  : (s) => LONE_SURROGATE.test(s);

export class Tokenizer {
  private w: TokenizerWasm; // null after dispose(); alive() guards every use
  private readonly vocabMap: Map<string, number>;
  private readonly idToTok: string[];
  private readonly addedById = new Map<number, AddedTokenSpec>();
  private readonly addedByContent = new Map<string, AddedTokenSpec>();
  private readonly splitRaw: DictionarySplitter;
  private readonly splitNormalized: DictionarySplitter;
  private readonly normalizer: Normalize | null;
  private readonly preTokenize: PreTokenize | null;
  private readonly byteLevel: boolean;
  private readonly nativeSplit: number;
  private readonly prefixIds: number[] = [];
  private readonly suffixIds: number[] = [];
  private readonly afterFuse: StringStep[] = [];
  private readonly cleanUpSpaces: boolean;
  private readonly chatTemplate: string | undefined;
  private template: Template | undefined;
  private readonly config: Json;
  private readonly specialIds = new Set<number>();
  private disposed = false;
  readonly vocabSize: number;
  readonly bosTokenId: number | undefined;
  readonly eosTokenIds: number[];
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;

  private constructor(w: TokenizerWasm, tj: Json, cfg: Json, opts: LoadOptions) {
    this.w = w;
    this.config = cfg;
    const model = tj.model as Json | undefined;
    if (!model) throw new CheckpointError('tokenizer.json', 'no "model" section');
    const mtype = model.type ?? (model.merges ? 'BPE' : undefined);
    if (mtype !== 'BPE') throw new UnsupportedError(`tokenizer.json: model type "${mtype}" is not supported (only BPE)`);
    if (model.continuing_subword_prefix || model.end_of_word_suffix) {
      throw new UnsupportedError('tokenizer.json: BPE continuing_subword_prefix / end_of_word_suffix are not supported');
    }
    if (model.dropout) throw new UnsupportedError('tokenizer.json: BPE dropout is not supported (non-deterministic)');
    // truncation / padding are batch options of the Python API; like HF JS we ignore them.

    this.normalizer = buildNormalizer(tj.normalizer);
    const pre = buildPreTokenizer(tj.pre_tokenizer);
    this.preTokenize = pre.run;
    this.byteLevel = pre.byteLevel;
    this.nativeSplit = opts.nativeSplit === false ? 0 : pre.native ?? 0;
    // Validate every component before the (slow) vocab and merge tables are built, so an
    // unsupported file fails at once.
    checkPostProcessor(tj.post_processor);
    const decoderPlan = this.parseDecoder(tj.decoder);

    // --- vocab -----------------------------------------------------------------------------
    const vocab = model.vocab as Record<string, number>;
    if (!vocab || typeof vocab !== 'object' || Array.isArray(vocab)) throw new CheckpointError('tokenizer.json', 'model.vocab must be an object');
    this.vocabMap = new Map(Object.entries(vocab));
    const added = parseAddedTokens(tj.added_tokens);
    let maxId = -1;
    for (const id of this.vocabMap.values()) if (id > maxId) maxId = id;
    for (const a of added) if (a.id > maxId) maxId = a.id;
    const n = maxId + 1;
    this.vocabSize = n;
    this.idToTok = new Array<string>(n).fill('');
    for (const [t, id] of this.vocabMap) this.idToTok[id] = t;
    for (const a of added) {
      this.idToTok[a.id] = a.content;
      this.addedById.set(a.id, a);
      this.addedByContent.set(a.content, a);
      if (!this.vocabMap.has(a.content)) this.vocabMap.set(a.content, a.id);
      if (a.special) this.specialIds.add(a.id);
    }
    for (const t of (cfg.additional_special_tokens ?? []) as unknown[]) {
      const c = tokenContent(t);
      const id = c === undefined ? undefined : this.vocabMap.get(c);
      if (id !== undefined) this.specialIds.add(id);
    }

    // Model-form bytes of each id: raw bytes for byte-level vocabularies, UTF-8 otherwise.
    const modelBytes: (Uint8Array | null)[] = new Array(n).fill(null);
    let total = 0;
    for (let id = 0; id < n; id++) {
      const t = this.idToTok[id]!;
      // Added tokens live in the same map in HF, so a BPE result spelled like one gets its id.
      const b = this.byteLevel ? byteLevelBytes(t) : utf8.encode(t);
      modelBytes[id] = b;
      if (b) total += b.length;
    }
    const x = w.x;
    const arena = x.vocabArena(n, total);
    const offs = x.vocabOffsets();
    {
      const u8 = w.u8, i32 = w.i32;
      let p = 0;
      for (let id = 0; id < n; id++) {
        i32[(offs >> 2) + id] = p;
        const b = modelBytes[id];
        if (b) {
          u8.set(b, arena + p);
          p += b.length;
        }
      }
      i32[(offs >> 2) + n] = p;
    }
    x.vocabBuild();

    // --- merges ----------------------------------------------------------------------------
    const merges = (model.merges ?? []) as (string | [string, string])[];
    const mptr = x.mergeBuffer(merges.length);
    {
      const i32 = w.i32;
      const vm = this.vocabMap;
      let q = mptr >> 2;
      for (const m of merges) {
        let a: string, b: string;
        if (typeof m === 'string') {
          const sp = m.indexOf(' ');
          if (sp < 0) throw new CheckpointError('tokenizer.json', `merge "${m}" has no space`);
          a = m.slice(0, sp);
          const sp2 = m.indexOf(' ', sp + 1);
          b = sp2 < 0 ? m.slice(sp + 1) : m.slice(sp + 1, sp2); // HF JS: split(' ', 2)
        } else { a = m[0]; b = m[1]; }
        i32[q++] = vm.get(a) ?? -1;
        i32[q++] = vm.get(b) ?? -1;
      }
    }
    x.mergeBuild();

    // --- model flags and the 256 byte ids ---------------------------------------------------
    const unkTok = model.unk_token as string | null | undefined;
    const unkId = unkTok != null ? this.vocabMap.get(unkTok) ?? -1 : -1;
    // Cutting whole-text SentencePiece input into words before each '▁' is exact when no vocab
    // token has a '▁' after another character (then no merge spans such a cut); check, not assume.
    let splitMeta = !this.byteLevel && !model.ignore_merges;
    if (splitMeta) for (const t of this.vocabMap.keys()) if (/[^\u2581]\u2581/u.test(t)) { splitMeta = false; break; }
    const flags = (this.byteLevel ? 1 : 0) | (model.ignore_merges ? 2 : 0) | (model.byte_fallback ? 4 : 0) | (model.fuse_unk ? 8 : 0) | (splitMeta ? 16 : 0);
    const bptr = x.configure(flags, unkId);
    {
      const i32 = w.i32;
      for (let b = 0; b < 256; b++) {
        const key = this.byteLevel ? BYTE_TO_CHAR[b]! : `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
        i32[(bptr >> 2) + b] = vocab[key] ?? -1;
      }
    }
    x.configureDone();

    // --- added tokens -----------------------------------------------------------------------
    this.splitRaw = new DictionarySplitter(added.filter((a) => !(a.normalized && this.normalizer)).map((a) => a.content));
    const normContents: string[] = [];
    for (const a of added) {
      if (a.normalized && this.normalizer) {
        const c = this.normalizer(a.content);
        normContents.push(c);
        this.addedByContent.set(c, a);
      }
    }
    this.splitNormalized = new DictionarySplitter(normContents);

    // --- post-processor ---------------------------------------------------------------------
    this.buildPostProcessor(tj.post_processor);

    // --- decoder ----------------------------------------------------------------------------
    this.buildDecodeTable(decoderPlan);
    this.cleanUpSpaces = Boolean(cfg.clean_up_tokenization_spaces ?? true);

    // --- config -----------------------------------------------------------------------------
    const ct = cfg.chat_template;
    if (typeof ct === 'string') this.chatTemplate = ct;
    else if (Array.isArray(ct)) this.chatTemplate = (ct.find((t: Json) => t.name === 'default') ?? ct[0])?.template;
    this.bosToken = tokenContent(cfg.bos_token);
    this.eosToken = tokenContent(cfg.eos_token);
    this.bosTokenId = this.bosToken !== undefined ? this.vocabMap.get(this.bosToken) : undefined;
    const eos = this.eosToken !== undefined ? this.vocabMap.get(this.eosToken) : undefined;
    this.eosTokenIds = eos !== undefined ? [eos] : [];
  }

  /** Loads from tokenizer.json text/object and (optionally) tokenizer_config.json. */
  static async fromJSON(tokenizerJson: string | object, tokenizerConfig?: string | object | null, options: LoadOptions = {}): Promise<Tokenizer> {
    const tj = parseJson(tokenizerJson, 'tokenizer.json');
    const cfg = tokenizerConfig == null ? {} : parseJson(tokenizerConfig, 'tokenizer_config.json');
    return new Tokenizer(await TokenizerWasm.create(), tj, cfg, options);
  }

  private buildPostProcessor(pp: Json | null | undefined): void {
    if (pp == null) return;
    const type = pp.type as string;
    if (type === 'ByteLevel') return; // offsets only; adds no tokens
    if (type === 'Sequence') { for (const p of (pp.processors ?? []) as Json[]) this.buildPostProcessor(p); return; }
    if (type !== 'TemplateProcessing') {
      throw new UnsupportedError(`tokenizer.json: post_processor type "${type}" is not supported (TemplateProcessing, ByteLevel, Sequence)`);
    }
    let seen = false;
    for (const item of (pp.single ?? []) as Json[]) {
      if (item.Sequence) { if (item.Sequence.id !== 'A') throw new UnsupportedError('TemplateProcessing: single template uses sequence B'); seen = true; continue; }
      const name = item.SpecialToken?.id as string;
      const spec = (pp.special_tokens ?? {})[name] as Json | undefined;
      const ids: number[] = spec?.ids ?? [this.vocabMap.get(name)];
      if (ids.some((i) => typeof i !== 'number')) throw new CheckpointError('tokenizer.json', `TemplateProcessing: special token "${name}" is not in the vocab`);
      (seen ? this.suffixIds : this.prefixIds).push(...ids);
    }
  }

  private parseDecoder(dec: Json | null | undefined): DecoderPlan {
    // Per-token steps run once per vocab entry here, producing the bytes each id decodes to.
    // Steps after a Fuse act on the joined string and run at decode time.
    const flat: Json[] = [];
    const walk = (d: Json | null | undefined): void => {
      if (d == null) return;
      if (d.type === 'Sequence') for (const s of d.decoders ?? []) walk(s); else flat.push(d);
    };
    walk(dec);
    const perToken: PerTokenStep[] = [];
    let fused = false;
    let metaIndex = -1;
    for (const d of flat) {
      const t = d.type as string;
      if (fused) {
        if (t === 'Strip') this.afterFuse.push({ kind: 'strip', content: String(d.content ?? ' '), start: Number(d.start ?? 0), stop: Number(d.stop ?? 0) });
        else if (t === 'Replace') this.afterFuse.push({ kind: 'replace', re: compilePattern(d.pattern, 'decoder Replace'), content: String(d.content ?? '') });
        else if (t === 'Fuse') { /* already one string */ }
        else throw new UnsupportedError(`tokenizer.json: decoder "${t}" after Fuse is not supported`);
        continue;
      }
      switch (t) {
        case 'Fuse': fused = true; break;
        case 'Replace': {
          const content = String(d.content ?? '');
          if (typeof d.pattern?.String === 'string') {
            const from = d.pattern.String as string;
            perToken.push((p) => (typeof p === 'string' ? p.replaceAll(from, content) : p));
          } else {
            const re = compilePattern(d.pattern, 'decoder Replace');
            perToken.push((p) => (typeof p === 'string' ? p.replace(re, content) : p));
          }
          break;
        }
        case 'ByteFallback':
          perToken.push((p) => {
            if (typeof p === 'string' && p.length === 6 && p.startsWith('<0x') && /^<0x[0-9A-Fa-f]{2}>$/.test(p)) return Uint8Array.of(parseInt(p.slice(3, 5), 16));
            return p;
          });
          break;
        case 'ByteLevel':
          perToken.push((p, added) => (typeof p !== 'string' || added ? p : byteLevelBytes(p, true)!));
          break;
        case 'Metaspace': {
          const rep = String(d.replacement ?? '\u2581');
          if (metaIndex < 0) metaIndex = perToken.length;
          perToken.push((p) => (typeof p === 'string' ? p.replaceAll(rep, ' ') : p));
          break;
        }
        case 'Strip': {
          const c = String(d.content ?? ' '), start = Number(d.start ?? 0), stop = Number(d.stop ?? 0);
          perToken.push((p) => (typeof p === 'string' ? stripChars(p, c, start, stop) : p));
          break;
        }
        default:
          throw new UnsupportedError(`tokenizer.json: decoder type "${t}" is not supported (Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace)`);
      }
    }
    return { perToken, metaIndex };
  }

  private buildDecodeTable({ perToken, metaIndex }: DecoderPlan): void {
    const n = this.vocabSize;
    const bytes: Uint8Array[] = new Array(n);
    const metaSpace = new Uint8Array(n);
    let total = 0;
    for (let id = 0; id < n; id++) {
      const added = this.addedById.has(id);
      let p: string | Uint8Array = this.idToTok[id]!;
      for (let k = 0; k < perToken.length; k++) {
        p = perToken[k]!(p, added);
        // HF's Metaspace decoder drops the first token's leading space as that step sees it
        // (a later <0x20> byte token does not count): remember it per id.
        if (k === metaIndex && typeof p === 'string' && p.startsWith(' ')) metaSpace[id] = 1;
      }
      const b = typeof p === 'string' ? utf8.encode(p) : p;
      bytes[id] = b;
      total += b.length;
    }
    const x = this.w.x;
    const arena = x.decodeTables(n, total, metaIndex >= 0 ? 1 : 0);
    const offs = x.decodeOffsets();
    const fl = x.decodeFlags();
    const u8 = this.w.u8, i32 = this.w.i32;
    let q = 0;
    for (let id = 0; id < n; id++) {
      i32[(offs >> 2) + id] = q;
      u8.set(bytes[id]!, arena + q);
      q += bytes[id]!.length;
      u8[fl + id] = (this.specialIds.has(id) ? 1 : 0) | (metaSpace[id]! << 1);
    }
    i32[(offs >> 2) + n] = q;
  }

  private alive(): void {
    if (this.disposed) throw new InputError('Tokenizer was disposed');
  }

  // ------------------------------------------------------------------------------------------
  // Encoding
  // ------------------------------------------------------------------------------------------

  /** Encodes one text. addSpecialTokens adds the post-processor's tokens (e.g. BOS). */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    this.alive();
    if (typeof text !== 'string') throw new InputError(`encode: expected a string, got ${typeof text}`);
    const x = this.w.x;
    x.resetOutput();
    const out: number[] = [];
    const flushWasm = (): void => {
      const len = x.outputLen();
      if (len === 0) return;
      const p = x.outputPtr() >> 2;
      const i32 = this.w.i32;
      for (let i = 0; i < len; i++) out.push(i32[p + i]!);
      x.resetOutput();
    };
    const addSpecial = opts.addSpecialTokens ?? true;
    if (addSpecial) out.push(...this.prefixIds);

    // Mirrors HF: split out added tokens on the raw text, normalize the rest, split out
    // normalized added tokens, and send every remaining section through pre-tokenizer + BPE.
    const sections = this.splitRaw.split(text);
    this.applyStrip(sections);
    for (let si = 0; si < sections.length; si++) {
      let sec = sections[si]!;
      if (sec.length === 0) continue;
      const a = this.addedByContent.get(sec);
      if (a !== undefined) { flushWasm(); out.push(a.id); continue; }
      if (this.normalizer) sec = this.normalizer(sec);
      if (sec.length === 0) continue;
      const subs = this.splitNormalized.empty ? [sec] : this.splitNormalized.split(sec);
      if (subs.length > 1) this.applyStrip(subs);
      for (const sub of subs) {
        if (sub.length === 0) continue;
        const b = this.addedByContent.get(sub);
        if (b !== undefined) { flushWasm(); out.push(b.id); continue; }
        this.encodeText(sub, si);
      }
    }
    flushWasm();
    if (addSpecial) out.push(...this.suffixIds);
    return out;
  }

  /** lstrip/rstrip of matched added tokens trim the neighbouring sections (JS trim semantics, as HF JS). */
  private applyStrip(parts: string[]): void {
    for (let i = 0; i < parts.length; i++) {
      const a = this.addedByContent.get(parts[i]!);
      if (!a) continue;
      if (a.lstrip && i > 0) parts[i - 1] = parts[i - 1]!.trimEnd();
      if (a.rstrip && i < parts.length - 1) parts[i + 1] = parts[i + 1]!.trimStart();
    }
  }

  private inView: Uint8Array = new Uint8Array(0);
  /** A view of the input buffer (reused while the pointer, size and memory stay the same). */
  private inputView(ptr: number, cap: number): Uint8Array {
    const v = this.inView;
    if (v.buffer !== this.w.x.memory.buffer || v.byteOffset !== ptr || v.length < cap) this.inView = this.w.u8.subarray(ptr, ptr + cap);
    return this.inView;
  }

  /** Pre-tokenizes one normalized section and runs BPE on its pieces in Wasm (ids appended to output). */
  private encodeText(text: string, sectionIndex: number): void {
    let pieces = { text, ranges: null as number[] | null };
    if (this.nativeSplit) {
      // The whole pre-tokenizer runs in Wasm: byte-level text is plain UTF-8 (lone surrogates
      // become U+FFFD, as HF's TextEncoder makes them).
      const x = this.w.x;
      const cap = text.length * 3 + 8;
      const ptr = x.inputBuffer(cap);
      const len = utf8.encodeInto(text, this.inputView(ptr, cap)).written;
      x.encodeSplit(len, this.nativeSplit);
      return;
    }
    if (this.preTokenize) pieces = this.preTokenize(pieces, sectionIndex);
    const t = pieces.text;
    const x = this.w.x;
    const ptr = x.inputBuffer(t.length * 3 + 8);
    let len: number;
    if (!this.byteLevel && hasLoneSurrogate(t)) len = encodeWtf8(t, this.w.u8, ptr);
    else len = utf8.encodeInto(t, this.inputView(ptr, t.length * 3 + 8)).written;
    const r = pieces.ranges;
    if (r === null) { x.encodePieces(len, -1); return; }
    const rp = x.rangeBuffer(r.length);
    this.w.i32.set(r, rp >> 2);
    x.encodePieces(len, r.length >> 1);
  }

  encodeBatch(texts: string[], opts: EncodeOptions = {}): number[][] {
    return texts.map((t) => this.encode(t, opts));
  }

  // ------------------------------------------------------------------------------------------
  // Decoding
  // ------------------------------------------------------------------------------------------

  /** Bytes for ids, after per-token decoder steps (Wasm memory view, valid until the next call). */
  private decodeBytes(ids: ArrayLike<number>, skip: boolean, first: boolean): Uint8Array {
    const x = this.w.x;
    const rp = x.rangeBuffer(ids.length);
    const i32 = this.w.i32;
    const base = rp >> 2;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      i32[base + i] = Number.isInteger(id) ? id : -1;
    }
    const n = x.decodeIds(ids.length, skip ? 1 : 0, first ? 1 : 0);
    if (n < 0) {
      const bad = ids[-n - 1];
      throw new InputError(`decode: token id ${bad} is out of range [0, ${this.vocabSize})`);
    }
    const p = x.decodeOutPtr();
    return this.w.u8.subarray(p, p + n);
  }

  private finishString(s: string): string {
    for (const st of this.afterFuse) {
      if (st.kind === 'strip') s = stripChars(s, st.content, st.start, st.stop);
      else s = s.replace(st.re, st.content);
    }
    return s;
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    this.alive();
    const bytes = this.decodeBytes(ids, opts.skipSpecialTokens ?? false, true);
    let s = utf8Decoder.decode(bytes);
    s = this.finishString(s);
    if (opts.cleanUpTokenizationSpaces ?? this.cleanUpSpaces) s = cleanUp(s);
    return s;
  }

  /**
   * Incremental detokenizer: concatenating every push() and the final flush() gives exactly
   * decode(allIds). Incomplete UTF-8 (byte-fallback or byte-level tokens that complete a code
   * point later) is held back, never emitted as U+FFFD.
   */
  createStreamDecoder(opts: DecodeOptions = {}): StreamDecoder {
    this.alive();
    const skip = opts.skipSpecialTokens ?? false;
    const clean = opts.cleanUpTokenizationSpaces ?? this.cleanUpSpaces;
    const td = new TextDecoder('utf-8', { ignoreBOM: true });
    let first = true;
    // Strip-after-Fuse: leading `content` chars still to strip; trailing ones are held back.
    const strips = this.afterFuse.filter((s) => s.kind === 'strip') as Extract<StringStep, { kind: 'strip' }>[];
    if (this.afterFuse.some((s) => s.kind === 'replace')) {
      throw new UnsupportedError('streaming decode with a Replace decoder after Fuse is not supported');
    }
    const stripLeft = strips.map((s) => s.start);
    const tailStop = Math.max(0, ...strips.map((s) => s.stop));
    let pending = ''; // decoded, not yet emitted (strip tail or clean-up look-ahead)
    let started = false; // anything non-empty seen (leading strip only applies at the very start)
    const stage = (chunk: string, final: boolean): string => {
      if (!started) {
        for (let k = 0; k < strips.length; k++) {
          const st = strips[k]!;
          while (stripLeft[k]! > 0 && chunk.length > 0) {
            if (chunk[0] === st.content) { chunk = chunk.slice(1); stripLeft[k]!--; } else stripLeft[k] = 0;
          }
        }
        if (chunk.length > 0) started = true;
      }
      pending += chunk;
      if (final) {
        let s = pending;
        pending = '';
        for (const st of strips) if (st.stop > 0) s = stripChars(s, st.content, 0, st.stop);
        return clean ? cleanUp(s) : s;
      }
      // Hold back what a later token could still change: trailing strip characters, and a
      // clean-up pattern (at most 4 chars, starting with a space) that may straddle the cut.
      let cut = pending.length;
      if (tailStop > 0) {
        const c = strips.find((s) => s.stop > 0)!.content;
        while (cut > 0 && pending[cut - 1] === c) cut--;
      }
      if (clean) {
        // Every clean-up match starts with a space and, counting the " ' " -> "'" replacement
        // that can create a later match (" n ' t" -> " n't"), spans at most 6 characters. So
        // emit only up to a point whose last 6 characters hold no space: then no match (in any
        // pass) straddles the cut, and cleaning the parts separately equals cleaning the whole.
        while (cut > 0) {
          const w = pending.lastIndexOf(' ', cut - 1);
          if (w < 0 || w < cut - 6) break;
          cut = w;
        }
      }
      const outStr = pending.slice(0, cut);
      pending = pending.slice(cut);
      return clean ? cleanUp(outStr) : outStr;
    };
    return {
      push: (id: number): string => {
        this.alive();
        if (skip && this.specialIds.has(id)) return '';
        const bytes = this.decodeBytes([id], false, first);
        first = false;
        return stage(td.decode(bytes, { stream: true }), false);
      },
      flush: (): string => stage(td.decode(), true),
    };
  }

  // ------------------------------------------------------------------------------------------
  // Chat templates
  // ------------------------------------------------------------------------------------------

  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions & { tokenize: true }): number[];
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions & { tokenize?: false }): string;
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string | number[] {
    this.alive();
    if (!this.chatTemplate) throw new UnsupportedError('tokenizer_config.json has no chat_template');
    const special: Record<string, unknown> = {};
    for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
      const c = tokenContent(this.config[k]);
      if (c !== undefined) special[k] = c;
    }
    this.template ??= new Template(this.chatTemplate); // parsed once, rendered per call
    const text = this.template.render({
      ...special,
      ...opts.extra,
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
    });
    // HF tokenizes the rendered template without adding special tokens (the template has them).
    return opts.tokenize ? this.encode(text, { addSpecialTokens: false }) : text;
  }

  // ------------------------------------------------------------------------------------------
  // Vocabulary access
  // ------------------------------------------------------------------------------------------

  tokenToId(token: string): number | undefined { return this.vocabMap.get(token); }
  idToToken(id: number): string | undefined { return id >= 0 && id < this.vocabSize && Number.isInteger(id) ? this.idToTok[id] : undefined; }
  isSpecial(id: number): boolean { return this.specialIds.has(id); }

  /** Drops the vocab tables and the Wasm instance (freed once unreferenced); later calls throw. */
  dispose(): void {
    this.disposed = true;
    this.vocabMap.clear();
    this.idToTok.length = 0;
    this.w = null as unknown as TokenizerWasm;
  }
}

function stripChars(s: string, c: string, start: number, stop: number): string {
  let a = 0;
  for (let i = 0; i < start && s[i] === c; i++) a = i + 1;
  let b = s.length;
  for (let i = 0; i < stop; i++) { const k = s.length - i - 1; if (s[k] === c) b = k; else break; }
  return s.slice(a, Math.max(a, b));
}
