/**
 * ONNX → blindml IR. The importer keeps ONNX's graph: residual Adds of two branches, Concat,
 * Transpose and the rest become nodes of a {@link Model} graph over named tensors.
 *
 * On the way:
 * - shape-only subgraphs (Shape, Gather, Unsqueeze, Concat, ConstantOfShape, Slice, Cast,
 *   Reshape… on constants, see `onnx-const.ts`) are evaluated, so `view(x.size(0), -1)` and
 *   `F.pad` arrive as plain Reshape and Pad; the batch dimension reads as 1 there;
 * - arithmetic with scalar constants is tracked as polynomials of one tensor (`onnx-poly.ts`):
 *   degree 1 becomes an {@link Affine} layer, higher degrees a {@link Polynomial};
 *   arithmetic with per-channel or per-element constants and BatchNormalization become Affine;
 * - x·sigmoid(x) becomes SiLU, x·HardSigmoid(x) HardSwish, and 0.5·x·(1 + erf(x/√2)) GELU;
 * - then Affine layers fold into the Conv/Gemm/MatMul before them (a bias Add, batch norm) when
 *   that layer feeds nothing else, consecutive Affine layers merge, and a zero Pad merges into
 *   the Conv or AveragePool after it.
 *
 * Any other operator, or an attribute value blindml does not implement, is refused with an
 * {@link UnsupportedOpError} naming the op and the node, and saying what to do instead.
 *
 * The graph input's first dimension is the batch; the rest (which must be known) is the sample
 * shape. Browser-safe.
 *
 * @module
 */
import { FormatError, ShapeError, UnsupportedOpError } from '../errors.js';
import {
  Add,
  Affine,
  AvgPool2d,
  Clip,
  Concat,
  Conv2d,
  Dense,
  Flatten,
  Gelu,
  GlobalAvgPool2d,
  HardSwish,
  LeakyRelu,
  LogSoftmax,
  MaxPool2d,
  Pad,
  Polynomial,
  Relu,
  Reshape,
  Sigmoid,
  Silu,
  Softmax,
  Tanh,
  Transpose,
  compressVector,
  outputShapeOf,
  type Layer,
  type Pads,
  type Size2,
} from './layers.js';
import { Model, type ModelNode } from './model.js';
import { broadcastTo, FOLDABLE_OPS, foldConstant, numbersOf, resolveShape } from './onnx-const.js';
import { optimizeGraph } from './onnx-optimize.js';
import { combinePolynomials, type Coefficients, type PolyOperand } from './onnx-poly.js';
import { Attributes, decodeModel, onnx, readTensor, toInt, type ConstTensor, type proto } from './onnx-proto.js';
import { formatShape, sizeOf, type Shape } from './shape.js';

/** The operators the importer understands (on data; {@link FOLDABLE_OPS} also on constants). */
export const SUPPORTED_OPS: readonly string[] = [
  'Conv', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Div', 'Pow', 'AveragePool', 'MaxPool',
  'GlobalAveragePool', 'ReduceMean', 'BatchNormalization', 'Flatten', 'Reshape', 'Squeeze',
  'Unsqueeze', 'Transpose', 'Pad', 'Concat', 'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Clip',
  'HardSwish', 'HardSigmoid', 'Erf', 'Softmax', 'LogSoftmax', 'Identity', 'Dropout', 'Constant',
  'Shape', ...FOLDABLE_OPS,
].filter((op, i, all) => all.indexOf(op) === i);

/**
 * Builds a {@link Model} from the bytes of an `.onnx` file.
 *
 * @throws {FormatError} if the bytes are not an ONNX model, a tensor cannot be read, or the graph
 *   is malformed (unknown input names, no single float input of known shape, not one output).
 * @throws {UnsupportedOpError} for an operator or attribute value outside what blindml implements.
 * @throws {ShapeError} if the operators' shapes do not fit together.
 */
export function importOnnx(bytes: Uint8Array): Model {
  const model = decodeModel(bytes);
  const graph = model.graph as proto.IGraphProto;
  const opset = opsetVersion(model);
  const constants = new Constants();
  for (const init of graph.initializer ?? []) constants.add(init);
  const input = graphInput(graph, constants);
  const builder = new GraphBuilder(input.name, input.shape, constants, opset);
  (graph.node ?? []).forEach((node, index) => builder.apply(node, index));
  const outputs = graph.output ?? [];
  const [output] = outputs;
  if (outputs.length !== 1 || output === undefined) {
    throw new FormatError(`ONNX: expected one graph output, found ${outputs.map((o) => `'${o.name}'`).join(', ') || 'none'}`);
  }
  const outputName = builder.finish(output.name ?? '');
  const nodes = optimizeGraph(builder.nodes, input.name, outputName, input.shape);
  return new Model({ inputName: input.name, inputShape: input.shape, nodes, outputName, name: graph.name ?? '' });
}

function opsetVersion(model: proto.IModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (entry?.version == null) throw new FormatError('ONNX: the model declares no default opset');
  return toInt(entry.version);
}

function graphInput(graph: proto.IGraphProto, constants: Constants): { name: string; shape: Shape } {
  // Before IR version 4, initializers were also listed as graph inputs.
  const inputs = (graph.input ?? []).filter((i) => !constants.has(i.name ?? ''));
  const [input] = inputs;
  if (inputs.length !== 1 || input === undefined) {
    throw new FormatError(`ONNX: expected one graph input, found ${inputs.length}`);
  }
  const tensorType = input.type?.tensorType;
  if (tensorType?.elemType !== onnx.TensorProto.DataType.FLOAT) {
    throw new FormatError(`ONNX: graph input '${input.name}' must be a float tensor`);
  }
  const dims = tensorType.shape?.dim ?? [];
  const sample = dims.slice(1).map((d, i) => {
    const v = d.dimValue == null ? 0 : toInt(d.dimValue);
    if (v <= 0) {
      throw new FormatError(`ONNX: dimension ${i + 1} of graph input '${input.name}' is not a known size`);
    }
    return v;
  });
  if (dims.length < 2) {
    throw new FormatError(`ONNX: graph input '${input.name}' needs a batch dimension and a sample shape`);
  }
  return { name: input.name ?? '', shape: sample };
}

