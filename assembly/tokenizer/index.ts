// BPE tokenizer core (Wasm side). The TS facade (src/tokenizer/) parses tokenizer.json, splits
// added tokens, normalizes and pre-tokenizes; this module owns the hot loops:
//   - the vocab (token bytes -> id) and merge ((left id, right id) -> rank, merged id) hash tables,
//   - the BPE merge loop over every piece, with a binary heap so one long word (a SentencePiece
//     text without pre-tokenizer is a single word) costs O(n log n), not O(n^2),
//   - a per-piece cache for short pieces (words repeat a lot in real text),
//   - decoding ids to bytes (per-id tables built at load; UTF-8 decoding and streaming stay in JS),
//   - the pre-tokenizer split for the regexes real byte-level checkpoints use (Llama 3, Qwen 2,
//     GPT-2/NeoX), as hand-written matchers over Unicode classes generated from the JS regex
//     engine (scripts/gen-unicode-tables.mjs -> unicode-tables.ts, committed, checked by a test).
// Everything lives in raw heap blocks (heap.alloc) addressed with load/store: no managed objects in
// the hot paths, so the GC never scans them. Strings cross the boundary as UTF-8 in `input`.

import { UNICODE_RUNS, UNICODE_RUN_COUNT } from './unicode-tables';

// ---------------------------------------------------------------------------------------------
// Growable raw buffers
// ---------------------------------------------------------------------------------------------

function grow(ptr: usize, cap: i32, need: i32, elem: i32): usize {
  // Returns a block of at least `need` elements; contents are kept (callers rely on that for out).
  if (need <= cap && ptr != 0) return ptr;
  let n = max<i32>(need, cap * 2);
  if (n < 64) n = 64;
  return ptr == 0 ? heap.alloc(<usize>n * elem) : heap.realloc(ptr, <usize>n * elem);
}

let inPtr: usize = 0; let inCap: i32 = 0;        // u8 [inCap]: UTF-8 text of one call
let rangePtr: usize = 0; let rangeCap: i32 = 0;  // i32 [rangeCap]: [start, end) pairs (UTF-16 units)
let outPtr: usize = 0; let outCap: i32 = 0; let outLen: i32 = 0; // i32 [outCap]: ids produced

export function inputBuffer(bytes: i32): usize {
  if (bytes > inCap || inPtr == 0) { inPtr = grow(inPtr, inCap, bytes, 1); inCap = max<i32>(bytes, max<i32>(64, inCap * 2)); }
  return inPtr;
}
export function rangeBuffer(count: i32): usize {
  if (count > rangeCap || rangePtr == 0) { rangePtr = grow(rangePtr, rangeCap, count, 4); rangeCap = max<i32>(count, max<i32>(64, rangeCap * 2)); }
  return rangePtr;
}
function ensureOut(extra: i32): void {
  const need = outLen + extra;
  if (need > outCap || outPtr == 0) {
    const n = max<i32>(need, max<i32>(64, outCap * 2));
    outPtr = outPtr == 0 ? heap.alloc(<usize>n * 4) : heap.realloc(outPtr, <usize>n * 4);
    outCap = n;
  }
}
export function outputPtr(): usize { return outPtr; }
export function outputLen(): i32 { return outLen; }
export function resetOutput(): void { outLen = 0; }
@inline function emit(id: i32): void { ensureOut(1); store<i32>(outPtr + (<usize>outLen << 2), id); outLen++; }

// ---------------------------------------------------------------------------------------------
// Vocab: token bytes -> id. Open addressing over an arena of token bytes.
// ---------------------------------------------------------------------------------------------

let vocabSize: i32 = 0;
let arenaPtr: usize = 0;      // u8: model-form token bytes (raw bytes for byte-level models)
let offsPtr: usize = 0;       // i32 [vocabSize + 1]: token i = arena[offs[i] .. offs[i+1])
let vhashPtr: usize = 0;      // i32 [vhashCap]: id + 1, 0 = empty
let vhashMask: u32 = 0;

@inline function hashBytes(p: usize, n: i32): u32 {
  // FNV-1a: token strings are short, so a simple byte loop is as fast as anything fancier.
  let h: u32 = 2166136261;
  for (let i = 0; i < n; i++) { h ^= <u32>load<u8>(p + i); h *= 16777619; }
  return h ^ (h >>> 15);
}

