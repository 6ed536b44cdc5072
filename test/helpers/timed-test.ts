// uvu's `test` with each test's wall time printed after it (to keep the suite's budget in view).
import { test as uvuTest } from 'uvu';

/** uvu's `test`, printing `[12.3 s] name` after each test when `print` is true. */
export function timedTest(print: boolean): typeof uvuTest {
  const test = ((name: string, fn: () => Promise<void>) => uvuTest(name, async () => {
    const t0 = performance.now();
    await fn();
    if (print) console.log(`  [${((performance.now() - t0) / 1000).toFixed(1)} s] ${name}`);
  })) as unknown as typeof uvuTest;
  test.run = uvuTest.run;
  return test;
}
