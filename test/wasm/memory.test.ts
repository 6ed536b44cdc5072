// The Wasm heap (src/backends/wasm/memory.ts): exact live/peak accounting per label, reuse and
// coalescing of freed blocks, growth, zero-filled blocks, and typed refusals (the wasm32 4 GiB
// limit, a configured cap) before anything is allocated. Also the thread/feature plumbing of
// WasmKernels: thread counts are capped at the core count, threads: 1 runs without workers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { availableParallelism } from 'node:os';
import { MambaScanError, OutOfMemoryError } from '../../src/errors.ts';
import { WASM32_MAX_BYTES, WASM_PAGE, WasmHeap } from '../../src/backends/wasm/memory.ts';
import { WasmKernels } from '../../src/backends/wasm/kernels.ts';
import { wasmFeatures } from '../../src/backends/wasm/features.ts';
import { ThreadPool } from '../../src/backends/wasm/pool.ts';

test('heap: live/peak bytes per label, 16-byte blocks, stats after free', () => {
  const h = new WasmHeap({ maximumBytes: 64 * WASM_PAGE });
  const a = h.alloc('weights:a', 100);
  const b = h.alloc('act:b', 16);
  const c = h.alloc('weights:c.part1', 1);
  assert.is(a.size, 112);
  assert.is(b.size, 16);
  assert.is(c.size, 16);
  for (const x of [a, b, c]) assert.is(x.ptr % 16, 0);
  let s = h.memoryStats();
  assert.is(s.liveBytes, 144);
  assert.is(s.peakBytes, 144);
  assert.equal(s.byLabel, { weights: 128, act: 16 });
  assert.is(s.liveBuffers, 3);
  h.free(a);
  s = h.memoryStats();
  assert.is(s.liveBytes, 32);
  assert.is(s.peakBytes, 144);
  assert.equal(s.byLabel, { weights: 16, act: 16 });
  h.resetPeak();
  assert.is(h.memoryStats().peakBytes, 32);
  assert.equal(h.outstanding().map((o) => o.label).sort(), ['act:b', 'weights:c.part1']);
  assert.throws(() => h.free(a), /unknown or freed/);
  h.free(b); h.free(c);
  assert.is(h.memoryStats().liveBytes, 0);
  assert.is(h.memoryStats().liveBuffers, 0);
});

test('heap: freed blocks are reused (best fit) and coalesce; memory past the top is reclaimed', () => {
  const h = new WasmHeap({ maximumBytes: 64 * WASM_PAGE });
  const a = h.alloc('t:a', 1024), b = h.alloc('t:b', 1024), c = h.alloc('t:c', 1024), d = h.alloc('t:d', 16);
  h.free(a); h.free(c);
  const e = h.alloc('t:e', 1024);
  assert.ok(e.ptr === a.ptr || e.ptr === c.ptr, 'reused a hole');
  h.free(e); h.free(b);
  // a, b, c are one hole now: a 3 KiB block fits at a's address.
  const f = h.alloc('t:f', 3072);
  assert.is(f.ptr, a.ptr);
  h.free(f); h.free(d);
  // Everything freed: the next block starts at the base again.
  const g = h.alloc('t:g', 16);
  assert.is(g.ptr, a.ptr);
  h.free(g);
});

test('heap: blocks are zero-filled, also when a freed block is reused', () => {
  const h = new WasmHeap({ maximumBytes: 64 * WASM_PAGE });
  const a = h.alloc('t:a', 256);
  h.bytes(a).fill(0xff);
  h.free(a);
  const b = h.alloc('t:b', 256);
  assert.is(b.ptr, a.ptr);
  assert.ok(h.bytes(b).every((v) => v === 0));
  h.free(b);
});

test('heap: grows the memory on demand; views are fresh after growth', () => {
  const h = new WasmHeap({ maximumBytes: 1024 * WASM_PAGE, initialPages: 1 });
  const before = h.memoryStats().committedBytes;
  const a = h.alloc('t:a', 8 << 20);
  assert.ok(h.memoryStats().committedBytes >= 8 << 20 && h.memoryStats().committedBytes > before);
  h.f32(a, 0, 4).set([1, 2, 3, 4]);
  const b = h.alloc('t:b', 16 << 20); // grows again: earlier views would be detached
  assert.equal([...h.f32(a, 0, 4)], [1, 2, 3, 4]);
  h.free(a); h.free(b);
});

test('heap: beyond the cap or the wasm32 4 GiB limit: OutOfMemoryError with needed vs available, nothing allocated', () => {
  const h = new WasmHeap({ maximumBytes: 16 * WASM_PAGE });
  const a = h.alloc('t:a', 512 * 1024);
  let err: unknown;
  try { h.alloc('weights:big', 1 << 20); } catch (e) { err = e; }
  assert.instance(err, OutOfMemoryError);
  const oom = err as OutOfMemoryError;
  assert.is(oom.neededBytes, 1 << 20);
  assert.ok(oom.availableBytes > 0 && oom.availableBytes < 1 << 20, `available ${oom.availableBytes}`);
  assert.match(oom.message, /weights:big needs 1048576 bytes/);
  assert.is(h.memoryStats().liveBuffers, 1);
  h.free(a);
  const full = new WasmHeap();
  assert.is(full.maximumBytes, WASM32_MAX_BYTES);
  try { full.alloc('weights:embedding', 5 * 2 ** 30); assert.unreachable('5 GiB accepted'); } catch (e) {
    assert.instance(e, OutOfMemoryError);
    assert.match((e as Error).message, /wasm32 4 GiB limit/);
    assert.is((e as OutOfMemoryError).neededBytes, 5 * 2 ** 30);
  }
  assert.is(full.memoryStats().liveBytes, 0);
  assert.throws(() => new WasmHeap({ maximumBytes: 5 * 2 ** 30 }), (e: unknown) => e instanceof MambaScanError);
  assert.throws(() => h.alloc('t:x', -1), /bad size/);
});

