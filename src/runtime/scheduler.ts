// Typed driver of build/scheduler.wasm (assembly/scheduler/index.ts): the decisions of
// continuous batching. The batch loop (./batcher.ts) keeps the sequences; each step it asks
// which waiting requests join (admit), which running sequences feed how many tokens (plan), and
// the prefix cache asks which snapshots to drop (evict). Values are checked here, at the
// boundary, because the release Wasm build has no asserts.
import wasmBytes from '../../build/scheduler.wasm';
import { InputError, MambaScanError } from '../errors.ts';

interface SchedulerExports {
  memory: WebAssembly.Memory;
  scratch(bytes: number): number;
  admit(nWaiting: number, bytes: number, running: number, maxBatch: number, memUsed: number, memBudget: number): number;
  plan(n: number, table: number, tokenBudget: number, maxBatch: number, block: number): number;
  evict(n: number, table: number, used: number, budget: number, incoming: number): number;
}

/** What one step may hold. */
export interface StepLimits {
  /** Sequences per step at most (and running sequences at most). */
  maxBatch: number;
  /**
   * Tokens per step at most, all sequences together: bounds the step's activation memory in a
   * batched engine and how long the decoding sequences wait for a prefill. At least
   * block + maxBatch − 1, so that a prefill block always fits beside every other sequence's decode.
   */
  tokenBudget: number;
  /** Prefill tokens one sequence feeds per step at most (the engine's prefill block). */
  block: number;
}

/** A running sequence as the planner sees it. `age` is updated by plan(). */
export interface StepCandidate {
  /** Tokens it would feed next: 1 when decoding, the rest of its prefill segment when prefilling; 0 = not runnable now. */
  need: number;
  prefill: boolean;
  /** Steps it was runnable but left out since it last ran (start at 0). */
  age: number;
  /** Admission order, unique, lower = earlier. */
  order: number;
}

export interface LruEntry {
  /** Time of last use (any monotonic number). */
  lastUse: number;
  bytes: number;
  /** In use right now: never evicted. */
  pinned: boolean;
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 2 ** 30) throw new InputError(`scheduler: ${name} must be a positive integer, got ${v}`);
}

function bytesValue(name: string, v: number): void {
  if (!(v >= 0) || !Number.isFinite(v)) throw new InputError(`scheduler: ${name} must be a finite number of bytes ≥ 0, got ${v}`);
}

export function checkLimits(l: StepLimits): void {
  positiveInt('maxBatch', l.maxBatch);
  positiveInt('tokenBudget', l.tokenBudget);
  positiveInt('block', l.block);
  if (l.tokenBudget < l.block + l.maxBatch - 1) {
    throw new InputError(`scheduler: tokenBudget ${l.tokenBudget} is below block + maxBatch − 1 = ${l.block + l.maxBatch - 1}; ` +
      'a prefill block must fit a step beside every other sequence\'s decode token');
  }
}

export class Scheduler {
  private constructor(private readonly x: SchedulerExports) {}

  /** The Wasm module is instantiated once per process; each Scheduler shares it (no state lives there). */
  static async create(): Promise<Scheduler> {
    return new Scheduler(await instance());
  }

  /**
   * How many of the waiting requests (queue order; `bytes` = memory each needs for its whole
   * life) join now: first come first served within maxBatch running sequences and memBudget.
   * Throws InputError when nothing runs and the head can never fit.
   */
  admit(bytes: readonly number[], running: number, maxBatch: number, memUsed: number, memBudget: number): number {
    positiveInt('maxBatch', maxBatch);
    if (!Number.isInteger(running) || running < 0) throw new InputError(`scheduler: running must be a count, got ${running}`);
    bytesValue('memUsed', memUsed);
    if (!(memBudget >= 0)) throw new InputError(`scheduler: memBudget must be ≥ 0, got ${memBudget}`);
    if (bytes.length === 0) return 0;
    bytes.forEach((b, i) => bytesValue(`bytes[${i}]`, b));
    const ptr = this.x.scratch(8 * bytes.length);
    new Float64Array(this.x.memory.buffer, ptr, bytes.length).set(bytes);
    const k = this.x.admit(bytes.length, ptr, running, maxBatch, memUsed, memBudget);
    if (k < 0) throw new InputError(`a request needs ${bytes[0]} bytes, above the memory budget of ${memBudget} bytes`);
    return k;
  }