function bytesEqual(a: usize, b: usize, n: i32): bool {
  let i = 0;
  for (; i + 8 <= n; i += 8) if (load<u64>(a + i) != load<u64>(b + i)) return false;
  for (; i < n; i++) if (load<u8>(a + i) != load<u8>(b + i)) return false;
  return true;
}

/** Id of the token whose bytes are p[0..n), or -1. */
function lookup(p: usize, n: i32): i32 {
  let h = hashBytes(p, n) & vhashMask;
  while (true) {
    const e = load<i32>(vhashPtr + (<usize>h << 2));
    if (e == 0) return -1;
    const id = e - 1;
    const s = load<i32>(offsPtr + (<usize>id << 2));
    const len = load<i32>(offsPtr + (<usize>(id + 1) << 2)) - s;
    if (len == n && bytesEqual(arenaPtr + s, p, n)) return id;
    h = (h + 1) & vhashMask;
  }
}

/** Allocates the arena (bytes) and offsets (count + 1 i32) for JS to fill; returns the arena ptr. */
export function vocabArena(count: i32, bytes: i32): usize {
  vocabSize = count;
  arenaPtr = heap.alloc(<usize>max<i32>(bytes, 8) + 8);
  offsPtr = heap.alloc(<usize>(count + 1) << 2);
  return arenaPtr;
}
export function vocabOffsets(): usize { return offsPtr; }

/** Builds the hash table once arena and offsets are filled. Empty tokens are not indexed. */
export function vocabBuild(): void {
  let cap: u32 = 16;
  while (cap < <u32>vocabSize * 2) cap <<= 1;
  vhashMask = cap - 1;
  vhashPtr = heap.alloc(<usize>cap << 2);
  memory.fill(vhashPtr, 0, <usize>cap << 2);
  for (let id = 0; id < vocabSize; id++) {
    const s = load<i32>(offsPtr + (<usize>id << 2));
    const n = load<i32>(offsPtr + (<usize>(id + 1) << 2)) - s;
    if (n == 0) continue;
    // First id wins for duplicate spellings, like a JS Map built in id order would not: HF builds
    // the map from the vocab object, where a spelling appears once, so duplicates do not occur.
    if (lookup(arenaPtr + s, n) >= 0) continue;
    let h = hashBytes(arenaPtr + s, n) & vhashMask;
    while (load<i32>(vhashPtr + (<usize>h << 2)) != 0) h = (h + 1) & vhashMask;
    store<i32>(vhashPtr + (<usize>h << 2), id + 1);
  }
  asciiIdPtr = heap.alloc(128 * 4);
  const one = heap.alloc(8);
  for (let b = 0; b < 128; b++) {
    store<u8>(one, <u8>b);
    store<i32>(asciiIdPtr + (<usize>b << 2), lookup(one, 1));
  }
  heap.free(one);
}

// Ids of the 128 one-byte (ASCII) tokens, -1 if absent: the initial symbols of mostly-ASCII
// SentencePiece text without hashing.
let asciiIdPtr: usize = 0;

/** Lookup from JS: token bytes are in the input buffer. */
export function tokenId(n: i32): i32 { return lookup(inPtr, n); }

// ---------------------------------------------------------------------------------------------
// Merges: (left id, right id) -> (rank, merged id). Open addressing with u64 keys.
// ---------------------------------------------------------------------------------------------

let mergeCount: i32 = 0;
let mkeyPtr: usize = 0;   // u64 [cap]: (left << 32 | right) + 1, 0 = empty
let mvalPtr: usize = 0;   // i32 [cap * 2]: rank, merged id
let mMask: u32 = 0;
let mergeInPtr: usize = 0; // i32 [count * 3]: left, right, merged (in rank order), filled by JS

/** JS writes (left id, right id) pairs in rank order; the merged id is resolved by mergeBuild. */
export function mergeBuffer(count: i32): usize {
  mergeCount = count;
  mergeInPtr = heap.alloc(<usize>max<i32>(count, 1) * 8);
  return mergeInPtr;
}

/** Id of the token spelled tok(a) ++ tok(b), or -1 (the merge result must be in the vocab). */
function concatId(a: i32, b: i32): i32 {
  const sa = load<i32>(offsPtr + (<usize>a << 2));
  const na = load<i32>(offsPtr + (<usize>(a + 1) << 2)) - sa;
  const sb = load<i32>(offsPtr + (<usize>b << 2));
  const nb = load<i32>(offsPtr + (<usize>(b + 1) << 2)) - sb;
  const p = inputBuffer(na + nb);
  memory.copy(p, arenaPtr + sa, <usize>na);
  memory.copy(p + na, arenaPtr + sb, <usize>nb);
  return lookup(p, na + nb);
}

