// Loads the model named on the command line, drawing the progress bar on a terminal. The CLI owns
// its GPU handle: the Node entry installs Dawn as the WebGPU provider.
import { loadModel, type MambaModel, type LoadModelOptions } from '../index.node.ts';
import type { CommonArgs } from './args.ts';
import { ProgressBar } from './format.ts';
import { type CliIo, showsDecorations } from './io.ts';

/** What the bar needs from a progress event: Hub downloads (per file), then weight uploads. */
export interface ProgressEvent {
  phase: string;
  loadedBytes: number;
  totalBytes?: number;
  file?: string;
}

/** Bar label and byte counts for an event, or undefined for events without bytes to show. */
export function progressFields(p: ProgressEvent): { loaded: number; total: number | undefined; label: string } | undefined {
  if (p.phase === 'done' || !Number.isFinite(p.loadedBytes)) return undefined;
  const base = p.file?.split('/').pop();
  const label = p.phase === 'download' ? `download ${base ?? ''}`.trim() : p.phase === 'weights' ? 'weights → GPU' : p.phase;
  return { loaded: p.loadedBytes, total: p.totalBytes, label };
}

export async function loadForCli(args: CommonArgs, io: CliIo, extra: Partial<LoadModelOptions> = {}): Promise<MambaModel> {
  const bar = showsDecorations(io, args.json) && !args.quiet ? new ProgressBar((s) => io.stderr.write(s), io.stderr.columns ?? 80) : undefined;
  let lastLabel = '';
  try {
    return await loadModel(args.model, {
      dtype: args.dtype,
      quantize: args.quantize,
      kvDtype: args.kvDtype,
      backend: args.backend,
      prefillChunk: args.prefillChunk,
      ...extra,
      onProgress: bar
        ? (p) => {
            const f = progressFields(p as ProgressEvent);
            if (!f) return;
            // A new phase redraws at once so its label never lags behind.
            bar.update(f.loaded, f.total, f.label, f.label !== lastLabel);
            lastLabel = f.label;
          }
        : undefined,
    });
  } finally {
    bar?.done();
  }
}
