// Next-token choice from one logits row: repetition penalty, temperature, top-k, top-p, and a
// seeded generator so the same seed gives the same text. The runtime samples in Wasm
// (assembly/host/sample.ts); sampleToken here is the readable statement of the same rule, with
// the same f32 roundings, and the oracle its tests compare against. Follows transformers' logits
// processors: penalty divides positive logits and multiplies negative ones of seen tokens; top-k
// then top-p (smallest set whose probability reaches p, always at least one token). As in
// transformers, `doSample` alone decides whether to sample: a temperature without doSample is
// ignored (greedy). Servers that speak OpenAI's rule (temperature > 0 samples) map it themselves.
import { InputError } from '../errors.ts';

export interface SamplingOptions {
  /** Sample from the distribution (default false: greedy, whatever the other knobs say). */
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
}

/** xoshiro128** seeded through splitmix32: fast, 32-bit, reproducible across JS engines. */
export class SeededRandom {
  private s = new Uint32Array(4);
  constructor(seed: number) {
    let z = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z;
      t = Math.imul(t ^ (t >>> 16), 0x85ebca6b);
      t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35);
      this.s[i] = (t ^ (t >>> 16)) >>> 0;
    }
  }
  /** Uniform in [0, 1). */
  next(): number {
    const s = this.s;
    const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 11);
    return result / 4294967296;
  }
}

export function validateSampling(o: SamplingOptions): void {
  if (o.doSample !== undefined && typeof o.doSample !== 'boolean') throw new InputError(`doSample must be true or false, got ${JSON.stringify(o.doSample)}`);
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) throw new InputError(`temperature must be ≥ 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw new InputError(`topK must be a non-negative integer, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new InputError(`topP must be in (0, 1], got ${o.topP}`);
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty))) throw new InputError(`repetitionPenalty must be > 0, got ${o.repetitionPenalty}`);
}

/** True when the choice is plain argmax of the raw logits (the GPU argmax path can be used). */
export function isGreedy(o: SamplingOptions): boolean {
  return (!o.doSample || o.temperature === 0) && (o.repetitionPenalty === undefined || o.repetitionPenalty === 1);
}

function argmaxOf(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Picks the next token. `seen` holds the ids the repetition penalty applies to. */
export function sampleToken(logitsIn: Float32Array, o: SamplingOptions, seen: ReadonlySet<number>, rng: SeededRandom): number {
  const logits = Float32Array.from(logitsIn);
  const penalty = Math.fround(o.repetitionPenalty ?? 1);
  if (penalty !== 1) {
    for (const id of seen) {
      if (id < 0 || id >= logits.length) continue;
      logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
    }
  }
  const temperature = o.temperature ?? 1;
  if (!o.doSample || temperature === 0) return argmaxOf(logits);

  // Candidates sorted by logit, descending; top-k cuts first.
  let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  const k = o.topK ?? 0;
  if (k > 0 && k < order.length) order = order.slice(0, k);
  const maxLogit = logits[order[0]];
  const t32 = Math.fround(temperature);
  const probs = order.map((i) => Math.fround(Math.exp(Math.fround(logits[i] - maxLogit) / t32)));
  let total = probs.reduce((a, b) => a + b, 0);
  const p = o.topP ?? 1;
  if (p < 1) {
    let acc = 0, keep = 0;
    while (keep < probs.length) { acc += probs[keep++] / total; if (acc >= p) break; }
    order = order.slice(0, keep);
    probs.length = keep;
    total = probs.reduce((a, b) => a + b, 0);
  }
  let u = rng.next() * total;
  for (let i = 0; i < order.length; i++) {
    u -= probs[i];
    if (u < 0) return order[i];
  }
  return order[order.length - 1];
}

/** Resolved knobs for the Wasm sampler. */
export function resolveSampling(o: SamplingOptions): { temperature: number; topK: number; topP: number; repetitionPenalty: number; doSample: boolean } {
  const doSample = o.doSample === true;
  return { temperature: o.temperature ?? 1, topK: o.topK ?? 0, topP: o.topP ?? 1, repetitionPenalty: o.repetitionPenalty ?? 1, doSample };
}
