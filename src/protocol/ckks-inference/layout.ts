/**
 * Where every value sits, per session and stage. The service picks a fresh random order of each
 * stage's outputs (whole max-pool windows kept together, cells shuffled inside them), and routes
 * the client's values into input ciphertexts so that one plaintext multiplication per input
 * ciphertext and a rotate-and-add fold compute every output (no ciphertext is ever permuted
 * homomorphically):
 *
 * - outputs fill "groups" of at most S = N/2 positions; a group of g positions whose longest row
 *   has T terms uses B = min(S/nextPow2(g), nextPow2(T)) blocks of period P = S/B per ciphertext;
 * - term t of the output at position p of group o travels in input ciphertext ⌊t/B⌋, slot
 *   (t mod B)·P + p: the client puts the source value there, the service the weight;
 * - after the products are summed, rotations by P, 2P, …, S/2 add all blocks, so every block —
 *   in particular slots 0..g−1 — holds the outputs.
 *
 * The client learns which of its values feed which output position (the map's sparsity pattern
 * over positions it already holds in a shuffled order); docs/security.md says what that reveals.
 *
 * @module
 */
import type { SparseLinearMap } from '../../tensor/sparse-linear.js';
import type { ActivationGroup } from '../paillier-inference/plan.js';
import { randomPermutation } from '../paillier-inference/session-math.js';

/** One group of output positions and how its inputs are routed. */
export interface GroupLayout {
  /** First position of the group in the stage's output vector. */
  readonly start: number;
  /** Number of positions. */
  readonly size: number;
  /** Output period P (a power of two ≥ size). */
  readonly period: number;
  /** For each input ciphertext: the source index (in the client's vector) of each slot, −1 for zero. */
  readonly sources: readonly Int32Array[];
  /** For each input ciphertext: the term index (into the map's CSR arrays) of each slot, −1 for zero (routed groups only). */
  readonly terms: readonly Int32Array[];
  /**
   * Shared-source groups (`shared.ts`): per output ciphertext, the stage position each slot
   * computes, −1 for none. Absent: the group has one output ciphertext, positions start..start+size−1
   * in slots 0..size−1.
   */
  readonly outputs?: readonly Int32Array[];
}

/** How a stage's outputs are ordered for one session and how its inputs are routed. */
export interface StageLayout {
  /** Map row computed at each output position. */
  readonly rowAt: Int32Array;
  /** Max-pool rounds: number of positions in each window, in position order; null otherwise. */
  readonly windowSizes: Int32Array | null;
  /** Max-pool rounds: the plan's window index of the k-th window in position order. */
  readonly windowOrder: Int32Array | null;
  readonly groups: readonly GroupLayout[];
}

/**
 * Costs measured on the 2-core CI machine under light load (node-seal 6.0.3, N = 8192, two data
 * primes), in ms; only their ratios matter. An upload is the client's encoding, addition to a
 * pooled zero and serialization plus the service's load; a product is an encoding of a
 * per-session plaintext, the product and the addition.
 */
export const LAYOUT_COST = { upload: 1.95, product: 1.35, rotation: 4.5 } as const;

/** The smallest power of two ≥ n (1 for n ≤ 1). */
export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Random output order: a permutation of rows, or of windows with their cells shuffled. */
export function outputOrder(
  rows: number,
  activation: ActivationGroup | null,
  shuffle: boolean,
): { rowAt: Int32Array; windowSizes: Int32Array | null; windowOrder: Int32Array | null } {
  if (!activation?.windows) {
    return { rowAt: shuffle ? randomPermutation(rows) : Int32Array.from({ length: rows }, (_, i) => i), windowSizes: null, windowOrder: null };
  }
  const windows = activation.windows;
  const order = shuffle ? randomPermutation(windows.length) : Int32Array.from({ length: windows.length }, (_, i) => i);
  const rowAt: number[] = [];
  const sizes = new Int32Array(windows.length);
  order.forEach((w, k) => {
    const cells = windows[w]!;
    const inner = shuffle ? randomPermutation(cells.length) : Int32Array.from({ length: cells.length }, (_, i) => i);
    for (const c of inner) rowAt.push(cells[c]!);
    sizes[k] = cells.length;
  });
  return { rowAt: Int32Array.from(rowAt), windowSizes: sizes, windowOrder: order };
}

/**
 * Routes the map's terms into input ciphertexts.
 *
 * @param sourceOf - the client's index of map column j (its position in the client's vector).
 */
export function routeStage(map: SparseLinearMap, rowAt: Int32Array, slots: number, sourceOf: (column: number) => number): GroupLayout[] {
  const groups: GroupLayout[] = [];
  for (let start = 0; start < rowAt.length; start += slots) {
    const size = Math.min(slots, rowAt.length - start);
    let maxTerms = 0;
    for (let p = 0; p < size; p++) {
      const r = rowAt[start + p]!;
      maxTerms = Math.max(maxTerms, map.offsets[r + 1]! - map.offsets[r]!);
    }
    // The fold costs log2(blocks) rotations: use no more blocks than the longest row fills.
    const blocks = Math.min(slots / nextPow2(size), nextPow2(Math.max(1, maxTerms)));
    const period = slots / blocks;
    const count = Math.max(1, Math.ceil(maxTerms / blocks));
    const sources = Array.from({ length: count }, () => new Int32Array(slots).fill(-1));
    const terms = Array.from({ length: count }, () => new Int32Array(slots).fill(-1));
    for (let p = 0; p < size; p++) {
      const r = rowAt[start + p]!;
      for (let k = map.offsets[r]!, t = 0; k < map.offsets[r + 1]!; k++, t++) {
        const c = Math.floor(t / blocks);
        const slot = (t % blocks) * period + p;
        sources[c]![slot] = sourceOf(map.indices[k]!);
        terms[c]![slot] = k;
      }
    }
    groups.push({ start, size, period, sources, terms });
  }
  return groups;
}

/** Rotation steps a fold over a group of this period needs (P, 2P, …, S/2). */
export function foldSteps(period: number, slots: number): number[] {
  const steps: number[] = [];
  for (let s = period; s < slots; s *= 2) steps.push(s);
  return steps;
}

/**
 * The client's vector after an activation round, and where each map column of the next stage
 * sits in it: elementwise rounds keep positions; max-pool rounds produce one value per window, in
 * the windows' position order.
 */
export function nextSourceIndex(layout: StageLayout, activation: ActivationGroup): (column: number) => number {
  if (!activation.windows) {
    const positionOfRow = new Int32Array(layout.rowAt.length);
    layout.rowAt.forEach((row, p) => (positionOfRow[row] = p));
    return (j) => positionOfRow[j]!;
  }
  const windowAt = new Int32Array(activation.windows.length);
  layout.windowOrder!.forEach((w, k) => (windowAt[w] = k));
  return (j) => windowAt[j]!;
}
