/**
 * Compiles a model of the IR into the plan the interactive Paillier protocol follows: a list of
 * stages, each a linear map the service evaluates on ciphertexts (consecutive linear layers
 * composed into one) followed by an activation group the client evaluates in one round.
 *
 * An activation group is `f(max over a window)` or `f(x)` elementwise, where f is the composition
 * of its elementwise activations. Every supported activation is non-decreasing, so it commutes with
 * max; when f is built from ReLU only it is positively homogeneous and the service may hide values
 * behind random positive factors.
 *
 * @module
 */
import { BlindmlError } from '../../errors.js';
import type { AvgPool2d, Layer } from '../../nn/layers.js';
import { linearMapOf, poolWindows, type LinearLayer } from '../../nn/linear-maps.js';
import type { Model } from '../../nn/model.js';
import { sizeOf, type Shape } from '../../nn/shape.js';
import { applyMap, buildSparseMap, composeMaps, termCount, type SparseLinearMap } from '../../tensor/sparse-linear.js';

/** An elementwise activation the client applies. */
export type Elementwise = 'relu' | 'sigmoid' | 'tanh';

/**
 * One client round: out_w = f(max of window w), out_w = mean of f over window w, or f(x_j), with f
 * the composition of `fns`.
 */
export interface ActivationGroup {
  /** Elementwise functions, applied in order (max-pool commutes with all of them). */
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
  /** A final softmax, sigmoid or tanh, applied by the client to the decrypted outputs. */
  readonly outputActivation: 'softmax' | 'sigmoid' | 'tanh' | null;
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
}

/**
 * Builds the plan.
 *
 * @throws UnsupportedModelError for softmax anywhere but last, or two pools in one activation
 *   group.
 */
export function planModel(model: Model, options: PlanOptions = {}): InferencePlan {
  const { layers, shapes } = model;
  let end = layers.length;
  while (end > 0 && layers[end - 1]!.category === 'layout') end--;
  const lastLayer = layers[end - 1];
  const lastLinear = layers.reduce((at, l, i) => (l.category === 'linear' ? i : at), -1);
  let outputActivation: InferencePlan['outputActivation'] = null;
  if (lastLayer && end - 1 > lastLinear && (lastLayer.kind === 'softmax' || lastLayer.kind === 'sigmoid' || lastLayer.kind === 'tanh')) {
    const between = layers.slice(lastLinear + 1, end - 1).filter((l) => l.category !== 'layout');
    if (between.length === 0) {
      outputActivation = lastLayer.kind;
      end--;
    }
  }
  const stages: Stage[] = [];
  let linears: SparseLinearMap[] = [];
  let group: GroupBuilder | null = null;
  const close = (activation: ActivationGroup | null, size: number): void => {
    stages.push({ sources: [stages.length - 1], linears: linears.length ? linears : [identityMap(size)], activation });
    linears = [];
  };
  for (let i = 0; i < end; i++) {
    const layer = layers[i]!;
    const shape = shapes[i]!;
    if (layer.category === 'layout') continue;
    if (layer.category === 'linear') {
      if (group && options.avgPoolAtClient && layer.kind === 'avgpool2d' && group.takesAvgPool(layer)) {
        group.add(layer, shape, i);
        continue;
      }
      if (group) {
        close(group.build(), group.inputSize);
        group = null;
      }
      const map = linearMapOf(layer as LinearLayer, shape);
      const previous = linears[linears.length - 1];
      if (previous && cheaperComposed(previous, map)) linears[linears.length - 1] = composeMaps(previous, map);
      else linears.push(map);
      continue;
    }
    if (layer.kind === 'softmax') throw new UnsupportedModelError(`softmax at layer ${i} is only supported as the model's last layer`);
    group ??= new GroupBuilder(sizeOf(shape));
    group.add(layer, shape, i);
  }
  if (group) {
    // The model ends in client-side activations (e.g. ReLU): a final identity stage returns them.
    const built = group.build();
    close(built, built.inputSize);
    close(null, built.outputSize);
  } else {
    close(null, model.inputSize);
  }
  const plan = { inputShape: model.inputShape, stages, outputActivation, outputSize: model.outputSize };
  checkPlan(plan);
  return plan;
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

/** True if storing second∘first takes fewer terms than the two apart (e.g. conv then average pooling). */
function cheaperComposed(first: SparseLinearMap, second: SparseLinearMap): boolean {
  const perRow = (termCount(second) / Math.max(1, second.rows)) * (termCount(first) / Math.max(1, first.rows));
  return second.rows * Math.min(first.cols, perRow) <= termCount(first) + termCount(second);
}

function identityMap(size: number): SparseLinearMap {
  return buildSparseMap(size, size, new Float64Array(size), (r, add) => add(r, 1));
}

class GroupBuilder {
  private readonly fns: Elementwise[] = [];
  private windows: Int32Array[] | null = null;
  private pool: 'max' | 'avg' | null = null;
  private size: number;

  constructor(readonly inputSize: number) {
    this.size = inputSize;
  }

  /** True if the client can take this average pool after the group's functions (see PlanOptions). */
  takesAvgPool(layer: AvgPool2d): boolean {
    const [kh, kw] = layer.kernel;
    const [sh, sw] = layer.stride;
    return this.windows === null && this.fns.length > 0 && layer.pads.every((p) => p === 0) && sh >= kh && sw >= kw;
  }

  add(layer: Layer, shape: Shape, index: number): void {
    if (layer.kind === 'relu' || layer.kind === 'sigmoid' || layer.kind === 'tanh') {
      this.fns.push(layer.kind);
      return;
    }
    if (layer.kind === 'maxpool2d' || layer.kind === 'avgpool2d') {
      if (this.windows) throw new UnsupportedModelError(`layer ${index}: two pools without a linear layer between them`);
      this.windows = poolWindows(layer, shape, layer.computeOutputShape(shape));
      this.pool = layer.kind === 'maxpool2d' ? 'max' : 'avg';
      this.size = this.windows.length;
      return;
    }
    throw new UnsupportedModelError(`layer ${index} (${layer.kind}) cannot be evaluated by the client`);
  }

  build(): ActivationGroup {
    return {
      fns: [...this.fns],
      windows: this.windows,
      pool: this.pool,
      inputSize: this.inputSize,
      outputSize: this.size,
      homogeneous: this.fns.every((f) => f === 'relu'),
    };
  }
}

/** Applies the group's function to real values (the client's computation, and the reference). */
export function applyGroup(group: ActivationGroup, x: ArrayLike<number>): Float64Array {
  const f = (v: number): number => {
    for (const fn of group.fns) v = fn === 'relu' ? Math.max(0, v) : fn === 'sigmoid' ? 1 / (1 + Math.exp(-v)) : Math.tanh(v);
    return v;
  };
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
