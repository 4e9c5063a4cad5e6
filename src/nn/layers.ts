/**
 * The layers of blindml's model IR: one class per layer, each able to say its output shape for a
 * given input shape (as in tfjs-layers). Every backend (plaintext, Paillier, CKKS) consumes these
 * same objects and switches on `kind`; `category` tells an encrypted backend who evaluates a
 * layer: the service (`linear`), the client (`activation`), or nobody, because the values only
 * change shape (`layout`).
 *
 * Weights are Float32Array, exactly as stored in the model file (or as folded from batch norm).
 * Shapes exclude the batch dimension; image tensors are [channels, height, width], row-major.
 *
 * Constructors validate their configuration and throw RangeError for an inconsistent one; the
 * `computeOutputShape` methods throw {@link ShapeError} for an input shape they cannot take.
 *
 * @module
 */
import { ShapeError } from '../errors.js';
import { asImageShape, formatShape, sizeOf, windowCount, type Shape } from './shape.js';

/** Who evaluates a layer under encryption. */
export type LayerCategory = 'linear' | 'activation' | 'layout';

/** Zero padding of an image: [top, left, bottom, right] (the order of ONNX `pads`). */
export type Pads = readonly [number, number, number, number];

/** A pair of sizes along [height, width]. */
export type Size2 = readonly [number, number];

const NO_PADS: Pads = [0, 0, 0, 0];

/**
 * 2-D convolution (cross-correlation, as in ONNX and PyTorch), dilation 1. With `group` g > 1 the
 * channels split into g groups and output group k reads input group k only (g = inChannels is a
 * depthwise convolution).
 */
export class Conv2d {
  readonly kind = 'conv2d';
  readonly category = 'linear';
  readonly outChannels: number;
  /** All input channels (not per group). */
  readonly inChannels: number;
  readonly kernel: Size2;
  readonly stride: Size2;
  readonly pads: Pads;
  /** Number of channel groups; divides both channel counts. */
  readonly group: number;
  /** [outChannels, inChannels / group, kernelH, kernelW], row-major. */
  readonly weights: Float32Array;
  /** One value per output channel. */
  readonly bias: Float32Array;

  constructor(config: {
    readonly weights: Float32Array;
    readonly bias?: Float32Array;
    readonly outChannels: number;
    readonly inChannels: number;
    readonly kernel: Size2;
    readonly stride?: Size2;
    readonly pads?: Pads;
    readonly group?: number;
  }) {
    this.outChannels = positive(config.outChannels, 'Conv2d outChannels');
    this.inChannels = positive(config.inChannels, 'Conv2d inChannels');
    this.kernel = size2(config.kernel, 'Conv2d kernel');
    this.stride = size2(config.stride ?? [1, 1], 'Conv2d stride');
    this.pads = pads(config.pads ?? NO_PADS, 'Conv2d pads');
    this.group = positive(config.group ?? 1, 'Conv2d group');
    if (this.inChannels % this.group !== 0 || this.outChannels % this.group !== 0) {
      throw new RangeError(`Conv2d group ${this.group} must divide ${this.inChannels} input and ${this.outChannels} output channels`);
    }
    this.weights = config.weights;
    expectLength(
      this.weights,
      this.outChannels * (this.inChannels / this.group) * this.kernel[0] * this.kernel[1],
      'Conv2d weights',
    );
    this.bias = config.bias ?? new Float32Array(this.outChannels);
    expectLength(this.bias, this.outChannels, 'Conv2d bias');
  }

  /** @throws {ShapeError} unless the input is [inChannels, h, w] and the kernel fits. */
  computeOutputShape(input: Shape): Shape {
    const [c, h, w] = asImageShape(input, 'Conv2d');
    if (c !== this.inChannels) {
      throw new ShapeError(`Conv2d expects ${this.inChannels} input channels, got ${formatShape(input)}`);
    }
    return [this.outChannels, ...slide(h, w, this.kernel, this.stride, this.pads, 'Conv2d')];
  }

  /** Number of weights and biases. */
  get parameterCount(): number {
    return this.weights.length + this.bias.length;
  }
}

