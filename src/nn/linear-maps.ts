/**
 * Linear layers of the IR as sparse linear maps (see `src/tensor/sparse-linear.ts`), for given
 * input shapes: what encrypted backends evaluate on ciphertexts.
 *
 * @module
 */
import { buildSparseMap, type SparseLinearMap } from '../tensor/sparse-linear.js';
import {
  outputShapeOf,
  type Add,
  type Affine,
  type AvgPool2d,
  type Concat,
  type Conv2d,
  type Dense,
  type GlobalAvgPool2d,
  type Pad,
  type Transpose,
} from './layers.js';
import { asImageShape, sizeOf, type Shape } from './shape.js';

/** The linear layers of the IR (category 'linear'). */
export type LinearLayer = Conv2d | Dense | AvgPool2d | GlobalAvgPool2d | Affine | Transpose | Pad | Add | Concat;

/**
 * The layer as y = A·x + b on row-major flattened tensors. The columns are the layer's inputs one
 * after the other, in the node's input order: for Add [I I …], for Concat the identity (stacking
 * along channels is concatenation in row-major order). A single shape stands for one input.
 *
 * @throws ShapeError if the layer cannot take the inputs (or their number).
 */
export function linearMapOf(layer: LinearLayer, inputs: Shape | readonly Shape[]): SparseLinearMap {
  const shapes = isShapeList(inputs) ? inputs : [inputs];
  const output = outputShapeOf(layer, shapes);
  const input = shapes[0] as Shape;
  switch (layer.kind) {
    case 'dense':
      return denseMap(layer);
    case 'conv2d':
      return convMap(layer, input, output);
    case 'avgpool2d':
      return avgPoolMap(layer, input, output);
    case 'globalavgpool2d':
      return globalAvgPoolMap(input);
    case 'affine':
      return affineMap(layer, input);
    case 'transpose':
    case 'pad':
      return gatherMap(layer.sourceIndices(input), sizeOf(input));
    case 'add':
      return addMap(sizeOf(output), shapes.length);
    case 'concat':
      return gatherMap(Int32Array.from({ length: sizeOf(output) }, (_, i) => i), sizeOf(output));
  }
}

function isShapeList(x: Shape | readonly Shape[]): x is readonly Shape[] {
  return x.length > 0 && Array.isArray(x[0]);
}

function affineMap(layer: Affine, input: Shape): SparseLinearMap {
  const { scale, bias } = layer.expand(input);
  return buildSparseMap(scale.length, scale.length, bias, (r, add) => add(r, scale[r]!));
}

/** Row r copies column source[r] (no term for −1: a zero). */
function gatherMap(source: Int32Array, cols: number): SparseLinearMap {
  return buildSparseMap(source.length, cols, new Float64Array(source.length), (r, add) => {
    const c = source[r]!;
    if (c >= 0) add(c, 1);
  });
}

function addMap(size: number, inputs: number): SparseLinearMap {
  return buildSparseMap(size, size * inputs, new Float64Array(size), (r, add) => {
    for (let k = 0; k < inputs; k++) add(k * size + r, 1);
  });
}

function denseMap(layer: Dense): SparseLinearMap {
  const { inFeatures, outFeatures, weights } = layer;
  return buildSparseMap(outFeatures, inFeatures, layer.bias, (r, add) => {
    for (let c = 0; c < inFeatures; c++) add(c, weights[r * inFeatures + c]!);
  });
}

