// GPU runtime: allocator accounting exact to the byte, scratch reuse, leak reports,
// typed shader compile errors, a kernel launch through the batching path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu, randomArray } from '../helpers/gpu.ts';
import { STORAGE_RW } from '../../src/backends/webgpu/flags.ts';
import { DeviceLostError, ShaderCompileError } from '../../src/errors.ts';
import { GpuContext } from '../../src/backends/webgpu/context.ts';
import { add, addInPlace } from '../../src/backends/webgpu/kernels/add.ts';

test('allocator: live and peak bytes are exact', async () => {
  const ctx = await testGpu();
  const a = ctx.alloc;
  const base = a.memoryStats().liveBytes;
  a.resetPeak();
  const b1 = a.create('t:one', 1000, STORAGE_RW);
  const b2 = a.create('t:two', 4096, STORAGE_RW);
  const b3 = a.create('other:three', 13, STORAGE_RW); // rounds to 16
  let s = a.memoryStats();
  assert.is(s.liveBytes - base, 1000 + 4096 + 16);
  assert.is(s.byLabel.t, 5096);
  assert.is(s.byLabel.other, 16);
  a.destroy(b2);
  s = a.memoryStats();
  assert.is(s.liveBytes - base, 1016);
  assert.is(s.peakBytes - base, 5112);
  a.resetPeak();
  assert.is(a.memoryStats().peakBytes, a.memoryStats().liveBytes);
  a.destroy(b1); a.destroy(b3);
  a.destroy(b3); // twice is harmless
  assert.is(a.memoryStats().liveBytes, base);
});

test('allocator: scratch buffers are reused, pooled bytes stay counted', async () => {
  const ctx = await testGpu();
  const a = ctx.alloc;
  a.trimPool(); // other suites in this process may have left buffers in the pool
  const base = a.memoryStats().liveBytes;
  const s1 = a.scratch('scratch:x', 10_000, STORAGE_RW);
  const size = a.sizeOf(s1);
  assert.ok(size >= 10_000 && size <= 10_000 * 1.125 + 256);
  a.release(s1);
  assert.is(a.memoryStats().byLabel.pool ?? 0, size);
  const s2 = a.scratch('scratch:y', 9_900, STORAGE_RW);
  assert.is(s2, s1, 'same size class reuses the buffer');
  assert.is(a.memoryStats().liveBytes - base, size);
  assert.throws(() => { a.release(s2); a.release(s2); }, /double release/);
  a.trimPool();
  assert.is(a.memoryStats().liveBytes, base);
});

test('allocator: outstanding() lists unreleased buffers as leaks', async () => {
  const ctx = await testGpu();
  const b = ctx.alloc.create('leaky:buffer', 64, STORAGE_RW);
  assert.ok(ctx.alloc.outstanding().some((l) => l.label === 'leaky:buffer' && l.size === 64));
  ctx.alloc.destroy(b);
  assert.not.ok(ctx.alloc.outstanding().some((l) => l.label === 'leaky:buffer'));
});

test('kernel launch: add over odd sizes matches the CPU', async () => {
  const ctx = await testGpu();
  for (const n of [1, 255, 257, 1000, 70_001]) {
    const x = randomArray(n, n), y = randomArray(n, n + 1);
    const bx = ctx.upload('t:x', x), by = ctx.upload('t:y', y);
    const bo = ctx.alloc.create('t:o', n * 4, STORAGE_RW);
    await add(ctx, bx, by, bo, n);
    const got = await ctx.readF32(bo, 0, n);
    for (let i = 0; i < n; i++) assert.is(got[i], Math.fround(x[i] + y[i]), `n=${n} i=${i}`);
    for (const b of [bx, by, bo]) ctx.alloc.destroy(b);
  }
});

