// npm run bench [-- --quick]: every benchmark in bench/, one after another, in this process's
// adapter. Each prints a table and one JSON line per figure.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const order = ['plans', 'kernels-matmul', 'kernels-scan', 'kernels-attention', 'tokenizer', 'memory', 'speed', 'batch', 'load', 'cpu', 'quality'];
const only = args.filter((a) => !a.startsWith('--'));
let failed = 0;
for (const name of order) {
  if (only.length && !only.includes(name)) continue;
  const file = `bench/${name}.ts`;
  if (!existsSync(`${root}/${file}`)) continue;
  console.log(`\n##### ${name} #####`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', './scripts/register.mjs', file, ...args.filter((a) => a.startsWith('--'))],
    { cwd: root, stdio: 'inherit', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  console.log(`##### ${name}: ${r.status === 0 ? 'ok' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
