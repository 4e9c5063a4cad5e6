/**
 * The shape of a polynomial network as the CKKS service evaluates it: linear stages, each one
 * sparse map, separated by degree-2 polynomial activations. Any DAG of the IR is planned the way
 * the interactive protocols plan it: every tensor is an affine map over *sources* (the model
 * input and the outputs of earlier activations). Linear nodes — convolutions (grouped and
 * depthwise too), dense layers, average pools, affine maps (batch norm anywhere, input
 * normalization, constant factors), Transpose, Pad, Add, Concat — extend those maps, and layout
 * nodes (Flatten, Reshape) pass them on; a degree-1 polynomial is affine too. A degree-2
 * polynomial node closes the affine map of its input into a stage, and its output becomes a new
 * source. A residual add or a concatenation is a stage reading several sources, possibly of
 * different depths (see `compile.ts` for how their levels are matched).
 *
 * Anything else (ReLU, max-pool, sigmoid inside the network) cannot be evaluated on CKKS
 * ciphertexts without the client and is refused with the node's name. A softmax, log-softmax or
 * sigmoid at the output is left out: the service returns the logits before it (argmax is the same).
 *
 * @module
 */
import { isMultiInput, type Layer, type Polynomial } from '../../nn/layers.js';
import { linearMapOf, type LinearLayer } from '../../nn/linear-maps.js';
import type { Model, ModelNode } from '../../nn/model.js';
import { runPlaintext } from '../../nn/plaintext.js';
import { buildSparseMap, composeMaps, termCount, type SparseLinearMap } from '../../tensor/sparse-linear.js';
import { identityMap, overSources, stack } from '../paillier-inference/graph-plan.js';
import { MODEL_INPUT, UnsupportedModelError } from '../paillier-inference/plan.js';

export { MODEL_INPUT, UnsupportedModelError };

/** Highest activation degree the service evaluates (degree 2: one ciphertext square per value). */
export const MAX_SERVICE_DEGREE = 2;

/** What the client may apply to the decrypted logits (the service never evaluates it). */
export type PolyOutputActivation = 'softmax' | 'logsoftmax' | 'sigmoid';

/** One linear stage and the polynomial applied to its outputs (none after the last stage). */
export interface PolyStage {
  /**
   * What the map reads, concatenated in this order: {@link MODEL_INPUT}, or k ≥ 0 for the
   * outputs of stage k's activation. A chain reads [−1], [0], [1], …
   */
  readonly sources: readonly number[];
  readonly map: SparseLinearMap;
  /** Power-basis coefficients of the activation after this stage, or null for the output stage. */
  readonly activation: readonly number[] | null;
  /** The activation node's name (the output tensor's for the output stage), for messages. */
  readonly node: string;
}

/** The stages, and what the client applies to the decrypted outputs (argmax is unchanged by it). */
export interface PolyPlan {
  readonly inputSize: number;
  readonly outputSize: number;
  /** Topologically sorted: a stage reads only the input and earlier stages; the last is the output. */
  readonly stages: readonly PolyStage[];
  readonly outputActivation: PolyOutputActivation | null;
}

/** A tensor as one affine map over the concatenation of `sources` (null: that concatenation itself). */
interface AffineTensor {
  readonly sources: readonly number[];
  readonly map: SparseLinearMap | null;
  readonly size: number;
}

const OUTPUT_ACTIVATIONS: readonly string[] = ['softmax', 'logsoftmax', 'sigmoid'];

/**
 * Builds the plan.
 *
 * @throws UnsupportedModelError naming the node for a nonlinear layer other than a polynomial
 *   (a softmax, log-softmax or sigmoid at the output is left to the client), a polynomial of
 *   degree above {@link MAX_SERVICE_DEGREE}, or linear layers whose composition is far denser
 *   than they are apart.
 */
export function planPolyNetwork(model: Model): PolyPlan {
  const stages: PolyStage[] = [];
  const sizeOfSource = (k: number): number => (k === MODEL_INPUT ? model.inputSize : stages[k]!.map.rows);
  const values = new Map<string, AffineTensor>([[model.inputName, { sources: [MODEL_INPUT], map: null, size: model.inputSize }]]);
  const head = outputHead(model);
  for (const node of model.nodes) {
    if (head && node === head.node) break;
    const { layer } = node;
    if (layer.category === 'layout') {
      values.set(node.output, values.get(node.inputs[0]!)!);
      continue;
    }
    if (layer.category === 'linear' || (layer.kind === 'polynomial' && layer.degree === 1)) {
      const inputs = node.inputs.map((t) => values.get(t)!);
      values.set(node.output, applyLinear(node, inputs, node.inputs.map((t) => model.shapeOf(t)), sizeOfSource));
      continue;
    }
    if (layer.kind !== 'polynomial') throw new UnsupportedModelError(unsupported(node, head !== null));
    if (layer.degree > MAX_SERVICE_DEGREE) {
      throw new UnsupportedModelError(
        `node '${node.name}': a degree-${layer.degree} polynomial (ckks-poly evaluates degree ≤ ${MAX_SERVICE_DEGREE}, one square per value; refit it at degree 2)`,
      );
    }
    const input = values.get(node.inputs[0]!)!;
    stages.push({ sources: input.sources, map: input.map ?? identityMap(input.size), activation: layer.coefficients, node: node.name });
    values.set(node.output, { sources: [stages.length - 1], map: null, size: input.size });
  }
  const out = values.get(head ? head.node.inputs[0]! : model.outputName)!;
  stages.push({ sources: out.sources, map: out.map ?? identityMap(out.size), activation: null, node: model.outputName });
  return { inputSize: model.inputSize, outputSize: model.outputSize, stages, outputActivation: head?.kind ?? null };
}

