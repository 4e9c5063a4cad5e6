/**
 * Linear layers of the IR as sparse linear maps (see `src/tensor/sparse-linear.ts`), for a given
 * input shape: what encrypted backends evaluate on ciphertexts.
 *
 * @module
 */
import { buildSparseMap, type SparseLinearMap } from '../tensor/sparse-linear.js';
import type { AvgPool2d, Conv2d, Dense, GlobalAvgPool2d } from './layers.js';
import { asImageShape, sizeOf, type Shape } from './shape.js';

/** The linear layers of the IR. */
export type LinearLayer = Conv2d | Dense | AvgPool2d | GlobalAvgPool2d;

/**
 * The layer as y = A·x + b on row-major flattened tensors.
 *
 * @throws ShapeError if the layer cannot take `input`.
 */
export function linearMapOf(layer: LinearLayer, input: Shape): SparseLinearMap {
  const output = layer.computeOutputShape(input);
  switch (layer.kind) {
    case 'dense':
      return denseMap(layer);
    case 'conv2d':
      return convMap(layer, input, output);
    case 'avgpool2d':
      return avgPoolMap(layer, input, output);
    case 'globalavgpool2d':
      return globalAvgPoolMap(input);
  }
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
  const bias = new Float64Array(outC * oh * ow);
  for (let oc = 0; oc < outC; oc++) bias.fill(layer.bias[oc]!, oc * oh * ow, (oc + 1) * oh * ow);
  return buildSparseMap(outC * oh * ow, inC * h * w, bias, (r, add) => {
    const oc = Math.floor(r / (oh * ow));
    const oy = Math.floor(r / ow) % oh;
    const ox = r % ow;
    for (let ic = 0; ic < inC; ic++) {
      for (let ky = 0; ky < kh; ky++) {
        const iy = oy * sh - padTop + ky;
        if (iy < 0 || iy >= h) continue;
        for (let kx = 0; kx < kw; kx++) {
          const ix = ox * sw - padLeft + kx;
          if (ix < 0 || ix >= w) continue;
          add(ic * h * w + iy * w + ix, layer.weights[((oc * inC + ic) * kh + ky) * kw + kx]!);
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
  const area = layer.kernel[0] * layer.kernel[1];
  return buildSparseMap(windows.length, sizeOf(input), new Float64Array(windows.length), (r, add) => {
    const cells = windows[r]!;
    const divisor = layer.countIncludePad ? area : cells.length;
    for (const cell of cells) add(cell, 1 / divisor);
  });
}

function globalAvgPoolMap(input: Shape): SparseLinearMap {
  const [c, h, w] = asImageShape(input, 'GlobalAvgPool2d');
  const area = h * w;
  return buildSparseMap(c, sizeOf(input), new Float64Array(c), (r, add) => {
    for (let i = 0; i < area; i++) add(r * area + i, 1 / area);
  });
}