/** Fully connected layer: y = W x + b, W stored [outFeatures, inFeatures] row-major. */
export class Dense {
  readonly kind = 'dense';
  readonly category = 'linear';
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weights: Float32Array;
  readonly bias: Float32Array;

  constructor(config: {
    readonly weights: Float32Array;
    readonly bias?: Float32Array;
    readonly inFeatures: number;
    readonly outFeatures: number;
  }) {
    this.inFeatures = positive(config.inFeatures, 'Dense inFeatures');
    this.outFeatures = positive(config.outFeatures, 'Dense outFeatures');
    this.weights = config.weights;
    expectLength(this.weights, this.inFeatures * this.outFeatures, 'Dense weights');
    this.bias = config.bias ?? new Float32Array(this.outFeatures);
    expectLength(this.bias, this.outFeatures, 'Dense bias');
  }

  /** @throws {ShapeError} unless the input is [inFeatures]. */
  computeOutputShape(input: Shape): Shape {
    if (input.length !== 1 || input[0] !== this.inFeatures) {
      throw new ShapeError(`Dense expects [${this.inFeatures}], got ${formatShape(input)}`);
    }
    return [this.outFeatures];
  }

  /** Number of weights and biases. */
  get parameterCount(): number {
    return this.weights.length + this.bias.length;
  }
}

/**
 * Average pooling over windows; padded cells count toward the divisor only if `countIncludePad`.
 * With `ceilMode` the last window along an axis may hang over the padded input (as in ONNX and
 * PyTorch); the cells beyond the padded input never count.
 */
export class AvgPool2d {
  readonly kind = 'avgpool2d';
  readonly category = 'linear';
  readonly kernel: Size2;
  readonly stride: Size2;
  readonly pads: Pads;
  readonly countIncludePad: boolean;
  readonly ceilMode: boolean;

  constructor(config: {
    readonly kernel: Size2;
    readonly stride?: Size2;
    readonly pads?: Pads;
    readonly countIncludePad?: boolean;
    readonly ceilMode?: boolean;
  }) {
    this.kernel = size2(config.kernel, 'AvgPool2d kernel');
    this.stride = size2(config.stride ?? this.kernel, 'AvgPool2d stride');
    this.pads = pads(config.pads ?? NO_PADS, 'AvgPool2d pads');
    this.countIncludePad = config.countIncludePad ?? false;
    this.ceilMode = config.ceilMode ?? false;
  }

  /** @throws {ShapeError} unless the input is an image the window fits. */
  computeOutputShape(input: Shape): Shape {
    const [c, h, w] = asImageShape(input, 'AvgPool2d');
    return [c, ...slide(h, w, this.kernel, this.stride, this.pads, 'AvgPool2d', this.ceilMode)];
  }
}

/** Max pooling over windows; padded cells never win. `ceilMode` as for {@link AvgPool2d}. */
export class MaxPool2d {
  readonly kind = 'maxpool2d';
  readonly category = 'activation';
  readonly kernel: Size2;
  readonly stride: Size2;
  readonly pads: Pads;
  readonly ceilMode: boolean;

  constructor(config: { readonly kernel: Size2; readonly stride?: Size2; readonly pads?: Pads; readonly ceilMode?: boolean }) {
    this.kernel = size2(config.kernel, 'MaxPool2d kernel');
    this.stride = size2(config.stride ?? this.kernel, 'MaxPool2d stride');
    this.pads = pads(config.pads ?? NO_PADS, 'MaxPool2d pads');
    this.ceilMode = config.ceilMode ?? false;
    if (this.pads[0] >= this.kernel[0] || this.pads[2] >= this.kernel[0] ||
        this.pads[1] >= this.kernel[1] || this.pads[3] >= this.kernel[1]) {
      // Otherwise a window could hold padding only, and its max would be -Infinity.
      throw new RangeError('MaxPool2d pads must be smaller than the kernel');
    }
  }

  /** @throws {ShapeError} unless the input is an image the window fits. */
  computeOutputShape(input: Shape): Shape {
    const [c, h, w] = asImageShape(input, 'MaxPool2d');
    return [c, ...slide(h, w, this.kernel, this.stride, this.pads, 'MaxPool2d', this.ceilMode)];
  }
}