test('kernel launch: addInPlace over odd sizes matches the CPU', async () => {
  const ctx = await testGpu();
  for (const n of [1, 333, 65_537]) {
    const x = randomArray(n, 7 * n), d = randomArray(n, 7 * n + 1);
    const bx = ctx.upload('t:x', x), bd = ctx.upload('t:d', d);
    await addInPlace(ctx, bx, bd, n);
    const got = await ctx.readF32(bx, 0, n);
    for (let i = 0; i < n; i++) assert.is(got[i], Math.fround(x[i] + d[i]), `n=${n} i=${i}`);
    ctx.alloc.destroy(bx); ctx.alloc.destroy(bd);
  }
});

test('shader compile errors are typed and name the WGSL line', async () => {
  const ctx = await testGpu();
  const def = { name: 'broken', source: '@compute @workgroup_size(1)\nfn main() {\n  let x: u32 = undefinedThing;\n}\n', bindings: [] };
  try {
    await ctx.kernel(def);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, ShaderCompileError);
    assert.is((e as ShaderCompileError).line, 3);
    assert.match((e as Error).message, /undefinedThing/);
  }
});

test('shader compile errors name the kernel file line with defines and libraries before it', async () => {
  const ctx = await testGpu();
  const def = {
    name: 'broken_lib', bindings: [], params: [['n', 'u32']] as const,
    libraries: ['fn helper() -> u32 {\n  return 1u;\n}\n'],
    source: '@compute @workgroup_size(1)\nfn main() {\n  let y = helper() + params.n;\n  let x: u32 = missingName;\n}\n',
  };
  try {
    await ctx.kernel(def, { SIZE: 4, FLAG: true });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, ShaderCompileError);
    assert.is((e as ShaderCompileError).line, 4);
    assert.match((e as Error).message, /missingName/);
  }
});

test('profiler: timestamp queries count every dispatch per kernel, results unchanged', async () => {
  const ctx = await testGpu();
  const n = 4099;
  const a = ctx.upload('t:a', randomArray(n, 1));
  const b = ctx.upload('t:b', randomArray(n, 2));
  const out = ctx.alloc.create('t:out', n * 4, STORAGE_RW);
  try {
    const prof = ctx.startProfiling();
    if (!prof) {
      assert.not.ok(ctx.features.timestampQuery, 'no profiler only without timestamp-query');
      return;
    }
    for (let i = 0; i < 5; i++) await add(ctx, a, b, out, n);
    await addInPlace(ctx, out, a, n);
    const totals = await ctx.stopProfiling();
    assert.is(totals.get('add')?.count, 5);
    assert.is(totals.get('add_inplace')?.count, 1);
    assert.ok((totals.get('add')?.ns ?? -1) >= 0);
    const got = await ctx.readF32(out);
    const av = await ctx.readF32(a), bv = await ctx.readF32(b);
    for (let i = 0; i < n; i += 97) assert.ok(Math.abs(got[i] - (2 * av[i] + bv[i])) < 1e-5);
  } finally {
    ctx.alloc.destroy(a); ctx.alloc.destroy(b); ctx.alloc.destroy(out);
  }
});

test('device loss: pending and later calls fail with DeviceLostError', async () => {
  // A context of its own: losing it must not disturb the shared one.
  const ctx = await GpuContext.create();
  const n = 1 << 16;
  const a = ctx.upload('t:a', randomArray(n, 3));
  const b = ctx.upload('t:b', randomArray(n, 4));
  const out = ctx.alloc.create('t:out', n * 4, STORAGE_RW);
  await add(ctx, a, b, out, n);
  const pending = ctx.readF32(out);
  ctx.device.destroy(); // what a driver reset or a lost GPU looks like to WebGPU
  let err: unknown;
  try { await pending; } catch (e) { err = e; }
  // The readback was submitted before the loss, so it may also have completed.
  if (err) assert.instance(err, DeviceLostError);
  await ctx.device.lost;
  assert.ok(ctx.isLost);
  let later: unknown;
  try { await add(ctx, a, b, out, n); } catch (e) { later = e; }
  assert.instance(later, DeviceLostError);
  assert.match(String((later as Error).message), /lost/i);
  await ctx.destroy();
});

test.run();
