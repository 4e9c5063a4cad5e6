/**
 * The plaintext twin of the Secure MLP: the same integers, initial weights, data order and
 * operations as the encrypted run, in the clear. Where the protocol's truncation is stochastic
 * (⌊v/2^s⌋ plus a carry that is 1 with probability (v mod 2^s)/2^s, i.e. unbiased stochastic
 * rounding), the twin rounds to nearest, the deterministic rounding with the same expectation up
 * to half a unit. The two runs therefore agree to within a unit in the last place per rescaling,
 * and their accuracies are compared rather than their weights.
 *
 * The twin also checks the value bounds the encrypted run's masks are sized for (|w| < 2^(f+4)).
 *
 * @module
 */
import { OverflowError } from '../../errors.js';
import { baseBits, type SmlpConfig } from './config.js';
import type { FixedWeights } from './model.js';

/** Round-to-nearest v/2^s (halves up). */
export function roundShift(v: bigint, s: number): bigint {
  if (s === 0) return v;
  return (v + (1n << BigInt(s - 1))) >> BigInt(s);
}

/** One forward pass: pre-activations, activations, output (scales 2^2f, 2^f, 2^f). */
export function twinForward(c: SmlpConfig, w: FixedWeights, x: readonly bigint[], cols: number): { z1: bigint[]; a1: bigint[]; yHat: bigint } {
  const f = c.fracBits;
  const z1: bigint[] = [];
  const a1: bigint[] = [];
  for (let i = 0; i < c.hidden; i++) {
    let s = 0n;
    for (let j = 0; j < cols; j++) s += x[j]! * w.w1[i * cols + j]!;
    z1.push(s);
    a1.push(s > 0n ? roundShift(s, f) : 0n);
  }
  let z2 = w.w2[c.hidden]! << BigInt(f);
  for (let i = 0; i < c.hidden; i++) z2 += a1[i]! * w.w2[i]!;
  return { z1, a1, yHat: roundShift(z2, f) };
}

/** The twin: plaintext fixed-point training with the encrypted run's arithmetic. */
export class SmlpTwin {
  private weights: FixedWeights;

  constructor(
    private readonly c: SmlpConfig,
    initial: FixedWeights,
    private readonly cols: number,
  ) {
    this.weights = { w1: [...initial.w1], w2: [...initial.w2] };
  }

  get current(): FixedWeights {
    return { w1: [...this.weights.w1], w2: [...this.weights.w2] };
  }

  /**
   * One SGD step on a batch (rows of `x`, targets `t`).
   *
   * @throws OverflowError if a weight leaves the bound the encrypted run's masks assume.
   */
  step(x: readonly bigint[], t: readonly bigint[], batch: readonly number[]): void {
    const { c, cols } = this;
    const f = c.fracBits;
    const h = c.hidden;
    const w = this.weights;
    const g1 = new Array<bigint>(h * cols).fill(0n);
    const g2 = new Array<bigint>(h + 1).fill(0n);
    const one = 1n << BigInt(f);
    for (const s of batch) {
      const row = x.slice(s * cols, (s + 1) * cols);
      const { z1, a1, yHat } = twinForward(c, w, row, cols);
      const e = yHat - t[s]!;
      for (let i = 0; i < h; i++) {
        const d = z1[i]! > 0n ? e * w.w2[i]! : 0n; // δ1 at 2^(2f)
        for (let j = 0; j < cols; j++) g1[i * cols + j]! += d * row[j]!;
        g2[i]! += e * a1[i]!;
      }
      g2[h]! += e * one;
    }
    const s1 = 2 * f + c.batchLog2 + c.lrLog2;
    const s2 = f + c.batchLog2 + c.lrLog2;
    const bound = 1n << BigInt(baseBits(c).w);
    const update = (ws: bigint[], gs: bigint[], shift: number): void => {
      for (let i = 0; i < ws.length; i++) {
        ws[i] = ws[i]! - roundShift(gs[i]!, shift);
        if (ws[i]! >= bound || -ws[i]! >= bound) throw new OverflowError(`a weight left the fixed-point bound of ±2^${baseBits(c).w - f}`);
      }
    };
    update(w.w1, g1, s1);
    update(w.w2, g2, s2);
  }

  /** Predicted classes (1 = benign) of the rows of `x`. */
  predict(x: readonly bigint[], count: number): Uint8Array {
    const out = new Uint8Array(count);
    for (let s = 0; s < count; s++) out[s] = twinForward(this.c, this.weights, x.slice(s * this.cols, (s + 1) * this.cols), this.cols).yHat > 0n ? 1 : 0;
    return out;
  }
}