@inline function mixKey(k: u64): u32 {
  k ^= k >>> 33; k *= 0xff51afd7ed558ccd; k ^= k >>> 33;
  return <u32>k;
}

export function mergeBuild(): void {
  let cap: u32 = 16;
  while (cap < <u32>mergeCount * 2) cap <<= 1;
  mMask = cap - 1;
  mkeyPtr = heap.alloc(<usize>cap << 3);
  mvalPtr = heap.alloc(<usize>cap << 3);
  memory.fill(mkeyPtr, 0, <usize>cap << 3);
  for (let r = 0; r < mergeCount; r++) {
    const a = load<i32>(mergeInPtr + (<usize>r * 8));
    const b = load<i32>(mergeInPtr + (<usize>r * 8) + 4);
    if (a < 0 || b < 0) continue; // merge of unknown tokens: can never apply
    const m = concatId(a, b);
    if (m < 0) continue;
    const key: u64 = ((<u64>a << 32) | <u64><u32>b) + 1;
    let h = mixKey(key) & mMask;
    let dup = false;
    while (true) {
      const k = load<u64>(mkeyPtr + (<usize>h << 3));
      if (k == 0) break;
      if (k == key) { dup = true; break; } // the first (lowest) rank of a repeated merge wins
      h = (h + 1) & mMask;
    }
    if (dup) continue;
    store<u64>(mkeyPtr + (<usize>h << 3), key);
    store<i32>(mvalPtr + (<usize>h << 3), r);
    store<i32>(mvalPtr + (<usize>h << 3) + 4, m);
  }
  heap.free(mergeInPtr);
  mergeInPtr = 0;
}

let lastMerged: i32 = -1;
/** Rank of merging ids a, b (or -1); the merged id is left in lastMerged. */
@inline function mergeRank(a: i32, b: i32): i32 {
  if ((a | b) < 0) return -1;
  const key: u64 = ((<u64>a << 32) | <u64><u32>b) + 1;
  let h = mixKey(key) & mMask;
  while (true) {
    const k = load<u64>(mkeyPtr + (<usize>h << 3));
    if (k == 0) return -1;
    if (k == key) {
      lastMerged = load<i32>(mvalPtr + (<usize>h << 3) + 4);
      return load<i32>(mvalPtr + (<usize>h << 3));
    }
    h = (h + 1) & mMask;
  }
}

// ---------------------------------------------------------------------------------------------
// Model options (set once by the facade)
// ---------------------------------------------------------------------------------------------

let byteLevel = false;     // symbols are bytes (ByteLevel pre-tokenizer) rather than characters
let ignoreMerges = false;  // a piece that is itself a vocab token is emitted as is
let byteFallback = false;  // unknown characters become <0xXX> tokens
let fuseUnk = false;
let splitMeta = false;     // whole-text pieces may be cut before each '▁' that follows a non-'▁'
let unkId: i32 = -1;
let byteIdPtr: usize = 0;  // i32 [256]: byte-level symbol id, or <0xXX> id for byte fallback (-1 if absent)
let allBytes = false;      // every <0xXX> exists (byte fallback never needs unk)

export function configure(flags: i32, unk: i32): usize {
  byteLevel = (flags & 1) != 0;
  ignoreMerges = (flags & 2) != 0;
  byteFallback = (flags & 4) != 0;
  fuseUnk = (flags & 8) != 0;
  splitMeta = (flags & 16) != 0;
  unkId = unk;
  if (byteIdPtr == 0) byteIdPtr = heap.alloc(256 * 4);
  return byteIdPtr;
}
export function configureDone(): void {
  allBytes = true;
  for (let b = 0; b < 256; b++) if (load<i32>(byteIdPtr + (<usize>b << 2)) < 0) allBytes = false;
}

// ---------------------------------------------------------------------------------------------
// BPE over one piece
// ---------------------------------------------------------------------------------------------

// Symbol arrays, indexed by symbol: id (-1 = unknown character, -2 = dead), next, prev, byte start.
let symCap: i32 = 0;
let symId: usize = 0; let symNext: usize = 0; let symPrev: usize = 0; let symStart: usize = 0;
let heapPtr: usize = 0; let heapCap: i32 = 0; let heapLen: i32 = 0; // u64 (rank << 32 | left symbol)

