// scheduler.wasm: the decisions of continuous batching (src/runtime/scheduler.ts drives it).
// Three pure functions over tables the driver writes into this module's memory; no state lives
// here between calls, so every decision can be tested on its own.
//
//   admit : which waiting requests join the running set (FIFO, batch size and memory budget);
//   plan  : which running sequences run in the next step and how many tokens each feeds, within
//           a token budget and a batch size: every decode, then prefill blocks longest-waiting
//           first (no starvation);
//   evict : which prefix-cache snapshots go when a new one must fit a byte budget (LRU).
//
// Tables are struct-of-arrays at pointers from `scratch` (i32 and f64 columns, 8-byte aligned).
// Release builds strip asserts: the driver checks sizes and values before calling.

let scratchPtr: usize = 0;
let scratchBytes: usize = 0;

/** A region of at least `bytes` bytes, reused across calls (its contents do not survive a grow). */
export function scratch(bytes: usize): usize {
  if (bytes > scratchBytes) {
    if (scratchPtr != 0) heap.free(scratchPtr);
    scratchBytes = (bytes + 4095) & ~(<usize>4095);
    scratchPtr = heap.alloc(scratchBytes);
  }
  return scratchPtr;
}

@inline function i32At(base: usize, i: i32): i32 { return load<i32>(base + (<usize>i << 2)); }
@inline function setI32(base: usize, i: i32, v: i32): void { store<i32>(base + (<usize>i << 2), v); }
@inline function f64At(base: usize, i: i32): f64 { return load<f64>(base + (<usize>i << 3)); }

/**
 * Admission, first come first served. `bytes` f64 [nWaiting]: memory each waiting request needs
 * for its whole life (state + KV for prompt and max new tokens), in queue order. Admits the
 * longest prefix of the queue that keeps the running count ≤ maxBatch and the memory in use ≤
 * memBudget. The head is never skipped for a smaller request behind it, so a large request waits
 * only for memory to be freed, never forever. Returns how many to admit, or -1 when nothing runs
 * and the head does not fit even alone (it can never run: the driver refuses such requests).
 */
export function admit(nWaiting: i32, bytes: usize, running: i32, maxBatch: i32, memUsed: f64, memBudget: f64): i32 {
  let k = 0;
  let used = memUsed;
  while (k < nWaiting && running + k < maxBatch) {
    const b = f64At(bytes, k);
    if (used + b > memBudget) break;
    used += b;
    k++;
  }
  if (k == 0 && running == 0 && nWaiting > 0 && maxBatch > 0) return -1;
  return k;
}

// Step planning columns (i32 [n] each, consecutive from `table`):
//   0 need    tokens the sequence would feed next: 1 for decode, the rest of its current prefill
//             segment for prefill; 0 = not runnable this step (left out, age unchanged)
//   1 kind    0 decode, 1 prefill
//   2 age     steps it was runnable but left out since it last ran (in/out)
//   3 order   admission order, lower = earlier (unique)
//   4 grant   out: tokens it feeds this step (0 = not in the step)
//   5 work    scratch (candidate order)

// Candidate a before b: decode before prefill (a decode token is cheap and a client is waiting
// for it), then longer waiting first, then earlier admission.
@inline function ahead(table: usize, n: i32, a: i32, b: i32): bool {
  const kind = table + (<usize>n << 2);
  const kA = i32At(kind, a), kB = i32At(kind, b);
  if (kA != kB) return kA < kB;
  const age = table + (<usize>(2 * n) << 2);
  const ageA = i32At(age, a), ageB = i32At(age, b);
  if (ageA != ageB) return ageA > ageB;
  const order = table + (<usize>(3 * n) << 2);
  return i32At(order, a) < i32At(order, b);
}

/**
 * Fills `grant` for the next step: candidates in `ahead` order each take their tokens (decode 1;
 * prefill min(need, block), whole or not at all, so a prompt's blocks do not depend on what else
 * runs) while the step has fewer than maxBatch sequences and the tokens fit tokenBudget. Then
 * ages: 0 for those that run, +1 for runnable ones left out. Returns the step's token count.
 *
 * With tokenBudget ≥ block + maxBatch − 1 (the driver requires it) and at most maxBatch running:
 * - every decoding sequence runs every step (they are at most maxBatch, and at most maxBatch − 1
 *   beside a prefill), so a long prompt never stalls the others' decode;
 * - the first prefill in order always gets its block (the decodes leave ≥ block tokens), and a
 *   prefill left out waits at most (prefilling sequences − 1) steps: each step the first one
 *   ahead of it runs and drops behind it (age 0), the others ahead keep their places, and
 *   newcomers start behind (age 0, later admission).
 */
export function plan(n: i32, table: usize, tokenBudget: i32, maxBatch: i32, block: i32): i32 {
  const need = table;
  const kind = table + (<usize>n << 2);
  const age = table + (<usize>(2 * n) << 2);
  const grant = table + (<usize>(4 * n) << 2);
  const work = table + (<usize>(5 * n) << 2);
  // Runnable candidates, insertion-sorted by `ahead` (n is a batch, tens of entries).
  let m = 0;
  for (let i = 0; i < n; i++) {
    setI32(grant, i, 0);
    if (i32At(need, i) <= 0) continue;
    let j = m++;
    while (j > 0 && ahead(table, n, i, i32At(work, j - 1))) {
      setI32(work, j, i32At(work, j - 1));
      j--;
    }
    setI32(work, j, i);
  }
  let left = tokenBudget;
  let count = 0;
  for (let c = 0; c < m && count < maxBatch; c++) {
    const i = i32At(work, c);
    const want = i32At(kind, i) == 0 ? 1 : min(i32At(need, i), block);
    if (want > left) continue;
    setI32(grant, i, want);
    left -= want;
    count++;
  }
  for (let c = 0; c < m; c++) {
    const i = i32At(work, c);
    setI32(age, i, i32At(grant, i) > 0 ? 0 : i32At(age, i) + 1);
  }
  return tokenBudget - left;
}

/**
 * LRU eviction. Columns at `table`: lastUse f64 [n], bytes f64 [n], then pinned i32 [n] (1 = in
 * use, never evicted), out i32 [n], work i32 [n]. Writes to `out` the entries to evict, least
 * recently used first (ties: lower index), so that used − evicted + incoming ≤ budget, and
 * returns their count; returns -1 (and evicts nothing) when even evicting every unpinned entry
 * would not make room.
 */
export function evict(n: i32, table: usize, used: f64, budget: f64, incoming: f64): i32 {
  const lastUse = table;
  const bytes = table + (<usize>n << 3);
  const pinned = table + (<usize>(2 * n) << 3);
  const out = pinned + (<usize>n << 2);
  const work = out + (<usize>n << 2);
  let freeable: f64 = 0;
  let m = 0;
  for (let i = 0; i < n; i++) {
    if (i32At(pinned, i) != 0) continue;
    freeable += f64At(bytes, i);
    const t = f64At(lastUse, i);
    let j = m++;
    while (j > 0) {
      const p = i32At(work, j - 1);
      const tp = f64At(lastUse, p);
      if (!(t < tp || (t == tp && i < p))) break;
      setI32(work, j, p);
      j--;
    }
    setI32(work, j, i);
  }
  if (used - freeable + incoming > budget) return -1;
  let k = 0;
  let now = used;
  while (now + incoming > budget && k < m) {
    const i = i32At(work, k);
    now -= f64At(bytes, i);
    setI32(out, k++, i);
  }
  return k;
}
