// bench/roofline: the adapter's device-copy bandwidth, the reference the kernel benchmarks divide
// by ("roofline" ratio). A buffer-to-buffer copy moves every byte once in and once out, so we count
// read + written bytes: 2 * size / time, which approximates the memory system's total bandwidth.
// A read-dominated kernel (GEMV) counted the same way (bytes read + written) can reach ~1.0 of it.
//
//   node --import ./scripts/register.mjs bench/roofline.ts     (prints one JSON line)
import { pathToFileURL } from 'node:url';
import type { GpuContext } from '../src/backends/webgpu/context.ts';
import { BufferUsage } from '../src/backends/webgpu/flags.ts';

export interface CopyBandwidthOptions {
  /** Bytes per copy (default 256 MiB on GPUs, 32 MiB on software adapters, capped by maxBufferSize). */
  bytes?: number;
  /** Wall time to aim for per timed batch, seconds (default 0.05). */
  targetSeconds?: number;
}

/** Device buffer-to-buffer copy bandwidth in GB/s (1e9 bytes/s), counting bytes read + written; best of 3. */
export async function measureCopyBandwidth(ctx: GpuContext, opts: CopyBandwidthOptions = {}): Promise<number> {
  const cap = Math.floor(ctx.limits.maxBufferSize / 4) * 4;
  const bytes = Math.min(opts.bytes ?? (ctx.adapter.isSoftware ? 32 : 256) * 2 ** 20, cap);
  const usage = BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
  const a = ctx.alloc.create('bench:copy-src', bytes, usage);
  const b = ctx.alloc.create('bench:copy-dst', bytes, usage);
  try {
    const run = async (reps: number): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) ctx.copy(i % 2 ? b : a, 0, i % 2 ? a : b, 0, bytes);
      await ctx.sync();
      return (performance.now() - t0) / 1000;
    };
    await run(2); // first touch / page-in
    const t1 = await run(1);
    const reps = Math.max(1, Math.min(100, Math.ceil((opts.targetSeconds ?? 0.05) / Math.max(t1, 1e-6))));
    let best = Infinity;
    for (let trial = 0; trial < 3; trial++) best = Math.min(best, (await run(reps)) / reps);
    return (2 * bytes) / best / 1e9;
  } finally {
    ctx.alloc.destroy(a);
    ctx.alloc.destroy(b);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { benchGpu, jsonLine } = await import('./common.ts');
  const ctx = await benchGpu();
  const GBs = await measureCopyBandwidth(ctx);
  jsonLine('roofline', { adapter: ctx.adapter.name, copyGBs: +GBs.toFixed(2) });
  await ctx.destroy();
}
