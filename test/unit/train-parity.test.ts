// The PyTorch trainer's Zamba2 (scripts/train/zamba2.py) against the float64 reference
// (test/reference/) on the random Zamba2 fixtures: logits within 1e-4 (f32 compute; f32 and bf16
// weights), prompts longer than the fixture's SSD chunk (8) so the inter-chunk carry counts, and
// the chunked scan equal to the token-by-token recurrence for other chunk sizes.
// Needs a Python with torch (Debian's python3-torch: scripts/train/setup.sh installs it; this test
// installs nothing). Without one it SKIPS, saying so. MSL_TORCH_PYTHON picks the interpreter.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeFixture, randomIds, writeFixture, type FixtureOptions } from '../fixtures/index.ts';
import { refForward } from '../reference/index.ts';

const root = new URL('../../', import.meta.url).pathname;

/** The first interpreter that imports torch, or undefined ($MSL_TORCH_PYTHON alone when set). */
function torchPython(): string | undefined {
  const candidates = process.env.MSL_TORCH_PYTHON ? [process.env.MSL_TORCH_PYTHON] : ['/usr/bin/python3', 'python3'];
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) return py;
  }
  return undefined;
}

const CASES: FixtureOptions[] = [
  { arch: 'zamba2', variant: 'hybrid-1block', dtype: 'f32', seed: 21 },
  { arch: 'zamba2', variant: 'hybrid-2blocks', dtype: 'f32', seed: 22 },
  { arch: 'zamba2', variant: 'hybrid-1block', dtype: 'bf16', seed: 23 },
  { arch: 'zamba2', variant: 'hybrid-2blocks', dtype: 'bf16', seed: 24 },
];
const T = 37;

const py = torchPython();
const TITLE = 'PyTorch Zamba2 logits match the f64 reference within 1e-4; chunked scan = recurrence';
if (!py) {
  console.log('SKIP train-parity: no Python with torch found (tried $MSL_TORCH_PYTHON, else /usr/bin/python3 and python3); ' +
    'install it with scripts/train/setup.sh to run this test');
  test.skip(TITLE, () => {});
} else {
  test(TITLE, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msl-train-parity-'));
    try {
      type Job = { model: string; ids: number[]; out: string; scan: string; chunk?: number; dtype?: string };
      const jobs: Job[] = [];
      const fxs = CASES.map((opts, i) => {
        const fx = makeFixture(opts);
        const mdir = join(dir, fx.name);
        return { fx, mdir, ids: randomIds(T, Number(fx.config.vocab_size), 100 + i), i };
      });
      for (const { mdir, ids, i } of fxs) {
        jobs.push({ model: mdir, ids, out: join(dir, `${i}-chunked.f64`), scan: 'chunked' });
        jobs.push({ model: mdir, ids, out: join(dir, `${i}-seq.f64`), scan: 'sequential' });
        jobs.push({ model: mdir, ids, out: join(dir, `${i}-c5.f64`), scan: 'chunked', chunk: 5 });
        jobs.push({ model: mdir, ids, out: join(dir, `${i}-c64.f64`), scan: 'chunked', chunk: 64 });
        // The same code in float64: the chunked algorithm itself must equal the reference to rounding.
        jobs.push({ model: mdir, ids, out: join(dir, `${i}-c5-64.f64`), scan: 'chunked', chunk: 5, dtype: 'f64' });
      }
      for (const { fx, mdir } of fxs) await writeFixture(fx, mdir);
      {
        writeFileSync(join(dir, 'jobs.json'), JSON.stringify(jobs));
        const r = spawnSync(py, [join(root, 'scripts/train/forward.py'), join(dir, 'jobs.json')], { encoding: 'utf8', timeout: 300_000 });
        assert.is(r.status, 0, `forward.py failed: ${r.stderr}`);
        const read = (p: string) => new Float64Array(new Uint8Array(readFileSync(p)).buffer);
        for (const { fx, ids, i } of fxs) {
          const ref = refForward(fx, ids).logits;
          const chunked = read(join(dir, `${i}-chunked.f64`));
          assert.is(chunked.length, ref.length, `${fx.name}: logits length`);
          let err = 0, scale = 0;
          for (let k = 0; k < ref.length; k++) { err = Math.max(err, Math.abs(chunked[k] - ref[k])); scale = Math.max(scale, Math.abs(ref[k])); }
          console.log(`  ${fx.name}: max |Δlogit| torch f32 vs f64 reference ${err.toExponential(2)} (max |logit| ${scale.toFixed(2)})`);
          assert.ok(scale > 1, `${fx.name}: logits suspiciously small`);
          assert.ok(err <= 1e-4, `${fx.name}: max |Δlogit| ${err} > 1e-4`);
          // Other scan forms in f32 (token-by-token recurrence, chunks of 5 and 64): same tolerance.
          for (const v of ['seq', 'c5', 'c64']) {
            const other = read(join(dir, `${i}-${v}.f64`));
            let d = 0;
            for (let k = 0; k < ref.length; k++) d = Math.max(d, Math.abs(other[k] - ref[k]));
            assert.ok(d <= 1e-4, `${fx.name}: ${v} scan vs reference: ${d}`);
          }
          const f64 = read(join(dir, `${i}-c5-64.f64`));
          let d64 = 0;
          for (let k = 0; k < ref.length; k++) d64 = Math.max(d64, Math.abs(f64[k] - ref[k]));
          console.log(`    same model in torch f64, chunk 5: ${d64.toExponential(2)}`);
          assert.ok(d64 <= 1e-9, `${fx.name}: f64 chunked vs reference ${d64}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
