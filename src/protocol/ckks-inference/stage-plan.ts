/**
 * How each stage is laid out: routed (`layout.ts`: one upload per S multiply-accumulates, a fold
 * at the end), diagonal (`diagonal.ts`: the client's vector in order, rotations on the service) or
 * shared-source (`shared.ts`: one upload per term, many outputs per upload). A cost model from
 * measured operation times picks the cheapest unless the parameters force one.
 *
 * @module
 */
import type { SparseLinearMap } from '../../tensor/sparse-linear.js';
import { diagonalCounts, planDiagonal, type DiagonalPlan } from './diagonal.js';
import { LAYOUT_COST, foldSteps, type GroupLayout } from './layout.js';
import { planShared, sharedCounts, withTermWeights, type SharedPlan } from './shared.js';

/** How stages choose their layout: by the cost model (default), or one way wherever it applies. */
export type StageLayoutMode = 'auto' | 'routed' | 'diagonal' | 'shared';

/** A stage's layout, fixed per model. */
export type StagePlan =
  | { readonly kind: 'routed' }
  | { readonly kind: 'diagonal'; readonly plan: DiagonalPlan }
  | { readonly kind: 'shared'; readonly plan: SharedPlan };

/** Uploads, products and rotations of a routed stage's groups. */
function routedCost(groups: readonly GroupLayout[], slots: number): number {
  let uploads = 0;
  let rotations = 0;
  for (const g of groups) {
    uploads += g.sources.length;
    rotations += foldSteps(g.period, slots).length;
  }
  return uploads * (LAYOUT_COST.upload + LAYOUT_COST.product) + rotations * LAYOUT_COST.rotation;
}

/**
 * Picks a stage's layout.
 *
 * @param routed - the stage's routed groups for an unshuffled order (what routing would cost).
 * @param rows - the map rows the stage computes.
 * @param cols - length of the client's vector the stage reads.
 * @param mode - 'auto' takes the cheapest; the others take that layout where it applies (diagonal:
 *   rows fit one ciphertext) and the cheapest otherwise.
 */
export function planStage(
  map: SparseLinearMap,
  routed: readonly GroupLayout[],
  rows: ArrayLike<number>,
  cols: number,
  slots: number,
  mode: StageLayoutMode = 'auto',
): StagePlan {
  if (mode === 'routed') return { kind: 'routed' };
  // Each candidate's cost, and how to make it (the shared layout's weights only for the winner).
  const options: { kind: StagePlan['kind']; cost: number; make: () => StagePlan }[] = [{ kind: 'routed', cost: routedCost(routed, slots), make: () => ({ kind: 'routed' }) }];
  const diagonal = rows.length === map.rows ? planDiagonal(map, cols, slots) : null;
  if (diagonal) {
    const n = diagonalCounts(diagonal, slots);
    const cost = n.uploads * LAYOUT_COST.upload + n.products * LAYOUT_COST.product + n.rotations * LAYOUT_COST.rotation;
    options.push({ kind: 'diagonal', cost, make: () => ({ kind: 'diagonal', plan: diagonal }) });
  }
  const shared = planShared(map, rows, slots, LAYOUT_COST);
  if (shared) {
    const n = sharedCounts(shared);
    options.push({ kind: 'shared', cost: n.uploads * LAYOUT_COST.upload + n.products * LAYOUT_COST.product, make: () => ({ kind: 'shared', plan: withTermWeights(shared, map) }) });
  }
  const chosen = options.find((o) => o.kind === mode) ?? options.reduce((a, b) => (b.cost < a.cost ? b : a));
  return chosen.make();
}