/**
 * What ckks-poly returns for `inputs`, in the clear: the model's outputs, or for a model ending
 * in a softmax, log-softmax or sigmoid, the logits that head reads.
 *
 * @throws ShapeError as {@link runPlaintext}.
 */
export function polyLogits(model: Model, inputs: Float32Array | Float64Array): Float64Array {
  const head = outputHead(model);
  if (!head) return runPlaintext(model, inputs);
  const tensor = head.node.inputs[0]!;
  if (tensor === model.inputName) return Float64Array.from(inputs);
  const size = model.outputSize;
  const out = new Float64Array((inputs.length / model.inputSize) * size);
  runPlaintext(model, inputs, { onLayer: ({ node, output, first }) => node.output === tensor && out.set(output, first * size) });
  return out;
}

/** The output node if it is a softmax, log-softmax or sigmoid (only layout nodes after it). */
function outputHead(model: Model): { node: ModelNode; kind: PolyOutputActivation } | null {
  const writer = new Map(model.nodes.map((n) => [n.output, n]));
  let node = writer.get(model.outputName);
  while (node && node.layer.category === 'layout') node = writer.get(node.inputs[0]!);
  if (!node || !OUTPUT_ACTIVATIONS.includes(node.layer.kind)) return null;
  return { node, kind: node.layer.kind as PolyOutputActivation };
}

function unsupported(node: ModelNode, hasHead: boolean): string {
  const { kind } = node.layer;
  if (OUTPUT_ACTIVATIONS.includes(kind)) {
    return `node '${node.name}' (${kind}) is only supported as the model's output${hasHead ? '' : ' (where the client leaves it out)'}`;
  }
  return (
    `node '${node.name}' (${kind}) cannot be evaluated on CKKS ciphertexts without the client: ` +
    'replace it by a degree-2 polynomial (see models/fashion_poly.py), or use --scheme ckks or --scheme paillier'
  );
}

/**
 * A linear node (or a degree-1 polynomial) applied to affine inputs: one input's map composed
 * with the layer's; several (Add, Concat) each spread over the union of their sources, stacked,
 * then the layer's map.
 *
 * @throws UnsupportedModelError when composing would store far more terms than the maps apart.
 */
function applyLinear(node: ModelNode, inputs: readonly AffineTensor[], shapes: readonly (readonly number[])[], sizeOfSource: (k: number) => number): AffineTensor {
  const layer = node.layer;
  const map = layer.kind === 'polynomial' ? affineOf(layer, inputs[0]!.size) : linearMapOf(layer as LinearLayer, isMultiInput(layer as Layer) ? shapes : shapes[0]!);
  if (inputs.length === 1) {
    const input = inputs[0]!;
    if (input.map === null) return { sources: input.sources, map, size: map.rows };
    if (!denserByFar(input.map, map)) return { sources: input.sources, map: composeMaps(input.map, map), size: map.rows };
    // Keeping them apart would need a pass of integer weights on weights; not worth it.
    throw new UnsupportedModelError(`node '${node.name}' (${layer.kind}): composed with the linear layers before it, the map is much denser than both (put an activation between them)`);
  }
  const sources = [...new Set(inputs.flatMap((a) => a.sources))].sort((a, b) => a - b);
  const stacked = stack(inputs.map((a) => overSources({ sources: a.sources, maps: a.map ? [a.map] : [], size: a.size }, sources, sizeOfSource)));
  return { sources, map: composeMaps(stacked, map), size: map.rows };
}

/** p as a map for a degree-1 p: c0 + c1·x on every value. */
function affineOf(p: Polynomial, size: number): SparseLinearMap {
  const [c0, c1] = p.coefficients as [number, number];
  return buildSparseMap(size, size, new Float64Array(size).fill(c0), (r, add) => add(r, c1));
}

/** True if second∘first stores far more terms (4×) than the two apart. */
function denserByFar(first: SparseLinearMap, second: SparseLinearMap): boolean {
  const perRow = (termCount(second) / Math.max(1, second.rows)) * (termCount(first) / Math.max(1, first.rows));
  return second.rows * Math.min(first.cols, perRow) > 4 * (termCount(first) + termCount(second));
}
