/**
 * The plaintext products of one stage for one session: which input ciphertext meets which
 * plaintext, and the plaintext's values — the weights with the session's output order, blinding
 * factors, the client's unblinding factors and the stage normalization folded in. They depend on
 * the session's random draws and not on the client's ciphertexts or keys, so the service may build
 * (and encode) them before the client's inputs arrive.
 *
 * Input indices count the round's ciphertexts group after group, in the order the client sends
 * them; outputs are the layout's output ciphertexts (routed: one per group; shared: G per page,
 * page after page; diagonal: one partial sum per giant step).
 *
 * @module
 */
import type { CkksStage } from './compile.js';
import { diagonalValues, type DiagonalPlan } from './diagonal.js';
import type { StageLayout } from './layout.js';
import type { ProductTerm } from './products.js';
import type { SharedPlan } from './shared.js';
import type { StagePlan } from './stage-plan.js';

/** One session's draws for one stage. */
export interface StageDraw {
  readonly layout: StageLayout;
  /** Blinding factor per output position. */
  readonly factor: Float64Array;
  /**
   * Per value of the client's vector: the factor it carries — its round's blinding factor times
   * that stage's normalization σ, 1 for model input values (null when every value is model input).
   */
  readonly unblind: Float64Array | null;
  /** Where map column j sits in the client's vector. */
  readonly sourceOf: (column: number) => number;
}

/** The stage's products and the number of output ciphertexts (partial sums) they feed. */
export function stageTerms(stage: CkksStage, plan: StagePlan, draw: StageDraw, slots: number): { terms: ProductTerm[]; outputs: number } {
  switch (plan.kind) {
    case 'routed':
      return { terms: routedTerms(stage, draw, slots), outputs: draw.layout.groups.length };
    case 'shared':
      return { terms: sharedTerms(stage, plan.plan, draw, slots), outputs: draw.layout.groups.length * plan.plan.outputs };
    case 'diagonal':
      return { terms: diagonalTerms(stage, plan.plan, draw, slots), outputs: plan.plan.giant };
  }
}

/** Routed: one product per input ciphertext, its plaintext routing each slot's weight. */
function routedTerms(stage: CkksStage, draw: StageDraw, slots: number): ProductTerm[] {
  const { layout, factor, unblind } = draw;
  const terms: ProductTerm[] = [];
  let input = 0;
  layout.groups.forEach((group, o) => {
    group.sources.forEach((sources, c) => {
      const values = new Float64Array(slots);
      const termsAt = group.terms[c]!;
      for (let slot = 0; slot < slots; slot++) {
        const k = termsAt[slot]!;
        if (k < 0) continue;
        const p = group.start + (slot % group.period);
        values[slot] = stage.map.weights[k]! * stage.sigma * factor[p]! * (unblind ? 1 / unblind[sources[slot]!]! : 1);
      }
      terms.push({ input: input++, output: o, values });
    });
  });
  return terms;
}

/**
 * Shared sources: per page, every input ciphertext times one plaintext per output ciphertext,
 * whose slots carry the weight of that input's term for the row the slot computes.
 */
function sharedTerms(stage: CkksStage, plan: SharedPlan, draw: StageDraw, slots: number): ProductTerm[] {
  const { layout, factor, unblind } = draw;
  const terms: ProductTerm[] = [];
  const inverse = new Float64Array(slots);
  let input = 0;
  layout.groups.forEach((group, page) => {
    const outputs = group.outputs!;
    // Per output ciphertext and slot: the row's index in the term-major weights, and the factor its weights carry.
    const rowAt = outputs.map((positions) => Int32Array.from(positions, (p) => (p < 0 ? -1 : plan.rowIndex[layout.rowAt[p]!]!)));
    const scaleAt = outputs.map((positions) => Float64Array.from(positions, (p) => (p < 0 ? 0 : stage.sigma * factor[p]!)));
    group.sources.forEach((sources, t) => {
      for (let slot = 0; slot < slots; slot++) {
        const src = sources[slot]!;
        inverse[slot] = src < 0 ? 0 : unblind ? 1 / unblind[src]! : 1;
      }
      const weights = plan.termWeights[t]!;
      outputs.forEach((_, m) => {
        const values = new Float64Array(slots);
        const rows = rowAt[m]!;
        const scale = scaleAt[m]!;
        let any = false;
        for (let slot = 0; slot < slots; slot++) {
          const i = rows[slot]!;
          if (i < 0 || inverse[slot] === 0) continue;
          values[slot] = weights[i]! * scale[slot]! * inverse[slot]!;
          any = true;
        }
        if (any) terms.push({ input, output: page * plan.outputs + m, values });
      });
      input++;
    });
  });
  return terms;
}

/** Diagonal: one product per nonzero diagonal of this session's M′, summed per giant step. */
function diagonalTerms(stage: CkksStage, plan: DiagonalPlan, draw: StageDraw, slots: number): ProductTerm[] {
  const dense = sessionMatrix(stage, plan, draw);
  const terms: ProductTerm[] = [];
  for (let g = 0; g < plan.giant; g++) {
    for (let c = 0; c < plan.inputs; c++) {
      for (let j = 0; j < plan.baby; j++) {
        const values = diagonalValues(plan, dense, slots, c, g, j);
        if (values.some((v) => v !== 0)) terms.push({ input: c * plan.baby + j, output: g, values });
      }
    }
  }
  return terms;
}

/** M′ for one session and dense stage: rows in output order, every factor folded in. */
function sessionMatrix(stage: CkksStage, plan: DiagonalPlan, draw: StageDraw): Float64Array {
  const { map, sigma } = stage;
  const { layout, factor, unblind, sourceOf } = draw;
  const dense = new Float64Array(plan.rows * plan.cols);
  for (let r = 0; r < plan.rows; r++) {
    const row = layout.rowAt[r]!;
    const scale = sigma * factor[r]!;
    for (let k = map.offsets[row]!; k < map.offsets[row + 1]!; k++) {
      const j = sourceOf(map.indices[k]!);
      dense[r * plan.cols + j] = dense[r * plan.cols + j]! + (map.weights[k]! * scale) / (unblind ? unblind[j]! : 1);
    }
  }
  return dense;
}
