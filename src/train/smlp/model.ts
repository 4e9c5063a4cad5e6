/**
 * Initial weights and fixed-point data of the Secure MLP, made by the user before anything is
 * encrypted (so neither server knows the starting point), and the data order of each epoch.
 *
 * @module
 */
import { randomBits } from '../../math/random.js';
import { SeededRandom } from '../fe/prng.js';
import { toFixed, type SmlpConfig } from './config.js';

/** Integer weights at scale 2^f: W1 (hidden × 31, last column the bias) and w2 (hidden + 1). */
export interface FixedWeights {
  readonly w1: bigint[];
  readonly w2: bigint[];
}

/** Uniform and standard normal numbers from the CSPRNG (Box–Muller on 53-bit uniforms). */
class CryptoRandom {
  private spare: number | undefined;

  /** Uniform in [0, 1). */
  next(): number {
    return Number(randomBits(53)) / 2 ** 53;
  }

  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.next(); // in (0, 1]: log(u) is finite
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

/** Variance of a first-layer weight, times the number of inputs: N(0, 0.5/inputs). */
export const W1_VARIANCE = 0.5;
/** Hidden units start with this bias, so that few of them start dead. */
export const HIDDEN_BIAS = 0.1;
/** Output weights start with magnitudes uniform in this range. */
export const W2_MAGNITUDE: readonly [number, number] = [0.5, 1];

/**
 * Initial weights, from the CSPRNG, or from the user's secret `weightSeed` when one is set — never
 * from the public batch-order seed:
 * - W1 ~ N(0, 0.5/inputs), hidden biases 0.1;
 * - w2: magnitudes uniform in [0.5, 1], half of the units positive and half negative (which half
 *   is random), output bias 0.
 *
 * Why not plain He initialization: with two or three hidden units a run often started with both
 * output weights of one sign or with a dead unit, and two epochs then ended anywhere between 82%
 * and 97% on breast-cancer. With this start three epochs reached 95.7–98.3% over 1,000 starts.
 */
export function initialWeights(c: SmlpConfig, features: number): FixedWeights {
  const rng = c.weightSeed === undefined ? new CryptoRandom() : new SeededRandom(c.weightSeed);
  const cols = features + 1;
  const w1: bigint[] = [];
  for (let i = 0; i < c.hidden; i++) {
    for (let j = 0; j < cols; j++) w1.push(toFixed(j === features ? HIDDEN_BIAS : rng.normal() * Math.sqrt(W1_VARIANCE / features), c.fracBits));
  }
  const signs: number[] = Array.from({ length: c.hidden }, (_, j) => (j % 2 === 0 ? 1 : -1));
  for (let j = c.hidden - 1; j > 0; j--) {
    const k = Math.floor(rng.next() * (j + 1));
    [signs[j], signs[k]] = [signs[k]!, signs[j]!];
  }
  const [lo, hi] = W2_MAGNITUDE;
  const w2 = signs.map((sign) => toFixed(sign * (lo + (hi - lo) * rng.next()), c.fracBits));
  w2.push(0n);
  return { w1, w2 };
}

/** Features at scale 2^f with a trailing column of 1 (= 2^f), row-major (count × (features+1)). */
export function fixedFeatures(x: Float64Array, count: number, features: number, fracBits: number): bigint[] {
  const out: bigint[] = [];
  const one = 1n << BigInt(fracBits);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < features; j++) out.push(toFixed(x[i * features + j]!, fracBits));
    out.push(one);
  }
  return out;
}

/** Targets ±2^f: +1 for label 1 (benign), −1 for label 0 (malignant). */
export function fixedTargets(y: Uint8Array, fracBits: number): bigint[] {
  const one = 1n << BigInt(fracBits);
  return Array.from(y, (l) => (l === 1 ? one : -one));
}

/** The order of the training samples in epoch `epoch` (0-based): a seeded permutation. */
export function epochOrder(c: SmlpConfig, count: number, epoch: number): number[] {
  return new SeededRandom((c.seed * 7919 + epoch * 104729 + 17) >>> 0).permutation(count);
}
