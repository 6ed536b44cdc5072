// Deterministic quantizer inputs and random GGUF blocks for the quantization tests. The golden
// hashes in test/fixtures/ggml-quant-golden.json were produced by feeding exactly these inputs to
// ggml's own C reference functions (see that file's "how" field), so this generator must not change.
import { mulberry32 } from '../fixtures/rng.ts';
import { FORMAT_INFO, type QuantFormat } from '../../src/quant/formats.ts';

export const INPUT_KINDS = [
  'normal', 'uniform', 'positive', 'negative', 'outliers', 'tiny', 'subnormalish', 'huge', 'sparse',
  'ints', 'constant', 'zeros', 'blockconst', 'halves',
] as const;
export type InputKind = typeof INPUT_KINDS[number];

/** n f32 values of one distribution: weights-like, one-signed, outliers, extreme scales, ties, degenerate blocks. */
export function quantInputs(seed: number, n: number, kind: InputKind): Float32Array {
  const r = mulberry32(seed);
  const normal = () => {
    const u = Math.max(r(), 1e-12), v = r();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (kind) {
      case 'normal': x[i] = normal() * 0.05; break;
      case 'uniform': x[i] = r() * 2 - 1; break;
      case 'positive': x[i] = r() * 3 + 0.5; break;
      case 'negative': x[i] = -r() * 3 - 0.01; break;
      case 'outliers': x[i] = r() < 0.02 ? normal() * 20 : normal() * 0.02; break;
      case 'tiny': x[i] = normal() * 1e-6; break;         // scales in the f16 subnormal range
      case 'subnormalish': x[i] = normal() * 1e-9; break; // scales that flush to f16 zero
      case 'huge': x[i] = normal() * 3000; break;         // scales near the top of f16
      case 'sparse': x[i] = r() < 0.1 ? normal() : 0; break;
      case 'ints': x[i] = Math.round(normal() * 8); break; // exact ties for the rounding rules
      case 'constant': x[i] = 0.375; break;
      case 'zeros': x[i] = 0; break;
      case 'blockconst': x[i] = Math.floor(i / 32) % 3 === 0 ? 0 : (Math.floor(i / 16) % 2 ? 1.5 : -0.25); break;
      case 'halves': x[i] = ((Math.floor(r() * 32) - 16) / 2) * 0.125; break;
    }
  }
  return x;
}

/**
 * nb random GGUF blocks of `format` whose f16 scales are finite (exponent < 31) and span the whole
 * f16 range: zero, subnormal, tiny, ~1 and near 65504, so dequantizers see extreme scales. The
 * other bytes are uniformly random.
 */
export function randomBlocks(format: QuantFormat, nb: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  const B = FORMAT_INFO[format].ggufBlockBytes;
  const out = new Uint8Array(nb * B);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  const scale = (): number => {
    const k = Math.floor(r() * 6);
    const sign = r() < 0.5 ? 0x8000 : 0;
    if (k === 0) return sign;                                    // +-0
    if (k === 1) return sign | (1 + Math.floor(r() * 0x3ff));    // subnormal
    if (k === 2) return sign | 0x7bff;                           // 65504, the largest finite
    if (k === 3) return sign | (0x0400 + Math.floor(r() * 0x400)); // smallest normals ~6e-5
    return sign | (Math.floor(r() * 30 + 1) << 10) | Math.floor(r() * 0x400); // any finite
  };
  const put = (at: number) => { const h = scale(); out[at] = h & 0xff; out[at + 1] = h >> 8; };
  for (let b = 0; b < nb; b++) {
    const p = b * B;
    if (format === 'q6_k') put(p + 208);
    else put(p);
    if (format === 'q4_k') put(p + 2);
  }
  return out;
}
