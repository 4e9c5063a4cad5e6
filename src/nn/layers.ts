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

/** 2-D convolution (cross-correlation, as in ONNX and PyTorch), dilation 1, one group. */
export class Conv2d {
  readonly kind = 'conv2d';
  readonly category = 'linear';
  readonly outChannels: number;
  readonly inChannels: number;
  readonly kernel: Size2;
  readonly stride: Size2;
  readonly pads: Pads;
  /** [outChannels, inChannels, kernelH, kernelW], row-major. */
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
  }) {
    this.outChannels = positive(config.outChannels, 'Conv2d outChannels');
    this.inChannels = positive(config.inChannels, 'Conv2d inChannels');
    this.kernel = size2(config.kernel, 'Conv2d kernel');
    this.stride = size2(config.stride ?? [1, 1], 'Conv2d stride');
    this.pads = pads(config.pads ?? NO_PADS, 'Conv2d pads');
    this.weights = config.weights;
    expectLength(
      this.weights,
      this.outChannels * this.inChannels * this.kernel[0] * this.kernel[1],
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

/** Average pooling over windows; padded cells count toward the divisor only if `countIncludePad`. */
export class AvgPool2d {
  readonly kind = 'avgpool2d';
  readonly category = 'linear';
  readonly kernel: Size2;
  readonly stride: Size2;
  readonly pads: Pads;
  readonly countIncludePad: boolean;

  constructor(config: {
    readonly kernel: Size2;
    readonly stride?: Size2;
    readonly pads?: Pads;
    readonly countIncludePad?: boolean;
  }) {
    this.kernel = size2(config.kernel, 'AvgPool2d kernel');
    this.stride = size2(config.stride ?? this.kernel, 'AvgPool2d stride');
    this.pads = pads(config.pads ?? NO_PADS, 'AvgPool2d pads');
    this.countIncludePad = config.countIncludePad ?? false;
  }

  /** @throws {ShapeError} unless the input is an image the window fits. */
  computeOutputShape(input: Shape): Shape {
    const [c, h, w] = asImageShape(input, 'AvgPool2d');
    return [c, ...slide(h, w, this.kernel, this.stride, this.pads, 'AvgPool2d')];
  }
}

/** Max pooling over windows; padded cells never win. */
export class MaxPool2d {
  readonly kind = 'maxpool2d';
  readonly category = 'activation';
  readonly kernel: Size2;
  readonly stride: Size2;
  readonly pads: Pads;

  constructor(config: { readonly kernel: Size2; readonly stride?: Size2; readonly pads?: Pads }) {
    this.kernel = size2(config.kernel, 'MaxPool2d kernel');
    this.stride = size2(config.stride ?? this.kernel, 'MaxPool2d stride');
    this.pads = pads(config.pads ?? NO_PADS, 'MaxPool2d pads');
    if (this.pads[0] >= this.kernel[0] || this.pads[2] >= this.kernel[0] ||
        this.pads[1] >= this.kernel[1] || this.pads[3] >= this.kernel[1]) {
      // Otherwise a window could hold padding only, and its max would be -Infinity.
      throw new RangeError('MaxPool2d pads must be smaller than the kernel');
    }
  }

  /** @throws {ShapeError} unless the input is an image the window fits. */
  computeOutputShape(input: Shape): Shape {
    const [c, h, w] = asImageShape(input, 'MaxPool2d');
    return [c, ...slide(h, w, this.kernel, this.stride, this.pads, 'MaxPool2d')];
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
  | Softmax;

/** The `kind` of each layer class. */
export type LayerKind = Layer['kind'];

function slide(
  h: number,
  w: number,
  kernel: Size2,
  stride: Size2,
  p: Pads,
  who: string,
): [number, number] {
  return [
    windowCount(h, kernel[0], stride[0], p[0], p[2], who),
    windowCount(w, kernel[1], stride[1], p[1], p[3], who),
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
