// Entry point of the float64 model reference: refForward / refGreedy for Zamba2 and Mamba2 fixtures
// (or any {config, weights} with exact weight values). See common.ts for what "reference" means here.
import { argmax, refError, type RefModelInput } from './common.ts';
import { zamba2RefForward, type Zamba2RefState } from './zamba2.ts';
import { mamba2RefForward, type Mamba2RefState } from './mamba2.ts';

export type { RefModelInput, RefTensor, RefWeights } from './common.ts';
export type { Zamba2RefState } from './zamba2.ts';
export type { Mamba2RefState } from './mamba2.ts';
export { parseZamba2RefConfig } from './zamba2.ts';
export { parseMamba2RefConfig } from './mamba2.ts';

export type RefState = Zamba2RefState | Mamba2RefState;

function archOf(config: Record<string, unknown>): 'zamba2' | 'mamba2' {
  const mt = config.model_type;
  if (mt === 'zamba2' || mt === 'mamba2') return mt;
  throw refError(`unsupported model_type ${JSON.stringify(mt)}`);
}

/**
 * Logits [T, V] (row-major Float64Array) for `ids`, continuing from `state` when given. The input
 * state is not modified; the returned state covers everything processed so far.
 */
export function refForward(model: RefModelInput, ids: readonly number[], state?: RefState):
  { logits: Float64Array; state: RefState } {
  if (ids.length === 0) throw refError('empty input');
  return archOf(model.config) === 'zamba2'
    ? zamba2RefForward(model, ids, state as Zamba2RefState | undefined)
    : mamba2RefForward(model, ids, state as Mamba2RefState | undefined);
}

/**
 * Greedy decoding: the `n` new ids only (not the prompt). Stops early after emitting one of
 * `eosIds` (only when given; the default decodes exactly n tokens).
 */
export function refGreedy(model: RefModelInput, promptIds: readonly number[], n: number,
  opts: { eosIds?: readonly number[] } = {}): number[] {
  const V = Number(model.config.vocab_size);
  const out: number[] = [];
  if (n <= 0) return out;
  let { logits, state } = refForward(model, promptIds);
  for (let i = 0; i < n; i++) {
    const T = logits.length / V;
    const next = argmax(logits, (T - 1) * V, V);
    out.push(next);
    if (opts.eosIds?.includes(next) || i === n - 1) break;
    ({ logits, state } = refForward(model, [next], state));
  }
  return out;
}

/** The logits row of position t as a Float64Array view. */
export function logitsRow(logits: Float64Array, V: number, t: number): Float64Array {
  return logits.subarray(t * V, (t + 1) * V);
}