/** Mean of each channel: [c, h, w] → [c, 1, 1]. */
export class GlobalAvgPool2d {
  readonly kind = 'globalavgpool2d';
  readonly category = 'linear';

  /** @throws {ShapeError} unless the input is an image. */
  computeOutputShape(input: Shape): Shape {
    const [c] = asImageShape(input, 'GlobalAvgPool2d');
    return [c, 1, 1];
  }
}

/** Any shape → [size]; values keep their row-major order. */
export class Flatten {
  readonly kind = 'flatten';
  readonly category = 'layout';

  computeOutputShape(input: Shape): Shape {
    return [sizeOf(input)];
  }
}

/** Gives the values a new shape of the same size; values keep their row-major order. */
export class Reshape {
  readonly kind = 'reshape';
  readonly category = 'layout';
  readonly shape: Shape;

  constructor(shape: Shape) {
    shape.forEach((d, i) => positive(d, `Reshape dimension ${i}`));
    this.shape = [...shape];
  }

  /** @throws {ShapeError} if the sizes differ. */
  computeOutputShape(input: Shape): Shape {
    if (sizeOf(input) !== sizeOf(this.shape)) {
      throw new ShapeError(`Reshape cannot turn ${formatShape(input)} into ${formatShape(this.shape)}`);
    }
    return this.shape;
  }
}

/** An activation applied to every value on its own. */
abstract class Elementwise {
  readonly category = 'activation';

  computeOutputShape(input: Shape): Shape {
    return input;
  }
}

/** max(x, 0). */
export class Relu extends Elementwise {
  readonly kind = 'relu';
}

/** 1 / (1 + e^-x). */
export class Sigmoid extends Elementwise {
  readonly kind = 'sigmoid';
}

/** tanh(x). */
export class Tanh extends Elementwise {
  readonly kind = 'tanh';
}

/** x for x ≥ 0, alpha · x below (positively homogeneous, like ReLU). */
export class LeakyRelu extends Elementwise {
  readonly kind = 'leakyrelu';
  readonly alpha: number;

  /** @throws {RangeError} for a non-finite alpha. */
  constructor(alpha = 0.01) {
    super();
    if (!Number.isFinite(alpha)) throw new RangeError(`LeakyRelu alpha must be finite, got ${alpha}`);
    this.alpha = alpha;
  }
}

/** GELU, exact form: x · Φ(x) = x · (1 + erf(x / √2)) / 2. */
export class Gelu extends Elementwise {
  readonly kind = 'gelu';
}

/** SiLU (swish): x · sigmoid(x). */
export class Silu extends Elementwise {
  readonly kind = 'silu';
}

/** HardSwish: x · min(max(x / 6 + 1/2, 0), 1). */
export class HardSwish extends Elementwise {
  readonly kind = 'hardswish';
}

/** min(max(x, min), max); ReLU6 is Clip(0, 6). */
export class Clip extends Elementwise {
  readonly kind = 'clip';
  readonly min: number;
  readonly max: number;

  /** @throws {RangeError} unless min ≤ max (either may be infinite). */
  constructor(min: number, max: number) {
    super();
    if (Number.isNaN(min) || Number.isNaN(max) || min > max) throw new RangeError(`Clip needs min ≤ max, got ${min}, ${max}`);
    this.min = min;
    this.max = max;
  }
}

/** Highest degree a {@link Polynomial} layer may have. */
export const MAX_POLYNOMIAL_DEGREE = 8;

/**
 * p(x) = c[0] + c[1]·x + … + c[d]·x^d applied to every value: a polynomial stand-in for ReLU or
 * sigmoid (CryptoNets, MSCryptoNet), which a CKKS service can evaluate on ciphertexts itself.
 * See `poly-activation.ts` for the fits.
 */
export class Polynomial extends Elementwise {
  readonly kind = 'polynomial';
  /** Power-basis coefficients, lowest first; the last one is non-zero. */
  readonly coefficients: readonly number[];