/**
 * Initializers and Constant outputs by name. Initializers are decoded on first use, so a tensor of
 * a type blindml does not read only matters if an operator needs it.
 */
class Constants {
  private readonly decoded = new Map<string, ConstTensor>();
  private readonly pending = new Map<string, proto.ITensorProto>();

  add(t: proto.ITensorProto): void {
    this.pending.set(t.name ?? '', t);
  }

  set(name: string, value: ConstTensor): void {
    this.decoded.set(name, value);
  }

  has(name: string): boolean {
    return this.decoded.has(name) || this.pending.has(name);
  }

  /** @throws {FormatError} if the tensor cannot be read. */
  get(name: string): ConstTensor | undefined {
    let value = this.decoded.get(name);
    const raw = this.pending.get(name);
    if (value === undefined && raw !== undefined) {
      value = readTensor(raw);
      this.decoded.set(name, value);
      this.pending.delete(name);
    }
    return value;
  }
}

/**
 * What an ONNX data tensor is: `coeffs` (a polynomial) of a base. The base is an IR tensor, or a
 * function of one that blindml only evaluates inside a larger pattern (erf(x/√2) inside GELU,
 * HardSigmoid inside HardSwish).
 */
interface Value {
  readonly base: Base;
  readonly coeffs: Coefficients;
  /** The ONNX node that computed it, for errors and for naming the layer that materializes it. */
  readonly node: string;
  readonly op: string;
}

type Base =
  | { readonly kind: 'tensor'; readonly name: string }
  | { readonly kind: 'erf' | 'hardsigmoid'; readonly of: string };

const IDENTITY: Coefficients = [0, 1];

/** The walk over the ONNX nodes, building IR nodes. */
class GraphBuilder {
  readonly nodes: ModelNode[] = [];
  private readonly values = new Map<string, Value>();
  private readonly shapes = new Map<string, Shape>();
  private readonly writers = new Map<string, ModelNode>();
  private readonly materialized = new Map<string, string>();

  constructor(
    inputName: string,
    inputShape: Shape,
    private readonly constants: Constants,
    private readonly opset: number,
  ) {
    this.values.set(inputName, { base: { kind: 'tensor', name: inputName }, coeffs: IDENTITY, node: inputName, op: 'input' });
    this.shapes.set(inputName, inputShape);
  }

  apply(node: proto.INodeProto, index: number): void {
    const ctx = new NodeContext(node, index, this.constants);
    const op = ctx.op;
    if (node.domain && node.domain !== 'ai.onnx') {
      throw new UnsupportedOpError(`${node.domain}.${op}`, ctx.name, 'only the default ONNX domain is supported');
    }
    if (!SUPPORTED_OPS.includes(op)) throw new UnsupportedOpError(op, ctx.name, advice(op));
    if (op === 'Constant') return this.constants.set(ctx.output, constantNode(ctx));
    for (const name of ctx.inputNames) {
      if (name !== '' && !this.constants.has(name) && !this.values.has(name)) {
        throw new FormatError(`ONNX: ${op} ${ctx.quoted} reads '${name}', which no earlier node computes`);
      }
    }
    const data = ctx.inputNames.filter((n) => this.values.has(n));
    if (op === 'Shape' && data.length === 1) return this.constants.set(ctx.output, this.shapeConstant(ctx, data[0] as string));
    if (data.length === 0) return this.fold(ctx);
    try {
      this.dispatch(op, ctx, data);
    } catch (err) {
      if (err instanceof ShapeError && !err.message.startsWith('ONNX')) {
        throw new ShapeError(`ONNX: ${op} ${ctx.quoted}: ${err.message}`);
      }
      throw err;
    }
  }

  /** @returns the IR tensor of the graph output. */
  finish(output: string): string {
    if (!this.values.has(output)) {
      throw new FormatError(`ONNX: the graph output '${output}' is ${this.constants.has(output) ? 'a constant' : 'not computed by any node'}`);
    }
    return this.materialize(output);
  }

  /** Shape of a data tensor: [1 (the batch), ...sample]; opset 15's start/end select a part. */
  private shapeConstant(ctx: NodeContext, tensor: string): ConstTensor {
    const full = [1, ...this.shapeOfValue(tensor)];
    const rank = full.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
    const start = clamp(ctx.attrs.int('start', 0));
    const end = clamp(ctx.attrs.int('end', rank));
    const dims = full.slice(start, end);
    return { type: 'int', dims: [dims.length], data: dims };
  }

  private fold(ctx: NodeContext): void {
    if (!FOLDABLE_OPS.includes(ctx.op)) ctx.refuse('it has no non-constant input and is not shape arithmetic blindml can evaluate');
    const result = foldConstant({
      op: ctx.op,
      opset: this.opset,
      inputs: ctx.inputNames.map((n) => (n === '' ? undefined : this.constants.get(n))),
      int: (name, fallback) => ctx.attrs.int(name, fallback),
      ints: (name) => (ctx.attrs.has(name) ? ctx.attrs.ints(name, []) : undefined),
      tensor: (name) => {
        const t = ctx.attrs.tensor(name);
        return t ? readTensor(t) : undefined;
      },
    });
    if (typeof result === 'string') ctx.refuse(result);
    this.constants.set(ctx.output, result);
  }