function ensureSyms(n: i32): void {
  if (n <= symCap) return;
  let c = max<i32>(n, symCap * 2); if (c < 256) c = 256;
  if (symId != 0) { heap.free(symId); heap.free(symNext); heap.free(symPrev); heap.free(symStart); }
  symId = heap.alloc(<usize>c << 2); symNext = heap.alloc(<usize>c << 2);
  symPrev = heap.alloc(<usize>c << 2); symStart = heap.alloc(<usize>(c + 1) << 2);
  symCap = c;
}

@inline function sget(base: usize, i: i32): i32 { return load<i32>(base + (<usize>i << 2)); }
@inline function sset(base: usize, i: i32, v: i32): void { store<i32>(base + (<usize>i << 2), v); }

function heapPush(v: u64): void {
  if (heapLen >= heapCap) {
    const c = max<i32>(256, heapCap * 2);
    heapPtr = heapPtr == 0 ? heap.alloc(<usize>c << 3) : heap.realloc(heapPtr, <usize>c << 3);
    heapCap = c;
  }
  let i = heapLen++;
  while (i > 0) {
    const p = (i - 1) >> 1;
    const pv = load<u64>(heapPtr + (<usize>p << 3));
    if (pv <= v) break;
    store<u64>(heapPtr + (<usize>i << 3), pv);
    i = p;
  }
  store<u64>(heapPtr + (<usize>i << 3), v);
}

function heapPop(): u64 {
  const top = load<u64>(heapPtr);
  const last = load<u64>(heapPtr + (<usize>(--heapLen) << 3));
  let i = 0;
  const n = heapLen;
  while (true) {
    let c = 2 * i + 1;
    if (c >= n) break;
    let cv = load<u64>(heapPtr + (<usize>c << 3));
    if (c + 1 < n) {
      const rv = load<u64>(heapPtr + (<usize>(c + 1) << 3));
      if (rv < cv) { c++; cv = rv; }
    }
    if (last <= cv) break;
    store<u64>(heapPtr + (<usize>i << 3), cv);
    i = c;
  }
  if (n > 0) store<u64>(heapPtr + (<usize>i << 3), last);
  return top;
}

@inline function pushPair(i: i32): void {
  const j = sget(symNext, i);
  if (j < 0) return;
  const r = mergeRank(sget(symId, i), sget(symId, j));
  // Ties on rank go to the leftmost pair, as in HF (symbol index grows left to right).
  if (r >= 0) heapPush((<u64>r << 32) | <u64>i);
}