  /**
   * @throws {RangeError} for a non-finite coefficient, or a degree (after dropping zero leading
   *   coefficients) outside 1–{@link MAX_POLYNOMIAL_DEGREE}.
   */
  constructor(coefficients: readonly number[]) {
    super();
    const c = [...coefficients];
    c.forEach((v, i) => {
      if (!Number.isFinite(v)) throw new RangeError(`Polynomial coefficient ${i} must be finite, got ${v}`);
    });
    while (c.length > 0 && c[c.length - 1] === 0) c.pop();
    if (c.length < 2 || c.length > MAX_POLYNOMIAL_DEGREE + 1) {
      throw new RangeError(`Polynomial degree must be 1–${MAX_POLYNOMIAL_DEGREE}, got ${c.length - 1}`);
    }
    this.coefficients = c;
  }

  get degree(): number {
    return this.coefficients.length - 1;
  }
}

/** Softmax along the last axis of the sample's tensor. */
export class Softmax {
  readonly kind = 'softmax';
  readonly category = 'activation';

  computeOutputShape(input: Shape): Shape {
    return input;
  }
}

/** log(softmax(x)) along the last axis (argmax-preserving, like {@link Softmax}). */
export class LogSoftmax {
  readonly kind = 'logsoftmax';
  readonly category = 'activation';

  computeOutputShape(input: Shape): Shape {
    return input;
  }
}

/**
 * y = scale · x + bias elementwise (batch normalization, input normalization (x − mean) / std,
 * multiplication or division by constants). Each vector holds 1 value (a scalar), one value per
 * channel (the first axis of the sample), or one value per element (row-major).
 */
export class Affine {
  readonly kind = 'affine';
  readonly category = 'linear';
  readonly scale: Float32Array;
  readonly bias: Float32Array;

  /** @throws {RangeError} for an empty or non-finite vector. */
  constructor(config: { readonly scale?: Float32Array; readonly bias?: Float32Array }) {
    this.scale = config.scale ?? Float32Array.of(1);
    this.bias = config.bias ?? Float32Array.of(0);
    for (const [what, v] of [['scale', this.scale], ['bias', this.bias]] as const) {
      if (v.length === 0 || !v.every(Number.isFinite)) throw new RangeError(`Affine ${what} must be non-empty and finite`);
    }
  }

  /** @throws {ShapeError} unless each vector has 1, channels or all values of `input`. */
  computeOutputShape(input: Shape): Shape {
    this.expand(input);
    return input;
  }

  /**
   * Both vectors spread to every value of a tensor of shape `input`.
   *
   * @throws {ShapeError} as {@link computeOutputShape}.
   */
  expand(input: Shape): { scale: Float64Array; bias: Float64Array } {
    return { scale: spread(this.scale, input, 'Affine scale'), bias: spread(this.bias, input, 'Affine bias') };
  }

  /** Number of values in both vectors. */
  get parameterCount(): number {
    return this.scale.length + this.bias.length;
  }
}

/**
 * The shortest form of a vector given per element of `shape`, as {@link Affine} takes it: 1 value
 * if all are equal, one per channel if constant within each channel, else all values.
 */
export function compressVector(values: ArrayLike<number>, shape: Shape): Float32Array {
  const all = Float32Array.from(values);
  if (all.every((v) => v === all[0])) return all.slice(0, 1);
  const channels = shape[0] ?? 1;
  const per = sizeOf(shape) / channels;
  for (let c = 0; c < channels; c++) {
    for (let i = c * per; i < (c + 1) * per; i++) if (all[i] !== all[c * per]) return all;
  }
  return Float32Array.from({ length: channels }, (_, c) => all[c * per] as number);
}

function spread(v: Float32Array, shape: Shape, what: string): Float64Array {
  const size = sizeOf(shape);
  const channels = shape[0] ?? 1;
  const out = new Float64Array(size);
  if (v.length === size) out.set(v);
  else if (v.length === 1) out.fill(v[0] as number);
  else if (v.length === channels) {
    const per = size / channels;
    for (let c = 0; c < channels; c++) out.fill(v[c] as number, c * per, (c + 1) * per);
  } else {
    throw new ShapeError(`${what} has ${v.length} values for ${formatShape(shape)} (1, ${channels} or ${size})`);
  }
  return out;
}