  private dispatch(op: string, ctx: NodeContext, data: readonly string[]): void {
    const x = data[0] as string;
    switch (op) {
      case 'Identity':
      case 'Dropout':
        return this.passThrough(ctx, x);
      case 'Conv':
        return this.emit(ctx, conv(ctx), [x]);
      case 'Gemm':
        return this.emit(ctx, gemm(ctx), [x]);
      case 'MatMul':
        return this.emit(ctx, matMul(ctx), [x]);
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
      case 'Pow':
        return this.arithmetic(ctx);
      case 'BatchNormalization':
        return this.emit(ctx, batchNorm(ctx), [x]);
      case 'AveragePool':
        return this.emit(ctx, averagePool(ctx), [x]);
      case 'MaxPool':
        return this.emit(ctx, maxPool(ctx), [x]);
      case 'GlobalAveragePool':
        return this.emit(ctx, new GlobalAvgPool2d(), [x]);
      case 'ReduceMean':
        return this.reduceMean(ctx, x);
      case 'Flatten':
        return this.emit(ctx, flatten(ctx, this.shapeOfValue(x)), [x]);
      case 'Reshape':
        return this.reshapeTo(ctx, x, reshapeTarget(ctx, this.shapeOfValue(x)));
      case 'Squeeze':
      case 'Unsqueeze':
        return this.reshapeTo(ctx, x, squeezed(ctx, this.shapeOfValue(x), this.opset));
      case 'Transpose':
        return this.transpose(ctx, x);
      case 'Pad':
        return this.pad(ctx, x);
      case 'Concat':
        return this.concat(ctx, data);
      case 'Relu':
        return this.emit(ctx, new Relu(), [x]);
      case 'LeakyRelu':
        return this.emit(ctx, new LeakyRelu(ctx.attrs.float('alpha', 0.01)), [x]);
      case 'Sigmoid':
        return this.emit(ctx, new Sigmoid(), [x]);
      case 'Tanh':
        return this.emit(ctx, new Tanh(), [x]);
      case 'Clip':
        return this.emit(ctx, clip(ctx, this.opset), [x]);
      case 'HardSwish':
        return this.emit(ctx, new HardSwish(), [x]);
      case 'HardSigmoid':
        return this.hardSigmoid(ctx, x);
      case 'Erf':
        return this.erf(ctx, x);
      case 'Softmax':
      case 'LogSoftmax':
        return this.emit(ctx, softmax(ctx, this.shapeOfValue(x), this.opset), [x]);
      default:
        // Shape arithmetic on a data tensor (a Gather of activations, say).
        return ctx.refuse(`${op} of a data tensor (blindml folds it only on constants)`);
    }
  }

  /** Adds an IR node computing `layer` of ONNX data tensors `inputs`; it becomes the node's output. */
  private emit(ctx: NodeContext, layer: Layer, inputs: readonly string[]): void {
    const irName = this.emitIr(ctx, layer, inputs.map((t) => this.materialize(t)), ctx.output);
    this.setValue(ctx, { kind: 'tensor', name: irName }, IDENTITY);
  }

  /** Adds an IR node reading IR tensors; returns its output's IR name (`output` or a variant). */
  private emitIr(ctx: NodeContext, layer: Layer, irInputs: readonly string[], output: string): string {
    const shape = outputShapeOf(layer, irInputs.map((t) => this.shapes.get(t) as Shape));
    const irName = this.freshName(output);
    this.addNode({ name: ctx.name, layer, inputs: irInputs, output: irName }, shape);
    return irName;
  }

  private addNode(node: ModelNode, shape: Shape): void {
    this.nodes.push(node);
    this.writers.set(node.output, node);
    this.shapes.set(node.output, shape);
  }

  /** An IR tensor name not used yet (ONNX names are unique, but helper tensors get suffixes). */
  private freshName(base: string): string {
    let name = base;
    for (let i = 1; this.shapes.has(name); i++) name = `${base}#${i}`;
    return name;
  }

  /** The IR tensor holding ONNX data tensor `tensor`, creating its Affine/Polynomial layer on first use. */
  private materialize(tensor: string): string {
    const done = this.materialized.get(tensor);
    if (done !== undefined) return done;
    const v = this.values.get(tensor);
    if (v === undefined) throw new FormatError(`ONNX: '${tensor}' is not a data tensor`);
    if (v.base.kind !== 'tensor') {
      throw v.base.kind === 'erf'
        ? new UnsupportedOpError('Erf', v.node, 'blindml evaluates erf only inside GELU, 0.5·x·(1 + erf(x/√2)); use nn.GELU() or another activation')
        : new UnsupportedOpError('HardSigmoid', v.node, 'blindml evaluates HardSigmoid only inside HardSwish, x·hardsigmoid(x); use nn.Hardswish() or nn.Sigmoid()');
    }
    const base = v.base.name;
    const c = v.coeffs;
    let name = base;
    if (!(c.length === 2 && c[0] === 0 && c[1] === 1)) {
      if (c.length < 2) {
        throw new UnsupportedOpError(v.op, v.node, 'the arithmetic here makes a constant tensor, not a function of its input');
      }
      const layer = c.length === 2
        ? new Affine({ scale: Float32Array.of(c[1] as number), bias: Float32Array.of(c[0] as number) })
        : new Polynomial(c);
      name = this.freshName(tensor);
      this.addNode({ name: v.node, layer, inputs: [base], output: name }, this.shapes.get(base) as Shape);
    }
    this.materialized.set(tensor, name);
    return name;
  }

