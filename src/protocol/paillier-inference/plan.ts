/**
 * The plan the interactive protocols follow (Paillier, and CKKS which reuses it): a list of
 * stages, each linear maps the service evaluates on ciphertexts followed by an activation group
 * the client evaluates in one round; a stage reads the model input or earlier rounds
 * (`Stage.sources`). `planModel` (`graph-plan.ts`) builds it from any model graph.
 *
 * An activation group is `f(max over a window)`, the mean of f over a window, or `f(x)`
 * elementwise, where f is the composition of its elementwise activations. A max-pool joins a group
 * only after non-decreasing functions (which commute with max). When f is built from ReLU and
 * LeakyReLU only it is positively homogeneous and the service may hide values behind random
 * positive factors; other functions (sigmoid, tanh, GELU, SiLU, HardSwish) see values at a
 * public scale, permuted but not blinded, unless the planner turns them into sums of ReLUs (Clip
 * always, the others as splines on request; docs/security.md).
 *
 * @module
 */
import { BlindmlError } from '../../errors.js';
import type { Layer } from '../../nn/layers.js';
import type { Model } from '../../nn/model.js';
import { erf } from '../../nn/plaintext.js';
import { sizeOf, type Shape } from '../../nn/shape.js';
import { applyMap, type SparseLinearMap } from '../../tensor/sparse-linear.js';
import { planGraph } from './graph-plan.js';

/**
 * An elementwise activation the client applies: a name, or LeakyReLU with its slope below zero,
 * or Clip with its bounds (null: unbounded on that side).
 */
export type Elementwise =
  | 'relu'
  | 'sigmoid'
  | 'tanh'
  | 'gelu'
  | 'silu'
  | 'hardswish'
  | { readonly leakyrelu: number }
  | { readonly clip: readonly [number | null, number | null] };

/** The round function of an IR activation layer, or null if the layer is not elementwise (or not one a round evaluates). */
export function elementwiseOf(layer: Layer): Elementwise | null {
  switch (layer.kind) {
    case 'relu':
    case 'sigmoid':
    case 'tanh':
    case 'gelu':
    case 'silu':
    case 'hardswish':
      return layer.kind;
    case 'leakyrelu':
      return { leakyrelu: layer.alpha };
    case 'clip':
      // Clip(0, ∞) is ReLU (and may be blinded as one).
      if (layer.min === 0 && layer.max === Infinity) return 'relu';
      return { clip: [Number.isFinite(layer.min) ? layer.min : null, Number.isFinite(layer.max) ? layer.max : null] };
    default:
      return null;
  }
}

/** f(r·x) = r·f(x) for every r > 0: ReLU and LeakyReLU. */
export function isHomogeneous(fn: Elementwise): boolean {
  return fn === 'relu' || (typeof fn === 'object' && 'leakyrelu' in fn);
}

/** Non-decreasing, so f(max x) = max f(x): everything but GELU, SiLU, HardSwish and a negative-slope LeakyReLU. */
export function isMonotone(fn: Elementwise): boolean {
  if (typeof fn === 'object') return 'clip' in fn || fn.leakyrelu >= 0;
  return fn !== 'gelu' && fn !== 'silu' && fn !== 'hardswish';
}

/** Applies one elementwise function to a real value (the clients' computation, and the reference). */
export function applyElementwise(fn: Elementwise, v: number): number {
  if (typeof fn === 'object') {
    if ('leakyrelu' in fn) return v >= 0 ? v : fn.leakyrelu * v;
    const [lo, hi] = fn.clip;
    return Math.min(Math.max(v, lo ?? -Infinity), hi ?? Infinity);
  }
  switch (fn) {
    case 'relu':
      return v > 0 ? v : 0;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'tanh':
      return Math.tanh(v);
    case 'gelu':
      return 0.5 * v * (1 + erf(v * Math.SQRT1_2));
    case 'silu':
      return v / (1 + Math.exp(-v));
    case 'hardswish':
      return v * Math.min(Math.max(v / 6 + 0.5, 0), 1);
  }
}

/** The composition of `fns`, applied to a real value. */
export function applyFns(fns: readonly Elementwise[], v: number): number {
  for (const fn of fns) v = applyElementwise(fn, v);
  return v;
}

/** True if |f(x)| ≤ 1 for every x: the composition ends in sigmoid or tanh, followed by ReLUs at most. */
export function isBoundedByOne(fns: readonly Elementwise[]): boolean {
  let bounded = false;
  for (const fn of fns) bounded = fn === 'sigmoid' || fn === 'tanh' || (bounded && fn === 'relu');
  return bounded;
}

