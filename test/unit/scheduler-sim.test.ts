// Property tests of the scheduler's decision core over whole random workloads: requests arrive at
// random steps with random prompt lengths, output lengths and memory needs; each step the
// simulated loop admits (admit), runs what plan() grants, and retires finished sequences, as
// src/runtime/batcher.ts does. Every step is checked: the token budget, the batch size and the
// memory budget are never exceeded; prefill goes in whole blocks; no decode ever waits and a
// prefill waits at most (prefilling sequences − 1) steps; admission is first come first served;
// and every request finishes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, type StepCandidate, type StepLimits } from '../../src/runtime/scheduler.ts';
import { mulberry32 } from '../fixtures/rng.ts';

const sched = await Scheduler.create();

interface Req { id: number; arrive: number; prompt: number; maxNew: number; bytes: number }
interface Seq extends StepCandidate { req: Req; fed: number; produced: number; waited: number; bound: number }

interface Outcome { steps: number; admitted: number[]; finishedAt: Map<number, number>; maxWait: number; decodeWaits: number; stepsWithPrefillAndDecode: number }

function simulate(reqs: Req[], l: StepLimits, memBudget: number, onStep?: (running: Seq[], grants: number[]) => void): Outcome {
  const waiting: Req[] = [];
  const running: Seq[] = [];
  const admitted: number[] = [];
  const finishedAt = new Map<number, number>();
  let memUsed = 0, order = 0, next = 0, maxWait = 0, decodeWaits = 0, mixed = 0;
  let step = 0;
  for (; finishedAt.size < reqs.length; step++) {
    assert.ok(step < 100_000, 'the workload finishes');
    while (next < reqs.length && reqs[next].arrive <= step) waiting.push(reqs[next++]);
    const k = sched.admit(waiting.map((r) => r.bytes), running.length, l.maxBatch, memUsed, memBudget);
    for (const r of waiting.splice(0, k)) {
      memUsed += r.bytes;
      admitted.push(r.id);
      running.push({ req: r, fed: 0, produced: 0, waited: 0, bound: 0, need: 0, prefill: true, age: 0, order: order++ });
    }
    assert.ok(running.length <= l.maxBatch, 'running ≤ maxBatch');
    assert.ok(memUsed <= memBudget, 'memory ≤ budget');
    if (running.length === 0) continue;
    for (const s of running) {
      s.prefill = s.fed < s.req.prompt;
      s.need = s.prefill ? s.req.prompt - s.fed : 1;
    }
    const grants = sched.plan(running, l);
    onStep?.(running, grants);
    const total = grants.reduce((a, b) => a + b, 0);
    assert.ok(total <= l.tokenBudget, `step ${step}: ${total} tokens > budget ${l.tokenBudget}`);
    assert.ok(total > 0, 'every step runs something');
    assert.ok(grants.filter((g) => g > 0).length <= l.maxBatch, 'step ≤ maxBatch sequences');
    if (running.some((s, i) => s.prefill && grants[i] > 0) && running.some((s, i) => !s.prefill && grants[i] > 0)) mixed++;
    running.forEach((s, i) => {
      const g = grants[i];
      if (g === 0) {
        // The bound is set by the prefills present when the wait began (newcomers queue behind).
        if (s.waited++ === 0) s.bound = running.filter((x) => x.prefill).length - 1;
        if (!s.prefill) decodeWaits++;
        maxWait = Math.max(maxWait, s.waited);
        assert.ok(s.waited <= s.bound, `seq ${s.req.id} waited ${s.waited} steps, bound ${s.bound}`);
        return;
      }
      s.waited = 0;
      if (s.prefill) {
        assert.is(g, Math.min(s.need, l.block), 'prefill in whole blocks');
        s.fed += g;
        // The last prompt block yields the first token.
        if (s.fed === s.req.prompt) s.produced++;
      } else {
        assert.is(g, 1);
        s.produced++;
      }
    });
    for (let i = running.length - 1; i >= 0; i--) {
      const s = running[i];
      if (s.produced >= s.req.maxNew) {
        finishedAt.set(s.req.id, step);
        memUsed -= s.req.bytes;
        running.splice(i, 1);
      }
    }
  }
  return { steps: step, admitted, finishedAt, maxWait, decodeWaits, stepsWithPrefillAndDecode: mixed };
}

