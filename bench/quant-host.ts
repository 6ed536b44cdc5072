// Host-side block quantization throughput: host.wasm (assembly/host/quant.ts) vs the TypeScript
// reference (src/quant/reference.ts) in the same process on the same inputs, per format:
//   quantize   f32 rows -> device layout        (MB/s of f32 input)
//   from bf16  bf16 rows -> f32 -> device layout (MB/s of bf16 input; the loader's path for
//              16-bit checkpoints, conversion included; Wasm only)
//   repack     GGUF blocks -> device layout      (MB/s of GGUF bytes)
//   dequantize device layout -> f32              (MB/s of f32 output)
// Inputs: Gaussian weights (std 0.02), rows of K = 2048 (a multiple of 256, so every format runs).
// Each figure is the best pass after a warm-up, passes repeated until --min-ms; the TS reference
// runs on a smaller slice (it is 20-50x slower), which does not change its per-byte rate.
//
// Then the load path's worker pool (src/io/quantize-pool.ts): bf16 chunks of 4 MiB streamed
// through QuantPool with 1 and 2 workers (or --threads a,b,...) beside the single-thread Wasm
// figure, in MB/s of bf16 input (chunk copy-in and the transfers included; no GPU).
//
//   node --import ./scripts/register.mjs bench/quant-host.ts [--quick] [--min-ms 1000] [--mb 32] [--threads 1,2]
import { FORMAT_INFO, QUANT_FORMATS, deviceLayout } from '../src/quant/formats.ts';
import { f32ToBf16Bits } from '../src/quant/half.ts';
import { dequantizeDevice, quantizeBlocks, quantizeToDevice, repackToDevice } from '../src/quant/reference.ts';
import { hostWasm } from '../src/wasm/host.ts';
import { QuantPool } from '../src/io/quantize-pool.ts';
import { QUICK, jsonLine, table } from './common.ts';
import { quantInputs } from '../test/helpers/quant-inputs.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const minMs = Number(arg('min-ms') ?? (QUICK ? 200 : 1000));
const mb = Number(arg('mb') ?? (QUICK ? 8 : 32));

function best(f: () => void): number {
  f();
  let b = Infinity, total = 0, n = 0;
  while (n < 2 || total < minMs) {
    const t0 = performance.now();
    f();
    const dt = performance.now() - t0;
    b = Math.min(b, dt);
    total += dt;
    n++;
  }
  return b;
}

const rate = (bytes: number, ms: number) => bytes / 2 ** 20 / (ms / 1000);

const w = await hostWasm();
const K = 2048;
const rows = Math.max(8, Math.floor((mb * 2 ** 20) / (4 * K) / 8) * 8);
const x = quantInputs(1, rows * K, 'normal').map((v) => v * 0.4); // std 0.02
const bf16 = Uint16Array.from(x, (v) => f32ToBf16Bits(v));
const refRows = 8; // TS reference slice
const out: (string | number)[][] = [];

