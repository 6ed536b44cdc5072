// Where CLI output goes. Text for people goes to stdout (generated text) and stderr (progress bar
// on a terminal; the stats line and notices always, --quiet silences them); machine mode (--json,
// or stdout not a TTY) writes exactly one JSON value per result on stdout and nothing decorative.
import type { Writable } from 'node:stream';

export interface CliIo {
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean; columns?: number };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
}

/** Writes and resolves once the stream has taken the data (so exit does not cut output short). */
export function writeAll(stream: Writable, s: string): Promise<void> {
  return new Promise((resolve) => {
    if (s === '') { resolve(); return; }
    if (!stream.write(s)) stream.once('drain', () => resolve());
    else resolve();
  });
}

/** The progress bar only where a person is watching: stderr is a terminal and not machine mode. */
export function showsDecorations(io: CliIo, json: boolean): boolean {
  return !json && io.stderr.isTTY === true;
}
