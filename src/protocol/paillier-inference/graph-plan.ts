/**
 * Plans a model graph (any DAG of the IR; a chain is one) for the interactive protocols.
 *
 * Every tensor the service can compute is an affine map over *sources* (the model input, and the
 * values earlier activation rounds returned): linear nodes — convolutions (grouped and depthwise
 * too), dense layers, average pools, affine maps (batch norm, input normalization), Transpose,
 * Pad, Add, Concat — extend those maps, and layout nodes (Flatten, Reshape) pass them on. An
 * activation node ends the affine map of its input: that map becomes a stage's linear maps, the
 * node (with the activations and pools that directly follow it and nothing else reads in between)
 * becomes the stage's activation round, and its output is a new source. So stages are the maximal
 * affine subgraphs between nonlinear nodes, and a residual add or a concatenation is a stage
 * reading several rounds.
 *
 * @module
 */
import { isMultiInput, Relu, type AvgPool2d, type Layer } from '../../nn/layers.js';
import { linearMapOf, poolWindows, type LinearLayer } from '../../nn/linear-maps.js';
import type { Model, ModelNode } from '../../nn/model.js';
import { runPlaintext } from '../../nn/plaintext.js';
import { sizeOf, type Shape } from '../../nn/shape.js';
import { buildSparseMap, composeMaps, termCount, type SparseLinearMap } from '../../tensor/sparse-linear.js';
import {
  applyElementwise, checkPlan, elementwiseOf, isMonotone, isHomogeneous, MODEL_INPUT, UnsupportedModelError,
  type ActivationGroup, type Elementwise, type InferencePlan, type PlanOptions, type Stage,
} from './plan.js';

/**
 * A tensor as an affine map over sources: `maps` applied one after the other to the concatenation
 * of `sources` (no maps: the tensor is that concatenation, a single source).
 */
interface Affine {
  readonly sources: readonly number[];
  readonly maps: readonly SparseLinearMap[];
  readonly size: number;
}

/** An activation round still open to the activations and pools that directly follow it. */
interface OpenRound {
  readonly input: Affine;
  readonly group: GroupBuilder;
}

type Value = { readonly kind: 'affine'; readonly affine: Affine } | { readonly kind: 'round'; readonly round: OpenRound };

/** Outputs the protocol leaves to the client after decryption (argmax-preserving or elementwise). */
const OUTPUT_ACTIVATIONS = ['softmax', 'logsoftmax', 'sigmoid', 'tanh'] as const;

/**
 * Builds the plan.
 *
 * @throws UnsupportedModelError naming the node for a softmax anywhere but at the output, or a
 *   layer no protocol round can evaluate (a polynomial activation: use ckks-poly).
 */
