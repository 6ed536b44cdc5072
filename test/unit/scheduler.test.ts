// The scheduler's decision core (assembly/scheduler/index.ts through src/runtime/scheduler.ts) on
// its own: each decision against a plain-JS statement of the policy on random tables, plus the
// hand-made cases that pin the rules down (decode before prefill, whole prefill blocks, oldest
// first, FIFO admission that never skips the head, LRU order with pinned entries).
// The simulation of whole workloads is in scheduler-sim.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Scheduler, type LruEntry, type StepCandidate, type StepLimits } from '../../src/runtime/scheduler.ts';
import { InputError } from '../../src/errors.ts';
import { mulberry32 } from '../fixtures/rng.ts';

const sched = await Scheduler.create();

/** The plan rule written out plainly (the oracle). */
function refPlan(cands: StepCandidate[], l: StepLimits): { grants: number[]; ages: number[] } {
  const idx = cands.map((_, i) => i).filter((i) => cands[i].need > 0);
  idx.sort((a, b) => (Number(cands[a].prefill) - Number(cands[b].prefill)) || (cands[b].age - cands[a].age) || (cands[a].order - cands[b].order));
  const grants = cands.map(() => 0);
  let left = l.tokenBudget, count = 0;
  for (const i of idx) {
    if (count >= l.maxBatch) break;
    const want = cands[i].prefill ? Math.min(cands[i].need, l.block) : 1;
    if (want > left) continue;
    grants[i] = want; left -= want; count++;
  }
  const ages = cands.map((c, i) => (c.need <= 0 ? c.age : grants[i] > 0 ? 0 : c.age + 1));
  return { grants, ages };
}

function refEvict(e: LruEntry[], used: number, budget: number, incoming: number): number[] | undefined {
  const free = e.filter((x) => !x.pinned).reduce((a, x) => a + x.bytes, 0);
  if (used - free + incoming > budget) return undefined;
  const order = e.map((_, i) => i).filter((i) => !e[i].pinned).sort((a, b) => (e[a].lastUse - e[b].lastUse) || (a - b));
  const out: number[] = [];
  let now = used;
  for (const i of order) { if (now + incoming <= budget) break; now -= e[i].bytes; out.push(i); }
  return out;
}

test('plan equals the stated rule on 3000 random tables', () => {
  const r = mulberry32(11);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  for (let t = 0; t < 3000; t++) {
    const n = int(1, 40);
    const block = int(1, 64);
    const maxBatch = int(1, 48);
    const l: StepLimits = { maxBatch, block, tokenBudget: block + maxBatch - 1 + int(0, 80) };
    const orders = [...Array(n).keys()].sort(() => r() - 0.5);
    const cands: StepCandidate[] = Array.from({ length: n }, (_, i) => {
      const prefill = r() < 0.4;
      return { prefill, need: r() < 0.1 ? 0 : prefill ? int(1, 300) : 1, age: r() < 0.5 ? 0 : int(0, 6), order: orders[i] * 3 - 20 };
    });
    const want = refPlan(cands, l);
    const copy = cands.map((c) => ({ ...c }));
    const got = sched.plan(copy, l);
    assert.equal(got, want.grants, `case ${t}`);
    assert.equal(copy.map((c) => c.age), want.ages, `ages, case ${t}`);
    // The budgets hold whatever the table.
    assert.ok(got.reduce((a, b) => a + b, 0) <= l.tokenBudget);
    assert.ok(got.filter((g) => g > 0).length <= l.maxBatch);
  }
});

test('plan: every decode first, whole prefill blocks, the longest-waiting prefill next', () => {
  const l = { maxBatch: 4, tokenBudget: 11, block: 8 };
  const dec = (order: number): StepCandidate => ({ need: 1, prefill: false, age: 0, order });
  // A prefill of 20 left and two decodes: 1 + 1, then the prefill's block of 8.
  assert.equal(sched.plan([{ need: 20, prefill: true, age: 0, order: 0 }, dec(1), dec(2)], l), [8, 1, 1]);
  // Two prefills beside two decodes: the second block does not fit (never a partial block).
  const c: StepCandidate[] = [{ need: 20, prefill: true, age: 0, order: 0 }, { need: 20, prefill: true, age: 0, order: 1 }, dec(2), dec(3)];
  assert.equal(sched.plan(c, l), [8, 0, 1, 1]);
  assert.equal(c.map((x) => x.age), [0, 1, 0, 0]);
  // The one left out has waited longer: its turn now, the decodes still run.
  assert.equal(sched.plan(c, l), [0, 8, 1, 1]);
  assert.equal(c.map((x) => x.age), [1, 0, 0, 0]);
  // The last segment of a prompt may be shorter than a block, and then fits beside another block.
  assert.equal(sched.plan([{ need: 20, prefill: true, age: 0, order: 0 }, { need: 3, prefill: true, age: 0, order: 1 }], l), [8, 3]);
  // Not runnable: left out, age kept.
  const idle = [{ need: 0, prefill: false, age: 2, order: 0 }];
  assert.equal(sched.plan(idle, l), [0]);
  assert.is(idle[0].age, 2);
  // maxBatch caps the sequences in a step.
  assert.equal(sched.plan([0, 1, 2, 3, 4, 5].map(dec), l), [1, 1, 1, 1, 0, 0]);
});

