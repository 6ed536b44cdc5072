// Loads the model named on the command line, drawing the progress bar on a terminal. The CLI owns
// its GPU handle: the Node entry installs Dawn as the WebGPU provider.
import { loadModel, type MambaModel, type LoadModelOptions } from '../index.node.ts';
import type { CommonArgs } from './args.ts';
import { ProgressBar } from './format.ts';
import { type CliIo, showsDecorations } from './io.ts';

/**
 * Byte counts from one progress event. The loader reports downloads and uploads; the bar shows
 * bytes done out of the total for the phase it is in, labelled with the phase (and file).
 */
export function progressFields(p: unknown): { loaded: number; total: number | undefined; label: string } | undefined {
  if (p === null || typeof p !== 'object') return undefined;
  const r = p as Record<string, unknown>;
  const num = (...keys: string[]) => {
    for (const k of keys) if (typeof r[k] === 'number' && Number.isFinite(r[k])) return r[k] as number;
    return undefined;
  };
  const loaded = num('loadedBytes', 'bytesLoaded', 'loaded', 'bytes');
  if (loaded === undefined) return undefined;
  const total = num('totalBytes', 'bytesTotal', 'total');
  const phase = typeof r.phase === 'string' ? r.phase : typeof r.stage === 'string' ? r.stage : 'loading';
  return { loaded, total, label: phase };
}

export async function loadForCli(args: CommonArgs, io: CliIo, extra: Partial<LoadModelOptions> = {}): Promise<MambaModel> {
  const bar = showsDecorations(io, args.json) ? new ProgressBar((s) => io.stderr.write(s), io.stderr.columns ?? 80) : undefined;
  let lastLabel = '';
  try {
    return await loadModel(args.model, {
      dtype: args.dtype,
      prefillChunk: args.prefillChunk,
      ...extra,
      onProgress: bar
        ? (p) => {
            const f = progressFields(p);
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