function workload(seed: number, n: number, opts: { longPrompts?: boolean; burst?: boolean } = {}): Req[] {
  const r = mulberry32(seed);
  const reqs: Req[] = [];
  let t = 0;
  for (let id = 0; id < n; id++) {
    t += opts.burst ? 0 : Math.floor(r() * 4);
    const prompt = 1 + Math.floor(r() ** 2 * (opts.longPrompts ? 2000 : 200));
    const maxNew = 1 + Math.floor(r() * 40);
    reqs.push({ id, arrive: t, prompt, maxNew, bytes: 1000 + (prompt + maxNew) * 10 });
  }
  return reqs;
}

test('random workloads: budgets never exceeded, bounded waits, FIFO admission, all finish (200 runs)', () => {
  const r = mulberry32(99);
  let waits = 0;
  for (let run = 0; run < 200; run++) {
    const block = 1 + Math.floor(r() * 64);
    const maxBatch = 1 + Math.floor(r() * 16);
    const l: StepLimits = { maxBatch, block, tokenBudget: block + maxBatch - 1 + Math.floor(r() * 40) };
    const reqs = workload(run, 5 + Math.floor(r() * 40), { longPrompts: r() < 0.3, burst: r() < 0.3 });
    const biggest = Math.max(...reqs.map((q) => q.bytes));
    const memBudget = biggest + Math.floor(r() * 40_000);
    const out = simulate(reqs, l, memBudget);
    assert.equal(out.admitted, reqs.map((q) => q.id), `run ${run}: admitted in arrival order`);
    assert.is(out.finishedAt.size, reqs.length);
    assert.is(out.decodeWaits, 0, `run ${run}: no decode waited`);
    waits += out.maxWait;
  }
  assert.ok(waits > 0, 'prefills did have to wait in some runs (the bound was exercised)');
});

test('a long prompt does not stall the others: its prefill is interleaved with their decode', () => {
  const l: StepLimits = { maxBatch: 8, block: 64, tokenBudget: 64 + 7 };
  // Seven short requests decode while a 5000-token prompt arrives.
  const reqs: Req[] = Array.from({ length: 7 }, (_, id) => ({ id, arrive: 0, prompt: 4, maxNew: 200, bytes: 1 }));
  reqs.push({ id: 7, arrive: 3, prompt: 5000, maxNew: 4, bytes: 1 });
  let longPrefillSteps = 0;
  const out = simulate(reqs, l, 1e9, (running, grants) => {
    const i = running.findIndex((s) => s.req.id === 7);
    if (i < 0 || !running[i].prefill || grants[i] === 0) return;
    longPrefillSteps++;
    running.forEach((s, j) => { if (!s.prefill) assert.is(grants[j], 1, `decode of ${s.req.id} runs beside the long prefill`); });
  });
  assert.is(longPrefillSteps, Math.ceil(5000 / 64));
  assert.is(out.decodeWaits, 0);
  assert.ok(out.stepsWithPrefillAndDecode >= longPrefillSteps);
});

test('prefills take turns: two long prompts side by side both advance', () => {
  const l: StepLimits = { maxBatch: 4, block: 32, tokenBudget: 32 + 3 };
  const reqs: Req[] = [0, 1].map((id) => ({ id, arrive: 0, prompt: 3200, maxNew: 1, bytes: 1 }));
  const fedAt: number[][] = [[], []];
  simulate(reqs, l, 1e9, (running, grants) => running.forEach((s, i) => { if (grants[i]) fedAt[s.req.id].push(grants[i]); }));
  // Strict alternation: neither waits for the other's whole prompt.
  assert.is(fedAt[0].length, 100);
  assert.is(fedAt[1].length, 100);
});

test('limits that could starve a prefill are refused', () => {
  assert.throws(() => sched.plan([], { maxBatch: 10, block: 1, tokenBudget: 3 }), /block \+ maxBatch − 1/);
});

test('memory budget: a request waits for memory, then runs; the head is never overtaken', () => {
  const l: StepLimits = { maxBatch: 16, block: 8, tokenBudget: 32 };
  const reqs: Req[] = [
    { id: 0, arrive: 0, prompt: 10, maxNew: 30, bytes: 600 },
    { id: 1, arrive: 1, prompt: 10, maxNew: 5, bytes: 600 }, // must wait for 0 to finish
    { id: 2, arrive: 1, prompt: 2, maxNew: 2, bytes: 10 },   // small, but behind 1
  ];
  const out = simulate(reqs, l, 1000);
  assert.equal(out.admitted, [0, 1, 2]);
  assert.ok(out.finishedAt.get(2)! > out.finishedAt.get(0)!, 'the small request did not jump the queue');
});

test.run();