  private shapeOfValue(tensor: string): Shape {
    const v = this.values.get(tensor) as Value;
    return this.shapes.get(v.base.kind === 'tensor' ? v.base.name : v.base.of) as Shape;
  }

  private setValue(ctx: NodeContext, base: Base, coeffs: Coefficients): void {
    this.values.set(ctx.output, { base, coeffs, node: ctx.name, op: ctx.op });
  }

  private passThrough(ctx: NodeContext, x: string): void {
    if (ctx.op === 'Dropout') {
      const training = ctx.constInput(2, 'training_mode');
      if (training && training.data.some((v) => v !== 0)) ctx.refuse('training mode');
    }
    this.values.set(ctx.output, this.values.get(x) as Value);
  }

  /**
   * Add, Sub, Mul, Div, Pow. Scalar constants and one base: a polynomial step. A per-channel or
   * per-element constant: an Affine layer. Two different bases: Add/Sub become an Add node,
   * Mul one of the recognized activations.
   */
  private arithmetic(ctx: NodeContext): void {
    const names = ctx.inputNames.filter((n) => n !== '');
    if (names.length !== 2) ctx.refuse(`${names.length} operands (expected 2)`);
    const [a, b] = names as [string, string];
    const constIndex = names.findIndex((n) => !this.values.has(n));
    if (constIndex >= 0) {
      const constant = ctx.requireConst(ctx.inputIndex(names[constIndex] as string), 'operand');
      const data = names[1 - constIndex] as string;
      if (constant.data.length === 1) return this.polynomialStep(ctx, a, b);
      return this.affineByConstant(ctx, data, constant, constIndex === 0);
    }
    const va = this.values.get(a) as Value;
    const vb = this.values.get(b) as Value;
    if (sameBase(va.base, vb.base)) return this.polynomialStep(ctx, a, b);
    switch (ctx.op) {
      case 'Add':
        this.emit(ctx, new Add(), [a, b]);
        return;
      case 'Sub': {
        // a − b = Add(a, −1·b): the negation is an affine step of b's own polynomial.
        const negated = `${ctx.output}#neg`;
        this.values.set(negated, { ...vb, coeffs: vb.coeffs.map((c) => -c), node: ctx.name, op: 'Sub' });
        this.emit(ctx, new Add(), [a, negated]);
        return;
      }
      case 'Mul':
        if (this.gatedActivation(ctx, va, vb) || this.gatedActivation(ctx, vb, va)) return;
        return ctx.refuse(
          `a product of two different tensors '${a}' and '${b}' (blindml takes constant factors, polynomials of one tensor, ` +
            'and the activations x·sigmoid(x), x·hardsigmoid(x) and GELU written out)',
        );
      default:
        return ctx.refuse(`${ctx.op} of two different tensors (only by a constant)`);
    }
  }

  private polynomialStep(ctx: NodeContext, a: string, b: string): void {
    let base: Base | undefined;
    const operand = (name: string): PolyOperand => {
      const v = this.values.get(name);
      if (v === undefined) return { scalar: scalarConstant(ctx, name) };
      base = v.base;
      return { poly: v.coeffs };
    };
    const pa = operand(a);
    const pb = operand(b);
    const result = combinePolynomials(ctx.op, pa, pb);
    if (typeof result === 'string') ctx.refuse(`not an elementwise polynomial: ${result}`);
    this.setValue(ctx, base as Base, result);
  }

  /** x·s(x) where s is sigmoid (SiLU), HardSigmoid(x) (HardSwish) or 1 + erf(x/√2) (GELU). */
  private gatedActivation(ctx: NodeContext, x: Value, gate: Value): boolean {
    const cx = x.coeffs;
    if (x.base.kind !== 'tensor' || cx.length !== 2 || cx[0] !== 0) return false;
    const input = x.base.name;
    const a = cx[1] as number;
    const [g0 = 0, g1 = 0] = gate.coeffs;
    let layer: Layer | undefined;
    let factor = 0;
    if (gate.base.kind === 'tensor' && gate.coeffs.length === 2 && g0 === 0) {
      const writer = this.writers.get(gate.base.name);
      if (writer?.layer.kind === 'sigmoid' && writer.inputs[0] === input) {
        layer = new Silu();
        factor = a * g1;
      }
    } else if (gate.base.kind === 'hardsigmoid' && gate.base.of === input && gate.coeffs.length === 2 && g0 === 0) {
      layer = new HardSwish();
      factor = a * g1;
    } else if (gate.base.kind === 'erf' && gate.base.of === input && gate.coeffs.length === 2 && g0 === g1) {
      // a·x · g·(1 + erf(x/√2)) = 2ag · GELU(x)
      layer = new Gelu();
      factor = 2 * a * g1;
    }
    if (layer === undefined) return false;
    const out = this.emitIr(ctx, layer, [input], `${ctx.output}#${layer.kind}`);
    this.setValue(ctx, { kind: 'tensor', name: out }, [0, factor]);
    return true;
  }

  /** erf(x/√2) is kept as a pattern base until the rest of GELU arrives. */
  private erf(ctx: NodeContext, x: string): void {
    const v = this.values.get(x) as Value;
    const [c0 = 0, c1 = 0] = v.coeffs;
    if (v.base.kind !== 'tensor' || v.coeffs.length !== 2 || c0 !== 0 || Math.abs(c1 * Math.SQRT2 - 1) > 1e-6) {
      ctx.refuse('blindml evaluates erf only inside GELU, 0.5·x·(1 + erf(x/√2)); use nn.GELU() or another activation');
    }
    this.setValue(ctx, { kind: 'erf', of: v.base.name }, IDENTITY);
  }

