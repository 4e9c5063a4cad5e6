/**
 * The plaintext executor: runs a {@link Model} on a batch of samples in the clear. It is the
 * reference the encrypted backends are checked against, and what calibrates their fixed-point
 * scales, so it computes in double precision (weights are float32, as in the model file).
 *
 * Samples are processed in chunks; each layer writes a fresh typed array per chunk and kernels
 * allocate nothing per value. Convolutions go through im2col and a row-major matrix product whose
 * inner loop runs over contiguous memory.
 *
 * @module
 */
import { ShapeError } from '../errors.js';
import type { Affine, AvgPool2d, Conv2d, Dense, Layer, MaxPool2d } from './layers.js';
import type { Model, ModelNode } from './model.js';
import { formatShape, sizeOf, type Shape } from './shape.js';

/** Options of {@link runPlaintext}. */
export interface RunOptions {
  /** Samples per chunk (default 64): bounds memory to a chunk's activations. */
  readonly chunkSize?: number;
  /**
   * Sees every node's output, chunk by chunk: `output` holds `count` samples (row-major, sample
   * after sample) starting at sample `first`; `index` is the node's position in `model.nodes`
   * (for a chain, the layer's index). Used to calibrate fixed-point scales. The array must not
   * be modified.
   */
  readonly onLayer?: (event: {
    readonly index: number;
    readonly layer: Layer;
    readonly node: ModelNode;
    readonly output: Float64Array;
    readonly first: number;
    readonly count: number;
  }) => void;
}

/**
 * Runs `model` on samples stored one after the other in `inputs`.
 *
 * @returns the outputs, `model.outputSize` values per sample, sample after sample.
 * @throws {ShapeError} if `inputs.length` is not a multiple of the model's input size.
 * @throws {RangeError} if `chunkSize` is not a positive integer.
 */
export function runPlaintext(
  model: Model,
  inputs: Float32Array | Float64Array,
  options: RunOptions = {},
): Float64Array {
  const inSize = model.inputSize;
  if (inputs.length % inSize !== 0) {
    throw new ShapeError(
      `input has ${inputs.length} values, not a multiple of the model's input ${formatShape(model.inputShape)} (${inSize})`,
    );
  }
  const chunkSize = options.chunkSize ?? 64;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  }
  const total = inputs.length / inSize;
  const outSize = model.outputSize;
  const outputs = new Float64Array(total * outSize);
  const lastRead = lastReaders(model);
  for (let first = 0; first < total; first += chunkSize) {
    const count = Math.min(chunkSize, total - first);
    const values = new Map<string, Float64Array>([
      [model.inputName, Float64Array.from(inputs.subarray(first * inSize, (first + count) * inSize))],
    ]);
    model.nodes.forEach((node, index) => {
      const args = node.inputs.map((t) => values.get(t) as Float64Array);
      const output = runNode(node, node.inputs.map((t) => model.shapeOf(t)), args, count);
      values.set(node.output, output);
      options.onLayer?.({ index, layer: node.layer, node, output, first, count });
      // Free what no later node reads, so memory stays at the graph's widest cut.
      for (const t of node.inputs) if (lastRead.get(t) === index && t !== model.outputName) values.delete(t);
    });
    outputs.set(values.get(model.outputName) as Float64Array, first * outSize);
  }
  return outputs;
}

/** For each tensor, the index of the last node reading it. */
function lastReaders(model: Model): Map<string, number> {
  const last = new Map<string, number>();
  model.nodes.forEach((node, index) => node.inputs.forEach((t) => last.set(t, index)));
  return last;
}

function runNode(node: ModelNode, shapes: readonly Shape[], args: readonly Float64Array[], n: number): Float64Array {
  const layer = node.layer;
  if (layer.kind === 'add') return addAll(args);
  if (layer.kind === 'concat') return concat(args, shapes, n);
  return runLayer(layer, shapes[0] as Shape, args[0] as Float64Array, n);
}

/**
 * Index of the largest value of each row of `values` (rows of `width`); ties go to the first.
 *
 * @throws {RangeError} if `values.length` is not a multiple of `width`.
 */
export function argmaxRows(values: ArrayLike<number>, width: number): Int32Array {
  if (!Number.isSafeInteger(width) || width < 1 || values.length % width !== 0) {
    throw new RangeError(`cannot split ${values.length} values into rows of ${width}`);
  }
  const rows = values.length / width;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    let bestValue = values[r * width] as number;
    for (let j = 1; j < width; j++) {
      const v = values[r * width + j] as number;
      if (v > bestValue) {
        bestValue = v;
        best = j;
      }
    }
    out[r] = best;
  }
  return out;
}

