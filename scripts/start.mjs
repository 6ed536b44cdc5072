// `npm start`: a real generation with no arguments and no network, on the trained checkpoint shipped
// in assets/default-model (made by scripts/train/; model card assets/default-model/README.md).
// Builds dist/cli.js first when it is missing. Extra arguments after `npm start --` are passed to
// `generate` and override the defaults (e.g. `-- --prompt "Hi"`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
process.chdir(root);

const MODEL = 'assets/default-model';
const PROMPT = 'The Congress of the United States';
// Greedy, with a mild repetition penalty: a model this small loops on its favourite phrases otherwise.
const REPETITION_PENALTY = '1.3';

if (!existsSync(`${MODEL}/config.json`)) {
  console.error(`error: ${MODEL}/config.json is missing; this script needs the checkpoint that ships in the repository`);
  process.exit(1);
}
// No system install: the CLI's default backend is 'auto', WebGPU where an adapter exists and the
// Wasm CPU backend otherwise, so a machine without a GPU driver runs as it is (the stats line says
// which backend ran). Only `npm test` installs software adapters, to test the WGSL kernels.

if (!existsSync('dist/cli.js')) {
  console.error('dist/cli.js is missing: building it first (npm run build)...');
  const b = spawnSync(process.execPath, ['scripts/build.mjs', '--no-types'], { stdio: 'inherit' });
  if (b.status !== 0) {
    console.error('error: the build failed; run "npm install" and then "npm run build" to see why');
    process.exit(b.status ?? 1);
  }
}

// A demo shows text even when piped (`npm start | cat`); `npm start -- --json` gives the JSON.
const userArgs = process.argv.slice(2);
const json = userArgs.includes('--json');
// What is running, where a person will see it: on stdout, unless stdout is JSON.
const about =
  'Default model: a small Zamba2 trained on public-domain English (State of the Union addresses and\n' +
  'Moby-Dick); data, training, perplexity and limitations in its model card: assets/default-model/README.md\n' +
  'Other models: npx mamba-scan-lite generate --model Zyphra/Zamba2-1.2B-instruct --prompt "..."\n\n';
/** The prompt that will run: the last --prompt / -p given, else the default (undefined with --ids). */
function promptOf(args) {
  let p = PROMPT;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--prompt' || args[i] === '-p') p = args[++i];
    else if (args[i].startsWith('--prompt=')) p = args[i].slice('--prompt='.length);
    else if (args[i] === '--ids' || args[i].startsWith('--ids=')) p = undefined;
  }
  return p;
}
const shown = promptOf(userArgs);
(json ? process.stderr : process.stdout).write(`${about}${shown !== undefined ? `prompt: ${shown}\n` : ''}continuation:\n`);

const args = ['dist/cli.js', 'generate', '--model', MODEL, '--prompt', PROMPT, '--max-new-tokens', '32',
  '--repetition-penalty', REPETITION_PENALTY, ...(json ? [] : ['--text']), ...userArgs];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
