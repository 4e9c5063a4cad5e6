/**
 * Dense stages by the diagonal method with baby-step giant-step rotations (Halevi–Shoup's hybrid
 * form for a matrix with fewer rows than slots).
 *
 * The client's vector x is cut into C chunks of S = N/2 values. For an O × K matrix M′ (rows padded
 * to O′ = nextPow2(O), which divides S), chunk c and diagonal i < O′ give
 * d_{c,i}[t] = M′[t mod O′, c·S + (t + i) mod S], and
 *
 *   y = Σ_c Σ_i d_{c,i} ⊙ rot(x_c, i),   then   y ← y + rot(y, O′) + rot(y, 2O′) + … (fold to O′)
 *
 * leaves M′x in slots 0..O−1. With i = g·n1 + j, the baby steps rot(x_c, j), j < n1, come from
 * the client — it holds x in the clear, so it encrypts the n1 rotated copies of each chunk instead
 * of the service rotating them (an upload costs less than half a rotation) — and each giant step
 * rotates one partial sum (Horner: n2 − 1 rotations by n1). A stage costs C·n1 uploads, C·O′
 * plaintext products and n2 − 1 + log2(S/O′) rotations, with Galois keys for n1 and the fold steps.
 *
 * M′ carries everything per session (output order, blinding factors, the client's unblinding
 * factors, normalization), exactly as the routed layout's plaintexts do, so the client sees the
 * same shuffled, blinded outputs; what it no longer learns is the routing (it sends its values in
 * the order it holds them, rotated by public steps).
 *
 * @module
 */
import type { SparseLinearMap } from '../../tensor/sparse-linear.js';
import { LAYOUT_COST, foldSteps, nextPow2 } from './layout.js';

/** Shape of one dense stage's diagonal evaluation. */
export interface DiagonalPlan {
  /** Output rows O. */
  readonly rows: number;
  /** Input length K (the client's vector). */
  readonly cols: number;
  /** O′ = nextPow2(O): the fold period. */
  readonly period: number;
  /** Chunks of the client's vector C = ⌈K/S⌉ (the client uploads C·n1 ciphertexts). */
  readonly inputs: number;
  /** Baby steps n1 (a power of two dividing O′). */
  readonly baby: number;
  /** Giant steps n2 = O′/n1. */
  readonly giant: number;
}

function rotations(period: number, baby: number, slots: number): number {
  return period / baby - 1 + Math.log2(slots / period);
}

function price(inputs: number, period: number, baby: number, slots: number): number {
  return inputs * baby * LAYOUT_COST.upload + rotations(period, baby, slots) * LAYOUT_COST.rotation;
}

/**
 * The diagonal plan for a stage (the baby-step count that costs least: more baby steps, more
 * uploads; fewer, more giant-step rotations), or null when its rows do not fit one ciphertext.
 *
 * @param cols - length of the client's vector this stage reads.
 */
export function planDiagonal(map: SparseLinearMap, cols: number, slots: number): DiagonalPlan | null {
  const period = nextPow2(map.rows);
  if (period > slots) return null;
  const inputs = Math.ceil(cols / slots);
  let baby = 1;
  for (let b = 2; b <= period; b *= 2) if (price(inputs, period, b, slots) < price(inputs, period, baby, slots)) baby = b;
  return { rows: map.rows, cols, period, inputs, baby, giant: period / baby };
}

/** Uploads, plaintext products and rotations a diagonal plan costs. */
export function diagonalCounts(plan: DiagonalPlan, slots: number): { uploads: number; products: number; rotations: number } {
  return { uploads: plan.inputs * plan.baby, products: plan.inputs * plan.period, rotations: rotations(plan.period, plan.baby, slots) };
}

/** Rotation steps a diagonal stage needs: n1 (giant steps) and the fold. */
export function diagonalSteps(plan: DiagonalPlan, slots: number): number[] {
  const steps = new Set<number>(foldSteps(plan.period, slots));
  if (plan.giant > 1) steps.add(plan.baby);
  return [...steps];
}

/**
 * The client's routing for a diagonal stage: chunk c rotated by j (baby step) in input
 * ciphertext c·n1 + j, that is source c·S + (t + j) mod S in slot t (−1 past the vector).
 */
export function diagonalSources(plan: DiagonalPlan, slots: number): Int32Array[] {
  const sources: Int32Array[] = [];
  for (let c = 0; c < plan.inputs; c++) {
    for (let j = 0; j < plan.baby; j++) {
      sources.push(Int32Array.from({ length: slots }, (_, t) => {
        const k = c * slots + ((t + j) % slots);
        return k < plan.cols ? k : -1;
      }));
    }
  }
  return sources;
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