/**
 * Runs the model and returns the predicted class (argmax of the output) of each sample.
 *
 * @throws {ShapeError} as {@link runPlaintext}.
 */
export function predictPlaintext(
  model: Model,
  inputs: Float32Array | Float64Array,
  options: RunOptions = {},
): Int32Array {
  return argmaxRows(runPlaintext(model, inputs, options), model.outputSize);
}

/**
 * Fraction of `predictions` equal to `labels`.
 *
 * @throws {RangeError} if the lengths differ or are zero.
 */
export function accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (predictions.length !== labels.length || labels.length === 0) {
    throw new RangeError(`${predictions.length} predictions for ${labels.length} labels`);
  }
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) correct++;
  return correct / labels.length;
}

function runLayer(layer: Exclude<Layer, { kind: 'add' | 'concat' }>, inShape: Shape, x: Float64Array, n: number): Float64Array {
  switch (layer.kind) {
    case 'conv2d':
      return conv2d(layer, inShape, x, n);
    case 'dense':
      return dense(layer, x, n);
    case 'avgpool2d':
      return avgPool(layer, inShape, x, n);
    case 'maxpool2d':
      return maxPool(layer, inShape, x, n);
    case 'globalavgpool2d':
      return globalAvgPool(inShape, x, n);
    case 'flatten':
    case 'reshape':
      return x;
    case 'relu':
      return map(x, (v) => (v > 0 ? v : 0));
    case 'sigmoid':
      return map(x, (v) => 1 / (1 + Math.exp(-v)));
    case 'tanh':
      return map(x, Math.tanh);
    case 'polynomial':
      return map(x, (v) => horner(layer.coefficients, v));
    case 'softmax':
      return softmax(x, inShape[inShape.length - 1] ?? 1);
    case 'logsoftmax':
      return logSoftmax(x, inShape[inShape.length - 1] ?? 1);
    case 'affine':
      return affine(layer, inShape, x);
    case 'transpose':
    case 'pad':
      return gather(layer.sourceIndices(inShape), sizeOf(inShape), x, n);
    case 'leakyrelu': {
      const alpha = layer.alpha;
      return map(x, (v) => (v >= 0 ? v : alpha * v));
    }
    case 'gelu':
      return map(x, (v) => 0.5 * v * (1 + erf(v * Math.SQRT1_2)));
    case 'silu':
      return map(x, (v) => v / (1 + Math.exp(-v)));
    case 'hardswish':
      return map(x, (v) => v * Math.min(Math.max(v / 6 + 0.5, 0), 1));
    case 'clip': {
      const { min, max } = layer;
      return map(x, (v) => Math.min(Math.max(v, min), max));
    }
  }
}

function affine(layer: Affine, inShape: Shape, x: Float64Array): Float64Array {
  const { scale, bias } = layer.expand(inShape);
  const size = scale.length;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const j = i % size;
    out[i] = (scale[j] as number) * (x[i] as number) + (bias[j] as number);
  }
  return out;
}

/** out[s, o] = x[s, source[o]], or 0 where source[o] is −1. */
function gather(source: Int32Array, inSize: number, x: Float64Array, n: number): Float64Array {
  const outSize = source.length;
  const out = new Float64Array(n * outSize);
  for (let s = 0; s < n; s++) {
    for (let o = 0; o < outSize; o++) {
      const src = source[o] as number;
      if (src >= 0) out[s * outSize + o] = x[s * inSize + src] as number;
    }
  }
  return out;
}

function addAll(args: readonly Float64Array[]): Float64Array {
  const out = Float64Array.from(args[0] as Float64Array);
  for (const a of args.slice(1)) for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + (a[i] as number);
  return out;
}

/** Per sample, the inputs' values one after the other (concatenation along the first axis). */
function concat(args: readonly Float64Array[], shapes: readonly Shape[], n: number): Float64Array {
  const sizes = shapes.map(sizeOf);
  const outSize = sizes.reduce((a, b) => a + b, 0);
  const out = new Float64Array(n * outSize);
  for (let s = 0; s < n; s++) {
    let at = s * outSize;
    args.forEach((a, k) => {
      const size = sizes[k] as number;
      out.set(a.subarray(s * size, (s + 1) * size), at);
      at += size;
    });
  }
  return out;
}