/** Permutes the axes of the sample (the batch axis stays first), e.g. NHWC → NCHW: perm [2, 0, 1]. */
export class Transpose {
  readonly kind = 'transpose';
  readonly category = 'linear';
  /** Output axis i is input axis perm[i]; sample axes only. */
  readonly perm: readonly number[];

  /** @throws {RangeError} unless `perm` is a permutation of 0 … n−1. */
  constructor(perm: readonly number[]) {
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length === 0 || sorted.some((p, i) => p !== i)) {
      throw new RangeError(`Transpose perm [${perm.join(', ')}] is not a permutation of the sample axes`);
    }
    this.perm = [...perm];
  }

  /** @throws {ShapeError} if the rank differs from the permutation's length. */
  computeOutputShape(input: Shape): Shape {
    if (input.length !== this.perm.length) {
      throw new ShapeError(`Transpose [${this.perm.join(', ')}] cannot take ${formatShape(input)}`);
    }
    return this.perm.map((p) => input[p] as number);
  }

  /**
   * For each output value (row-major), the row-major index of the input value it copies.
   *
   * @throws {ShapeError} as {@link computeOutputShape}.
   */
  sourceIndices(input: Shape): Int32Array {
    const inStrides = strides(input);
    return sourceIndexMap(this.computeOutputShape(input), (axis, coord) => coord * (inStrides[this.perm[axis] as number] as number));
  }
}

/**
 * Constant zero padding of the sample's axes. `pads` lists, as ONNX does, the values added before
 * each sample axis, then those added after each axis.
 */
export class Pad {
  readonly kind = 'pad';
  readonly category = 'linear';
  readonly pads: readonly number[];

  /** @throws {RangeError} for an odd count or a negative value. */
  constructor(pads: readonly number[]) {
    if (pads.length === 0 || pads.length % 2 !== 0 || !pads.every((p) => Number.isSafeInteger(p) && p >= 0)) {
      throw new RangeError(`Pad pads must be 2 non-negative integers per axis, got [${pads.join(', ')}]`);
    }
    this.pads = [...pads];
  }

  /** @throws {ShapeError} if the rank differs from the pads'. */
  computeOutputShape(input: Shape): Shape {
    const rank = this.pads.length / 2;
    if (input.length !== rank) throw new ShapeError(`Pad of ${rank} axes cannot take ${formatShape(input)}`);
    return input.map((d, i) => d + (this.pads[i] as number) + (this.pads[i + rank] as number));
  }

  /**
   * For each output value (row-major), the row-major index of the input value it copies, or −1
   * for padding.
   *
   * @throws {ShapeError} as {@link computeOutputShape}.
   */
  sourceIndices(input: Shape): Int32Array {
    const inStrides = strides(input);
    return sourceIndexMap(this.computeOutputShape(input), (axis, coord) => {
      const inCoord = coord - (this.pads[axis] as number);
      return inCoord < 0 || inCoord >= (input[axis] as number) ? -1 : inCoord * (inStrides[axis] as number);
    });
  }
}

/**
 * For each index of a tensor of shape `output` (row-major), the sum over its axes of
 * `part(axis, coordinate)`, or −1 as soon as one part is −1.
 */
function sourceIndexMap(output: Shape, part: (axis: number, coord: number) => number): Int32Array {
  const outStrides = strides(output);
  const out = new Int32Array(sizeOf(output));
  for (let o = 0; o < out.length; o++) {
    let rest = o;
    let src = 0;
    for (let axis = 0; axis < output.length; axis++) {
      const coord = Math.floor(rest / (outStrides[axis] as number));
      rest -= coord * (outStrides[axis] as number);
      const p = part(axis, coord);
      if (p < 0) {
        src = -1;
        break;
      }
      src += p;
    }
    out[o] = src;
  }
  return out;
}

function strides(shape: Shape): number[] {
  const out = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) out[i] = (out[i + 1] as number) * (shape[i + 1] as number);
  return out;
}

/** The sum of several tensors of one shape (a residual connection). Takes several inputs. */
export class Add {
  readonly kind = 'add';
  readonly category = 'linear';