export function planGraph(model: Model, options: PlanOptions = {}): InferencePlan {
  const stages: Stage[] = [];
  const readers = readerCounts(model);
  const values = new Map<string, Value>([[model.inputName, affineValue({ sources: [MODEL_INPUT], maps: [], size: model.inputSize })]]);
  /** Closes an open round: its stage joins the plan, its output becomes a source. */
  const close = (round: OpenRound): Affine => {
    const activation = round.group.build();
    stages.push({ sources: round.input.sources, linears: stageMaps(round.input), activation });
    return { sources: [stages.length - 1], maps: [], size: activation.outputSize };
  };
  const affineOf = (tensor: string): Affine => {
    const value = values.get(tensor)!;
    if (value.kind === 'affine') return value.affine;
    const affine = close(value.round);
    // Every alias of the round's output (layout nodes) now names the closed source.
    for (const [name, v] of values) if (v.kind === 'round' && v.round === value.round) values.set(name, affineValue(affine));
    return affine;
  };
  const sizeOfSource = (k: number): number => (k === MODEL_INPUT ? model.inputSize : stages[k]!.activation!.outputSize);
  const head = outputActivation(model);
  for (const node of model.nodes) {
    if (head && node === head.node) break;
    const { layer } = node;
    const input = values.get(node.inputs[0]!)!;
    if (layer.category === 'layout') {
      values.set(node.output, input);
      continue;
    }
    const shapes = node.inputs.map((t) => model.shapeOf(t));
    const open = input.kind === 'round' && readers.get(node.inputs[0]!) === 1 ? input.round : null;
    if (layer.kind === 'avgpool2d' && options.avgPoolAtClient && open?.group.takesAvgPool(layer)) {
      open.group.add(layer, shapes[0]!, node);
      values.set(node.output, input);
      continue;
    }
    if (layer.category === 'linear') {
      const inputs = node.inputs.map(affineOf);
      values.set(node.output, affineValue(applyLinear(layer as LinearLayer, inputs, shapes, sizeOfSource)));
      continue;
    }
    if (layer.kind === 'softmax' || layer.kind === 'logsoftmax') {
      throw new UnsupportedModelError(`node '${node.name}' (${layer.kind}) is only supported as the model's output, where the client applies it`);
    }
    const terms = reluTerms(layer, node, options, node.inputs[0]!);
    if (terms) {
      const x = affineOf(node.inputs[0]!);
      const group = new GroupBuilder(terms.slopes.length * x.size);
      group.add(new Relu(), shapes[0]!, node);
      const round = close({ input: appendMap(x, expansion(terms, x.size)), group });
      values.set(node.output, affineValue({ sources: round.sources, maps: [combination(terms, x.size)], size: x.size }));
      continue;
    }
    if (open?.group.takes(layer)) {
      open.group.add(layer, shapes[0]!, node);
      values.set(node.output, input);
      continue;
    }
    const group = new GroupBuilder(sizeOf(shapes[0]!));
    group.add(layer, shapes[0]!, node);
    values.set(node.output, { kind: 'round', round: { input: affineOf(node.inputs[0]!), group } });
  }
  const last = affineOf(head ? head.node.inputs[0]! : model.outputName);
  stages.push({ sources: last.sources, linears: stageMaps(last), activation: null });
  const plan: InferencePlan = { inputShape: model.inputShape, stages, outputActivation: head?.kind ?? null, outputSize: model.outputSize };
  checkPlan(plan);
  return plan;
}

function affineValue(affine: Affine): Value {
  return { kind: 'affine', affine };
}

/**
 * The output node if the client applies it after decryption: a softmax, log-softmax, sigmoid or
 * tanh reading an affine tensor (only layout nodes after it), the output of a chain's last linear
 * layer as the protocol always allowed.
 */
function outputActivation(model: Model): { node: ModelNode; kind: (typeof OUTPUT_ACTIVATIONS)[number] } | null {
  const writer = new Map(model.nodes.map((n) => [n.output, n]));
  let node = writer.get(model.outputName);
  while (node && node.layer.category === 'layout') node = writer.get(node.inputs[0]!);
  if (!node || !(OUTPUT_ACTIVATIONS as readonly string[]).includes(node.layer.kind)) return null;
  // Only when what it reads is affine: after another activation it is part of that round.
  let before = writer.get(node.inputs[0]!);
  while (before && before.layer.category === 'layout') before = writer.get(before.inputs[0]!);
  if (before && before.layer.category === 'activation') return null;
  return { node, kind: node.layer.kind as (typeof OUTPUT_ACTIVATIONS)[number] };
}

/** How many non-layout nodes read each tensor, counting through layout nodes (which only rename). */
function readerCounts(model: Model): Map<string, number> {
  const counts = new Map<string, number>();
  const aliasOf = new Map<string, string>();
  const root = (t: string): string => aliasOf.get(t) ?? t;
  for (const node of model.nodes) {
    if (node.layer.category === 'layout') {
      aliasOf.set(node.output, root(node.inputs[0]!));
      continue;
    }
    for (const t of node.inputs) counts.set(root(t), (counts.get(root(t)) ?? 0) + 1);
  }
  if (model.outputName !== model.inputName) counts.set(root(model.outputName), (counts.get(root(model.outputName)) ?? 0) + 1);
  const all = new Map<string, number>();
  for (const t of [model.inputName, ...model.nodes.map((n) => n.output)]) all.set(t, counts.get(root(t)) ?? 0);
  return all;
}