test('admit: first come first served, never skipping the head', () => {
  assert.is(sched.admit([10, 10, 10], 0, 8, 0, 25), 2);
  assert.is(sched.admit([30, 1, 1], 1, 8, 0, 25), 0, 'a head that does not fit yet blocks smaller ones behind it');
  assert.is(sched.admit([1, 1, 1, 1], 6, 8, 0, 100), 2, 'maxBatch running sequences at most');
  assert.is(sched.admit([], 0, 8, 0, 100), 0);
  assert.is(sched.admit([5], 0, 8, 95, 100), 1, 'exactly at the budget is fine');
  assert.throws(() => sched.admit([101], 0, 8, 0, 100), (e: unknown) => e instanceof InputError && /above the memory budget/.test((e as Error).message));
});

test('evict equals LRU on random caches; pinned entries stay; impossible fits evict nothing', () => {
  const r = mulberry32(12);
  let impossible = 0;
  for (let t = 0; t < 3000; t++) {
    const n = Math.floor(r() * 30);
    const e: LruEntry[] = Array.from({ length: n }, () => ({ lastUse: Math.floor(r() * 20), bytes: Math.floor(r() * 1000), pinned: r() < 0.2 }));
    const used = e.reduce((a, x) => a + x.bytes, 0);
    const budget = Math.floor(r() * 15000);
    const incoming = Math.floor(r() * 3000);
    const got = sched.evict(e, used, budget, incoming);
    assert.equal(got, refEvict(e, used, budget, incoming), `case ${t}`);
    if (got === undefined) { impossible++; continue; }
    const freed = got.reduce((a, i) => a + e[i].bytes, 0);
    assert.ok(used - freed + incoming <= budget, 'fits after eviction');
    assert.ok(got.every((i) => !e[i].pinned), 'pinned entries are never evicted');
  }
  assert.ok(impossible > 50 && impossible < 2500, `both outcomes exercised (${impossible} impossible)`);
  assert.equal(sched.evict([{ lastUse: 5, bytes: 10, pinned: false }, { lastUse: 1, bytes: 10, pinned: false }, { lastUse: 3, bytes: 10, pinned: false }], 30, 30, 15), [1, 2]);
});

test('bad values are InputErrors at the boundary', () => {
  const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof InputError && re.test((e as Error).message));
  bad(() => sched.plan([{ need: 1, prefill: false, age: 0, order: 0 }], { maxBatch: 0, tokenBudget: 4, block: 2 }), /maxBatch/);
  bad(() => sched.plan([{ need: 1, prefill: false, age: 0, order: 0 }], { maxBatch: 2, tokenBudget: 8, block: 8 }), /below block \+ maxBatch − 1 = 9/);
  bad(() => sched.plan([{ need: 2, prefill: false, age: 0, order: 0 }], { maxBatch: 2, tokenBudget: 4, block: 2 }), /decoding sequence/);
  bad(() => sched.plan([{ need: 1, prefill: false, age: 0, order: 3 }, { need: 1, prefill: false, age: 0, order: 3 }], { maxBatch: 2, tokenBudget: 4, block: 2 }), /order 3/);
  bad(() => sched.plan([{ need: 1.5, prefill: true, age: 0, order: 0 }], { maxBatch: 2, tokenBudget: 4, block: 2 }), /need/);
  bad(() => sched.admit([NaN], 0, 2, 0, 10), /bytes\[0\]/);
  bad(() => sched.evict([{ lastUse: 0, bytes: -1, pinned: false }], 0, 10, 1), /bytes/);
});

test.run();
