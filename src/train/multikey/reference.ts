/**
 * The yardstick `train --scheme multikey` prints beside its result: the same network (inputs,
 * hidden width, polynomial activation) trained in floating point on the same training records to
 * convergence — full-batch Adam on the squared error with an L2 penalty on the weights, the penalty
 * chosen on a held-back fifth of the training records, then refitted on all of them — and scored on
 * the same held-out records. It never sees the held-out records before scoring. What a well-trained
 * plaintext model of this architecture reaches, so the encrypted run's R² can be read against it.
 *
 * @module
 */
import type { DiabetesSplit } from '../../data/diabetes.js';
import { ACTIVATION, initialWeights, predict, r2Score, type MlpWeights, type MultikeyMlpConfig } from './mlp.js';

/** The reference's score and how it was trained. */
export interface PlaintextReference {
  readonly r2: number;
  /** The L2 penalty the validation part chose. */
  readonly l2: number;
  readonly steps: number;
}

/** Penalties tried (per weight, on the mean squared error). */
const PENALTIES = [0.001, 0.01, 0.1] as const;
const STEPS = 1000;
const LEARNING_RATE = 0.01;

interface Records {
  readonly x: readonly Float64Array[];
  readonly y: Float64Array;
}

/** Full-batch Adam on mean squared error + l2·(|W1|² + |W2|²), from the run's initial weights. */
function fit(data: Records, config: MultikeyMlpConfig, seed: number, l2: number): MlpWeights {
  const w = initialWeights(config, seed);
  const params = [w.W1, w.b1, w.W2, w.b2];
  const m = params.map((p) => new Float64Array(p.length));
  const v = params.map((p) => new Float64Array(p.length));
  const { hidden: H, inputs: I } = config;
  const N = data.y.length;
  const z = new Float64Array(H);
  const h = new Float64Array(H);
  for (let t = 1; t <= STEPS; t++) {
    const g = params.map((p) => new Float64Array(p.length));
    for (let n = 0; n < N; n++) {
      const x = data.x[n]!;
      let y = w.b2[0]!;
      for (let j = 0; j < H; j++) {
        let s = w.b1[j]!;
        for (let k = 0; k < I; k++) s += w.W1[j * I + k]! * x[k]!;
        z[j] = s;
        h[j] = ACTIVATION.c2 * s * s + ACTIVATION.c1 * s + ACTIVATION.c0;
        y += w.W2[j]! * h[j]!;
      }
      const e = (2 * (y - data.y[n]!)) / N;
      g[3]![0]! += e;
      for (let j = 0; j < H; j++) {
        g[2]![j]! += e * h[j]!;
        const d = e * w.W2[j]! * (2 * ACTIVATION.c2 * z[j]! + ACTIVATION.c1);
        g[1]![j]! += d;
        for (let k = 0; k < I; k++) g[0]![j * I + k]! += d * x[k]!;
      }
    }
    params.forEach((p, i) => {
      const decay = i === 0 || i === 2 ? 2 * l2 : 0;
      for (let k = 0; k < p.length; k++) {
        const gk = g[i]![k]! + decay * p[k]!;
        m[i]![k] = 0.9 * m[i]![k]! + 0.1 * gk;
        v[i]![k] = 0.999 * v[i]![k]! + 0.001 * gk * gk;
        p[k] = p[k]! - (LEARNING_RATE * (m[i]![k]! / (1 - 0.9 ** t))) / (Math.sqrt(v[i]![k]! / (1 - 0.999 ** t)) + 1e-8);
      }
    });
  }
  return w;
}

/**
 * Trains and scores the reference (about 4,000 full-batch steps over the training records:
 * a second or two).
 *
 * @throws RangeError if the training split has fewer than 5 records.
 */
export function plaintextReference(split: DiabetesSplit, config: MultikeyMlpConfig, seed: number): PlaintextReference {
  const x = split.train.features;
  const y = split.train.targets;
  if (y.length < 5) throw new RangeError('plaintextReference: the training split needs at least 5 records');
  const cut = Math.floor(0.8 * y.length);
  const fitPart: Records = { x: x.slice(0, cut), y: y.subarray(0, cut) };
  const validation: Records = { x: x.slice(cut), y: y.subarray(cut) };
  let best: { l2: number; r2: number } = { l2: PENALTIES[0], r2: -Infinity };
  for (const l2 of PENALTIES) {
    const r2 = r2Score(predict(fit(fitPart, config, seed, l2), validation.x, config), validation.y);
    if (r2 > best.r2) best = { l2, r2 };
  }
  const final = fit({ x, y }, config, seed, best.l2);
  return { r2: r2Score(predict(final, split.test.features, config), split.test.targets), l2: best.l2, steps: STEPS };
}
