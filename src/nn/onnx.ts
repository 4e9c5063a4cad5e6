/**
 * ONNX → blindml IR. The graph must be a chain: each operator consumes the previous operator's
 * output plus constants (initializers or Constant nodes). Batch normalization is folded into the
 * Conv/Gemm/MatMul before it, a bias `Add` joins the layer before it, a zero-padding `Pad` joins
 * the Conv or AveragePool after it (PyTorch exports `AvgPool2d` as `Pad` + `AveragePool`), and
 * Identity/Dropout disappear. A run of Mul/Add/Sub/Div/Pow with scalar constants that computes a
 * polynomial of one tensor (how PyTorch exports `a * x * x + b * x + c`) becomes one
 * {@link Polynomial} layer (see `onnx-poly.ts`). Any other operator, or an attribute value blindml does not
 * implement, is refused with an {@link UnsupportedOpError} naming the op and the node.
 *
 * The graph input's first dimension is the batch; the rest (which must be known) is the sample
 * shape. Browser-safe.
 *
 * @module
 */
import { FormatError, ShapeError, UnsupportedOpError } from '../errors.js';
import { foldBatchNorm } from './fold.js';
import {
  AvgPool2d,
  Conv2d,
  Dense,
  Flatten,
  GlobalAvgPool2d,
  MaxPool2d,
  Polynomial,
  Relu,
  Reshape,
  Sigmoid,
  Softmax,
  Tanh,
  type Layer,
  type Pads,
  type Size2,
} from './layers.js';
import { Model } from './model.js';
import { POLYNOMIAL_OPS, PolynomialRun, type PolyOperand } from './onnx-poly.js';
import { Attributes, decodeModel, onnx, readTensor, toInt, type ConstTensor, type proto } from './onnx-proto.js';
import { formatShape, sizeOf, type Shape } from './shape.js';

/** The operators the importer understands. */
export const SUPPORTED_OPS: readonly string[] = [
  'Conv', 'Gemm', 'MatMul', 'Add', 'AveragePool', 'MaxPool', 'GlobalAveragePool',
  'BatchNormalization', 'Flatten', 'Reshape', 'Relu', 'Sigmoid', 'Tanh', 'Softmax',
  'Identity', 'Dropout', 'Constant', 'Pad', 'Mul', 'Sub', 'Div', 'Pow',
];

/**
 * Builds a {@link Model} from the bytes of an `.onnx` file.
 *
 * @throws {FormatError} if the bytes are not an ONNX model, a tensor cannot be read, or the graph
 *   is malformed (unknown input names, no single float input of known shape, output not at the
 *   end of the chain).
 * @throws {UnsupportedOpError} for an operator or attribute value outside what blindml implements,
 *   or a graph that is not a chain.
 * @throws {ShapeError} if the operators' shapes do not fit together.
 */