test('heap: views are windows every wrapper accepts, uncounted, valid while their block lives', async () => {
  const k = await WasmKernels.create({ threads: 1 });
  const pool = k.heap.alloc('state:pool', 64);
  const live = k.heap.memoryStats().liveBytes;
  const a = k.heap.view(pool, 16, 16), b = k.heap.view(pool, 32, 16);
  assert.is(k.heap.memoryStats().liveBytes, live, 'views are not counted');
  assert.equal(k.heap.viewOf(b), { buffer: pool, byteOffset: 32 });
  const inner = k.heap.view(b, 4, 8);
  assert.equal(k.heap.viewOf(inner), { buffer: pool, byteOffset: 36 });
  k.heap.f32(a).set([1, 2, 3, 4]);
  k.heap.f32(b).set([10, 20, 30, 40]);
  k.add({ a, b, out: a, n: 4 });
  assert.equal([...k.heap.f32(pool, 4, 4)], [11, 22, 33, 44]);
  assert.throws(() => k.add({ a, b, out: a, n: 5 }), /needs 20 bytes/);
  assert.throws(() => k.heap.view(pool, 2, 8), (e: unknown) => e instanceof RangeError);
  assert.throws(() => k.heap.view(pool, 48, 32), (e: unknown) => e instanceof RangeError);
  k.heap.free(a); // nothing
  assert.ok(k.heap.isLive(a));
  k.heap.free(pool);
  assert.not.ok(k.heap.isLive(a));
  assert.throws(() => k.add({ a, b, out: a, n: 4 }), /not a live buffer/);
  k.close();
});

test('heap: views outside a block or of a freed block are refused', () => {
  const h = new WasmHeap({ maximumBytes: 16 * WASM_PAGE });
  const a = h.alloc('t:a', 64);
  assert.throws(() => h.f32(a, 10, 7), (e: unknown) => e instanceof RangeError);
  h.free(a);
  assert.throws(() => h.bytes(a), /freed/);
});

test('features: SIMD is detected; relaxed SIMD as the engine reports it', () => {
  const f = wasmFeatures();
  assert.ok(f.simd);
  assert.ok(f.threads, 'Node has shared memory and atomics');
  const relaxedFlag = process.execArgv.includes('--experimental-wasm-relaxed-simd');
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22 || relaxedFlag) assert.ok(f.relaxedSimd);
  if (major === 20 && !relaxedFlag) assert.not.ok(f.relaxedSimd, 'Node 20 needs --experimental-wasm-relaxed-simd');
});

test('threads: capped at the core count; threads: 1 has no workers; a pool needs >= 2 threads', async () => {
  const cores = availableParallelism();
  const many = await WasmKernels.create({ threads: cores + 5 });
  assert.is(many.threads, cores);
  many.close();
  const one = await WasmKernels.create({ threads: 1 });
  assert.is(one.threads, 1);
  assert.is(one.executor.constructor.name, 'SingleThread');
  one.close();
  assert.throws(() => one.matmul({ x: one.heap.alloc('t', 16), M: 1, w: { name: 'w', dtype: 'f32', shape: [1, 1], parts: [], byteLength: 0 }, y: one.heap.alloc('u', 16) }), /after close/);
  let err: unknown;
  try { await ThreadPool.create({ module: undefined as unknown as WebAssembly.Module, memory: one.heap.memory, exports: {}, names: [], threads: 1 }); } catch (e) { err = e; }
  assert.instance(err, MambaScanError);
});

test('threads: without shared memory the plain-memory build runs on the calling thread, with the same results', async () => {
  const plain = await WasmKernels.create({ threads: 2, sharedMemory: false });
  const shared = await WasmKernels.create({ threads: 2, relaxedSimd: false });
  assert.is(plain.variant, 'single');
  assert.is(plain.threads, 1);
  assert.not.ok(plain.heap.shared);
  assert.not.ok(plain.heap.memory.buffer instanceof SharedArrayBuffer);
  const results: Float32Array[] = [];
  for (const k of [plain, shared]) {
    const w = k.upload('w', Float32Array.from({ length: 7 * 13 }, (_, i) => Math.sin(i)));
    const x = k.upload('x', Float32Array.from({ length: 13 }, (_, i) => Math.cos(i)));
    const y = k.heap.alloc('y', 7 * 4);
    k.matmul({ x, M: 1, w: { name: 'w', dtype: 'f32', shape: [7, 13], parts: [{ buffer: w, rowStart: 0, rows: 7 }], byteLength: 7 * 13 * 4 }, y });
    results.push(k.readF32(y, 0, 7));
    k.close();
  }
  assert.equal([...results[0]], [...results[1]]);
});

test('pool: a worker-side failure surfaces as an error on the caller and the pool stays usable', async () => {
  const cores = availableParallelism();
  if (cores < 2) return;
  const k = await WasmKernels.create({ threads: 2, parallelMinWork: 0 });
  // An out-of-bounds pointer makes the kernel trap in every thread (the wrappers would refuse it,
  // so call the pool directly).
  assert.throws(() => k.executor.run([{ fn: 'add', args: [0xfffffff0, 0xfffffff0, 0xfffffff0, 1 << 20] }], true), /out of bounds|failed on worker/);
  const a = k.upload('t:a', new Float32Array([1, 2, 3])), b = k.upload('t:b', new Float32Array([4, 5, 6]));
  k.add({ a, b, out: a, n: 3 });
  assert.equal([...k.readF32(a, 0, 3)], [5, 7, 9]);
  k.close();
});

test.run();