/** The stage's linear maps for an affine tensor (the identity for a source on its own). */
function stageMaps(affine: Affine): SparseLinearMap[] {
  return affine.maps.length > 0 ? [...affine.maps] : [identityMap(affine.size)];
}

/**
 * A linear node applied to affine inputs. One input: its maps with the layer's appended (composed
 * with the last when that stores fewer terms). Several (Add, Concat): each input as one map over
 * the union of their sources, stacked, then the layer's map.
 */
function applyLinear(layer: LinearLayer, inputs: readonly Affine[], shapes: readonly Shape[], sizeOfSource: (k: number) => number): Affine {
  const map = linearMapOf(layer, isMultiInput(layer as Layer) ? shapes : shapes[0]!);
  if (inputs.length === 1) return appendMap(inputs[0]!, map);
  const sources = [...new Set(inputs.flatMap((a) => a.sources))].sort((a, b) => a - b);
  const stacked = stack(inputs.map((a) => overSources(a, sources, sizeOfSource)));
  return { sources, maps: [composeMaps(stacked, map)], size: map.rows };
}

/** The affine tensor followed by `map` (composed with its last map when that stores fewer terms). */
function appendMap(a: Affine, map: SparseLinearMap): Affine {
  const previous = a.maps[a.maps.length - 1];
  if (!previous) return { sources: a.sources, maps: [map], size: map.rows };
  const maps = cheaperComposed(previous, map) ? [...a.maps.slice(0, -1), composeMaps(previous, map)] : [...a.maps, map];
  return { sources: a.sources, maps, size: map.rows };
}

/** f(x) = constant + Σ_i coefs[i]·ReLU(slopes[i]·x − shifts[i]): an activation as blinded ReLUs. */
interface ReluTerms {
  readonly slopes: readonly number[];
  readonly shifts: readonly number[];
  readonly coefs: readonly number[];
  readonly constant: number;
}

/**
 * The activation as a sum of ReLUs, or null if the client evaluates it (ReLU, LeakyReLU, a
 * max-pool, or a non-homogeneous function under `nonHomogeneous: 'client'`). Clip is exact:
 * lo + ReLU(x − lo) − ReLU(x − hi) (x = ReLU(x) − ReLU(−x) for an unbounded side).
 *
 * @throws UnsupportedModelError for a spline without a calibrated range for the node's input.
 */
function reluTerms(layer: Layer, node: ModelNode, options: PlanOptions, input: string): ReluTerms | null {
  const fn = elementwiseOf(layer);
  if (fn === null || isHomogeneous(fn)) return null;
  if (typeof fn === 'object' && 'clip' in fn) {
    const [lo, hi] = fn.clip;
    const terms = lo === null ? { slopes: [1, -1], shifts: [0, 0], coefs: [1, -1], constant: 0 } : { slopes: [1], shifts: [lo], coefs: [1], constant: lo };
    if (hi === null) return terms;
    return { ...terms, slopes: [...terms.slopes, 1], shifts: [...terms.shifts, hi], coefs: [...terms.coefs, -1] };
  }
  if (options.nonHomogeneous !== 'spline') return null;
  const range = options.ranges?.get(input);
  if (!range) throw new UnsupportedModelError(`node '${node.name}' (${layer.kind}): a spline needs the calibrated range of its input`);
  return splineTerms((v) => applyElementwise(fn, v), range, options.splineKnots ?? 16);
}