/**
 * The error function in double precision: its Maclaurin series for |x| < 2.5 (at most ~45 terms,
 * cancellation costs < 4 digits there) and a continued fraction for erfc beyond (JavaScript has
 * no Math.erf).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  if (a < 2.5) {
    let term = a;
    let sum = a;
    for (let k = 1; Math.abs(term) > 1e-17 * Math.abs(sum); k++) {
      term *= (-a * a) / k;
      sum += term / (2 * k + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(−a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + …)))), evaluated from the tail.
  let f = a;
  for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

function conv2d(layer: Conv2d, inShape: Shape, x: Float64Array, n: number): Float64Array {
  const [c, h, w] = inShape as [number, number, number];
  const [, oh, ow] = layer.computeOutputShape(inShape) as [number, number, number];
  const groups = layer.group;
  const groupC = c / groups;
  const K = groupC * layer.kernel[0] * layer.kernel[1];
  const P = oh * ow;
  const O = layer.outChannels;
  const groupO = O / groups;
  const inSize = c * h * w;
  const W = weightsAsF64(layer);
  const patches = new Float64Array(P * K);
  const out = new Float64Array(n * O * P);
  for (let s = 0; s < n; s++) {
    for (let g = 0; g < groups; g++) {
      // A group's output channels read only the group's input channels.
      im2col(layer, x, s * inSize, [g * groupC, groupC, h, w], [oh, ow], patches);
      const o0 = g * groupO;
      matMulRowsInto(W.subarray(o0 * K, (o0 + groupO) * K), groupO, patches, P, K, layer.bias.subarray(o0, o0 + groupO), out, (s * O + o0) * P);
    }
  }
  return out;
}

/**
 * Patch-major im2col of channels [c0, c0 + count) of the sample at xBase: each output position's
 * receptive field becomes one contiguous row of count·kh·kw values.
 */
function im2col(
  layer: Conv2d,
  x: Float64Array,
  xBase: number,
  [c0, count, h, w]: readonly [number, number, number, number],
  [oh, ow]: readonly [number, number],
  patches: Float64Array,
): void {
  const [kh, kw] = layer.kernel;
  const [sh, sw] = layer.stride;
  const [padTop, padLeft] = layer.pads;
  const K = count * kh * kw;
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      let q = (oy * ow + ox) * K;
      for (let ci = c0; ci < c0 + count; ci++) {
        for (let ki = 0; ki < kh; ki++) {
          const iy = oy * sh - padTop + ki;
          const rowInside = iy >= 0 && iy < h;
          const xRow = xBase + (ci * h + iy) * w;
          for (let kj = 0; kj < kw; kj++) {
            const ix = ox * sw - padLeft + kj;
            patches[q++] = rowInside && ix >= 0 && ix < w ? (x[xRow + ix] as number) : 0;
          }
        }
      }
    }
  }
}

/**
 * out[base + o·P + p] = bias[o] + Σ_k W[o·K + k] · patches[p·K + k]. Four output channels at a
 * time share each patch value loaded, and their sums stay in registers.
 */
function matMulRowsInto(
  W: Float64Array,
  O: number,
  patches: Float64Array,
  P: number,
  K: number,
  bias: Float32Array,
  out: Float64Array,
  base: number,
): void {
  let o = 0;
  for (; o + 4 <= O; o += 4) {
    const w0 = o * K;
    const w1 = w0 + K;
    const w2 = w1 + K;
    const w3 = w2 + K;
    for (let p = 0; p < P; p++) {
      const pb = p * K;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let k = 0; k < K; k++) {
        const v = patches[pb + k] as number;
        a0 += (W[w0 + k] as number) * v;
        a1 += (W[w1 + k] as number) * v;
        a2 += (W[w2 + k] as number) * v;
        a3 += (W[w3 + k] as number) * v;
      }
      const ob = base + o * P + p;
      out[ob] = a0 + (bias[o] as number);
      out[ob + P] = a1 + (bias[o + 1] as number);
      out[ob + 2 * P] = a2 + (bias[o + 2] as number);
      out[ob + 3 * P] = a3 + (bias[o + 3] as number);
    }
  }
  for (; o < O; o++) {
    const wb = o * K;
    for (let p = 0; p < P; p++) {
      const pb = p * K;
      let acc = 0;
      for (let k = 0; k < K; k++) acc += (W[wb + k] as number) * (patches[pb + k] as number);
      out[base + o * P + p] = acc + (bias[o] as number);
    }
  }
}

function dense(layer: Dense, x: Float64Array, n: number): Float64Array {
  const K = layer.inFeatures;
  const O = layer.outFeatures;
  // Samples play the part of a convolution's output positions; the product comes out
  // feature-major and is turned sample-major once.
  const byFeature = new Float64Array(O * n);
  matMulRowsInto(weightsAsF64(layer), O, x, n, K, layer.bias, byFeature, 0);
  const out = new Float64Array(O * n);
  for (let o = 0; o < O; o++) for (let s = 0; s < n; s++) out[s * O + o] = byFeature[o * n + s] as number;
  return out;
}