  /** @throws {ShapeError} unless there is at least one input and all shapes are equal. */
  computeOutputShape(...inputs: Shape[]): Shape {
    const [first] = inputs;
    if (first === undefined) throw new ShapeError('Add needs at least one input');
    for (const s of inputs) {
      if (formatShape(s) !== formatShape(first)) {
        throw new ShapeError(`Add needs inputs of one shape, got ${inputs.map(formatShape).join(' and ')}`);
      }
    }
    return first;
  }
}

/**
 * Concatenation along the first sample axis (channels of an image, features of a vector). In
 * row-major order that is the inputs' values one after the other. Takes several inputs.
 */
export class Concat {
  readonly kind = 'concat';
  readonly category = 'linear';

  /** @throws {ShapeError} unless there is at least one input and all agree beyond the first axis. */
  computeOutputShape(...inputs: Shape[]): Shape {
    const [first] = inputs;
    if (first === undefined || first.length === 0) throw new ShapeError('Concat needs at least one input with an axis');
    const rest = formatShape(first.slice(1));
    let channels = 0;
    for (const s of inputs) {
      if (s.length !== first.length || formatShape(s.slice(1)) !== rest) {
        throw new ShapeError(`Concat along channels needs inputs that agree on the other axes, got ${inputs.map(formatShape).join(' and ')}`);
      }
      channels += s[0] as number;
    }
    return [channels, ...first.slice(1)];
  }
}

/** Every layer of the IR; backends switch on `kind`. */
export type Layer =
  | Conv2d
  | Dense
  | AvgPool2d
  | MaxPool2d
  | GlobalAvgPool2d
  | Flatten
  | Reshape
  | Relu
  | Sigmoid
  | Tanh
  | Polynomial
  | Softmax
  | LogSoftmax
  | Affine
  | Transpose
  | Pad
  | Add
  | Concat
  | LeakyRelu
  | Gelu
  | Silu
  | HardSwish
  | Clip;

/** The layers that take several inputs (every other layer takes exactly one). */
export type MultiInputLayer = Add | Concat;

/** True for {@link Add} and {@link Concat}. */
export function isMultiInput(layer: Layer): layer is MultiInputLayer {
  return layer.kind === 'add' || layer.kind === 'concat';
}

/**
 * The output shape of `layer` for its inputs' shapes.
 *
 * @throws {ShapeError} for a wrong number of inputs (one, except for Add and Concat) or shapes
 *   the layer cannot take.
 */
export function outputShapeOf(layer: Layer, inputs: readonly Shape[]): Shape {
  if (isMultiInput(layer)) return layer.computeOutputShape(...inputs);
  const [input] = inputs;
  if (inputs.length !== 1 || input === undefined) {
    throw new ShapeError(`${layer.kind} takes one input, got ${inputs.length}`);
  }
  return layer.computeOutputShape(input);
}

/** The `kind` of each layer class. */
export type LayerKind = Layer['kind'];

function slide(
  h: number,
  w: number,
  kernel: Size2,
  stride: Size2,
  p: Pads,
  who: string,
  ceil = false,
): [number, number] {
  return [
    windowCount(h, kernel[0], stride[0], p[0], p[2], who, ceil),
    windowCount(w, kernel[1], stride[1], p[1], p[3], who, ceil),
  ];
}

function positive(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer, got ${n}`);
  return n;
}

function size2(s: Size2, what: string): Size2 {
  if (s.length !== 2) throw new RangeError(`${what} must have 2 entries, got ${s.length}`);
  return [positive(s[0], what), positive(s[1], what)];
}

function pads(p: Pads, what: string): Pads {
  if (p.length !== 4 || !p.every((x) => Number.isSafeInteger(x) && x >= 0)) {
    throw new RangeError(`${what} must be 4 non-negative integers, got [${p.join(', ')}]`);
  }
  return [p[0], p[1], p[2], p[3]];
}

function expectLength(a: Float32Array, n: number, what: string): void {
  if (a.length !== n) throw new RangeError(`${what} must have ${n} values, got ${a.length}`);
}
