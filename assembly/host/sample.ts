// Next-token sampling over one logits row, in Wasm so a 32k–256k vocabulary costs one pass and
// one heap select instead of a JS sort per token. Same order of operations as transformers'
// logits processors and src/runtime/sampling.ts (which is the readable spec and the test oracle):
// repetition penalty → temperature → top-k → top-p → draw with the caller's uniform number.
//
// Memory (pointers from alloc): logits f32 [V] (modified in place by the penalty),
// seen i32 [nSeen], work i32 [V] (candidate indices).

// Candidate order: higher logit first, lower index first among equal logits.
@inline function before(logits: usize, a: i32, b: i32): bool {
  const la = load<f32>(logits + (<usize>a << 2));
  const lb = load<f32>(logits + (<usize>b << 2));
  return la > lb || (la == lb && a < b);
}

// Min-heap by `before` (the root is the worst kept candidate).
function siftDown(logits: usize, heap: usize, n: i32, i: i32): void {
  while (true) {
    const l = 2 * i + 1;
    if (l >= n) return;
    let worst = l;
    const r = l + 1;
    const hl = load<i32>(heap + (<usize>l << 2));
    if (r < n) {
      const hr = load<i32>(heap + (<usize>r << 2));
      if (before(logits, hl, hr)) worst = r;
    }
    const hi = load<i32>(heap + (<usize>i << 2));
    const hw = load<i32>(heap + (<usize>worst << 2));
    if (!before(logits, hi, hw)) return;
    store<i32>(heap + (<usize>i << 2), hw);
    store<i32>(heap + (<usize>worst << 2), hi);
    i = worst;
  }
}

/**
 * Returns the chosen token id. topK ≤ 0 means all tokens; topP ≥ 1 means no nucleus cut;
 * temperature ≤ 0 or !doSample means argmax (after the penalty). `u` is uniform in [0, 1).
 */
export function sampleLogits(logits: usize, V: i32, seen: usize, nSeen: i32, temperature: f32, topK: i32,
  topP: f32, penalty: f32, doSample: bool, u: f64, work: usize): i32 {
  if (penalty != 1.0) {
    for (let i = 0; i < nSeen; i++) {
      const id = load<i32>(seen + (<usize>i << 2));
      if (id < 0 || id >= V) continue;
      const p = logits + (<usize>id << 2);
      const l = load<f32>(p);
      store<f32>(p, l > 0 ? l / penalty : l * penalty);
    }
  }
  if (!doSample || temperature <= 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (before(logits, i, best)) best = i;
    return best;
  }
  // Keep the best k in a min-heap, then heap-sort: each pop moves the worst kept candidate to the
  // tail, so work[0..n) ends sorted best-first.
  const k = topK > 0 && topK < V ? topK : V;
  let n = 0;
  for (let i = 0; i < V; i++) {
    if (n < k) {
      store<i32>(work + (<usize>n << 2), i);
      n++;
      if (n == k) for (let j = k / 2 - 1; j >= 0; j--) siftDown(logits, work, k, j);
    } else if (before(logits, i, load<i32>(work))) {
      store<i32>(work, i);
      siftDown(logits, work, k, 0);
    }
  }
  if (n < k) for (let j = n / 2 - 1; j >= 0; j--) siftDown(logits, work, n, j);
  for (let end = n - 1; end > 0; end--) {
    const top = load<i32>(work);
    store<i32>(work, load<i32>(work + (<usize>end << 2)));
    store<i32>(work + (<usize>end << 2), top);
    siftDown(logits, work, end, 0);
  }
  const maxLogit = load<f32>(logits + (<usize>load<i32>(work) << 2));
  // Probabilities overwrite the logits of the candidates (read in candidate order only).
  let total: f64 = 0;
  for (let i = 0; i < n; i++) {
    const id = load<i32>(work + (<usize>i << 2));
    const p = Math.exp(<f64>(load<f32>(logits + (<usize>id << 2)) - maxLogit) / <f64>temperature);
    store<f32>(logits + (<usize>id << 2), <f32>p);
    total += <f64><f32>p;
  }
  let keep = n;
  if (topP < 1.0) {
    let acc: f64 = 0;
    keep = 0;
    while (keep < n) {
      acc += <f64>load<f32>(logits + (<usize>load<i32>(work + (<usize>keep << 2)) << 2)) / total;
      keep++;
      if (acc >= <f64>topP) break;
    }
    total = 0;
    for (let i = 0; i < keep; i++) total += <f64>load<f32>(logits + (<usize>load<i32>(work + (<usize>i << 2)) << 2));
  }
  let r = u * total;
  for (let i = 0; i < keep; i++) {
    const id = load<i32>(work + (<usize>i << 2));
    r -= <f64>load<f32>(logits + (<usize>id << 2));
    if (r < 0) return id;
  }
  return load<i32>(work + (<usize>(keep - 1) << 2));
}
