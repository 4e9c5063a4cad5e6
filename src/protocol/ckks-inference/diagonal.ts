/**
 * Dense stages by the diagonal method with baby-step giant-step rotations (Halevi–Shoup's hybrid
 * form for a matrix with fewer rows than slots).
 *
 * The client sends its vector x in order, S = N/2 values per ciphertext (C ciphertexts). For an
 * O × K matrix M′ (rows padded to O′ = nextPow2(O), which divides S), input ciphertext c and
 * diagonal i < O′ hold d_{c,i}[t] = M′[t mod O′, c·S + (t + i) mod S], and
 *
 *   y = Σ_c Σ_i d_{c,i} ⊙ rot(x_c, i),   then   y ← y + rot(y, O′) + rot(y, 2O′) + … (fold to O′)
 *
 * leaves M′x in slots 0..O−1. With i = g·n1 + j the rotations of x are shared (baby steps j < n1)
 * and each giant step rotates one partial sum (Horner: n2 − 1 rotations by n1), so a stage costs
 * C·O′ plaintext products but only C·(n1 − 1) + n2 − 1 + log2(S/O′) rotations, with Galois keys
 * for 1, n1 and the fold steps only.
 *
 * M′ carries everything per session (output order, blinding factors, the client's unblinding
 * factors, normalization), exactly as the routed layout's plaintexts do, so the client sees the
 * same shuffled, blinded outputs; what it no longer learns is the routing (it sends its values in
 * the order it holds them).
 *
 * @module
 */
import type { SparseLinearMap } from '../../tensor/sparse-linear.js';
import { foldSteps, nextPow2 } from './layout.js';

/** Shape of one dense stage's diagonal evaluation. */
export interface DiagonalPlan {
  /** Output rows O. */
  readonly rows: number;
  /** Input length K (the client's vector). */
  readonly cols: number;
  /** O′ = nextPow2(O): the fold period. */
  readonly period: number;
  /** Input ciphertexts C = ⌈K/S⌉. */
  readonly inputs: number;
  /** Baby steps n1 (a power of two dividing O′). */
  readonly baby: number;
  /** Giant steps n2 = O′/n1. */
  readonly giant: number;
}

/**
 * Costs measured on the 2-core CI machine under light load (node-seal 6.0.3, N = 8192, two data
 * primes), in ms: only their ratios matter, for choosing a layout. A routed input ciphertext is encoded, added and saved by the
 * client, then loaded, encoded and multiplied by the service.
 */
const COST = { routedCiphertext: 3.3, diagonalProduct: 1.35, rotation: 4.5 } as const;

function rotations(inputs: number, period: number, baby: number, slots: number): number {
  return inputs * (baby - 1) + (period / baby - 1) + Math.log2(slots / period);
}

/** How stages choose their layout: by the cost model (default), or always one way where possible. */
export type DenseLayout = 'auto' | 'diagonal' | 'routed';

/**
 * The diagonal plan for a stage, or null when routing its terms is cheaper (sparse maps such as
 * convolutions, or few terms; `mode` 'auto'), when `mode` is 'routed', or when its rows do not fit
 * one ciphertext.
 *
 * @param cols - length of the client's vector this stage reads.
 * @param routedCiphertexts - input ciphertexts the routed layout would need for this stage.
 */
export function planDiagonal(map: SparseLinearMap, cols: number, slots: number, routedCiphertexts: number, mode: DenseLayout = 'auto'): DiagonalPlan | null {
  if (mode === 'routed') return null;
  const period = nextPow2(map.rows);
  if (period > slots) return null;
  const inputs = Math.ceil(cols / slots);
  let baby = 1;
  for (let b = 2; b <= period; b *= 2) if (rotations(inputs, period, b, slots) < rotations(inputs, period, baby, slots)) baby = b;
  const cost = inputs * period * COST.diagonalProduct + rotations(inputs, period, baby, slots) * COST.rotation + inputs * COST.routedCiphertext;
  if (mode === 'auto' && cost >= routedCiphertexts * COST.routedCiphertext) return null;
  return { rows: map.rows, cols, period, inputs, baby, giant: period / baby };
}

/** Rotation steps a diagonal stage needs: 1 (baby steps), n1 (giant steps) and the fold. */
export function diagonalSteps(plan: DiagonalPlan, slots: number): number[] {
  const steps = new Set<number>(foldSteps(plan.period, slots));
  if (plan.baby > 1) steps.add(1);
  if (plan.giant > 1) steps.add(plan.baby);
  return [...steps];
}

/**
 * The plaintext values for input ciphertext c, giant step g and baby step j: diagonal g·n1 + j
 * rotated back by g·n1 (so the giant rotation can come after the products), that is
 * D[t] = M′[(t − g·n1) mod O′, c·S + (t + j) mod S], zero outside M′.
 *
 * @param dense - M′ row-major, `plan.rows` × `plan.cols`.
 */
export function diagonalValues(plan: DiagonalPlan, dense: Float64Array, slots: number, c: number, g: number, j: number): Float64Array {
  const out = new Float64Array(slots);
  const { rows, cols, period, baby } = plan;
  const shift = g * baby;
  for (let t = 0; t < slots; t++) {
    const r = (((t - shift) % period) + period) % period;
    if (r >= rows) continue;
    const col = c * slots + ((t + j) % slots);
    if (col < cols) out[t] = dense[r * cols + col]!;
  }
  return out;
}