/**
 * The piecewise-linear interpolant of f at `segments` + 1 evenly spaced points of [lo, hi]
 * (constant f(lo) below, the last slope above): f(lo) + Σ_i (s_i − s_{i−1})·ReLU(x − t_i).
 */
export function splineTerms(f: (x: number) => number, [lo, hi]: readonly [number, number], segments: number): ReluTerms {
  const width = hi > lo ? hi - lo : 1;
  const t = Array.from({ length: segments + 1 }, (_, i) => lo + (width * i) / segments);
  const slopes: number[] = [];
  const shifts: number[] = [];
  const coefs: number[] = [];
  let previous = 0;
  for (let i = 0; i < segments; i++) {
    const slope = (f(t[i + 1]!) - f(t[i]!)) / (t[i + 1]! - t[i]!);
    slopes.push(1);
    shifts.push(t[i]!);
    coefs.push(slope - previous);
    previous = slope;
  }
  return { slopes, shifts, coefs, constant: f(lo) };
}

/** The round's pre-activations: row i·n + u = slopes[i]·x_u − shifts[i]. */
function expansion(terms: ReluTerms, n: number): SparseLinearMap {
  const k = terms.slopes.length;
  const bias = Float64Array.from({ length: k * n }, (_, r) => -terms.shifts[Math.floor(r / n)]!);
  return buildSparseMap(k * n, n, bias, (r, add) => add(r % n, terms.slopes[Math.floor(r / n)]!));
}

/** The activation from the round's ReLUs: y_u = constant + Σ_i coefs[i]·ReLU_{i·n + u}. */
function combination(terms: ReluTerms, n: number): SparseLinearMap {
  return buildSparseMap(n, terms.slopes.length * n, new Float64Array(n).fill(terms.constant), (u, add) => {
    terms.coefs.forEach((c, i) => add(i * n + u, c));
  });
}

/**
 * Plans with calibration data at hand: the tensors' ranges are measured when splines need them.
 *
 * @throws UnsupportedModelError as {@link planGraph}.
 */
export function planCalibrated(model: Model, inputs: Float32Array | Float64Array, options: PlanOptions = {}): InferencePlan {
  return planGraph(model, options.nonHomogeneous === 'spline' && !options.ranges ? { ...options, ranges: activationRanges(model, inputs) } : options);
}

/**
 * The range of every tensor's values on calibration inputs (samples one after another), for
 * spline activations.
 */
export function activationRanges(model: Model, inputs: Float32Array | Float64Array): Map<string, readonly [number, number]> {
  const ranges = new Map<string, readonly [number, number]>();
  const widen = (name: string, values: ArrayLike<number>): void => {
    let [lo, hi] = ranges.get(name) ?? [Infinity, -Infinity];
    for (let i = 0; i < values.length; i++) {
      lo = Math.min(lo, values[i]!);
      hi = Math.max(hi, values[i]!);
    }
    ranges.set(name, [lo, hi]);
  };
  widen(model.inputName, inputs);
  runPlaintext(model, inputs, { onLayer: ({ node, output }) => widen(node.output, output) });
  return ranges;
}

/** One map from the concatenation of `sources` to the affine tensor's values (ckks-poly's planner shares it). */
export function overSources(a: Affine, sources: readonly number[], sizeOfSource: (k: number) => number): SparseLinearMap {
  const total = sources.reduce((n, k) => n + sizeOfSource(k), 0);
  const start = new Map<number, number>();
  let at = 0;
  for (const k of sources) {
    start.set(k, at);
    at += sizeOfSource(k);
  }
  // Column j of a's own concatenation → column of the union.
  const column = new Int32Array(a.sources.reduce((n, k) => n + sizeOfSource(k), 0));
  let c = 0;
  for (const k of a.sources) for (let i = 0; i < sizeOfSource(k); i++) column[c++] = start.get(k)! + i;
  const own = a.maps.length === 0 ? identityMap(a.size) : a.maps.reduce((m, next) => composeMaps(m, next));
  return buildSparseMap(own.rows, total, own.bias, (r, add) => {
    for (let t = own.offsets[r]!; t < own.offsets[r + 1]!; t++) add(column[own.indices[t]!]!, own.weights[t]!);
  });
}