/**
 * Weights widened once per layer, so the hot loops read a single array type. Layers are treated
 * as immutable: changing a layer's weights in place after running it is not seen here.
 */
const widened = new WeakMap<Conv2d | Dense, Float64Array>();
function weightsAsF64(layer: Conv2d | Dense): Float64Array {
  let w = widened.get(layer);
  if (w === undefined) {
    w = Float64Array.from(layer.weights);
    widened.set(layer, w);
  }
  return w;
}

function avgPool(layer: AvgPool2d, inShape: Shape, x: Float64Array, n: number): Float64Array {
  const divideByPadded = layer.countIncludePad;
  return pool(layer, inShape, x, n, 0, (acc, v) => acc + v, (acc, inside, padded) =>
    acc / (divideByPadded ? padded : inside));
}

function maxPool(layer: MaxPool2d, inShape: Shape, x: Float64Array, n: number): Float64Array {
  return pool(layer, inShape, x, n, -Infinity, (acc, v) => (v > acc ? v : acc), (acc) => acc);
}

/**
 * Shared window walk of both poolings. `finish` gets the number of input cells inside the window
 * and the number of cells inside the padded input (what count_include_pad divides by).
 */
function pool(
  layer: AvgPool2d | MaxPool2d,
  inShape: Shape,
  x: Float64Array,
  n: number,
  init: number,
  step: (acc: number, v: number) => number,
  finish: (acc: number, inside: number, padded: number) => number,
): Float64Array {
  const [c, h, w] = inShape as [number, number, number];
  const [, oh, ow] = layer.computeOutputShape(inShape) as [number, number, number];
  const [kh, kw] = layer.kernel;
  const [sh, sw] = layer.stride;
  const [pt, pl, pb, pr] = layer.pads;
  const out = new Float64Array(n * c * oh * ow);
  let o = 0;
  for (let plane = 0; plane < n * c; plane++) {
    const base = plane * h * w;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - pt;
      const yStart = Math.max(y0, 0);
      const yEnd = Math.min(y0 + kh, h);
      const paddedRows = Math.min(y0 + kh, h + pb) - Math.max(y0, -pt);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * sw - pl;
        const xStart = Math.max(x0, 0);
        const xEnd = Math.min(x0 + kw, w);
        const paddedCols = Math.min(x0 + kw, w + pr) - Math.max(x0, -pl);
        let acc = init;
        for (let iy = yStart; iy < yEnd; iy++) {
          const row = base + iy * w;
          for (let ix = xStart; ix < xEnd; ix++) acc = step(acc, x[row + ix] as number);
        }
        out[o++] = finish(acc, (yEnd - yStart) * (xEnd - xStart), paddedRows * paddedCols);
      }
    }
  }
  return out;
}

function globalAvgPool(inShape: Shape, x: Float64Array, n: number): Float64Array {
  const [c] = inShape as [number];
  const plane = sizeOf(inShape) / c;
  const out = new Float64Array(n * c);
  for (let p = 0; p < n * c; p++) {
    let acc = 0;
    for (let i = p * plane; i < (p + 1) * plane; i++) acc += x[i] as number;
    out[p] = acc / plane;
  }
  return out;
}

function map(x: Float64Array, f: (v: number) => number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i] as number);
  return out;
}

function horner(c: readonly number[], v: number): number {
  let acc = 0;
  for (let i = c.length - 1; i >= 0; i--) acc = acc * v + (c[i] as number);
  return acc;
}

/** x − max − log Σ exp(x − max) per row: no log of an underflowed probability. */
function logSoftmax(x: Float64Array, width: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length; r += width) {
    let max = -Infinity;
    for (let i = r; i < r + width; i++) max = Math.max(max, x[i] as number);
    let sum = 0;
    for (let i = r; i < r + width; i++) sum += Math.exp((x[i] as number) - max);
    const shift = max + Math.log(sum);
    for (let i = r; i < r + width; i++) out[i] = (x[i] as number) - shift;
  }
  return out;
}

function softmax(x: Float64Array, width: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length; r += width) {
    let max = -Infinity;
    for (let i = r; i < r + width; i++) max = Math.max(max, x[i] as number);
    let sum = 0;
    for (let i = r; i < r + width; i++) {
      const e = Math.exp((x[i] as number) - max);
      out[i] = e;
      sum += e;
    }
    for (let i = r; i < r + width; i++) out[i] = (out[i] as number) / sum;
  }
  return out;
}
