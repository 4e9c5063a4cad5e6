/**
 * A model in blindml's IR: a directed acyclic graph of layers over named tensors. One tensor is
 * the model's input, one its output; every node reads one or more tensors (several only for
 * {@link Add} and {@link Concat}) and writes one. A chain of layers (`new Model(shape, layers)`)
 * is the special case where each node reads the previous node's output.
 *
 * The shapes of all tensors are worked out once, when the model is built, so a model that exists
 * is a model whose layers fit together.
 *
 * @module
 */
import { ShapeError } from '../errors.js';
import { isMultiInput, outputShapeOf, type Layer } from './layers.js';
import { sizeOf, type Shape } from './shape.js';

/** One node of the graph. */
export interface ModelNode {
  /** The ONNX node's name (or `layer<i>` for a chain built from layers), for error messages. */
  readonly name: string;
  readonly layer: Layer;
  /** The tensors the layer reads, in order (Add sums them; Concat stacks them). */
  readonly inputs: readonly string[];
  /** The tensor the layer writes. */
  readonly output: string;
}

/** What {@link Model.fromGraph} takes. */
export interface ModelGraph {
  readonly inputName: string;
  readonly inputShape: Shape;
  /** In any order; the model keeps them topologically sorted. */
  readonly nodes: readonly ModelNode[];
  readonly outputName: string;
  readonly name?: string;
}

/** The input tensor's name of a chain built from layers. */
const CHAIN_INPUT = 'input';

/** A graph of layers with known shapes between them. */
export class Model {
  readonly inputShape: Shape;
  /** Name of the input tensor. */
  readonly inputName: string;
  /** Name of the output tensor (the input's name for a model without nodes). */
  readonly outputName: string;
  /**
   * The nodes, topologically sorted (every node after the nodes writing its inputs). Nodes whose
   * output does not reach the model's output are left out.
   */
  readonly nodes: readonly ModelNode[];
  /** The nodes' layers, in the order of {@link nodes}. */
  readonly layers: readonly Layer[];
  /** True if each node reads only the previous node's output (the first: the input). */
  readonly isChain: boolean;
  /** Free-form name (the ONNX graph name, or the file name). */
  readonly name: string;
  private readonly shapeByTensor: ReadonlyMap<string, Shape>;
  private readonly chainShapes: readonly Shape[] | undefined;

  /**
   * `new Model(inputShape, layers, name?)` builds a chain: each layer consumes the previous
   * layer's output. `new Model(graph)` (or {@link Model.fromGraph}) builds any graph.
   *
   * @throws {ShapeError} if a layer cannot take its inputs' shapes or gets the wrong number of
   *   inputs (Add and Concat cannot be part of a chain).
   * @throws {RangeError} for a graph in which a tensor is written twice or read without being
   *   written, the nodes form a cycle, or the output is never written.
   */
  constructor(inputShape: Shape, layers: readonly Layer[], name?: string);
  constructor(graph: ModelGraph);
  constructor(shapeOrGraph: Shape | ModelGraph, layers: readonly Layer[] = [], name = '') {
    const graph = isShape(shapeOrGraph) ? chainGraph(shapeOrGraph, layers, name) : shapeOrGraph;
    const { nodes, shapes } = checkGraph(graph);
    this.inputShape = [...graph.inputShape];
    this.inputName = graph.inputName;
    this.outputName = graph.outputName;
    this.name = graph.name ?? '';
    this.nodes = nodes;
    this.layers = nodes.map((n) => n.layer);
    this.shapeByTensor = shapes;
    const last = nodes[nodes.length - 1];
    this.isChain =
      nodes.every((n, i) => n.inputs.length === 1 && n.inputs[0] === (i === 0 ? this.inputName : nodes[i - 1]!.output)) &&
      (last === undefined ? this.outputName === this.inputName : last.output === this.outputName);
    this.chainShapes = this.isChain ? [this.inputShape, ...nodes.map((n) => shapes.get(n.output)!)] : undefined;
  }

  /** Same as `new Model(graph)`. @throws as the constructor. */
  static fromGraph(graph: ModelGraph): Model {
    return new Model(graph);
  }

  /**
   * The shape of a tensor of the graph.
   *
   * @throws {RangeError} for a name that is not a tensor of the model.
   */
  shapeOf(tensor: string): Shape {
    const shape = this.shapeByTensor.get(tensor);
    if (shape === undefined) throw new RangeError(`the model has no tensor '${tensor}'`);
    return shape;
  }

  /**
   * Chains only: `shapes[i]` is the input shape of `layers[i]`; the last entry is the model's
   * output shape. For other graphs use {@link shapeOf} with the nodes' tensor names.
   *
   * @throws {ShapeError} if the model is not a chain.
   */
  get shapes(): readonly Shape[] {
    if (this.chainShapes === undefined) {
      throw new ShapeError(`model ${this.name ? `'${this.name}' ` : ''}is a graph, not a chain of layers; read shapes with shapeOf(tensor)`);
    }
    return this.chainShapes;
  }

  get outputShape(): Shape {
    return this.shapeOf(this.outputName);
  }

  /** Number of values in one input sample. */
  get inputSize(): number {
    return sizeOf(this.inputShape);
  }