  private hardSigmoid(ctx: NodeContext, x: string): void {
    const v = this.values.get(x) as Value;
    const alpha = ctx.attrs.float('alpha', 0.2);
    const beta = ctx.attrs.float('beta', 0.5);
    if (v.base.kind !== 'tensor' || Math.abs(alpha - 1 / 6) > 1e-6 || Math.abs(beta - 0.5) > 1e-6) {
      ctx.refuse('blindml evaluates HardSigmoid only inside HardSwish, x·hardsigmoid(x) with alpha 1/6 and beta 1/2');
    }
    const base = this.materialize(x);
    this.setValue(ctx, { kind: 'hardsigmoid', of: base }, IDENTITY);
  }

  /** data ⊙ constant (per channel or per element): an Affine layer. */
  private affineByConstant(ctx: NodeContext, data: string, constant: ConstTensor, constantFirst: boolean): void {
    if (constant.type !== 'float') ctx.refuse('an integer constant operand');
    const shape = this.shapeOfValue(data);
    const dims = [1, ...shape];
    let values: number[];
    try {
      values = broadcastTo(constant, dims);
    } catch {
      return ctx.refuse(`a constant of shape [${constant.dims.join(', ')}] that does not broadcast to the data's ${formatShape(dims)}`);
    }
    const c = Float32Array.from(values);
    const one = (v: number) => new Float32Array(c.length).fill(v);
    let scale: Float32Array;
    let bias: Float32Array;
    switch (ctx.op) {
      case 'Add':
        [scale, bias] = [one(1), c];
        break;
      case 'Sub':
        [scale, bias] = constantFirst ? [one(-1), c] : [one(1), c.map((v) => -v)];
        break;
      case 'Mul':
        [scale, bias] = [c, one(0)];
        break;
      case 'Div':
        if (constantFirst) ctx.refuse('division by a tensor (only by a constant)');
        if (c.some((v) => v === 0)) ctx.refuse('division by zero');
        [scale, bias] = [c.map((v) => 1 / v), one(0)];
        break;
      default:
        return ctx.refuse(`a non-scalar constant operand of ${ctx.op}`);
    }
    this.emit(ctx, new Affine({ scale: compressVector(scale, shape), bias: compressVector(bias, shape) }), [data]);
  }

  private reduceMean(ctx: NodeContext, x: string): void {
    const shape = this.shapeOfValue(x);
    const rank = shape.length + 1;
    const axesInput = this.opset >= 18 ? numbersOf(ctx.constInput(1, 'axes')) : undefined;
    const axes = (axesInput ?? ctx.attrs.ints('axes', [])).map((a) => (a < 0 ? a + rank : a)).sort();
    const keep = ctx.attrs.int('keepdims', 1) !== 0;
    if (rank !== 4 || axes.join() !== '2,3') {
      ctx.refuse(`axes [${axes.join(', ')}] of a rank-${rank} tensor (only the spatial axes 2 and 3 of an image: a global average pool)`);
    }
    if (keep) {
      this.emit(ctx, new GlobalAvgPool2d(), [x]);
      return;
    }
    const pooled = this.emitIr(ctx, new GlobalAvgPool2d(), [this.materialize(x)], `${ctx.output}#pool`);
    const flat = this.emitIr(ctx, new Flatten(), [pooled], ctx.output);
    this.setValue(ctx, { kind: 'tensor', name: flat }, IDENTITY);
  }

  private reshapeTo(ctx: NodeContext, x: string, target: Shape): void {
    const shape = this.shapeOfValue(x);
    if (formatShape(target) === formatShape(shape)) return this.passThrough(ctx, x);
    this.emit(ctx, target.length === 1 ? new Flatten() : new Reshape(target), [x]);
  }

  private transpose(ctx: NodeContext, x: string): void {
    const rank = this.shapeOfValue(x).length + 1;
    const perm = ctx.attrs.ints('perm', Array.from({ length: rank }, (_, i) => rank - 1 - i));
    if (perm.length !== rank || perm[0] !== 0) {
      ctx.refuse(`perm [${perm.join(', ')}] (the batch axis must stay first)`);
    }
    const sample = perm.slice(1).map((p) => p - 1);
    if (sample.every((p, i) => p === i)) return this.passThrough(ctx, x);
    this.emit(ctx, new Transpose(sample), [x]);
  }

  private pad(ctx: NodeContext, x: string): void {
    const mode = ctx.attrs.string('mode', 'constant');
    if (mode !== 'constant') ctx.refuse(`mode '${mode}' (only constant zero padding)`);
    let pads: readonly number[];
    let value: number;
    if (this.opset >= 11) {
      pads = numbersOf(ctx.requireConst(1, 'pads'));
      value = Number(ctx.constInput(2, 'constant_value')?.data[0] ?? 0);
      if (ctx.inputCount > 3) ctx.refuse('the axes input');
    } else {
      pads = ctx.attrs.ints('pads', []);
      value = ctx.attrs.float('value', 0);
    }
    if (value !== 0) ctx.refuse(`padding value ${value} (only zero)`);
    const rank = this.shapeOfValue(x).length + 1;
    if (pads.length !== 2 * rank) ctx.refuse(`${pads.length} pads for a rank-${rank} tensor`);
    if (pads[0] !== 0 || pads[rank] !== 0 || pads.some((p) => p < 0)) {
      ctx.refuse(`pads [${pads.join(', ')}] (only non-negative padding of the sample's axes; use Slice-free cropping in the model)`);
    }
    if (pads.every((p) => p === 0)) return this.passThrough(ctx, x);
    this.emit(ctx, new Pad([...pads.slice(1, rank), ...pads.slice(rank + 1)]), [x]);
  }

