// Name-based access to a loaded checkpoint's tensors, with errors that name what is missing.
import { CheckpointError } from '../errors.ts';
import { singleBuffer, type Buf, type WeightTensor } from '../backends/tensor.ts';

export class WeightSet {
  constructor(private readonly tensors: ReadonlyMap<string, WeightTensor>) {}

  has(name: string): boolean { return this.tensors.has(name); }

  /** A matrix or embedding (any storage format, possibly split into parts). */
  matrix(name: string): WeightTensor {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointError('model', `tensor ${name} is not loaded`, name);
    return t;
  }

  /** A small f32 vector (norm weights, biases, A_log, D, dt_bias, conv taps) as one buffer. */
  vector(name: string): Buf {
    const t = this.matrix(name);
    if (t.dtype !== 'f32') throw new CheckpointError('model', `vector ${name} must be f32, is ${t.dtype}`, name);
    return singleBuffer(t);
  }
}
