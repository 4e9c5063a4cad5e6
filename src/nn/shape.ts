/**
 * Shapes of one sample's tensor, without the batch dimension: `[features]` for vectors,
 * `[channels, height, width]` for images (NCHW minus N). Values are stored row-major.
 *
 * @module
 */
import { ShapeError } from '../errors.js';

/** The shape of one sample's tensor (no batch dimension). */
export type Shape = readonly number[];

/** Number of values in a tensor of this shape. */
export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Formats a shape the way error messages show it: `[20, 26, 26]`. */
export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Reads an image shape `[channels, height, width]`.
 *
 * @throws {ShapeError} if `shape` does not have exactly three positive dimensions.
 */
export function asImageShape(shape: Shape, who: string): [number, number, number] {
  const [c, h, w] = shape;
  if (shape.length !== 3 || c === undefined || h === undefined || w === undefined) {
    throw new ShapeError(`${who} needs a [channels, height, width] input, got ${formatShape(shape)}`);
  }
  return [c, h, w];
}

/**
 * Output length of a sliding window along one axis: floor mode (ONNX ceil_mode 0) or ceil mode,
 * where a last partial window counts if it starts inside the input or its leading padding (the
 * rule of PyTorch and onnxruntime).
 *
 * @throws {ShapeError} if the window does not fit even once.
 */
export function windowCount(
  size: number,
  kernel: number,
  stride: number,
  padBefore: number,
  padAfter: number,
  who: string,
  ceil = false,
): number {
  const span = size + padBefore + padAfter - kernel;
  if (span < 0) {
    throw new ShapeError(`${who}: kernel ${kernel} is larger than the padded input ${size + padBefore + padAfter}`);
  }
  if (!ceil) return Math.floor(span / stride) + 1;
  let count = Math.ceil(span / stride) + 1;
  if ((count - 1) * stride >= size + padBefore) count--;
  return count;
}
