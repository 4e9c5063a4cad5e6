/**
 * The shape of a polynomial network as the CKKS service evaluates it: linear stages (each the
 * composition of consecutive conv / dense / average-pool layers, as one sparse map) separated by
 * polynomial activations. Layout layers vanish; a degree-1 polynomial is affine, so it joins the
 * linear stage before it. Anything else (ReLU, max-pool, sigmoid inside the network) cannot be
 * evaluated on CKKS ciphertexts without the client and is refused.
 *
 * @module
 */
import type { Layer, Polynomial } from '../../nn/layers.js';
import { linearMapOf, type LinearLayer } from '../../nn/linear-maps.js';
import type { Model } from '../../nn/model.js';
import { composeMaps, termCount, type SparseLinearMap } from '../../tensor/sparse-linear.js';
import { UnsupportedModelError } from '../paillier-inference/plan.js';

export { UnsupportedModelError };

/** Highest activation degree the service evaluates (degree 2: one ciphertext square per value). */
export const MAX_SERVICE_DEGREE = 2;

/** One linear stage and the polynomial applied to its outputs (none after the last stage). */
export interface PolyStage {
  readonly map: SparseLinearMap;
  /** Power-basis coefficients of the activation after this stage, or null for the output stage. */
  readonly activation: readonly number[] | null;
}

/** The stages, and what the client applies to the decrypted outputs (argmax is unchanged by it). */
export interface PolyPlan {
  readonly inputSize: number;
  readonly outputSize: number;
  readonly stages: readonly PolyStage[];
  readonly outputActivation: 'softmax' | 'sigmoid' | null;
}

/**
 * Builds the plan.
 *
 * @throws UnsupportedModelError for a graph that is not a chain (residual adds, concatenations:
 *   the interactive protocols take those), a nonlinear layer other than a polynomial (a trailing softmax
 *   or sigmoid is left to the client), a polynomial of degree above {@link MAX_SERVICE_DEGREE},
 *   two activations without a linear layer between them, or a model that does not start and end
 *   with a linear layer.
 */
export function planPolyNetwork(model: Model): PolyPlan {
  if (!model.isChain) {
    const branch = model.nodes.find((n, i) => n.inputs.length > 1 || n.inputs[0] !== (i === 0 ? model.inputName : model.nodes[i - 1]!.output));
    throw new UnsupportedModelError(
      `node '${branch?.name ?? model.outputName}' (${branch?.layer.kind ?? 'output'}) makes the model a graph: ckks-poly evaluates chains of layers only; use --scheme ckks or --scheme paillier`,
    );
  }
  const layers = model.layers.map((layer, i) => ({ layer, shape: model.shapes[i]!, index: i })).filter(({ layer }) => layer.category !== 'layout');
  let outputActivation: PolyPlan['outputActivation'] = null;
  const last = layers[layers.length - 1]?.layer;
  if (last && (last.kind === 'softmax' || last.kind === 'sigmoid')) {
    outputActivation = last.kind;
    layers.pop();
  }
  const stages: PolyStage[] = [];
  let map: SparseLinearMap | undefined;
  for (const { layer, shape, index } of layers) {
    if (layer.category === 'linear') {
      const next = linearMapOf(layer as LinearLayer, shape);
      map = map === undefined ? next : cheaperComposed(map, next) ? composeMaps(map, next) : refuseUncomposable(index);
      continue;
    }
    if (layer.kind !== 'polynomial') throw new UnsupportedModelError(unsupported(layer, index));
    if (map === undefined) {
      throw new UnsupportedModelError(`layer ${index}: a polynomial must follow a linear layer (ckks-poly evaluates linear stages and squares)`);
    }
    if (layer.degree === 1) {
      map = affine(map, layer);
      continue;
    }
    if (layer.degree > MAX_SERVICE_DEGREE) {
      throw new UnsupportedModelError(`layer ${index}: a degree-${layer.degree} polynomial (ckks-poly evaluates degree ≤ ${MAX_SERVICE_DEGREE}; refit at degree 2)`);
    }
    stages.push({ map, activation: layer.coefficients });
    map = undefined;
  }
  if (map === undefined) throw new UnsupportedModelError('the model must end with a linear layer (the logits)');
  stages.push({ map, activation: null });
  return { inputSize: model.inputSize, outputSize: model.outputSize, stages, outputActivation };
}

function unsupported(layer: Layer, index: number): string {
  return `layer ${index} (${layer.kind}) cannot be evaluated on CKKS ciphertexts without the client: replace it by a polynomial (see models/fashion_poly.py), or use --scheme paillier`;
}

/** Two linear layers in a row are one map; we only keep them apart if composing costs more terms. */
function cheaperComposed(first: SparseLinearMap, second: SparseLinearMap): boolean {
  const perRow = (termCount(second) / Math.max(1, second.rows)) * (termCount(first) / Math.max(1, first.rows));
  return second.rows * Math.min(first.cols, perRow) <= 4 * (termCount(first) + termCount(second));
}

function refuseUncomposable(index: number): never {
  // Keeping them apart would need a rescale-free pass of integer weights twice; not worth a level.
  throw new UnsupportedModelError(`layer ${index}: two linear layers whose composition is much denser than both (put an activation between them)`);
}

/** p ∘ map for a degree-1 p: scale every row by c1 and shift the bias. */
function affine(map: SparseLinearMap, p: Polynomial): SparseLinearMap {
  const [c0, c1] = p.coefficients as [number, number];
  return {
    ...map,
    weights: map.weights.map((w) => w * c1),
    bias: map.bias.map((b) => c0 + c1 * b),
  };
}