  private concat(ctx: NodeContext, data: readonly string[]): void {
    if (data.length !== ctx.inputCount) ctx.refuse('a constant input (only data tensors are concatenated)');
    const rank = this.shapeOfValue(data[0] as string).length + 1;
    const axis = ctx.attrs.int('axis', 1);
    if ((axis < 0 ? axis + rank : axis) !== 1) ctx.refuse(`axis ${axis} (only 1: channels, or features of a vector)`);
    this.emit(ctx, new Concat(), data);
  }
}

function sameBase(a: Base, b: Base): boolean {
  return a.kind === 'tensor' ? b.kind === 'tensor' && a.name === b.name : b.kind === a.kind && b.of === a.of;
}

/** What to do instead, for operators blindml does not implement. */
function advice(op: string): string {
  const known: Record<string, string> = {
    Exp: 'no elementwise exponential outside softmax; use a supported activation',
    LSTM: 'recurrent layers are not supported; use convolutions or dense layers',
    GRU: 'recurrent layers are not supported; use convolutions or dense layers',
    ConvTranspose: 'transposed convolutions are not supported; upsample with a Conv',
    Resize: 'resizing is not supported; resize the inputs before inference',
    Upsample: 'upsampling is not supported; resize the inputs before inference',
    Elu: 'use Relu or LeakyRelu',
    Selu: 'use Relu or LeakyRelu',
    Softplus: 'use Relu or Sigmoid',
    ReduceMax: 'use MaxPool or GlobalAveragePool',
    ReduceSum: 'use GlobalAveragePool (ReduceMean over the spatial axes)',
    InstanceNormalization: 'normalization that depends on the input is not linear; use BatchNormalization',
    LayerNormalization: 'normalization that depends on the input is not linear; use BatchNormalization',
  };
  return `${known[op] ?? 'it is not among the operators blindml evaluates'} (supported: ${SUPPORTED_OPS.join(', ')})`;
}

/** One node with its name, attributes and constant inputs. */
class NodeContext {
  readonly op: string;
  readonly name: string;
  readonly output: string;
  readonly attrs: Attributes;
  readonly inputNames: readonly string[];

  constructor(
    node: proto.INodeProto,
    index: number,
    private readonly constants: Constants,
  ) {
    this.op = node.opType ?? '';
    this.name = node.name || `#${index}`;
    this.output = node.output?.[0] ?? '';
    this.attrs = new Attributes(node, `${this.op} ${this.quoted}`);
    this.inputNames = [...(node.input ?? [])];
    if ((node.output ?? []).filter((n) => n !== '').length > 1 && this.op !== 'Dropout') {
      // MaxPool's Indices and BatchNormalization's training outputs.
      this.refuse('more than one output');
    }
  }

  get quoted(): string {
    return `node '${this.name}'`;
  }

  isConstInput(i: number): boolean {
    const name = this.inputNames[i];
    return name !== undefined && name !== '' && this.constants.has(name);
  }

  /** Position of input `name` among the node's inputs. */
  inputIndex(name: string): number {
    return this.inputNames.indexOf(name);
  }

  get inputCount(): number {
    return this.inputNames.filter((n) => n !== '').length;
  }

  /** The constant at input `i`, or undefined when the input is absent. */
  constInput(i: number, what: string): ConstTensor | undefined {
    const name = this.inputNames[i];
    if (name === undefined || name === '') return undefined;
    const t = this.constants.get(name);
    if (t === undefined) this.refuse(`its ${what} input '${name}' is not a constant`);
    return t;
  }

  requireConst(i: number, what: string): ConstTensor {
    const t = this.constInput(i, what);
    if (t === undefined) throw new FormatError(`ONNX: ${this.op} ${this.quoted} has no ${what} input`);
    return t;
  }

  requireFloat(i: number, what: string): Extract<ConstTensor, { type: 'float' }> {
    const t = this.requireConst(i, what);
    if (t.type !== 'float') throw new FormatError(`ONNX: the ${what} of ${this.op} ${this.quoted} is not a float tensor`);
    return t;
  }

  optionalFloat(i: number, what: string): Extract<ConstTensor, { type: 'float' }> | undefined {
    return this.constInput(i, what) === undefined ? undefined : this.requireFloat(i, what);
  }

  refuse(detail: string): never {
    throw new UnsupportedOpError(this.op, this.name, detail);
  }
}

/** A constant operand of polynomial arithmetic: one number. */
function scalarConstant(ctx: NodeContext, name: string): number {
  const t = ctx.requireConst(ctx.inputIndex(name), 'operand');
  return Number(t.data[0]);
}

function constantNode(ctx: NodeContext): ConstTensor {
  const t = ctx.attrs.tensor('value');
  if (t) return readTensor(t);
  if (ctx.attrs.has('value_float')) return { type: 'float', dims: [], data: Float32Array.of(ctx.attrs.float('value_float', 0)) };
  const floats = ctx.attrs.floats('value_floats');
  if (floats) return { type: 'float', dims: [floats.length], data: Float32Array.from(floats) };
  if (ctx.attrs.has('value_int')) return { type: 'int', dims: [], data: [ctx.attrs.int('value_int', 0)] };
  if (ctx.attrs.has('value_ints')) {
    const ints = ctx.attrs.ints('value_ints', []);
    return { type: 'int', dims: [ints.length], data: ints };
  }
  return ctx.refuse('only tensor, float and int constants');
}

