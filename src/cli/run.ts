// The CLI's top level: parse, load, run one command, report errors, free the device.
//
// Exit codes: 0 ok, 1 error (bad model, device, input), 2 usage error, 130 interrupted.
// Errors are one line `error: ...` on stderr; --verbose adds the stack and causes.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MambaModel } from '../index.node.ts';
import { helpText, parseCommandLine, type ParsedArgs } from './args.ts';
import { errorLine, exitCodeFor, verboseDetail } from './report.ts';
import { runChat } from './chat.ts';
import { runGenerate } from './generate.ts';
import { runInfo } from './info.ts';
import { runServe } from './serve.ts';
import { loadForCli } from './load.ts';
import { type CliIo, processIo, writeAll } from './io.ts';

function packageVersion(): string {
  // dist/cli.js and src/cli/main.ts sit one and two levels below the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'mamba-scan-lite') return pkg.version ?? 'unknown';
    }
  }
  return 'unknown';
}

/** Runs one command line; resolves to the exit code (never throws). */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  const jsonGuess = argv.includes('--json') || (io.stdout.isTTY !== true && !argv.includes('--text'));
  let args: ParsedArgs | undefined;
  let model: MambaModel | undefined;
  const abort = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    // First Ctrl-C cancels the generation cleanly; a second one leaves at once.
    if (++interrupts > 1) process.exit(130);
    abort.abort();
  };
  try {
    args = parseCommandLine(argv, io.stdout.isTTY === true);
    if (args.command === 'help') {
      await writeAll(io.stdout, `${helpText(args.topic)}\n`);
      return 0;
    }
    if (args.command === 'version') {
      await writeAll(io.stdout, `${packageVersion()}\n`);
      return 0;
    }
    if (args.command === 'generate') process.on('SIGINT', onSigint);
    model = await loadForCli(args, io, { signal: abort.signal });
    switch (args.command) {
      case 'generate': await runGenerate(model, args, io, abort.signal); break;
      case 'chat': await runChat(model, args, io); break;
      case 'info': await runInfo(model, args, io); break;
      case 'serve': await runServe(model, args, io); break;
    }
    return 0;
  } catch (e) {
    const code = exitCodeFor(e);
    if (code === 130 && !verbose) {
      await writeAll(io.stderr, '\ninterrupted\n');
      return code;
    }
    await writeAll(io.stderr, `${errorLine(e)}\n`);
    if (verbose) await writeAll(io.stderr, `${verboseDetail(e)}\n`);
    const json = args && 'json' in args ? args.json : jsonGuess;
    if (json && code !== 2) {
      const type = e instanceof Error ? e.name : 'Error';
      const message = e instanceof Error ? e.message : String(e);
      await writeAll(io.stdout, `${JSON.stringify({ error: { type, message } })}\n`);
    }
    return code;
  } finally {
    process.off('SIGINT', onSigint);
    // Frees the device before exit: Dawn must not be torn down under a live device.
    await model?.dispose().catch(() => undefined);
  }
}
