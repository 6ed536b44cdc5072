// Shared bits of the benchmarks: flags, one JSON line per figure, aligned tables, the GPU context.
import { GpuContext } from '../src/backends/webgpu/context.ts';
import { setGpuProvider } from '../src/backends/webgpu/provider.ts';
import { nodeGpu } from '../src/backends/webgpu/node-gpu.ts';

export const QUICK = process.argv.includes('--quick') || process.env.MSL_BENCH_QUICK === '1';

export async function benchGpu(): Promise<GpuContext> {
  setGpuProvider(nodeGpu);
  return GpuContext.create();
}

/** Prints one machine-readable line: {"bench": name, ...fields}. */
export function jsonLine(bench: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench, ...fields }));
}

export function table(title: string, header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  console.log(`\n${title}`);
  for (const [j, r] of cells.entries()) {
    console.log(r.map((c, i) => String(c).padStart(widths[i])).join('  '));
    if (j === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return String(n);
  const a = Math.abs(n);
  return a >= 100 ? n.toFixed(0) : a >= 10 ? n.toFixed(1) : a >= 1 ? n.toFixed(2) : n.toPrecision(3);
}

export const MiB = 2 ** 20;
export const mib = (b: number) => b / MiB;