/** Common checks and attributes of Conv, AveragePool and MaxPool. */
function window(ctx: NodeContext, kernelFromWeights?: Size2): { kernel: Size2; stride: Size2; pads: Pads; ceilMode: boolean } {
  const kernelAttr = ctx.attrs.ints('kernel_shape', kernelFromWeights ?? []);
  if (kernelAttr.length !== 2) ctx.refuse(`kernel_shape [${kernelAttr.join(', ')}] (only 2-D windows)`);
  const kernel: Size2 = [kernelAttr[0] as number, kernelAttr[1] as number];
  if (kernelFromWeights && (kernel[0] !== kernelFromWeights[0] || kernel[1] !== kernelFromWeights[1])) {
    throw new FormatError(`ONNX: kernel_shape of ${ctx.op} ${ctx.quoted} differs from its weights`);
  }
  const dilations = ctx.attrs.ints('dilations', [1, 1]);
  if (dilations.some((d) => d !== 1)) ctx.refuse(`dilations [${dilations.join(', ')}] (only 1)`);
  const strides = ctx.attrs.ints('strides', [1, 1]);
  if (strides.length !== 2) ctx.refuse(`strides [${strides.join(', ')}]`);
  const autoPad = ctx.attrs.string('auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') ctx.refuse(`auto_pad ${autoPad} (give explicit pads)`);
  const p = autoPad === 'VALID' ? [0, 0, 0, 0] : ctx.attrs.ints('pads', [0, 0, 0, 0]);
  if (p.length !== 4) ctx.refuse(`pads [${p.join(', ')}]`);
  const ceilMode = ctx.attrs.int('ceil_mode', 0) !== 0;
  return { kernel, stride: [strides[0] as number, strides[1] as number], pads: p as unknown as Pads, ceilMode };
}

function conv(ctx: NodeContext): Conv2d {
  const w = ctx.requireFloat(1, 'weight');
  if (w.dims.length !== 4) ctx.refuse(`weights of rank ${w.dims.length} (only 2-D convolutions)`);
  const [outChannels, perGroup, kh, kw] = w.dims as [number, number, number, number];
  const group = ctx.attrs.int('group', 1);
  if (group < 1 || outChannels % group !== 0) ctx.refuse(`group ${group} for ${outChannels} output channels`);
  const { kernel, stride, pads } = window(ctx, [kh, kw]);
  const bias = ctx.optionalFloat(2, 'bias');
  return new Conv2d({
    weights: w.data,
    ...(bias ? { bias: bias.data } : {}),
    outChannels,
    inChannels: perGroup * group,
    kernel,
    stride,
    pads,
    group,
  });
}

function gemm(ctx: NodeContext): Dense {
  if (ctx.attrs.int('transA', 0) !== 0) ctx.refuse('transA 1 (the data input must be batch × features)');
  if (!ctx.isConstInput(1)) ctx.refuse('a data tensor as B (only constant weights)');
  const b = ctx.requireFloat(1, 'B');
  if (b.dims.length !== 2) throw new FormatError(`ONNX: B of Gemm ${ctx.quoted} is not a matrix`);
  const transB = ctx.attrs.int('transB', 0) !== 0;
  const [rows, cols] = b.dims as [number, number];
  const [outFeatures, inFeatures] = transB ? [rows, cols] : [cols, rows];
  const alpha = ctx.attrs.float('alpha', 1);
  const beta = ctx.attrs.float('beta', 1);
  const weights = transB ? b.data.slice() : transpose(b.data, rows, cols);
  if (alpha !== 1) for (let i = 0; i < weights.length; i++) weights[i] = (weights[i] as number) * alpha;
  const c = ctx.optionalFloat(2, 'C');
  const bias = new Float32Array(outFeatures);
  if (c) {
    const vector = broadcastVector(c, outFeatures);
    if (!vector) ctx.refuse(`C of shape [${c.dims.join(', ')}] (only a scalar or a row of ${outFeatures})`);
    for (let i = 0; i < outFeatures; i++) bias[i] = beta * (vector[i] as number);
  }
  return new Dense({ weights, bias, inFeatures, outFeatures });
}

function matMul(ctx: NodeContext): Dense {
  if (ctx.isConstInput(0)) ctx.refuse('a constant first operand (the data must come first)');
  if (!ctx.isConstInput(1)) ctx.refuse('a product of two data tensors (only constant weights)');
  const b = ctx.requireFloat(1, 'second operand');
  if (b.dims.length !== 2) ctx.refuse(`a second operand of rank ${b.dims.length} (only a matrix)`);
  const [inFeatures, outFeatures] = b.dims as [number, number];
  return new Dense({ weights: transpose(b.data, inFeatures, outFeatures), inFeatures, outFeatures });
}

/** Batch normalization in inference mode: a per-channel Affine (folded into a Conv before it later). */
function batchNorm(ctx: NodeContext): Affine {
  if (ctx.attrs.int('training_mode', 0) !== 0) ctx.refuse('training_mode 1');
  const vector = (i: number, what: string): Float32Array => ctx.requireFloat(i, what).data;
  const [gamma, beta, mean, variance] = [vector(1, 'scale'), vector(2, 'bias'), vector(3, 'mean'), vector(4, 'variance')];
  const epsilon = ctx.attrs.float('epsilon', 1e-5);
  const channels = gamma.length;
  if ([beta, mean, variance].some((v) => v.length !== channels)) {
    throw new FormatError(`ONNX: the vectors of BatchNormalization ${ctx.quoted} differ in length`);
  }
  const scale = new Float32Array(channels);
  const bias = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const denom = (variance[c] as number) + epsilon;
    if (!(denom > 0)) throw new FormatError(`ONNX: BatchNormalization ${ctx.quoted} has variance + epsilon ${denom} at channel ${c}`);
    const s = (gamma[c] as number) / Math.sqrt(denom);
    scale[c] = s;
    bias[c] = (beta[c] as number) - s * (mean[c] as number);
  }
  return new Affine({ scale, bias });
}

