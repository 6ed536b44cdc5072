// MatmulOp.input run as its own op: the path of every backend that does not fuse the input
// transform into the matmul (Wasm always; WebGPU for prefill, software tuning, or shapes the
// fused GEMV does not take).
import type { Backend, MatmulOp } from './backend.ts';
import { InputError } from '../errors.ts';

/** Runs `op.input` into its scratch and returns the plain matmul over that scratch. */
export async function runMatmulInput(be: Backend, op: MatmulOp): Promise<MatmulOp> {
  const f = op.input;
  if (!f) return op;
  if ((op.xOffset ?? 0) !== 0 || op.xRowStride !== undefined) {
    throw new InputError(`matmul(${op.w.name}): an input transform needs dense x rows from offset 0`);
  }
  const K = op.w.shape[1], T = op.M;
  if (f.kind === 'rmsNorm') {
    await be.rmsNorm({ x: op.x, add: f.add, weight: f.weight, out: f.scratch, T, H: K, eps: f.eps });
  } else if (f.kind === 'gatedRmsNorm') {
    await be.gatedRmsNorm({ y: op.x, z: f.z, weight: f.weight, out: f.scratch, T, D: K, groupSize: f.groupSize, eps: f.eps });
  } else if (f.kind === 'geluGate') {
    await be.geluGate({ gu: op.x, out: f.scratch, T, F: K });
  } else {
    throw new InputError(`matmul(${op.w.name}): unknown input transform ${(f as { kind: string }).kind}`);
  }
  const { input: _, ...rest } = op;
  return { ...rest, x: f.scratch };
}