/**
 * One client round: out_w = f(max of window w), out_w = mean of f over window w, or f(x_j), with f
 * the composition of `fns`.
 */
export interface ActivationGroup {
  /** Elementwise functions, applied in order (a max-pool's window max commutes with all of them). */
  readonly fns: readonly Elementwise[];
  /** For pooling: the input cells of each output window (padded cells excluded). */
  readonly windows: readonly Int32Array[] | null;
  /**
   * How a window is reduced: 'max' (a max-pool before or after f), 'avg' (an average pool after f,
   * windows disjoint and unpadded, so every window has the kernel's cell count), null without windows.
   */
  readonly pool: 'max' | 'avg' | null;
  /** Values the group receives. */
  readonly inputSize: number;
  /** Values it returns. */
  readonly outputSize: number;
  /** True if f(r·x) = r·f(x) for r > 0, so values may travel behind random factors. */
  readonly homogeneous: boolean;
}

/** The source that stands for the model input (the client's encrypted input). */
export const MODEL_INPUT = -1;

/**
 * Linear maps the service evaluates one after the other (consecutive linear layers, composed when
 * that stores fewer terms), then the activation group after them (none for the last stage).
 *
 * The first map reads the concatenation of `sources` in order: {@link MODEL_INPUT} for the model
 * input, k ≥ 0 for the values stage k's activation round returned. A chain reads [−1], [0], [1], …;
 * a residual add or a concatenation reads several earlier rounds (a skip connection is extra
 * columns of the map).
 */
export interface Stage {
  readonly sources: readonly number[];
  readonly linears: readonly SparseLinearMap[];
  readonly activation: ActivationGroup | null;
}

/** The model as the protocol runs it. */
export interface InferencePlan {
  readonly inputShape: Shape;
  readonly stages: readonly Stage[];
  /**
   * A final softmax, log-softmax, sigmoid or tanh, left to the client after decryption (the
   * protocols return the logits before it; softmax and log-softmax keep the argmax).
   */
  readonly outputActivation: 'softmax' | 'logsoftmax' | 'sigmoid' | 'tanh' | null;
  readonly outputSize: number;
}

/** The model uses a layer the Paillier protocol cannot place. */
export class UnsupportedModelError extends BlindmlError {
  constructor(message: string) {
    super('ERR_UNSUPPORTED_MODEL', message);
  }
}

/** Choices the protocols make differently. */
export interface PlanOptions {
  /**
   * Let the client evaluate an average pool that directly follows its activations when the pool's
   * windows are disjoint and unpadded (the next stage then reads one value per window instead of
   * every cell). Blinded values stay correct because a window's cells share one blinding factor, as
   * a max-pool window's do. Default false.
   */
  readonly avgPoolAtClient?: boolean;
  /**
   * How activations that are not positively homogeneous run (Clip is always two blinded ReLUs:
   * lo + ReLU(x − lo) − ReLU(x − hi), exact).
   * - 'client' (default): sigmoid, tanh, GELU, SiLU and HardSwish are evaluated by the client on
   *   the values it sees permuted at a public scale — exact, but it learns their multiset
   *   (docs/security.md).
   * - 'spline': each is replaced by its piecewise-linear interpolant on {@link splineKnots}
   *   segments of the calibrated input range (constant below it, the last slope above), a sum of
   *   ReLUs of shifted values evaluated in a blinded ReLU round: the client learns signs only, the
   *   fit error is the price, and the round carries one value per segment. Needs `ranges`.
   */
  readonly nonHomogeneous?: 'client' | 'spline';
  /** Segments of a spline (default 16). */
  readonly splineKnots?: number;
  /** Per tensor name: the range of its values on calibration data ({@link activationRanges}). */
  readonly ranges?: ReadonlyMap<string, readonly [number, number]>;
}

/**
 * Builds the plan for a model graph (a chain is one): see `graph-plan.ts`.
 *
 * @throws UnsupportedModelError naming the node the protocols cannot place.
 */
export function planModel(model: Model, options: PlanOptions = {}): InferencePlan {
  return planGraph(model, options);
}

/** Values source k holds: the model input's size for {@link MODEL_INPUT}, else round k's outputs. */
export function sourceSize(plan: InferencePlan, source: number): number {
  return source === MODEL_INPUT ? sizeOf(plan.inputShape) : plan.stages[source]!.activation!.outputSize;
}

/**
 * Per source (index source + 1, so the model input is index 0): the last stage that reads it, −1
 * for none. A party keeps a source's values until that stage has run.
 */
export function lastReaders(stages: readonly { readonly sources: readonly number[] }[]): Int32Array {
  const last = new Int32Array(stages.length + 1).fill(-1);
  stages.forEach((stage, s) => {
    for (const k of stage.sources) last[k + 1] = s;
  });
  return last;
}