export function importOnnx(bytes: Uint8Array): Model {
  const model = decodeModel(bytes);
  const graph = model.graph as proto.IGraphProto;
  const opset = opsetVersion(model);
  const constants = new Constants();
  for (const init of graph.initializer ?? []) constants.add(init);
  const input = graphInput(graph, constants);
  const chain = new Chain(input.name, input.shape, constants, opset);
  (graph.node ?? []).forEach((node, index) => chain.apply(node, index));
  return chain.finish(graph, graph.name ?? '');
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

/** Zero padding waiting for the Conv or AveragePool that follows it. */
interface PendingPad {
  readonly pads: Pads;
  readonly node: string;
}

/** The state of the walk along the graph: the chain's current tensor, its shape, the layers. */
class Chain {
  private readonly layers: Layer[] = [];
  private shape: Shape;
  /** The layer whose output is the current tensor, if no layout op came since. */
  private tail: Layer | undefined;
  private pendingPad: PendingPad | undefined;
  /** The polynomial being read, while a run of elementwise arithmetic lasts. */
  private run: PolynomialRun | undefined;

  constructor(
    private current: string,
    private readonly inputShape: Shape,
    private readonly constants: Constants,
    private readonly opset: number,
  ) {
    this.shape = inputShape;
  }

  apply(node: proto.INodeProto, index: number): void {
    const op = node.opType ?? '';
    const ctx = new NodeContext(node, index, this.constants);
    if (node.domain && node.domain !== 'ai.onnx') {
      throw new UnsupportedOpError(`${node.domain}.${op}`, ctx.name, 'only the default ONNX domain is supported');
    }
    if (!SUPPORTED_OPS.includes(op)) throw new UnsupportedOpError(op, ctx.name);
    if (op === 'Constant') {
      this.constants.set(ctx.output, constantNode(ctx));
      return;
    }
    if (op === 'Identity' && ctx.isConstInput(0)) {
      // Exporters alias shared weights this way.
      this.constants.set(ctx.output, ctx.requireConst(0, 'input'));
      return;
    }
    if (this.polynomialStep(node, ctx)) return;
    const dataInput = (node.input ?? []).find((name) => !this.constants.has(name) && name !== '');
    if (dataInput !== this.current) {
      ctx.refuse(
        dataInput === undefined
          ? 'it has no non-constant input'
          : `its input '${dataInput}' is not the output of the previous layer (only chains of layers are supported)`,
      );
    }
    if (this.pendingPad && op !== 'Conv' && op !== 'AveragePool') {
      throw new UnsupportedOpError('Pad', this.pendingPad.node, `non-zero padding must be followed by Conv or AveragePool, not ${op}`);
    }
    try {
      this.dispatch(op, ctx);
    } catch (err) {
      if (err instanceof ShapeError && !err.message.startsWith('ONNX')) {
        throw new ShapeError(`ONNX: ${op} ${ctx.quoted}: ${err.message}`);
      }
      throw err;
    }
    this.current = ctx.output;
  }

  finish(graph: proto.IGraphProto, name: string): Model {
    this.endRun();
    if (this.pendingPad) {
      throw new UnsupportedOpError('Pad', this.pendingPad.node, 'padding at the end of the graph');
    }
    const outputs = graph.output ?? [];
    if (outputs.length !== 1 || outputs[0]?.name !== this.current) {
      throw new FormatError(
        `ONNX: the graph output${outputs.length === 1 ? '' : 's'} ${outputs.map((o) => `'${o.name}'`).join(', ')} ` +
          `must be the single end of the layer chain '${this.current}'`,
      );
    }
    return new Model(this.inputShape, this.layers, name);
  }

  private dispatch(op: string, ctx: NodeContext): void {
    switch (op) {
      case 'Identity':
      case 'Dropout':
        return this.passThrough(ctx);
      case 'Conv':
        return this.push(conv(ctx, this.takePad()));
      case 'Gemm':
        return this.push(gemm(ctx));
      case 'MatMul':
        return this.push(matMul(ctx));
      case 'Add':
        return this.replaceTail(addBias(ctx, this.tail));
      case 'BatchNormalization':
        return this.replaceTail(batchNorm(ctx, this.tail));
      case 'AveragePool':
        return this.push(averagePool(ctx, this.shape, this.takePad()));
      case 'MaxPool':
        return this.push(maxPool(ctx, this.shape));
      case 'GlobalAveragePool':
        return this.push(new GlobalAvgPool2d());
      case 'Flatten':
        return this.push(flatten(ctx, this.shape));
      case 'Reshape':
        return this.push(reshape(ctx, this.shape));
      case 'Relu':
        return this.push(new Relu());
      case 'Sigmoid':
        return this.push(new Sigmoid());
      case 'Tanh':
        return this.push(new Tanh());
      case 'Softmax':
        return this.push(softmax(ctx, this.shape, this.opset));
      case 'Pad':
        return this.pad(ctx);
      default:
        throw new UnsupportedOpError(op, ctx.name);
    }
  }

  /**
   * Reads `node` as a step of a polynomial if it is one (a bias `Add` right after Conv/Gemm/MatMul
   * is not: it joins that layer). Any other node first ends a run in progress.
   *
   * @returns whether the node was consumed.
   */
  private polynomialStep(node: proto.INodeProto, ctx: NodeContext): boolean {
    const names = (node.input ?? []).filter((n) => n !== '');
    const bias =
      ctx.op === 'Add' && this.run === undefined && names.some((n) => this.constants.has(n)) &&
      (this.tail?.kind === 'conv2d' || this.tail?.kind === 'dense');
    if (!POLYNOMIAL_OPS.includes(ctx.op) || bias) {
      this.endRun();
      return false;
    }
    if (this.pendingPad) {
      throw new UnsupportedOpError('Pad', this.pendingPad.node, `non-zero padding must be followed by Conv or AveragePool, not ${ctx.op}`);
    }
    const operands = names.map((name): PolyOperand => {
      if (this.constants.has(name)) return { scalar: scalarConstant(ctx, name) };
      if (this.run?.tracks(name)) return { tensor: name };
      if (name !== this.current) {
        ctx.refuse(`its input '${name}' is neither the output of the previous layer nor part of a polynomial of it`);
      }
      this.run = new PolynomialRun(name, ctx.name);
      return { tensor: name };
    });
    if (this.run === undefined) ctx.refuse('it has no non-constant input');
    const problem = this.run.apply(ctx.op, operands, ctx.output);
    if (problem !== undefined) ctx.refuse(`not an elementwise polynomial: ${problem}`);
    this.current = ctx.output;
    return true;
  }

  /** Turns a finished polynomial run into a layer (none for the identity). */
  private endRun(): void {
    const run = this.run;
    if (run === undefined) return;
    this.run = undefined;
    const c = run.coefficientsOf(this.current);
    if (c.length === 2 && c[0] === 0 && c[1] === 1) return;
    if (c.length < 2) {
      throw new UnsupportedOpError('elementwise arithmetic', run.firstNode, 'the arithmetic starting here makes a constant tensor, not a function of its input');
    }
    this.push(new Polynomial(c));
  }

  private push(layer: Layer): void {
    this.shape = layer.computeOutputShape(this.shape);
    this.layers.push(layer);
    this.tail = layer.category === 'layout' ? undefined : layer;
  }

  private replaceTail(layer: Conv2d | Dense): void {
    this.layers[this.layers.length - 1] = layer;
    this.tail = layer;
  }

  private takePad(): Pads | undefined {
    const pads = this.pendingPad?.pads;
    this.pendingPad = undefined;
    return pads;
  }

  private passThrough(ctx: NodeContext): void {
    if (ctx.op === 'Dropout') {
      const training = ctx.constInput(2, 'training_mode');
      if (training && training.data.some((v) => v !== 0)) {
        ctx.refuse('training mode');
      }
    }
  }

  private pad(ctx: NodeContext): void {
    const mode = ctx.attrs.string('mode', 'constant');
    if (mode !== 'constant') ctx.refuse(`mode '${mode}' (only constant zero padding)`);
    let pads: readonly number[];
    let value: number;
    if (this.opset >= 11) {
      pads = Array.from(ctx.requireConst(1, 'pads').data);
      value = ctx.constInput(2, 'constant_value')?.data[0] ?? 0;
      if (ctx.inputCount > 3) ctx.refuse('the axes input');
    } else {
      pads = ctx.attrs.ints('pads', []);
      value = ctx.attrs.float('value', 0);
    }
    if (value !== 0) ctx.refuse(`padding value ${value} (only zero)`);
    const rank = this.shape.length + 1;
    if (pads.length !== 2 * rank) ctx.refuse(`${pads.length} pads for a rank-${rank} tensor`);
    if (pads.every((p) => p === 0)) return;
    const [nb, cb, top, left, ne, ce, bottom, right] = pads as number[];
    if (rank !== 4 || nb !== 0 || cb !== 0 || ne !== 0 || ce !== 0 || pads.some((p) => p < 0)) {
      ctx.refuse(`pads [${pads.join(', ')}] (only non-negative padding of height and width)`);
    }
    this.pendingPad = { pads: [top ?? 0, left ?? 0, bottom ?? 0, right ?? 0], node: ctx.name };
  }
}

/** One node with its name, attributes and constant inputs. */
class NodeContext {
  readonly op: string;
  readonly name: string;
  readonly output: string;
  readonly attrs: Attributes;

  constructor(
    private readonly node: proto.INodeProto,
    index: number,
    private readonly constants: Constants,
  ) {
    this.op = node.opType ?? '';
    this.name = node.name || `#${index}`;
    this.output = node.output?.[0] ?? '';
    this.attrs = new Attributes(node, `${this.op} ${this.quoted}`);
  }

  get quoted(): string {
    return `node '${this.name}'`;
  }

  get outputCount(): number {
    return (this.node.output ?? []).filter((n) => n !== '').length;
  }

  /** Position of input `name` among the node's inputs. */
  inputIndex(name: string): number {
    return (this.node.input ?? []).indexOf(name);
  }

  isConstInput(i: number): boolean {
    const name = this.node.input?.[i];
    return name !== undefined && this.constants.has(name);
  }

  get inputCount(): number {
    return (this.node.input ?? []).filter((n) => n !== '').length;
  }

  /** The constant at input `i`, or undefined when the input is absent. */
  constInput(i: number, what: string): ConstTensor | undefined {
    const name = this.node.input?.[i];
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
  const index = ctx.inputIndex(name);
  const t = ctx.requireConst(index, 'operand');
  if (t.data.length !== 1) {
    const bias = ctx.op === 'Add' ? '; a bias must directly follow Conv, Gemm or MatMul' : '';
    ctx.refuse(`a constant operand of shape [${t.dims.join(', ')}] (only scalars in polynomial arithmetic${bias})`);
  }
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
function window(ctx: NodeContext, kernelFromWeights?: Size2): { kernel: Size2; stride: Size2; pads: Pads } {
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
  return { kernel, stride: [strides[0] as number, strides[1] as number], pads: p as unknown as Pads };
}

function addPads(a: Pads, b: Pads | undefined): Pads {
  return b ? [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]] : a;
}

/** ceil_mode = 1 is only accepted where it gives the same output size as floor. */
function checkCeilMode(ctx: NodeContext, shape: Shape, kernel: Size2, stride: Size2, pads: Pads): void {
  if (ctx.attrs.int('ceil_mode', 0) === 0) return;
  const [, h = 0, w = 0] = shape;
  const exact = (size: number, k: number, s: number, before: number, after: number) =>
    (size + before + after - k) % s === 0;
  if (!exact(h, kernel[0], stride[0], pads[0], pads[2]) || !exact(w, kernel[1], stride[1], pads[1], pads[3])) {
    ctx.refuse('ceil_mode 1 where it changes the output size');
  }
}

function conv(ctx: NodeContext, padBefore: Pads | undefined): Conv2d {
  const w = ctx.requireFloat(1, 'weight');
  if (w.dims.length !== 4) ctx.refuse(`weights of rank ${w.dims.length} (only 2-D convolutions)`);
  const [outChannels, inChannels, kh, kw] = w.dims as [number, number, number, number];
  const group = ctx.attrs.int('group', 1);
  if (group !== 1) ctx.refuse(`group ${group} (only 1)`);
  const { kernel, stride, pads } = window(ctx, [kh, kw]);
  const bias = ctx.optionalFloat(2, 'bias');
  return new Conv2d({
    weights: w.data,
    ...(bias ? { bias: bias.data } : {}),
    outChannels,
    inChannels,
    kernel,
    stride,
    pads: addPads(pads, padBefore),
  });
}

function gemm(ctx: NodeContext): Dense {
  if (ctx.attrs.int('transA', 0) !== 0) ctx.refuse('transA 1 (the data input must be batch × features)');
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
  const b = ctx.requireFloat(1, 'second operand');
  if (b.dims.length !== 2) ctx.refuse(`a second operand of rank ${b.dims.length} (only a matrix)`);
  const [inFeatures, outFeatures] = b.dims as [number, number];
  return new Dense({ weights: transpose(b.data, inFeatures, outFeatures), inFeatures, outFeatures });
}

function addBias(ctx: NodeContext, tail: Layer | undefined): Conv2d | Dense {
  const constIndex = [0, 1].find((i) => ctx.isConstInput(i));
  const constant = constIndex === undefined ? undefined : ctx.requireConst(constIndex, 'addend');
  if (!constant || constant.type !== 'float' || (tail?.kind !== 'conv2d' && tail?.kind !== 'dense')) {
    return ctx.refuse('only a constant bias added to the output of Conv, Gemm or MatMul');
  }
  const channels = tail.kind === 'conv2d' ? tail.outChannels : tail.outFeatures;
  // A conv bias must broadcast along channels ([C, 1, 1]); a dense bias along features ([F]).
  const trailingOnes = tail.kind === 'conv2d' ? 2 : 0;
  const dims = stripLeadingOnes(constant.dims);
  const perChannel =
    sizeOf(dims) === 1 ||
    (dims.length === 1 + trailingOnes && dims[0] === channels && dims.slice(1).every((d) => d === 1));
  if (!perChannel) ctx.refuse(`a bias of shape [${constant.dims.join(', ')}] for ${channels} channels`);
  const bias = new Float32Array(channels);
  for (let i = 0; i < channels; i++) {
    bias[i] = (tail.bias[i] as number) + (constant.data[sizeOf(dims) === 1 ? 0 : i] as number);
  }
  return tail.kind === 'conv2d'
    ? new Conv2d({ ...tail, bias })
    : new Dense({ ...tail, bias });
}

function batchNorm(ctx: NodeContext, tail: Layer | undefined): Conv2d | Dense {
  if (tail?.kind !== 'conv2d' && tail?.kind !== 'dense') {
    return ctx.refuse('batch normalization must directly follow Conv, Gemm or MatMul, to be folded into it');
  }
  if (ctx.attrs.int('training_mode', 0) !== 0) ctx.refuse('training_mode 1');
  const vector = (i: number, what: string): Float32Array => ctx.requireFloat(i, what).data;
  return foldBatchNorm(tail, {
    scale: vector(1, 'scale'),
    bias: vector(2, 'bias'),
    mean: vector(3, 'mean'),
    variance: vector(4, 'variance'),
    epsilon: ctx.attrs.float('epsilon', 1e-5),
  });
}

function averagePool(ctx: NodeContext, shape: Shape, padBefore: Pads | undefined): AvgPool2d {
  const { kernel, stride, pads } = window(ctx);
  let countIncludePad = ctx.attrs.int('count_include_pad', 0) !== 0;
  let total = pads;
  if (padBefore) {
    // Explicit zeros are real values, so they count toward the divisor.
    if (pads.some((p) => p !== 0) && !countIncludePad) {
      ctx.refuse('explicit Pad combined with padding that count_include_pad 0 leaves out of the average');
    }
    total = addPads(pads, padBefore);
    countIncludePad = true;
  }
  checkCeilMode(ctx, shape, kernel, stride, total);
  return new AvgPool2d({ kernel, stride, pads: total, countIncludePad });
}

function maxPool(ctx: NodeContext, shape: Shape): MaxPool2d {
  if (ctx.attrs.int('storage_order', 0) !== 0) ctx.refuse('storage_order 1');
  if (ctx.outputCount > 1) ctx.refuse('the Indices output');
  const { kernel, stride, pads } = window(ctx);
  checkCeilMode(ctx, shape, kernel, stride, pads);
  return new MaxPool2d({ kernel, stride, pads });
}

function flatten(ctx: NodeContext, shape: Shape): Flatten {
  const rank = shape.length + 1;
  const axis = ctx.attrs.int('axis', 1);
  if ((axis < 0 ? axis + rank : axis) !== 1) ctx.refuse(`axis ${axis} (only 1: keep the batch dimension)`);
  return new Flatten();
}

function reshape(ctx: NodeContext, shape: Shape): Flatten | Reshape {
  const target = ctx.requireConst(1, 'shape');
  if (target.type !== 'int') throw new FormatError(`ONNX: the shape of Reshape ${ctx.quoted} is not an integer tensor`);
  const allowZero = ctx.attrs.int('allowzero', 0) !== 0;
  const t = target.data;
  const size = sizeOf(shape);
  // Entry 0 is the batch: it must be kept (0, or 1 in models exported with batch 1) or inferred (-1).
  const [batch, ...rest] = t;
  if (batch === undefined || (batch !== 0 && batch !== 1 && batch !== -1) || (batch === 0 && allowZero)) {
    ctx.refuse(`shape [${t.join(', ')}] (the first entry must keep the batch: 0, 1 or -1)`);
  }
  const dims = rest.map((d, i) => {
    if (d === 0 && !allowZero) {
      const copied = shape[i];
      if (copied === undefined) ctx.refuse(`shape [${t.join(', ')}]: 0 copies a dimension the input does not have`);
      return copied;
    }
    return d;
  });
  const unknown = dims.filter((d) => d === -1).length + (batch === -1 ? 1 : 0);
  if (unknown > 1 || dims.some((d) => d < -1 || d === 0)) ctx.refuse(`shape [${t.join(', ')}]`);
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = dims.map((d) => (d === -1 ? size / known : d));
  if (sizeOf(resolved) !== size || !resolved.every(Number.isInteger)) {
    throw new ShapeError(`ONNX: Reshape ${ctx.quoted} cannot turn ${formatShape(shape)} into [${t.join(', ')}]`);
  }
  return resolved.length === 1 ? new Flatten() : new Reshape(resolved);
}

function softmax(ctx: NodeContext, shape: Shape, opset: number): Softmax {
  const rank = shape.length + 1;
  const axis = ctx.attrs.int('axis', opset >= 13 ? -1 : 1);
  // Before opset 13 Softmax flattens from `axis` on; both readings agree when axis is the last one.
  if ((axis < 0 ? axis + rank : axis) !== rank - 1) {
    ctx.refuse(`axis ${axis} (only the last axis of a rank-${rank} tensor)`);
  }
  return new Softmax();
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