function averagePool(ctx: NodeContext): AvgPool2d {
  const { kernel, stride, pads, ceilMode } = window(ctx);
  const countIncludePad = ctx.attrs.int('count_include_pad', 0) !== 0;
  return new AvgPool2d({ kernel, stride, pads, countIncludePad, ceilMode });
}

function maxPool(ctx: NodeContext): MaxPool2d {
  if (ctx.attrs.int('storage_order', 0) !== 0) ctx.refuse('storage_order 1');
  const { kernel, stride, pads, ceilMode } = window(ctx);
  return new MaxPool2d({ kernel, stride, pads, ceilMode });
}

function flatten(ctx: NodeContext, shape: Shape): Flatten {
  const rank = shape.length + 1;
  const axis = ctx.attrs.int('axis', 1);
  if ((axis < 0 ? axis + rank : axis) !== 1) ctx.refuse(`axis ${axis} (only 1: keep the batch dimension)`);
  return new Flatten();
}

/** The sample shape a Reshape asks for (its target's first entry is the batch). */
function reshapeTarget(ctx: NodeContext, shape: Shape): Shape {
  const target = ctx.requireConst(1, 'shape');
  if (target.type !== 'int') throw new FormatError(`ONNX: the shape of Reshape ${ctx.quoted} is not an integer tensor`);
  const allowZero = ctx.attrs.int('allowzero', 0) !== 0;
  const t = target.data;
  // Entry 0 is the batch: kept (0), inferred (-1), or 1 (exported with batch 1, or x.size(0) folded).
  const [batch] = t;
  if (batch === undefined || (batch !== 0 && batch !== 1 && batch !== -1) || (batch === 0 && allowZero)) {
    ctx.refuse(`shape [${t.join(', ')}] (the first entry must keep the batch: 0, 1 or -1)`);
  }
  const rest = t.slice(1);
  if (batch === -1 && rest.includes(-1)) ctx.refuse(`shape [${t.join(', ')}]`);
  let resolved: number[];
  try {
    resolved = resolveShape(shape, rest.map((d) => (d === -1 && batch === -1 ? 0 : d)), allowZero);
  } catch {
    return ctx.refuse(`shape [${t.join(', ')}]`);
  }
  if (sizeOf(resolved) !== sizeOf(shape) || !resolved.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ShapeError(`ONNX: Reshape ${ctx.quoted} cannot turn ${formatShape(shape)} into [${t.join(', ')}]`);
  }
  return resolved;
}

/** The sample shape after Squeeze/Unsqueeze (axes count the batch axis, which must stay). */
function squeezed(ctx: NodeContext, shape: Shape, opset: number): Shape {
  const axes = opset >= 13 ? numbersOf(ctx.constInput(1, 'axes')) : (ctx.attrs.has('axes') ? ctx.attrs.ints('axes', []) : undefined);
  const full = [1, ...shape];
  if (ctx.op === 'Unsqueeze') {
    if (axes === undefined) throw new FormatError(`ONNX: Unsqueeze ${ctx.quoted} has no axes`);
    const rank = full.length + axes.length;
    const at = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
    if (at.has(0)) ctx.refuse('a new axis before the batch');
    const out: number[] = [];
    let k = 1;
    for (let i = 1; i < rank; i++) out.push(at.has(i) ? 1 : (full[k++] as number));
    return out;
  }
  const at = axes === undefined ? undefined : new Set(axes.map((a) => (a < 0 ? a + full.length : a)));
  if (at?.has(0)) ctx.refuse('squeezing the batch axis');
  return shape.filter((d, i) => (at === undefined ? d !== 1 : !at.has(i + 1)));
}

function clip(ctx: NodeContext, opset: number): Clip | Relu {
  const bound = (i: number, attr: string, fallback: number): number => {
    if (opset >= 11) {
      const t = ctx.constInput(i, attr);
      return t === undefined ? fallback : Number(t.data[0]);
    }
    return ctx.attrs.float(attr, fallback);
  };
  const min = bound(1, 'min', -Infinity);
  const max = bound(2, 'max', Infinity);
  if (min > max) ctx.refuse(`min ${min} above max ${max}`);
  // Clip(0, ∞) is ReLU, which the protocols blind as a positively homogeneous function.
  return min === 0 && max === Infinity ? new Relu() : new Clip(min, max);
}

function softmax(ctx: NodeContext, shape: Shape, opset: number): Softmax | LogSoftmax {
  const rank = shape.length + 1;
  const axis = ctx.attrs.int('axis', opset >= 13 ? -1 : 1);
  // Before opset 13 Softmax flattens from `axis` on; both readings agree when axis is the last one.
  if ((axis < 0 ? axis + rank : axis) !== rank - 1) {
    ctx.refuse(`axis ${axis} (only the last axis of a rank-${rank} tensor)`);
  }
  return ctx.op === 'Softmax' ? new Softmax() : new LogSoftmax();
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c] as number;
  return out;
}

function stripLeadingOnes(dims: readonly number[]): readonly number[] {
  let i = 0;
  while (i < dims.length - 1 && dims[i] === 1) i++;
  return dims.slice(i);
}

/** A scalar or a vector of `n` (possibly [1, n]) as `n` values; undefined for other shapes. */
function broadcastVector(t: Extract<ConstTensor, { type: 'float' }>, n: number): Float32Array | undefined {
  if (t.data.length === 1) return new Float32Array(n).fill(t.data[0] as number);
  const dims = stripLeadingOnes(t.dims);
  return dims.length === 1 && dims[0] === n ? t.data : undefined;
}
