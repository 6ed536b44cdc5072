// How the CLI reports a failure: one line for the user, the exit code, and the stack chain for
// --verbose.
import { AbortError, MambaScanError } from '../errors.ts';
import { UsageError } from './args.ts';

/** One line for the user: the message with its line breaks folded. */
export function errorLine(e: unknown): string {
  if (e instanceof UsageError) return `error: ${e.message} (see mamba-scan-lite --help)`;
  const msg = e instanceof Error ? e.message : String(e);
  const oneLine = msg.split('\n').map((s) => s.trim()).filter((s) => s !== '').join(' | ');
  // Library errors are written for users; anything else is a bug, so point at --verbose.
  const known = e instanceof MambaScanError;
  return `error: ${oneLine || (e as Error)?.name || 'unknown error'}${known ? '' : ' (unexpected; --verbose shows the stack trace)'}`;
}

export function verboseDetail(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && depth < 5; depth++) {
    parts.push(cur instanceof Error ? (cur.stack ?? `${cur.name}: ${cur.message}`) : String(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
    if (cur !== undefined) parts.push('caused by:');
  }
  return parts.join('\n');
}

export function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return 2;
  if (e instanceof AbortError) return 130;
  return 1;
}