function convMap(layer: Conv2d, input: Shape, output: Shape): SparseLinearMap {
  const [inC, h, w] = asImageShape(input, 'Conv2d');
  const [outC, oh, ow] = asImageShape(output, 'Conv2d');
  const [kh, kw] = layer.kernel;
  const [sh, sw] = layer.stride;
  const [padTop, padLeft] = layer.pads;
  // Output channel oc reads the inC / group input channels of its group.
  const perGroupIn = inC / layer.group;
  const perGroupOut = outC / layer.group;
  const bias = new Float64Array(outC * oh * ow);
  for (let oc = 0; oc < outC; oc++) bias.fill(layer.bias[oc]!, oc * oh * ow, (oc + 1) * oh * ow);
  return buildSparseMap(outC * oh * ow, inC * h * w, bias, (r, add) => {
    const oc = Math.floor(r / (oh * ow));
    const oy = Math.floor(r / ow) % oh;
    const ox = r % ow;
    const firstIn = Math.floor(oc / perGroupOut) * perGroupIn;
    for (let j = 0; j < perGroupIn; j++) {
      const ic = firstIn + j;
      for (let ky = 0; ky < kh; ky++) {
        const iy = oy * sh - padTop + ky;
        if (iy < 0 || iy >= h) continue;
        for (let kx = 0; kx < kw; kx++) {
          const ix = ox * sw - padLeft + kx;
          if (ix < 0 || ix >= w) continue;
          add(ic * h * w + iy * w + ix, layer.weights[((oc * perGroupIn + j) * kh + ky) * kw + kx]!);
        }
      }
    }
  });
}

/** The shape of a pooling window: kernel, stride and padding. */
export interface PoolGeometry {
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly pads: readonly [number, number, number, number];
}

/**
 * The input cells of each output window of a pooling layer (channel by channel, row-major;
 * padded cells left out).
 *
 * @throws ShapeError unless `input` and `output` are images.
 */
export function poolWindows(layer: PoolGeometry, input: Shape, output: Shape): Int32Array[] {
  const [c, h, w] = asImageShape(input, 'pooling');
  const [, oh, ow] = asImageShape(output, 'pooling');
  const [kh, kw] = layer.kernel;
  const [sh, sw] = layer.stride;
  const [padTop, padLeft] = layer.pads;
  const windows: Int32Array[] = [];
  for (let ch = 0; ch < c; ch++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const cells: number[] = [];
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - padTop + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - padLeft + kx;
            if (ix >= 0 && ix < w) cells.push(ch * h * w + iy * w + ix);
          }
        }
        windows.push(Int32Array.from(cells));
      }
    }
  }
  return windows;
}

function avgPoolMap(layer: AvgPool2d, input: Shape, output: Shape): SparseLinearMap {
  const windows = poolWindows(layer, input, output);
  const padded = layer.countIncludePad ? paddedAreas(layer, input, output) : undefined;
  return buildSparseMap(windows.length, sizeOf(input), new Float64Array(windows.length), (r, add) => {
    const cells = windows[r]!;
    const divisor = padded ? padded[r % padded.length]! : cells.length;
    for (const cell of cells) add(cell, 1 / divisor);
  });
}

/**
 * For count_include_pad: each window's cells inside the padded input, for one channel (windows
 * of ceil mode may hang over the padded input; those cells never count).
 */
export function paddedAreas(layer: PoolGeometry, input: Shape, output: Shape): Float64Array {
  const [, h, w] = asImageShape(input, 'pooling');
  const [, oh, ow] = asImageShape(output, 'pooling');
  const [kh, kw] = layer.kernel;
  const [sh, sw] = layer.stride;
  const [pt, pl, pb, pr] = layer.pads;
  const areas = new Float64Array(oh * ow);
  for (let oy = 0; oy < oh; oy++) {
    const y0 = oy * sh - pt;
    const rows = Math.min(y0 + kh, h + pb) - Math.max(y0, -pt);
    for (let ox = 0; ox < ow; ox++) {
      const x0 = ox * sw - pl;
      areas[oy * ow + ox] = rows * (Math.min(x0 + kw, w + pr) - Math.max(x0, -pl));
    }
  }
  return areas;
}

function globalAvgPoolMap(input: Shape): SparseLinearMap {
  const [c, h, w] = asImageShape(input, 'GlobalAvgPool2d');
  const area = h * w;
  return buildSparseMap(c, sizeOf(input), new Float64Array(c), (r, add) => {
    for (let i = 0; i < area; i++) add(r * area + i, 1 / area);
  });
}
