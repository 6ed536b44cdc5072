// Human-readable figures for the CLI: sizes, rates, durations, the load progress bar and the
// stats line printed after a generation. Pure functions, so they are tested without a GPU.

/** 1536 → "1.5 KiB"; binary units because device memory is counted in them. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

/** Decimal megabytes for transfer sizes and rates (what download tools show). */
export function formatMB(n: number): string {
  return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} MB`;
}

/** 1234567 → "1.23M" parameters. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** Seconds → "0.42 s", "3.1 s", "2m05s". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 10) return `${s.toFixed(2)} s`;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - 60 * m)).padStart(2, '0')}s`;
}

/** Tokens per second, or undefined when the interval is too short to mean anything. */
export function rate(tokens: number, seconds: number): number | undefined {
  return tokens > 0 && seconds > 0 ? tokens / seconds : undefined;
}

export interface RunFigures {
  promptTokens: number;
  newTokens: number;
  prefillTokPerS?: number;
  decodeTokPerS?: number;
  timeToFirstTokenS: number;
  peakDeviceBytes: number;
  adapter: string;
  /** Which backend ran it ('webgpu' or 'wasm'), when known. */
  backend?: string;
  stoppedBy: string;
}

/** The figures of one generation from the session's stats (decode rate excludes the first token, which prefill produced). */
export function runFigures(stats: { promptTokens: number; newTokens: number; timeToFirstToken: number; prefillSeconds: number; decodeSeconds: number; stoppedBy: string }, peakDeviceBytes: number, adapter: string, backend?: string): RunFigures {
  return {
    promptTokens: stats.promptTokens,
    newTokens: stats.newTokens,
    prefillTokPerS: rate(stats.promptTokens, stats.prefillSeconds),
    decodeTokPerS: rate(stats.newTokens - 1, stats.decodeSeconds),
    timeToFirstTokenS: stats.timeToFirstToken,
    peakDeviceBytes,
    adapter,
    ...(backend !== undefined ? { backend } : {}),
    stoppedBy: stats.stoppedBy,
  };
}

const tps = (v: number | undefined) => (v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** One line: "12 prompt tokens · prefill 340 tok/s · 32 new · decode 25.1 tok/s · TTFT 0.04 s · peak 45.2 MiB · webgpu on llvmpipe". */
export function statsLine(f: RunFigures): string {
  return [
    `${f.promptTokens} prompt tokens`,
    `prefill ${tps(f.prefillTokPerS)} tok/s`,
    `${f.newTokens} new (${f.stoppedBy})`,
    `decode ${tps(f.decodeTokPerS)} tok/s`,
    `TTFT ${formatSeconds(f.timeToFirstTokenS)}`,
    `peak ${formatBytes(f.peakDeviceBytes)}`,
    f.backend === undefined ? `adapter ${f.adapter}` : f.backend === 'webgpu' ? `webgpu on ${f.adapter}` : `${f.backend} (${f.adapter})`,
  ].join(' · ');
}

/**
 * A one-line progress bar rewritten in place with '\r': bytes done/total, MB/s over the whole
 * transfer so far and ETA. Rate and ETA appear once enough time has passed to be meaningful.
 */
export class ProgressBar {
  private readonly t0: number;
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly write: (s: string) => void,
    private readonly columns: number = 80,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.t0 = now();
  }

  /** Draws at most every 100 ms unless `force` (the final state is always drawn by done()). */
  update(loaded: number, total: number | undefined, label = 'loading', force = false): void {
    const t = this.now();
    if (!force && this.drawn && t - this.lastDraw < 100) return;
    this.lastDraw = t;
    this.drawn = true;
    this.write(`\r${this.render(loaded, total, label, (t - this.t0) / 1000)}\x1b[K`);
  }

  /** The bar text for the given state (exposed for tests). */
  render(loaded: number, total: number | undefined, label: string, elapsedS: number): string {
    const speed = elapsedS >= 0.2 ? loaded / elapsedS : undefined;
    const parts: string[] = [];
    const known = total !== undefined && total > 0;
    const frac = known ? Math.min(1, loaded / total) : 0;
    // Phases without bytes yet (reading config and headers): just the label.
    if (loaded === 0 && !(total !== undefined && total > 0)) return `${label}…`;
    const right = [
      known ? `${formatMB(loaded)}/${formatMB(total)}` : formatMB(loaded),
      speed !== undefined ? `${(speed / 1e6).toFixed(1)} MB/s` : '',
      known && speed !== undefined && speed > 0 && frac < 1 ? `ETA ${formatSeconds((total - loaded) / speed)}` : '',
    ].filter((s) => s !== '').join('  ');
    const head = `${label.length > 24 ? `…${label.slice(-23)}` : label}`;
    const width = Math.max(10, Math.min(30, this.columns - head.length - right.length - 10));
    if (known) {
      const fill = Math.round(frac * width);
      parts.push(head, `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}]`, `${String(Math.floor(frac * 100)).padStart(3)}%`, right);
    } else {
      parts.push(head, right);
    }
    return parts.join(' ');
  }

  /** Clears the bar's line so the next output starts on a clean line. */
  done(): void {
    if (this.drawn) this.write('\r\x1b[K');
    this.drawn = false;
  }
}
