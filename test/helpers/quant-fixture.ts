// What a fixture's weights become under `loadModel(src, { quantize })`, computed with the
// independent TypeScript reference of the formats (src/quant/reference.ts) and the loader's own
// storage rule (storageDtype): the dtype every tensor gets, and the exact values a kernel reads
// from it (the dequantized blocks). The float64 model reference then runs on those values, so the
// only error left between it and the runtime is f32 accumulation.
import type { Fixture, FixtureTensor } from '../fixtures/index.ts';
import { storageDtype } from '../../src/io/loader.ts';
import { parseConfig } from '../../src/models/parse-config.ts';
import { expectedTensors } from '../../src/models/layout.ts';
import type { QuantizeMode } from '../../src/quant/formats.ts';
import { isQuantDType, type DType } from '../../src/backends/tensor.ts';
import { dequantizeBlocks, quantizeBlocks } from '../../src/quant/reference.ts';
import type { SupportedDType } from '../../src/io/safetensors.ts';

const SRC: Record<string, SupportedDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

export interface QuantizedFixture {
  /** Canonical tensor name -> storage dtype. */
  dtypes: Map<string, DType>;
  /** The fixture with quantized tensors replaced by their dequantized values (for the f64 reference). */
  fixture: Fixture;
}

export function quantizedFixture(fx: Fixture, mode: QuantizeMode): QuantizedFixture {
  const config = parseConfig(fx.config);
  const dtypes = new Map<string, DType>();
  const weights = new Map<string, FixtureTensor>(fx.weights);
  for (const exp of expectedTensors(config)) {
    const stored = [exp.name, ...(exp.aliases ?? [])].find((n) => fx.weights.has(n))!;
    const t = fx.weights.get(stored)!;
    const dtype = storageDtype(exp, exp.gpuShape ?? exp.shape, SRC[fx.dtype], 'auto', mode);
    dtypes.set(exp.name, dtype);
    if (isQuantDType(dtype)) {
      const deq = dequantizeBlocks(dtype, quantizeBlocks(dtype, Float32Array.from(t.values)));
      weights.set(stored, { shape: t.shape, values: Float64Array.from(deq) });
    }
  }
  return { dtypes, fixture: { ...fx, weights } };
}
