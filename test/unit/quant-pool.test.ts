// The quantization worker pool (src/io/quantize-pool.ts), without a GPU:
//   - chunks quantized on workers assemble into the same device buffer as one HostWasm call over
//     all rows (the single-threaded path) and as the TS reference, for every format and source
//     element type, with odd row counts, odd chunk sizes and only two buffers circulating;
//   - write callbacks run in submission order; a chunk with NaN reaches its callback counted;
//   - a throwing write callback or read fails the pool / the call, nothing hangs, and close()
//     leaves no worker alive; an AbortSignal stops the workers mid-stream with AbortError;
//   - the loader's policy (QuantPool.forLoad): 0 threads or little work = no pool, bad values typed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { QuantPool, liveQuantWorkers, type PoolChunk } from '../../src/io/quantize-pool.ts';
import { hostWasm } from '../../src/wasm/host.ts';
import { FORMAT_INFO, QUANT_FORMATS, type QuantFormat, deviceLayout } from '../../src/quant/formats.ts';
import { quantizeToDevice } from '../../src/quant/reference.ts';
import { bf16BitsToNumber, f16BitsToNumber, f32ToBf16Bits, f32ToF16Bits } from '../../src/quant/half.ts';
import { AbortError, UnsupportedError } from '../../src/errors.ts';
import { quantInputs } from '../helpers/quant-inputs.ts';

type From = 'f32' | 'f16' | 'bf16';

/** Source bytes of x in `from` and the f32 values they hold exactly. */
function encode(x: Float32Array, from: From): { bytes: Uint8Array; values: Float32Array } {
  if (from === 'f32') return { bytes: new Uint8Array(x.buffer.slice(0)), values: x };
  const bits = Uint16Array.from(x, (v) => (from === 'bf16' ? f32ToBf16Bits(v) : f32ToF16Bits(v)));
  const values = Float32Array.from(bits, (b) => (from === 'bf16' ? bf16BitsToNumber(b) : f16BitsToNumber(b)));
  return { bytes: new Uint8Array(bits.buffer), values };
}

/** Streams rows [0, rows) through the pool in chunks of `per` rows; returns the assembled device buffer. */
async function viaPool(pool: QuantPool, f: QuantFormat, from: From, src: Uint8Array, rows: number, K: number, per: number): Promise<{ buf: Uint8Array; order: number[] }> {
  const layout = deviceLayout(f, rows, K);
  const info = FORMAT_INFO[f];
  const out = new Uint8Array(layout.totalBytes);
  const item = from === 'f32' ? 4 : 2;
  const order: number[] = [];
  for (let r0 = 0; r0 < rows; r0 += per) {
    const n = Math.min(per, rows - r0);
    await pool.submit({
      format: f, K, rows: n, from,
      // Every other chunk comes back in a fresh array (a source that cannot read in place).
      read: async (into) => {
        const bytes = src.subarray(r0 * K * item, (r0 + n) * K * item);
        if ((r0 / per) % 2) return bytes.slice();
        into.set(bytes);
        return into;
      },
      write: (c) => {
        order.push(r0);
        assert.is(c.rows, n);
        assert.is(c.nonFiniteBlocks, 0);
        const b0 = r0 * layout.blocksPerRow;
        out.set(c.qs, layout.qs.offset + b0 * info.qsBlockBytes);
        if (layout.qh) out.set(c.qh!, layout.qh.offset + 4 * b0);
        if (layout.d) out.set(c.d!, layout.d.offset + 2 * b0);
      },
    });
  }
  await pool.drain();
  return { buf: out, order };
}

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function settleWorkers(base: number): Promise<void> {
  for (let i = 0; i < 200 && liveQuantWorkers() > base; i++) await new Promise((r) => setTimeout(r, 10));
}

test('pool chunks = one single-threaded HostWasm call = the reference, every format and source type, odd rows and chunks', async () => {
  const base = liveQuantWorkers();
  const w = await hostWasm();
  // Two buffers only: submit() must wait for (and write) the oldest chunk over and over.
  const pool = await QuantPool.create({ threads: 2, chunkBytes: 64 << 10, buffers: 2 });
  assert.ok(pool, 'a pool starts on this host');
  try {
    assert.ok(pool!.threads >= 1 && pool!.threads <= 2, `threads ${pool!.threads}`);
    let seed = 1;
    for (const f of QUANT_FORMATS) {
      const qk = FORMAT_INFO[f].qk;
      for (const from of ['f32', 'f16', 'bf16'] as const) {
        // Blocks per row odd and even; rows prime; chunks of 1, 2 and 5 rows (so the last is short).
        for (const [bpr, rows, per] of [[3, 13, 5], [2, 7, 2], [1, 11, 1], [5, 3, 5]] as const) {
          const K = qk * bpr;
          const x = quantInputs(400 + seed++, rows * K, seed % 3 ? 'normal' : 'outliers');
          const { bytes, values } = encode(x, from);
          const want = quantizeToDevice(f, values, rows, K);
          // The single-threaded path over all rows at once.
          const s = w.quantScratch(f, K, rows);
          let single: Uint8Array;
          try {
            (from === 'f32' ? w.quantInput(s, bytes.byteLength) : w.quantInput16(s, bytes.byteLength)).set(bytes);
            const c = w.quantizeChunk(s, rows, from);
            const L = s.layout;
            single = new Uint8Array(L.totalBytes);
            single.set(c.qs, L.qs.offset);
            if (c.qh) single.set(c.qh, L.qh!.offset);
            if (c.d) single.set(c.d, L.d!.offset);
          } finally {
            w.freeQuantScratch(s);
          }
          const { buf: got, order } = await viaPool(pool!, f, from, bytes, rows, K, per);
          const label = `${f} ${from} ${rows}x${K} in chunks of ${per}`;
          assert.is(firstDiff(single, want), -1, `${label}: single thread = reference`);
          assert.is(firstDiff(got, want), -1, `${label}: pool = reference`);
          assert.equal(order, Array.from({ length: Math.ceil(rows / per) }, (_, i) => i * per), `${label}: writes in order`);
        }
      }
    }
  } finally {
    pool?.close();
  }
  await settleWorkers(base);
  assert.is(liveQuantWorkers(), base, 'close() leaves no worker');
});