for (const f of QUANT_FORMATS) {
  const L = deviceLayout(f, rows, K);
  const info = FORMAT_INFO[f];
  const gguf = quantizeBlocks(f, x.subarray(0, refRows * K));
  const ggufAll = new Uint8Array(L.nb * info.ggufBlockBytes);
  for (let o = 0; o < ggufAll.length; o += gguf.length) ggufAll.set(gguf.subarray(0, Math.min(gguf.length, ggufAll.length - o)), o);
  const src = w.allocBytes(rows * K * 4), base = w.allocBytes(L.totalBytes), dst = w.allocBytes(rows * K * 4), blocks = w.allocBytes(ggufAll.length);
  const s = w.quantScratch(f, K, rows);
  try {
    w.bytesAt(src, rows * K * 4).set(new Uint8Array(x.buffer));
    w.bytesAt(blocks, ggufAll.length).set(ggufAll);
    w.quantInput16(s, bf16.byteLength).set(new Uint8Array(bf16.buffer));
    const qW = best(() => w.quantizeRowsInto(src, rows, base, L, 0));
    const qT = best(() => quantizeToDevice(f, x.subarray(0, refRows * K), refRows, K));
    const bfW = best(() => w.quantizeChunk(s, rows, 'bf16'));
    const rW = best(() => w.repackBlocksInto(blocks, L.nb, base, L, 0));
    const rT = best(() => repackToDevice(f, gguf, refRows, K));
    const dW = best(() => w.dequantizeBlocksAt(base, L, 0, L.nb, dst));
    const dev = quantizeToDevice(f, x.subarray(0, refRows * K), refRows, K);
    const dT = best(() => dequantizeDevice(f, dev, refRows, K));
    const fig = {
      format: f,
      quantizeWasmMBs: rate(rows * K * 4, qW), quantizeTsMBs: rate(refRows * K * 4, qT),
      fromBf16WasmMBs: rate(rows * K * 2, bfW),
      repackWasmMBs: rate(ggufAll.length, rW), repackTsMBs: rate(gguf.length, rT),
      dequantizeWasmMBs: rate(rows * K * 4, dW), dequantizeTsMBs: rate(refRows * K * 4, dT),
    };
    out.push([f, fig.quantizeWasmMBs, fig.quantizeTsMBs, fig.quantizeWasmMBs / fig.quantizeTsMBs, fig.fromBf16WasmMBs,
      fig.repackWasmMBs, fig.repackTsMBs, fig.dequantizeWasmMBs, fig.dequantizeTsMBs]);
    jsonLine('quant-host', { ...fig, K, rows, refRows });
  } finally {
    w.freeQuantScratch(s);
    for (const p of [src, base, dst, blocks]) w.freeBytes(p);
  }
}
table(`host quantization, MB/s (MiB/s), rows of K = ${K}: Wasm on ${rows} rows, TS reference on ${refRows}`,
  ['format', 'quantize wasm', 'quantize ts', 'ratio', 'bf16->q wasm', 'repack wasm', 'repack ts', 'dequant wasm', 'dequant ts'], out);

// Worker pool throughput: the same bf16 rows, 4 MiB chunks, write callbacks that only touch the result.
const poolThreads = (arg('threads') ?? '1,2').split(',').map(Number);
const chunkRows = Math.max(1, Math.floor((4 << 20) / (2 * K)));
const poolRows: (string | number)[][] = [];
const single = new Map<string, number>();
for (const f of QUANT_FORMATS) {
  const s = w.quantScratch(f, K, rows);
  try {
    w.quantInput16(s, bf16.byteLength).set(new Uint8Array(bf16.buffer));
    single.set(f, rate(rows * K * 2, best(() => w.quantizeChunk(s, rows, 'bf16'))));
  } finally {
    w.freeQuantScratch(s);
  }
}
const bf16Bytes = new Uint8Array(bf16.buffer);
for (const t of poolThreads) {
  const pool = await QuantPool.create({ threads: t, chunkBytes: chunkRows * K * 2 });
  if (!pool) { console.log(`pool of ${t}: unavailable on this host`); continue; }
  try {
    for (const f of QUANT_FORMATS) {
      let sink = 0;
      const pass = async () => {
        for (let r0 = 0; r0 < rows; r0 += chunkRows) {
          const n = Math.min(chunkRows, rows - r0);
          await pool.submit({
            format: f, K, rows: n, from: 'bf16',
            read: async (into) => { into.set(bf16Bytes.subarray(r0 * K * 2, (r0 + n) * K * 2)); return into; },
            write: (c) => { sink += c.qs[0]; },
          });
        }
        await pool.drain();
      };
      await pass();
      let b = Infinity, total = 0, n = 0;
      while (n < 2 || total < minMs) {
        const t0 = performance.now();
        await pass();
        const dt = performance.now() - t0;
        b = Math.min(b, dt);
        total += dt;
        n++;
      }
      const mbs = rate(rows * K * 2, b);
      poolRows.push([f, pool.threads, mbs, single.get(f)!, mbs / single.get(f)!]);
      jsonLine('quant-host.pool', { format: f, threads: pool.threads, bf16MBs: mbs, singleThreadBf16MBs: single.get(f), ratio: mbs / single.get(f)!, K, rows, chunkRows, sink: sink & 1 });
    }
  } finally {
    pool.close();
  }
}
table(`worker pool (src/io/quantize-pool.ts), bf16 -> device layout, MB/s (MiB/s) of bf16 input, chunks of ${chunkRows} rows`,
  ['format', 'workers', 'pool', 'single thread', 'ratio'], poolRows);