  /** Number of values in one output sample. */
  get outputSize(): number {
    return sizeOf(this.outputShape);
  }

  /** Total weights and biases (convolutions, dense layers, affine maps). */
  get parameterCount(): number {
    let n = 0;
    for (const layer of this.layers) n += parametersOf(layer);
    return n;
  }

  /** One line per node: kind, output shape, parameters, and for a graph the node's inputs. */
  summary(): string {
    const lines = [`input ${fmt(this.inputShape)}`];
    for (const node of this.nodes) {
      const p = parametersOf(node.layer);
      const params = p > 0 ? `  ${p} params` : '';
      const from = this.isChain ? '' : `  ${node.name} ← ${node.inputs.join(', ')}`;
      lines.push(`${node.layer.kind.padEnd(16)}→ ${fmt(this.shapeOf(node.output))}${params}${from}`);
    }
    lines.push(`total ${this.parameterCount} params`);
    return lines.join('\n');
  }
}

function parametersOf(layer: Layer): number {
  return layer.kind === 'conv2d' || layer.kind === 'dense' || layer.kind === 'affine' ? layer.parameterCount : 0;
}

function isShape(x: Shape | ModelGraph): x is Shape {
  return Array.isArray(x);
}

function chainGraph(inputShape: Shape, layers: readonly Layer[], name: string): ModelGraph {
  const nodes = layers.map((layer, i): ModelNode => {
    if (isMultiInput(layer)) throw new ShapeError(`layer ${i} (${layer.kind}) takes several inputs; build a graph with Model.fromGraph`);
    return { name: `layer${i}`, layer, inputs: [i === 0 ? CHAIN_INPUT : `layer${i - 1}`], output: `layer${i}` };
  });
  const outputName = nodes.length > 0 ? `layer${nodes.length - 1}` : CHAIN_INPUT;
  return { inputName: CHAIN_INPUT, inputShape, nodes, outputName, name };
}

/**
 * Sorts the nodes topologically (stable: a node keeps its place unless an input comes later),
 * drops those that do not reach the output, and works out every tensor's shape.
 */
function checkGraph(graph: ModelGraph): { nodes: ModelNode[]; shapes: Map<string, Shape> } {
  const writer = new Map<string, ModelNode>();
  for (const node of graph.nodes) {
    if (node.output === graph.inputName || writer.has(node.output)) {
      throw new RangeError(`tensor '${node.output}' is written twice (node '${node.name}')`);
    }
    writer.set(node.output, node);
  }
  if (graph.outputName !== graph.inputName && !writer.has(graph.outputName)) {
    throw new RangeError(`no node writes the output tensor '${graph.outputName}'`);
  }
  // Depth-first from the output: visits only live nodes and emits each after its inputs.
  const sorted: ModelNode[] = [];
  const state = new Map<ModelNode, 'open' | 'done'>();
  const visit = (tensor: string, reader: string): void => {
    if (tensor === graph.inputName) return;
    const node = writer.get(tensor);
    if (node === undefined) throw new RangeError(`node '${reader}' reads tensor '${tensor}', which nothing writes`);
    const s = state.get(node);
    if (s === 'done') return;
    if (s === 'open') throw new RangeError(`the graph has a cycle through node '${node.name}'`);
    state.set(node, 'open');
    for (const input of node.inputs) visit(input, node.name);
    state.set(node, 'done');
    sorted.push(node);
  };
  visit(graph.outputName, 'output');
  // Keep the given order where it is already topological, so chains come out as given.
  const order = new Map(graph.nodes.map((n, i) => [n, i]));
  const nodes = stableTopological(sorted, order, graph.inputName);
  const shapes = new Map<string, Shape>([[graph.inputName, [...graph.inputShape]]]);
  for (const node of nodes) {
    const inputs = node.inputs.map((t) => shapes.get(t)!);
    try {
      shapes.set(node.output, outputShapeOf(node.layer, inputs));
    } catch (err) {
      if (err instanceof ShapeError) throw new ShapeError(`node '${node.name}' (${node.layer.kind}): ${err.message}`);
      throw err;
    }
  }
  return { nodes, shapes };
}

/** Kahn's algorithm, always taking the ready node that came first in the given order. */
function stableTopological(live: readonly ModelNode[], order: ReadonlyMap<ModelNode, number>, input: string): ModelNode[] {
  const byOutput = new Map(live.map((n) => [n.output, n]));
  const waiting = new Map<ModelNode, number>();
  const readers = new Map<string, ModelNode[]>();
  for (const node of live) {
    const deps = new Set(node.inputs.filter((t) => t !== input && byOutput.has(t)));
    waiting.set(node, deps.size);
    for (const t of deps) readers.set(t, [...(readers.get(t) ?? []), node]);
  }
  const ready = live.filter((n) => waiting.get(n) === 0);
  const out: ModelNode[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => order.get(a)! - order.get(b)!);
    const node = ready.shift()!;
    out.push(node);
    for (const r of readers.get(node.output) ?? []) {
      const left = waiting.get(r)! - 1;
      waiting.set(r, left);
      if (left === 0) ready.push(r);
    }
  }
  return out;
}

function fmt(shape: Shape): string {
  return `[${shape.join('×')}]`;
}
