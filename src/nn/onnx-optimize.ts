/**
 * Rewrites of an imported graph that keep its function and leave fewer, larger layers:
 * - an {@link Affine} right after a Conv2d or Dense that feeds nothing else folds into that
 *   layer's weights and bias (batch normalization, a bias Add, a constant factor);
 * - two consecutive Affine layers merge; an Affine that changes nothing disappears;
 * - a zero {@link Pad} of height and width that feeds only a Conv2d, or an AvgPool2d (not in
 *   ceil mode), becomes that layer's padding (explicit zeros count toward an average).
 * Browser-safe.
 *
 * @module
 */
import { foldBatchNorm } from './fold.js';
import { Affine, AvgPool2d, Conv2d, compressVector, outputShapeOf, type Layer, type Pads } from './layers.js';
import type { ModelNode } from './model.js';
import type { Shape } from './shape.js';

/** A rewrite: the new node list, or undefined when the rule does not apply at this node. */
type Rule = (node: ModelNode, graph: GraphView) => ModelNode[] | undefined;

interface GraphView {
  readonly nodes: readonly ModelNode[];
  readonly output: string;
  readonly shapes: ReadonlyMap<string, Shape>;
  writer(tensor: string): ModelNode | undefined;
  readers(tensor: string): readonly ModelNode[];
}

/**
 * Applies the rewrites until none applies.
 *
 * @param nodes in topological order.
 */
export function optimizeGraph(nodes: readonly ModelNode[], inputName: string, outputName: string, inputShape: Shape): ModelNode[] {
  let current = [...nodes];
  const rules: Rule[] = [foldAffineIntoProducer, mergeAffines, dropIdentityAffine, mergePad];
  for (let rewritten = true; rewritten; ) {
    rewritten = false;
    const view = viewOf(current, inputName, outputName, inputShape);
    for (const node of current) {
      const next = rules.reduce<ModelNode[] | undefined>((found, rule) => found ?? rule(node, view), undefined);
      if (next !== undefined) {
        current = next;
        rewritten = true;
        break;
      }
    }
  }
  return current;
}

function viewOf(nodes: readonly ModelNode[], inputName: string, output: string, inputShape: Shape): GraphView {
  const writers = new Map(nodes.map((n) => [n.output, n]));
  const readers = new Map<string, ModelNode[]>();
  const shapes = new Map<string, Shape>([[inputName, inputShape]]);
  for (const n of nodes) {
    for (const t of n.inputs) readers.set(t, [...(readers.get(t) ?? []), n]);
    shapes.set(n.output, outputShapeOf(n.layer, n.inputs.map((t) => shapes.get(t) as Shape)));
  }
  return { nodes, output, shapes, writer: (t) => writers.get(t), readers: (t) => readers.get(t) ?? [] };
}

/** The single reader of `node`'s input, if that input is written by a node and read by nothing else. */
function soleProducer(node: ModelNode, graph: GraphView): ModelNode | undefined {
  const [input] = node.inputs;
  if (node.inputs.length !== 1 || input === undefined || input === graph.output) return undefined;
  const producer = graph.writer(input);
  return producer && graph.readers(input).length === 1 ? producer : undefined;
}

/** The node list with `remove` gone and `replace` standing in for `original`. */
function substitute(graph: GraphView, original: ModelNode, replacement: ModelNode, remove: ModelNode): ModelNode[] {
  return graph.nodes.filter((n) => n !== remove).map((n) => (n === original ? replacement : n));
}

const foldAffineIntoProducer: Rule = (node, graph) => {
  if (node.layer.kind !== 'affine') return undefined;
  const producer = soleProducer(node, graph);
  const layer = producer?.layer;
  if (producer === undefined || (layer?.kind !== 'conv2d' && layer?.kind !== 'dense')) return undefined;
  const channels = layer.kind === 'conv2d' ? layer.outChannels : layer.outFeatures;
  const { scale, bias } = node.layer;
  const perChannel = (v: Float32Array) => (v.length === 1 ? new Float32Array(channels).fill(v[0] as number) : v);
  if ((scale.length !== 1 && scale.length !== channels) || (bias.length !== 1 && bias.length !== channels)) return undefined;
  // y = s·(W x + b) + β: batch norm folding with mean 0, variance 1, epsilon 0.
  const folded: Layer = foldBatchNorm(layer, {
    scale: perChannel(scale),
    bias: perChannel(bias),
    mean: new Float32Array(channels),
    variance: new Float32Array(channels).fill(1),
    epsilon: 0,
  });
  return substitute(graph, producer, { ...producer, layer: folded, output: node.output }, node);
};

const mergeAffines: Rule = (node, graph) => {
  if (node.layer.kind !== 'affine') return undefined;
  const producer = soleProducer(node, graph);
  if (producer?.layer.kind !== 'affine') return undefined;
  const shape = graph.shapes.get(producer.output) as Shape;
  const first = producer.layer.expand(shape);
  const second = node.layer.expand(shape);
  const scale = first.scale.map((s, i) => (second.scale[i] as number) * s);
  const bias = first.bias.map((b, i) => (second.scale[i] as number) * b + (second.bias[i] as number));
  const merged = new Affine({ scale: compressVector(scale, shape), bias: compressVector(bias, shape) });
  return substitute(graph, producer, { ...producer, layer: merged, output: node.output }, node);
};

const dropIdentityAffine: Rule = (node, graph) => {
  if (node.layer.kind !== 'affine' || node.output === graph.output) return undefined;
  const { scale, bias } = node.layer;
  if (!scale.every((v) => v === 1) || !bias.every((v) => v === 0)) return undefined;
  const input = node.inputs[0] as string;
  return graph.nodes
    .filter((n) => n !== node)
    .map((n) => (n.inputs.includes(node.output) ? { ...n, inputs: n.inputs.map((t) => (t === node.output ? input : t)) } : n));
};

const mergePad: Rule = (node, graph) => {
  const layer = node.layer;
  if ((layer.kind !== 'conv2d' && layer.kind !== 'avgpool2d') || node.inputs.length !== 1) return undefined;
  const producer = soleProducer(node, graph);
  if (producer?.layer.kind !== 'pad' || producer.layer.pads.length !== 6) return undefined;
  const [c0, top, left, c1, bottom, right] = producer.layer.pads as [number, number, number, number, number, number];
  if (c0 !== 0 || c1 !== 0) return undefined;
  const extra: Pads = [top, left, bottom, right];
  let merged: Layer;
  if (layer.kind === 'conv2d') {
    merged = new Conv2d({ ...layer, pads: addPads(layer.pads, extra) });
  } else {
    // Explicit zeros are values, so they count toward the divisor; the layer's own padding must too.
    if (layer.ceilMode || (!layer.countIncludePad && layer.pads.some((p) => p !== 0))) return undefined;
    merged = new AvgPool2d({ ...layer, pads: addPads(layer.pads, extra), countIncludePad: true });
  }
  return substitute(graph, node, { ...node, layer: merged, inputs: producer.inputs }, producer);
};

function addPads(a: Pads, b: Pads): Pads {
  return [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]];
}