@inline function utf8Len(lead: u32): i32 {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

/** Emits the ids for an unknown character (bytes p[0..n)): byte fallback, else unk. */
function emitUnknown(p: usize, n: i32, segStart: i32): void {
  if (byteFallback) {
    // A lone UTF-16 surrogate arrives as its 3-byte WTF-8 form (ED A0..BF xx); HF encodes it with
    // TextEncoder, i.e. as U+FFFD (EF BF BD), so its fallback bytes are those of U+FFFD.
    const lone = n == 3 && load<u8>(p) == 0xED && load<u8>(p + 1) >= 0xA0;
    let ok = allBytes;
    if (!ok) {
      ok = true;
      for (let k = 0; k < n; k++) {
        const b: i32 = lone ? (k == 0 ? 0xEF : k == 1 ? 0xBF : 0xBD) : <i32>load<u8>(p + k);
        if (load<i32>(byteIdPtr + (<usize>b << 2)) < 0) ok = false;
      }
    }
    if (ok) {
      for (let k = 0; k < n; k++) {
        const b: i32 = lone ? (k == 0 ? 0xEF : k == 1 ? 0xBF : 0xBD) : <i32>load<u8>(p + k);
        emit(load<i32>(byteIdPtr + (<usize>b << 2)));
      }
      return;
    }
  }
  if (unkId < 0) return; // no unk token: HF drops the character
  if (fuseUnk && outLen > segStart && load<i32>(outPtr + (<usize>(outLen - 1) << 2)) == unkId) return;
  emit(unkId);
}

@inline function emitId(id: i32, segStart: i32): void {
  if (fuseUnk && id == unkId && outLen > segStart && load<i32>(outPtr + (<usize>(outLen - 1) << 2)) == unkId) return;
  emit(id);
}

// Piece cache: short pieces (<= CACHE_MAX_BYTES) -> ids. Direct-mapped, keyed by hash + bytes.
const CACHE_SLOTS: i32 = 1 << 14;
const CACHE_MAX_BYTES: i32 = 32;
const CACHE_MAX_IDS: i32 = 15;
// slot layout: [len:i32][nIds:i32][bytes: 32][ids: 15 * i32] = 8 + 32 + 60 = 100 -> 104 bytes
const SLOT_BYTES: i32 = 104;
let cachePtr: usize = 0;

function bpePiece(p: usize, n: i32, segStart: i32): void {
  if (n <= 0) return;
  if (ignoreMerges) {
    const id = lookup(p, n);
    if (id >= 0) { emitId(id, segStart); return; }
  }
  // Cache probe: short pieces (words) repeat a lot in real text.
  let slot: usize = 0;
  if (n <= CACHE_MAX_BYTES) {
    if (cachePtr == 0) {
      cachePtr = heap.alloc(<usize>CACHE_SLOTS * SLOT_BYTES);
      memory.fill(cachePtr, 0, <usize>CACHE_SLOTS * SLOT_BYTES);
    }
    slot = cachePtr + <usize>(hashBytes(p, n) & <u32>(CACHE_SLOTS - 1)) * SLOT_BYTES;
    if (load<i32>(slot) == n && bytesEqual(slot + 8, p, n)) {
      const k = load<i32>(slot + 4);
      for (let t = 0; t < k; t++) emitId(load<i32>(slot + 40 + (<usize>t << 2)), segStart);
      return;
    }
  }
  // Initial symbols.
  ensureSyms(n + 1);
  let count = 0;
  if (byteLevel) {
    for (let i = 0; i < n; i++) {
      sset(symId, i, load<i32>(byteIdPtr + (<usize>load<u8>(p + i) << 2)));
      sset(symStart, i, i);
    }
    count = n;
  } else {
    let i = 0;
    while (i < n) {
      const b0 = load<u8>(p + i);
      let l = utf8Len(b0);
      if (i + l > n) l = n - i;
      sset(symId, count, b0 < 0x80 ? load<i32>(asciiIdPtr + (<usize>b0 << 2)) : lookup(p + i, l));
      sset(symStart, count, i);
      count++;
      i += l;
    }
  }
  sset(symStart, count, n);
  for (let i = 0; i < count; i++) { sset(symNext, i, i + 1 < count ? i + 1 : -1); sset(symPrev, i, i - 1); }
  // Merge loop: pop the lowest (rank, position); stale entries are detected by re-checking that
  // the pair still exists with that rank (ranks identify merges, ids only change by merging).
  heapLen = 0;
  for (let i = 0; i + 1 < count; i++) pushPair(i);
  while (heapLen > 0) {
    const top = heapPop();
    const i = <i32>(top & 0xffffffff);
    const r = <i32>(top >>> 32);
    const a = sget(symId, i);
    if (a == -2) continue;
    const j = sget(symNext, i);
    if (j < 0) continue;
    if (mergeRank(a, sget(symId, j)) != r) continue;
    const m = lastMerged;
    sset(symId, i, m);
    sset(symId, j, -2);
    const k = sget(symNext, j);
    sset(symNext, i, k);
    if (k >= 0) sset(symPrev, k, i);
    const pv = sget(symPrev, i);
    if (pv >= 0) pushPair(pv);
    pushPair(i);
  }
  // Emit.
  const before = outLen;
  let cacheable = slot != 0;
  for (let i = 0; i >= 0; i = sget(symNext, i)) {
    const id = sget(symId, i);
    if (id == unkId) cacheable = false; // fuse_unk may drop it depending on the previous piece
    if (id >= 0) emitId(id, segStart);
    else {
      cacheable = false;
      const s = sget(symStart, i);
      const nx = sget(symNext, i);
      const e = nx >= 0 ? sget(symStart, nx) : n;
      emitUnknown(p + s, e - s, segStart);
    }
  }
  if (cacheable) {
    const k = outLen - before;
    if (k <= CACHE_MAX_IDS) {
      store<i32>(slot, n);
      store<i32>(slot + 4, k);
      memory.copy(slot + 8, p, n);
      memory.copy(slot + 40, outPtr + (<usize>before << 2), <usize>k << 2);
    }
  }
}

/**
 * Encodes the UTF-8 text in the input buffer (textLen bytes). nRanges < 0: the whole text is one
 * piece; otherwise rangeBuffer holds nRanges [start, end) pairs in UTF-16 code units, increasing,
 * which are converted to byte offsets here (one pass) so the facade never measures UTF-8 itself.
 * Ids are appended to the output; returns the output length.
 */
export function encodePieces(textLen: i32, nRanges: i32): i32 {
  const segStart = outLen;
  if (nRanges < 0) {
    if (!splitMeta) { bpePiece(inPtr, textLen, segStart); return outLen; }
    // The facade checked that no vocab token has a '▁' (E2 96 81) right after another character,
    // so no merge can join across such a point: BPE on the words between them gives exactly
    // the ids of BPE on the whole text, in O(word) memory and with the piece cache.
    let s = 0;
    for (let i = 3; i + 3 <= textLen; i++) {
      if (load<u8>(inPtr + i) != 0xE2 || load<u8>(inPtr + i + 1) != 0x96 || load<u8>(inPtr + i + 2) != 0x81) continue;
      if (load<u8>(inPtr + i - 3) == 0xE2 && load<u8>(inPtr + i - 2) == 0x96 && load<u8>(inPtr + i - 1) == 0x81) continue;
      bpePiece(inPtr + s, i - s, segStart);
      s = i;
    }
    bpePiece(inPtr + s, textLen - s, segStart);
    return outLen;
  }
  let u16 = 0; let b = 0;
  for (let r = 0; r < nRanges; r++) {
    const s = load<i32>(rangePtr + (<usize>r << 3));
    const e = load<i32>(rangePtr + (<usize>r << 3) + 4);
    while (u16 < s && b < textLen) { const l = utf8Len(load<u8>(inPtr + b)); u16 += l == 4 ? 2 : 1; b += l; }
    const bs = b;
    while (u16 < e && b < textLen) { const l = utf8Len(load<u8>(inPtr + b)); u16 += l == 4 ? 2 : 1; b += l; }
    bpePiece(inPtr + bs, min<i32>(b, textLen) - bs, segStart);
  }
  return outLen;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

let decCount: i32 = 0;
let decArena: usize = 0;   // u8: decoded bytes of each id
let decOffs: usize = 0;    // i32 [decCount + 1]
let decFlags: usize = 0;   // u8 [decCount]: bit 0 = special (skippable), bit 1 = Metaspace leading space
let stripFirstSpace = false;

export function decodeTables(count: i32, bytes: i32, stripFirst: i32): usize {
  decCount = count;
  decArena = heap.alloc(<usize>max<i32>(bytes, 8));
  decOffs = heap.alloc(<usize>(count + 1) << 2);
  decFlags = heap.alloc(<usize>max<i32>(count, 8));
  stripFirstSpace = stripFirst != 0;
  return decArena;
}
export function decodeOffsets(): usize { return decOffs; }
export function decodeFlags(): usize { return decFlags; }

let decOutPtr: usize = 0; let decOutCap: i32 = 0;
export function decodeOutPtr(): usize { return decOutPtr; }

/**
 * Decodes n ids from the range buffer into bytes at decodeOutPtr(); returns the byte count, or
 * -(index + 1) of the first id out of range. skip: drop special ids. first: apply the decoder's
 * "drop the first token's leading space" rule (Metaspace) to the first emitted token.
 */
export function decodeIds(n: i32, skip: i32, first: i32): i32 {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const id = load<i32>(rangePtr + (<usize>i << 2));
    if (id < 0 || id >= decCount) return -(i + 1);
    total += load<i32>(decOffs + (<usize>(id + 1) << 2)) - load<i32>(decOffs + (<usize>id << 2));
  }
  if (total > decOutCap || decOutPtr == 0) {
    const c = max<i32>(total, max<i32>(256, decOutCap * 2));
    if (decOutPtr != 0) heap.free(decOutPtr);
    decOutPtr = heap.alloc(<usize>c);
    decOutCap = c;
  }
  let w = 0;
  let isFirst = first != 0;
  for (let i = 0; i < n; i++) {
    const id = load<i32>(rangePtr + (<usize>i << 2));
    if (skip != 0 && (load<u8>(decFlags + id) & 1) != 0) continue;
    let s = load<i32>(decOffs + (<usize>id << 2));
    const e = load<i32>(decOffs + (<usize>(id + 1) << 2));
    if (isFirst) {
      isFirst = false;
      if (stripFirstSpace && (load<u8>(decFlags + id) & 2) != 0 && e > s && load<u8>(decArena + s) == 0x20) s++;
    }
    memory.copy(decOutPtr + w, decArena + s, <usize>(e - s));
    w += e - s;
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// Native pre-tokenizer split
// ---------------------------------------------------------------------------------------------

const C_L: u32 = 1;    // \p{L}
const C_N: u32 = 2;    // \p{N}
const C_WS: u32 = 4;   // \p{White_Space} (Oniguruma \s as HF translates it)
const C_JSWS: u32 = 8; // JS \s (what HF JS's built-in GPT-2 pattern uses)

let bmpClass: usize = 0; // u8 [65536]: class flags of each BMP code point

function ensureClasses(): void {
  if (bmpClass != 0) return;
  bmpClass = heap.alloc(65536);
  for (let r = 0; r < UNICODE_RUN_COUNT; r++) {
    const start = unchecked(UNICODE_RUNS[2 * r]);
    if (start >= 65536) break;
    const end = r + 1 < UNICODE_RUN_COUNT ? min<u32>(unchecked(UNICODE_RUNS[2 * r + 2]), 65536) : 65536;
    memory.fill(bmpClass + start, <u8>unchecked(UNICODE_RUNS[2 * r + 1]), end - start);
  }
}

function classOf(cp: u32): u32 {
  if (cp < 65536) return load<u8>(bmpClass + cp);
  // Astral: binary search for the last run starting at or before cp.
  let lo = 0, hi = UNICODE_RUN_COUNT - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (unchecked(UNICODE_RUNS[2 * mid]) <= cp) lo = mid; else hi = mid - 1;
  }
  return unchecked(UNICODE_RUNS[2 * lo + 1]);
}

let cpLen: i32 = 1; // byte length of the code point last read by cpAt

/** Code point at byte i (lenient: a malformed byte reads as itself, 1 byte). */
function cpAt(p: usize, i: i32, n: i32): u32 {
  const b0 = <u32>load<u8>(p + i);
  if (b0 < 0x80) { cpLen = 1; return b0; }
  const l = utf8Len(b0);
  if (i + l > n) { cpLen = 1; return 0xFFFD; }
  cpLen = l;
  if (l == 2) return ((b0 & 0x1F) << 6) | (<u32>load<u8>(p + i + 1) & 0x3F);
  if (l == 3) return ((b0 & 0x0F) << 12) | ((<u32>load<u8>(p + i + 1) & 0x3F) << 6) | (<u32>load<u8>(p + i + 2) & 0x3F);
  return ((b0 & 0x07) << 18) | ((<u32>load<u8>(p + i + 1) & 0x3F) << 12) | ((<u32>load<u8>(p + i + 2) & 0x3F) << 6) | (<u32>load<u8>(p + i + 3) & 0x3F);
}

@inline function clsAt(p: usize, i: i32, n: i32): u32 { return classOf(cpAt(p, i, n)); }

/** End of the run of code points starting at i whose class has any of `want` bits. */
function runOf(p: usize, i: i32, n: i32, want: u32): i32 {
  while (i < n) {
    const b = load<u8>(p + i);
    if (b < 0x80) { if ((load<u8>(bmpClass + b) & want) == 0) break; i++; continue; }
    if ((clsAt(p, i, n) & want) == 0) break;
    i += cpLen;
  }
  return i;
}

/** End of the run whose class has none of `avoid` bits. */
function runNot(p: usize, i: i32, n: i32, avoid: u32): i32 {
  while (i < n) {
    const b = load<u8>(p + i);
    if (b < 0x80) { if ((load<u8>(bmpClass + b) & avoid) != 0) break; i++; continue; }
    if ((clsAt(p, i, n) & avoid) != 0) break;
    i += cpLen;
  }
  return i;
}

/** Contractions 's 't 're 've 'm 'll 'd at i (an apostrophe); ASCII case folding when `fold`. */
function contraction(p: usize, i: i32, n: i32, fold: bool): i32 {
  if (i + 1 >= n) return i;
  let a = <u32>load<u8>(p + i + 1);
  if (fold) a |= 0x20; // only maps A-Z onto a-z among the bytes compared below
  if (a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64) return i + 2; // s t m d
  if (i + 2 >= n) return i;
  let b = <u32>load<u8>(p + i + 2);
  if (fold) b |= 0x20;
  if ((a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C)) return i + 3; // re ve ll
  return i;
}

/**
 * Whitespace alternatives shared by both patterns, at i where a whitespace run [i, e) starts:
 * (llama3 only) `\s*[\r\n]+`, then `\s+(?!\S)`, then `\s+`, with the regex engine's backtracking
 * worked out: the first takes up to the run's last newline; the second gives back the run's
 * last character when a non-space follows (if that leaves at least one); else the whole run.
 */
function spaceRun(p: usize, i: i32, n: i32, ws: u32, newlines: bool): i32 {
  let e = i, lastStart = i, lastNl = -1;
  while (e < n) {
    const c = cpAt(p, e, n);
    if ((classOf(c) & ws) == 0) break;
    if (c == 0x0A || c == 0x0D) lastNl = e;
    lastStart = e;
    e += cpLen;
  }
  if (newlines && lastNl >= 0) return lastNl + 1;
  if (e >= n) return e;
  if (lastStart > i) return lastStart;
  return e;
}

/**
 * Llama 3 split (maxDigits 3) and Qwen 2 split (maxDigits 1):
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Returns the end of the match at i (alternatives tried in order, as a backtracking engine
 * does), or i when nothing matches there.
 */
function matchLlama3(p: usize, i: i32, n: i32, maxDigits: i32): i32 {
  const c0 = cpAt(p, i, n);
  const l0 = cpLen;
  if (c0 == 0x27) { const e = contraction(p, i, n, true); if (e > i) return e; }
  const f0 = classOf(c0);
  if (f0 & C_L) return runOf(p, i, n, C_L);
  if (c0 != 0x0A && c0 != 0x0D && (f0 & C_N) == 0 && i + l0 < n && (clsAt(p, i + l0, n) & C_L) != 0) return runOf(p, i + l0, n, C_L);
  if (f0 & C_N) {
    let j = i;
    for (let k = 0; k < maxDigits && j < n; k++) {
      if ((clsAt(p, j, n) & C_N) == 0) break;
      j += cpLen;
    }
    return j;
  }
  const other = C_WS | C_L | C_N;
  let j = c0 == 0x20 ? i + 1 : i;
  if (j < n && (clsAt(p, j, n) & other) == 0) {
    j = runNot(p, j, n, other);
    while (j < n && (load<u8>(p + j) == 0x0A || load<u8>(p + j) == 0x0D)) j++;
    return j;
  }
  if (f0 & C_WS) return spaceRun(p, i, n, C_WS, true);
  return i;
}

/** GPT-2 split as HF JS writes it: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ (JS \s). */
function matchGpt2(p: usize, i: i32, n: i32): i32 {
  const c0 = cpAt(p, i, n);
  if (c0 == 0x27) { const e = contraction(p, i, n, false); if (e > i) return e; }
  let j = i;
  let f = classOf(c0);
  if (c0 == 0x20 && i + 1 < n) {
    const f1 = clsAt(p, i + 1, n);
    if ((f1 & C_JSWS) == 0) { j = i + 1; f = f1; }
  }
  if (f & C_L) return runOf(p, j, n, C_L);
  if (f & C_N) return runOf(p, j, n, C_N);
  if ((f & C_JSWS) == 0) return runNot(p, j, n, C_JSWS | C_L | C_N);
  return spaceRun(p, i, n, C_JSWS, false);
}

/**
 * Splits the UTF-8 text in the input buffer with a native pattern and runs BPE on every piece
 * (regex_split semantics: unmatched gaps are pieces too). kind 1 = Llama 3, 2 = Qwen 2, 3 = GPT-2.
 * Returns the output length.
 */
export function encodeSplit(textLen: i32, kind: i32): i32 {
  ensureClasses();
  const segStart = outLen;
  let pos = 0, gap = 0;
  while (pos < textLen) {
    const e = kind == 3 ? matchGpt2(inPtr, pos, textLen) : matchLlama3(inPtr, pos, textLen, kind == 1 ? 3 : 1);
    if (e > pos) {
      if (gap < pos) bpePiece(inPtr + gap, pos - gap, segStart);
      bpePiece(inPtr + pos, e - pos, segStart);
      pos = e;
      gap = e;
    } else {
      pos += utf8Len(load<u8>(inPtr + pos));
    }
  }
  if (gap < textLen) bpePiece(inPtr + gap, textLen - gap, segStart);
  return outLen;
}

/** Test hook: writes the split's piece ends (byte offsets) to the output instead of ids. */
export function splitOnly(textLen: i32, kind: i32): i32 {
  ensureClasses();
  outLen = 0;
  let pos = 0;
  while (pos < textLen) {
    const e = kind == 3 ? matchGpt2(inPtr, pos, textLen) : matchLlama3(inPtr, pos, textLen, kind == 1 ? 3 : 1);
    if (e > pos) { emit(pos); emit(e); pos = e; } else pos += utf8Len(load<u8>(inPtr + pos));
  }
  return outLen;
}