/**
 * Checks that every stage reads earlier activation rounds (or the input), each once, and that its
 * first map takes exactly their values; that only the last stage lacks an activation, and every
 * round is read by a later stage.
 *
 * @throws UnsupportedModelError naming the first stage that breaks a rule.
 */
export function checkPlan(plan: InferencePlan): void {
  const n = plan.stages.length;
  if (n === 0) throw new UnsupportedModelError('the plan has no stages');
  plan.stages.forEach((stage, s) => {
    if (stage.sources.length === 0) throw new UnsupportedModelError(`stage ${s} reads no source`);
    if (new Set(stage.sources).size !== stage.sources.length) throw new UnsupportedModelError(`stage ${s} reads a source twice`);
    for (const k of stage.sources) {
      if (!Number.isInteger(k) || k < MODEL_INPUT || k >= s) throw new UnsupportedModelError(`stage ${s} reads source ${k}: only the input (−1) and earlier rounds`);
    }
    if ((stage.activation === null) !== (s === n - 1)) throw new UnsupportedModelError(`stage ${s}: every stage but the last ends in an activation round`);
    if (stage.linears.length === 0) throw new UnsupportedModelError(`stage ${s} has no linear map`);
    const cols = stage.sources.reduce((a, k) => a + sourceSize(plan, k), 0);
    if (stage.linears[0]!.cols !== cols) throw new UnsupportedModelError(`stage ${s}: its map takes ${stage.linears[0]!.cols} values, its sources hold ${cols}`);
    for (let m = 1; m < stage.linears.length; m++) {
      if (stage.linears[m]!.cols !== stage.linears[m - 1]!.rows) throw new UnsupportedModelError(`stage ${s}: map ${m} does not take map ${m - 1}'s outputs`);
    }
    const rows = stage.linears[stage.linears.length - 1]!.rows;
    const wanted = stage.activation ? stage.activation.inputSize : plan.outputSize;
    if (rows !== wanted) throw new UnsupportedModelError(`stage ${s}: ${rows} outputs for ${wanted} values`);
  });
  const readers = lastReaders(plan.stages);
  for (let k = 0; k < n - 1; k++) if (readers[k + 1]! < 0) throw new UnsupportedModelError(`round ${k}'s values are read by no later stage`);
}

/**
 * A stage's input: the values of its `sources` concatenated (`returned[k]` = round k's values).
 *
 * @throws RangeError if a source's values are not given.
 */
export function gatherSources(sources: readonly number[], input: ArrayLike<number>, returned: readonly (ArrayLike<number> | null | undefined)[]): Float64Array {
  const parts = sources.map((k) => {
    const part = k === MODEL_INPUT ? input : returned[k];
    if (!part) throw new RangeError(`source ${k} is not available`);
    return part;
  });
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** What {@link evaluatePlan} reports as it goes. */
export interface PlanObserver {
  /** After linear map m of stage s. */
  map?(s: number, m: number, y: Float64Array): void;
  /** After stage s's activation round. */
  activation?(s: number, y: Float64Array): void;
}

/**
 * Runs the plan in floating point on one input (the reference every protocol is checked against,
 * and the calibration pass).
 */
export function evaluatePlan(plan: InferencePlan, input: ArrayLike<number>, observe: PlanObserver = {}): Float64Array {
  const returned: (Float64Array | null)[] = plan.stages.map(() => null);
  let out: Float64Array = new Float64Array(0);
  plan.stages.forEach((stage, s) => {
    let x: Float64Array = gatherSources(stage.sources, input, returned);
    stage.linears.forEach((map, m) => {
      x = applyMap(map, x);
      observe.map?.(s, m, x);
    });
    if (!stage.activation) {
      out = x;
      return;
    }
    returned[s] = applyGroup(stage.activation, x);
    observe.activation?.(s, returned[s]);
  });
  return out;
}

/** Applies the group's function to real values (the client's computation, and the reference). */
export function applyGroup(group: ActivationGroup, x: ArrayLike<number>): Float64Array {
  const f = (v: number): number => applyFns(group.fns, v);
  const out = new Float64Array(group.outputSize);
  if (!group.windows) {
    for (let j = 0; j < out.length; j++) out[j] = f(x[j]!);
    return out;
  }
  group.windows.forEach((cells, w) => {
    if (group.pool === 'avg') {
      let sum = 0;
      for (const c of cells) sum += f(x[c]!);
      out[w] = sum / cells.length;
      return;
    }
    let m = -Infinity;
    for (const c of cells) m = Math.max(m, x[c]!);
    out[w] = f(m);
  });
  return out;
}
