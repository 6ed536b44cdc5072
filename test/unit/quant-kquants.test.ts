// host.wasm's q4_k / q6_k scale searches (assembly/host/quant.ts) against the TS reference on
// super-blocks whose sub-blocks differ wildly: per sub-block a distribution (normal, one-signed
// with an offset, near-flat, sparse, ties, a lone outlier, zeros) and a scale from 1e-8 to 1e4.
// Such blocks reach the paths the common inputs rarely do: sub-blocks whose quantized scale is 0
// keep the search's own L (recomputed from the winning scale in Wasm), flat sub-blocks, and the
// super-block scale at the edges of f16. The test checks it really produced such sub-blocks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostWasm } from '../../src/wasm/host.ts';
import { deviceLayout } from '../../src/quant/formats.ts';
import { quantizeToDevice, scaleMinK4 } from '../../src/quant/reference.ts';
import { mulberry32 } from '../fixtures/rng.ts';

function mixedSuperBlocks(seed: number, n: number): Float32Array {
  const r = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
  const x = new Float32Array(n * 256);
  for (let s = 0; s < x.length; s += 16) {
    const kind = Math.floor(r() * 9);
    const scale = 10 ** (r() * 12 - 8);
    const off = r() < 0.3 ? (r() - 0.5) * 4 * scale : 0;
    for (let i = 0; i < 16; i++) {
      let v: number;
      switch (kind) {
        case 0: v = normal(); break;
        case 1: v = -Math.abs(normal()) - 1; break;
        case 2: v = Math.abs(normal()) + 1; break;
        case 3: v = r() < 0.9 ? -1 : -1 - r() * 1e-5; break;
        case 4: v = r() < 0.95 ? 0 : normal(); break;
        case 5: v = Math.round(normal() * 4) / 2; break;
        case 6: v = i === 0 ? 1000 : normal() * 1e-3; break;
        case 7: v = 0; break;
        default: v = r() - 0.5; break;
      }
      x[s + i] = v * scale + off;
    }
  }
  return x;
}

test('q4_k / q6_k: Wasm = reference on super-blocks of wildly mixed sub-blocks', async () => {
  const w = await hostWasm();
  let keptQ4 = 0, keptQ6 = 0;
  for (let it = 0; it < 24; it++) {
    const rows = 1 + (it % 3), bpr = 1 + (it % 4), K = 256 * bpr;
    const x = mixedSuperBlocks(7000 + it, rows * bpr);
    for (const f of ['q4_k', 'q6_k'] as const) {
      const got = w.quantize(f, x, rows, K);
      const want = quantizeToDevice(f, x, rows, K);
      for (let b = 0; b < want.length; b++) if (got[b] !== want[b]) assert.unreachable(`${f} case ${it}: byte ${b} is ${got[b]}, reference ${want[b]}`);
      const L = deviceLayout(f, rows, K);
      for (let blk = 0; blk < L.nb; blk++) {
        if (f === 'q4_k') {
          // Sub-blocks with a zero 6-bit scale under a nonzero d and some nonzero quant: the search's L.
          const o = L.qs.offset + 144 * blk;
          if (want[o] === 0 && want[o + 1] === 0) continue;
          for (let j = 0; j < 8; j++) {
            const [sc] = scaleMinK4(j, want, o + 4);
            const q = want.subarray(o + 16 + 32 * (j >> 1), o + 48 + 32 * (j >> 1));
            if (sc === 0 && q.some((v) => ((j & 1) ? v >> 4 : v & 15) !== 0)) keptQ4++;
          }
        } else {
          const o = L.qs.offset + 208 * blk;
          for (let j = 0; j < 16; j++) if (want[o + 192 + j] === 0) keptQ6++;
        }
      }
    }
  }
  assert.ok(keptQ4 > 0, 'some q4_k sub-blocks keep the search L');
  assert.ok(keptQ6 > 0, 'some q6_k sub-blocks have a zero scale');
});

test.run();