/** The maps' rows one after the other (same columns). */
export function stack(maps: readonly SparseLinearMap[]): SparseLinearMap {
  const rows = maps.reduce((n, m) => n + m.rows, 0);
  const bias = new Float64Array(rows);
  const owner: [SparseLinearMap, number][] = [];
  for (const m of maps) for (let r = 0; r < m.rows; r++) owner.push([m, r]);
  owner.forEach(([m, r], i) => (bias[i] = m.bias[r]!));
  return buildSparseMap(rows, maps[0]!.cols, bias, (i, add) => {
    const [m, r] = owner[i]!;
    for (let t = m.offsets[r]!; t < m.offsets[r + 1]!; t++) add(m.indices[t]!, m.weights[t]!);
  });
}

/** True if storing second∘first takes fewer terms than the two apart (e.g. conv then average pooling). */
function cheaperComposed(first: SparseLinearMap, second: SparseLinearMap): boolean {
  const perRow = (termCount(second) / Math.max(1, second.rows)) * (termCount(first) / Math.max(1, first.rows));
  return second.rows * Math.min(first.cols, perRow) <= termCount(first) + termCount(second);
}

export function identityMap(size: number): SparseLinearMap {
  return buildSparseMap(size, size, new Float64Array(size), (r, add) => add(r, 1));
}

/** One activation round under construction: elementwise functions and at most one pool. */
class GroupBuilder {
  private readonly fns: Elementwise[] = [];
  private windows: Int32Array[] | null = null;
  private pool: 'max' | 'avg' | null = null;
  private size: number;

  constructor(readonly inputSize: number) {
    this.size = inputSize;
  }

  /**
   * True if the round can take this activation after what it has: an elementwise function unless
   * the round ends in an average pool (f is applied before averaging); a max-pool if the round has
   * no pool and its functions so far commute with max (non-decreasing ones).
   */
  takes(layer: Layer): boolean {
    if (layer.kind === 'maxpool2d') return this.windows === null && this.fns.every(isMonotone);
    return this.pool !== 'avg' && elementwiseOf(layer) !== null;
  }

  /** True if the client can take this average pool after the round's functions (see PlanOptions). */
  takesAvgPool(layer: AvgPool2d): boolean {
    const [kh, kw] = layer.kernel;
    const [sh, sw] = layer.stride;
    return this.windows === null && this.fns.length > 0 && !layer.ceilMode && layer.pads.every((p) => p === 0) && sh >= kh && sw >= kw;
  }

  /** @throws UnsupportedModelError naming the node for a layer no round evaluates. */
  add(layer: Layer, shape: Shape, node: ModelNode): void {
    const fn = elementwiseOf(layer);
    if (fn !== null) {
      this.fns.push(fn);
      return;
    }
    if (layer.kind === 'maxpool2d' || layer.kind === 'avgpool2d') {
      this.windows = poolWindows(layer, shape, layer.computeOutputShape(shape));
      this.pool = layer.kind === 'maxpool2d' ? 'max' : 'avg';
      this.size = this.windows.length;
      return;
    }
    const instead = layer.kind === 'polynomial' ? ': polynomial activations are for --scheme ckks-poly' : '';
    throw new UnsupportedModelError(`node '${node.name}' (${layer.kind}) cannot be evaluated in an activation round${instead}`);
  }

  build(): ActivationGroup {
    return {
      fns: [...this.fns],
      windows: this.windows,
      pool: this.pool,
      inputSize: this.inputSize,
      outputSize: this.size,
      homogeneous: this.fns.every(isHomogeneous),
    };
  }
}