test('pool: a NaN block is counted for the callback; a throwing callback fails the pool; a failing read does not', async () => {
  const base = liveQuantWorkers();
  const pool = (await QuantPool.create({ threads: 2, chunkBytes: 16 << 10 }))!;
  try {
    const K = 256, rows = 4;
    const x = quantInputs(9, rows * K, 'normal');
    x[K + 17] = NaN; // row 1: one q8_0 block, one q4_k super-block
    const bytes = new Uint8Array(x.buffer);
    const counted: number[] = [];
    for (const f of ['q8_0', 'q4_k'] as const) {
      await pool.submit({ format: f, K, rows, from: 'f32', read: async (into) => { into.set(bytes); return into; }, write: (c) => { counted.push(c.nonFiniteBlocks); } });
    }
    await pool.drain();
    assert.equal(counted, [1, 1]);

    // A read that throws: the call rejects, the pool goes on.
    try {
      await pool.submit({ format: 'q8_0', K, rows, from: 'f32', read: async () => { throw new Error('disk on fire'); }, write: () => {} });
      assert.unreachable('read error swallowed');
    } catch (e) {
      assert.match((e as Error).message, /disk on fire/);
    }
    let ok = 0;
    await pool.submit({ format: 'q8_0', K, rows, from: 'f32', read: async (into) => { into.set(bytes); return into; }, write: () => { ok++; } });
    await pool.drain();
    assert.is(ok, 1, 'the pool still works after a failed read');

    // A write callback that throws (the loader's CheckpointError): the next call rethrows it.
    const chunk = (write: PoolChunk['write']): PoolChunk => ({ format: 'q4_k', K, rows, from: 'f32', read: async (into) => { into.set(bytes); return into; }, write });
    let later = 0;
    await pool.submit(chunk((c) => { if (c.nonFiniteBlocks) throw new RangeError('bad weights'); }));
    await pool.submit(chunk(() => { later++; }));
    try {
      await pool.drain();
      assert.unreachable('callback error swallowed');
    } catch (e) {
      assert.instance(e, RangeError);
    }
    try {
      await pool.submit(chunk(() => {}));
      assert.unreachable('a failed pool accepted work');
    } catch (e) {
      assert.instance(e, RangeError);
    }
    assert.is(later, 0, 'no callback after the failure');
  } finally {
    pool.close();
  }
  await settleWorkers(base);
  assert.is(liveQuantWorkers(), base, 'workers terminated');
});

test('pool: aborting mid-stream stops the workers and rejects with AbortError', async () => {
  const base = liveQuantWorkers();
  const ac = new AbortController();
  const pool = (await QuantPool.create({ threads: 2, chunkBytes: 1 << 20, signal: ac.signal }))!;
  const K = 2048, rows = 128; // q4_k chunks of 1 MiB of f32: tens of milliseconds each
  const x = new Uint8Array(quantInputs(11, rows * K, 'normal').buffer);
  let written = 0;
  let err: unknown;
  try {
    for (let i = 0; i < 40; i++) {
      if (i === 3) ac.abort(new Error('user cancelled'));
      await pool.submit({ format: 'q4_k', K, rows, from: 'f32', read: async (into) => { into.set(x); return into; }, write: () => { written++; } });
    }
    await pool.drain();
  } catch (e) {
    err = e;
  } finally {
    pool.close();
  }
  assert.instance(err, AbortError);
  assert.match((err as Error).message, /user cancelled/);
  assert.ok(written <= 3, `${written} chunks written after the abort`);
  await settleWorkers(base);
  assert.is(liveQuantWorkers(), base, 'workers terminated');
});

test('QuantPool.forLoad: the loader policy', async () => {
  assert.is(await QuantPool.forLoad({ threads: 0, workBytes: 1 << 30, chunkBytes: 1 << 20 }), undefined, '0 threads: on the loading thread');
  assert.is(await QuantPool.forLoad({ workBytes: 1 << 20, chunkBytes: 1 << 20 }), undefined, 'default: no pool for 1 MiB of work');
  assert.is(await QuantPool.forLoad({ threads: 2, workBytes: 0, chunkBytes: 1 << 20 }), undefined, 'nothing to quantize');
  for (const bad of [-1, 1.5, NaN]) {
    try {
      await QuantPool.forLoad({ threads: bad, workBytes: 1, chunkBytes: 1 << 20 });
      assert.unreachable(`threads ${bad} accepted`);
    } catch (e) {
      assert.instance(e, UnsupportedError);
    }
  }
  const p = await QuantPool.forLoad({ threads: 64, workBytes: 1, chunkBytes: 1 << 16 });
  try {
    const os = await import('node:os');
    assert.ok(p && p.threads <= os.availableParallelism(), 'never more workers than cores');
  } finally {
    p?.close();
  }
});

test.run();
