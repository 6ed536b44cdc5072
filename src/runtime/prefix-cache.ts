// Session snapshots keyed by the exact token prefix they cover: a repeated system prompt or a
// continued chat restores the state after its longest cached prefix and feeds only the rest.
// A Mamba2 state is constant-size, so an entry costs the same whatever the prefix length (plus
// Zamba2's KV rows). Entries are host bytes (snapshot.ts format, checked again on restore); the
// LRU decision under the byte budget is the scheduler core's (Scheduler.evict).
import { InputError } from '../errors.ts';
import type { Scheduler } from './scheduler.ts';

interface Entry {
  tokens: Int32Array;
  bytes: Uint8Array;
  lastUse: number;
}

export interface PrefixCacheStats {
  entries: number;
  bytes: number;
  budgetBytes: number;
  hits: number;
  misses: number;
  /** Prompt tokens whose prefill restores skipped. */
  restoredTokens: number;
  evictions: number;
  /** Snapshots not kept because they alone exceed the budget. */
  rejected: number;
}

// Two 32-bit polynomial hashes of a prefix: the map key; entries are compared token by token anyway.
const M1 = 0x01000193, M2 = 0x5bd1e995;

function prefixHashes(tokens: readonly number[], upTo: number): { h1: Uint32Array; h2: Uint32Array } {
  const h1 = new Uint32Array(upTo + 1), h2 = new Uint32Array(upTo + 1);
  h1[0] = 0x811c9dc5; h2[0] = 0x9747b28c;
  for (let i = 0; i < upTo; i++) {
    h1[i + 1] = Math.imul(h1[i] ^ tokens[i], M1);
    h2[i + 1] = Math.imul((h2[i] + tokens[i] + 1) >>> 0, M2) ^ (h2[i] >>> 15);
  }
  return { h1, h2 };
}

const keyOf = (len: number, h1: number, h2: number) => `${len}:${h1}:${h2}`;

export class PrefixCache {
  private readonly entries = new Map<string, Entry>();
  /** Distinct prefix lengths present, for the longest-match search. */
  private readonly lengths = new Map<number, number>();
  private used = 0;
  private clock = 0;
  private readonly counters = { hits: 0, misses: 0, restoredTokens: 0, evictions: 0, rejected: 0 };

  constructor(private readonly scheduler: Scheduler, readonly budgetBytes: number) {
    if (!(budgetBytes >= 0) || !Number.isFinite(budgetBytes)) throw new InputError(`prefix cache budget must be a number of bytes ≥ 0, got ${budgetBytes}`);
  }

  /**
   * The snapshot of the longest cached prefix of `tokens` with at most `maxLength` tokens, or
   * undefined. A hit counts as a use (it moves to the back of the LRU order).
   */
  lookup(tokens: readonly number[], maxLength = tokens.length): { length: number; bytes: Uint8Array } | undefined {
    const upTo = Math.min(maxLength, tokens.length);
    const candidates = [...this.lengths.keys()].filter((l) => l <= upTo && l > 0).sort((a, b) => b - a);
    if (candidates.length > 0) {
      const { h1, h2 } = prefixHashes(tokens, candidates[0]);
      for (const len of candidates) {
        const e = this.entries.get(keyOf(len, h1[len], h2[len]));
        if (!e || !sameTokens(e.tokens, tokens)) continue;
        e.lastUse = ++this.clock;
        this.counters.hits++;
        this.counters.restoredTokens += len;
        return { length: len, bytes: e.bytes };
      }
    }
    this.counters.misses++;
    return undefined;
  }

  has(tokens: readonly number[]): boolean {
    const { h1, h2 } = prefixHashes(tokens, tokens.length);
    const e = this.entries.get(keyOf(tokens.length, h1[tokens.length], h2[tokens.length]));
    return e !== undefined && sameTokens(e.tokens, tokens) && e.tokens.length === tokens.length;
  }

  /**
   * Keeps `bytes` (a snapshot after exactly `tokens`), evicting least recently used entries to
   * stay within the budget. Returns false (and keeps nothing) when it alone exceeds the budget.
   */
  put(tokens: readonly number[], bytes: Uint8Array): boolean {
    if (tokens.length === 0) throw new InputError('a prefix cache entry needs at least one token');
    const { h1, h2 } = prefixHashes(tokens, tokens.length);
    const key = keyOf(tokens.length, h1[tokens.length], h2[tokens.length]);
    const old = this.entries.get(key);
    if (old && old.tokens.length === tokens.length && sameTokens(old.tokens, tokens)) { old.lastUse = ++this.clock; return true; }
    // A hash collision: the newer prefix takes the slot.
    if (old) this.remove(key, false);
    const list = [...this.entries.entries()];
    const victims = this.scheduler.evict(list.map(([, e]) => ({ lastUse: e.lastUse, bytes: e.bytes.byteLength, pinned: false })),
      this.used, this.budgetBytes, bytes.byteLength);
    if (victims === undefined) { this.counters.rejected++; return false; }
    for (const i of victims) this.remove(list[i][0]);
    this.entries.set(key, { tokens: Int32Array.from(tokens), bytes, lastUse: ++this.clock });
    this.lengths.set(tokens.length, (this.lengths.get(tokens.length) ?? 0) + 1);
    this.used += bytes.byteLength;
    return true;
  }

  /** Drops every entry. */
  clear(): void {
    for (const k of [...this.entries.keys()]) this.remove(k, false);
  }

  stats(): PrefixCacheStats {
    return { entries: this.entries.size, bytes: this.used, budgetBytes: this.budgetBytes, ...this.counters };
  }

  private remove(key: string, counted = true): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.used -= e.bytes.byteLength;
    const n = (this.lengths.get(e.tokens.length) ?? 1) - 1;
    if (n === 0) this.lengths.delete(e.tokens.length); else this.lengths.set(e.tokens.length, n);
    if (counted) this.counters.evictions++;
  }
}

/** `prefix` equals the first prefix.length tokens of `tokens`. */
function sameTokens(prefix: Int32Array, tokens: readonly number[]): boolean {
  if (prefix.length > tokens.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== tokens[i]) return false;
  return true;
}
