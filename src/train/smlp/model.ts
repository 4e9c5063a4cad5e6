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

/** Standard normal numbers from the CSPRNG (Box–Muller on 53-bit uniforms). */
class CryptoNormals {
  private spare: number | undefined;

  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = (Number(randomBits(53)) + 1) / 2 ** 53; // in (0, 1]: log(u) is finite
    const v = Number(randomBits(53)) / 2 ** 53;
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

/**
 * He-style initial weights, biases 0: from the CSPRNG, or from the user's secret `weightSeed`
 * when one is set — never from the public batch-order seed.
 */
export function initialWeights(c: SmlpConfig, features: number): FixedWeights {
  const rng = c.weightSeed === undefined ? new CryptoNormals() : new SeededRandom(c.weightSeed);
  const cols = features + 1;
  const w1: bigint[] = [];
  for (let i = 0; i < c.hidden; i++) {
    for (let j = 0; j < cols; j++) w1.push(j === features ? 0n : toFixed(rng.normal() * Math.sqrt(2 / features), c.fracBits));
  }
  const w2: bigint[] = [];
  for (let j = 0; j <= c.hidden; j++) w2.push(j === c.hidden ? 0n : toFixed(rng.normal() * Math.sqrt(1 / c.hidden), c.fracBits));
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