  /**
   * Tokens each candidate feeds in the next step (0 = not in it), and the candidates' ages
   * updated. Every decode takes its 1 token; then prefills take min(need, block) or nothing,
   * longest-waiting first, then in admission order; at most maxBatch sequences and tokenBudget
   * tokens. So no decode ever waits and a prefill waits at most (prefilling sequences − 1) steps.
   */
  plan(cands: StepCandidate[], limits: StepLimits): number[] {
    checkLimits(limits);
    const n = cands.length;
    if (n === 0) return [];
    const orders = new Set<number>();
    for (const c of cands) {
      if (!Number.isInteger(c.need) || c.need < 0) throw new InputError(`scheduler: need must be a non-negative integer, got ${c.need}`);
      if (!c.prefill && c.need > 1) throw new InputError(`scheduler: a decoding sequence feeds 1 token, not ${c.need}`);
      if (!Number.isInteger(c.age) || c.age < 0 || c.age > 2 ** 30) throw new InputError(`scheduler: age must be a non-negative integer, got ${c.age}`);
      if (!Number.isInteger(c.order) || Math.abs(c.order) > 2 ** 31 - 1) throw new InputError(`scheduler: order must be a 32-bit integer, got ${c.order}`);
      if (orders.has(c.order)) throw new InputError(`scheduler: two sequences have admission order ${c.order}`);
      orders.add(c.order);
    }
    const ptr = this.x.scratch(4 * 6 * n);
    const t = new Int32Array(this.x.memory.buffer, ptr, 6 * n);
    cands.forEach((c, i) => {
      t[i] = c.need;
      t[n + i] = c.prefill ? 1 : 0;
      t[2 * n + i] = c.age;
      t[3 * n + i] = c.order;
    });
    this.x.plan(n, ptr, limits.tokenBudget, limits.maxBatch, limits.block);
    const out = new Int32Array(this.x.memory.buffer, ptr, 6 * n);
    const grants: number[] = [];
    cands.forEach((c, i) => {
      c.age = out[2 * n + i];
      grants.push(out[4 * n + i]);
    });
    return grants;
  }

  /**
   * Indices of the entries to evict (least recently used first, pinned ones never) so that
   * `incoming` more bytes fit the budget; undefined when they cannot fit at all (evict nothing).
   */
  evict(entries: readonly LruEntry[], used: number, budget: number, incoming: number): number[] | undefined {
    bytesValue('used', used);
    bytesValue('budget', budget);
    bytesValue('incoming', incoming);
    const n = entries.length;
    entries.forEach((e, i) => {
      bytesValue(`entries[${i}].bytes`, e.bytes);
      if (!Number.isFinite(e.lastUse)) throw new InputError(`scheduler: entries[${i}].lastUse must be finite`);
    });
    const ptr = this.x.scratch(Math.max(8, 16 * n + 12 * n));
    const f = new Float64Array(this.x.memory.buffer, ptr, 2 * n);
    const pin = new Int32Array(this.x.memory.buffer, ptr + 16 * n, n);
    entries.forEach((e, i) => { f[i] = e.lastUse; f[n + i] = e.bytes; pin[i] = e.pinned ? 1 : 0; });
    const k = this.x.evict(n, ptr, used, budget, incoming);
    if (k < 0) return undefined;
    return Array.from(new Int32Array(this.x.memory.buffer, ptr + 20 * n, k));
  }
}

let compiled: Promise<SchedulerExports> | undefined;

function instance(): Promise<SchedulerExports> {
  if (!compiled) {
    compiled = (async () => {
      const mod = await WebAssembly.compile(wasmBytes as Uint8Array<ArrayBuffer>);
      const inst = await WebAssembly.instantiate(mod, {
        env: {
          abort(_msg: number, _file: number, line: number, col: number) {
            throw new MambaScanError(`scheduler wasm aborted at ${line}:${col}`);
          },
        },
      });
      return inst.exports as unknown as SchedulerExports;
    })();
    compiled.catch(() => { compiled = undefined; });
  }
  return compiled;
}
