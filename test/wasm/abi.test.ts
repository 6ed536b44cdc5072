// The kernel module as another Wasm host sees it (assembly/kernels/README.md): instantiated with
// only its documented import (env.memory), no JS glue, a GEMV and a scan step called directly
// with byte pointers, single-threaded and split over two instances sharing the memory. Also: the
// module has no data segments, globals or start function, and the README's export table lists
// exactly the module's exports.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import threadsWasm from '../../build/kernels.wasm';
import singleWasm from '../../build/kernels-st.wasm';
import { f32ToBf16Bits, bf16BitsToNumber } from '../../src/quant/half.ts';
import { makeScanInputs, scanInputsRef } from '../reference/ssm.ts';
import { U, randomArray } from './helpers.ts';

type Exports = Record<string, (...a: number[]) => number>;

function sectionIds(bytes: Uint8Array): number[] {
  const ids: number[] = [];
  let p = 8;
  const leb = () => { let v = 0, s = 0, b; do { b = bytes[p++]; v |= (b & 0x7f) << s; s += 7; } while (b & 0x80); return v >>> 0; };
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = leb();
    ids.push(id);
    p += size;
  }
  return ids;
}

function documentedExports(): string[] {
  const md = readFileSync(new URL('../../assembly/kernels/README.md', import.meta.url), 'utf8');
  const table = md.slice(md.indexOf('## Exports'));
  return [...table.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);
}

for (const [name, bytes, shared] of [['kernels.wasm', threadsWasm, true], ['kernels-st.wasm', singleWasm, false]] as const) {
  test(`${name}: imports only env.memory (${shared ? 'shared' : 'plain'}), no data/global/start sections, documented exports`, () => {
    const mod = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    assert.equal(WebAssembly.Module.imports(mod), [{ module: 'env', name: 'memory', kind: 'memory' }]);
    const ids = sectionIds(bytes);
    for (const [id, what] of [[11, 'data'], [12, 'data count'], [6, 'global'], [8, 'start']] as const) {
      assert.not.ok(ids.includes(id), `${name} has a ${what} section`);
    }
    const exported = WebAssembly.Module.exports(mod).map((e) => e.name).sort();
    assert.equal(exported, documentedExports().sort());
    assert.ok(WebAssembly.Module.exports(mod).every((e) => e.kind === 'function'));
  });
}

test('direct calls: a bf16 GEMV and a scan step with only env.memory, 1 thread and split over 2 instances', async () => {
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true } as WebAssembly.MemoryDescriptor);
  const a = (await WebAssembly.instantiate(threadsWasm as Uint8Array<ArrayBuffer>, { env: { memory } })).instance.exports as Exports;
  const b = (await WebAssembly.instantiate(threadsWasm as Uint8Array<ArrayBuffer>, { env: { memory } })).instance.exports as Exports;
  assert.is(a.abiVersion(), 1);
  let top = (a.heapBase() + 15) & ~15;
  const place = (bytes: number) => { const p = top; top += Math.ceil(bytes / 16) * 16; return p; };
  const f32 = (p: number, n: number) => new Float32Array(memory.buffer, p, n);

  // GEMV: y [N] = W [N, K] (bf16) . x [K], odd sizes.
  const N = 21, K = 75;
  const wv = randomArray(N * K, 1, 0.2), xv = randomArray(K, 2);
  const w = place(2 * N * K), x = place(4 * K), y1 = place(4 * N), y2 = place(4 * N);
  const wBits = new Uint16Array(memory.buffer, w, N * K);
  for (let i = 0; i < N * K; i++) wBits[i] = f32ToBf16Bits(wv[i]);
  f32(x, K).set(xv);
  a.gemv(2, x, K, 1, w, N, K, y1, N, 0, 0, 1);
  b.gemv(2, x, K, 1, w, N, K, y2, N, 0, 1, 2); // thread 1 of 2
  a.gemv(2, x, K, 1, w, N, K, y2, N, 0, 0, 2); // thread 0 of 2
  for (let n = 0; n < N; n++) {
    let s = 0, mag = 0;
    for (let k = 0; k < K; k++) { const p = bf16BitsToNumber(wBits[n * K + k]) * xv[k]; s += p; mag += Math.abs(p); }
    assert.ok(Math.abs(f32(y1, N)[n] - s) <= (K + 2) * U * mag, `gemv row ${n}: ${f32(y1, N)[n]} vs ${s}`);
  }
  assert.equal([...f32(y2, N)], [...f32(y1, N)], 'split over two instances = one thread');

  // One decode step of the scan (T = 1), state in and out.
  const shape = { T: 1, NH: 3, P: 5, N: 16, G: 1 };
  const inp = makeScanInputs(shape, 9);
  const ref = scanInputsRef(inp, 0, Infinity);
  const xbc = place(4 * inp.xbc.length), zx = place(4 * inp.zxbcdt.length);
  const dtBias = place(4 * 3), aLog = place(4 * 3), D = place(4 * 3), state = place(4 * 3 * 5 * 16), y = place(4 * 15);
  f32(xbc, inp.xbc.length).set(inp.xbc); f32(zx, inp.zxbcdt.length).set(inp.zxbcdt);
  f32(dtBias, 3).set(inp.dtBias); f32(aLog, 3).set(inp.aLog); f32(D, 3).set(inp.D); f32(state, 240).set(inp.state0);
  a.ssmScan(1, 3, 5, 16, 1, xbc + 4 * inp.x.offset, inp.x.rowStride, zx + 4 * inp.dt.offset, inp.dt.rowStride,
    xbc + 4 * inp.B.offset, inp.B.rowStride, xbc + 4 * inp.C.offset, inp.C.rowStride, dtBias, aLog, D, state, y, 0, Infinity, 0, 1);
  const rel = (got: Float32Array, want: Float64Array) => {
    let d = 0, m = 0;
    for (let i = 0; i < want.length; i++) { d = Math.max(d, Math.abs(got[i] - want[i])); m = Math.max(m, Math.abs(want[i])); }
    return d / m;
  };
  assert.ok(rel(f32(y, 15), ref.y) <= 2e-5, `scan y rel err ${rel(f32(y, 15), ref.y)}`);
  assert.ok(rel(f32(state, 240), ref.state) <= 5e-5, 'scan state');
});

test('kernels-st.wasm runs on a plain (non-shared) memory', async () => {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 65536 });
  const k = (await WebAssembly.instantiate(singleWasm as Uint8Array<ArrayBuffer>, { env: { memory } })).instance.exports as Exports;
  const base = (k.heapBase() + 15) & ~15;
  const f = new Float32Array(memory.buffer, base, 12);
  f.set([1, 2, 3, 4, 10, 20, 30, 40]);
  k.add(base, base + 16, base + 32, 4, 0, 1);
  assert.equal([...f.subarray(8, 12)], [11, 22, 33, 44]);
});

test.run();
