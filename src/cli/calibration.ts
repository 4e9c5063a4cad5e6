/**
 * Calibration inputs for compiling a model in process: the model owner's images that size the
 * fixed-point scales (Paillier) or the CKKS primes. They must have the model's input shape; data
 * of another shape is refused, never cut to size (cutting 28×28 images into 32×32 pieces would
 * calibrate on garbage, or fail deep inside the compiler).
 *
 * @module
 */
import { ShapeError } from '../errors.js';
import { readIdxFile } from '../data/files.js';
import { loadFashionMnistSample } from '../data/fashion-mnist.js';
import type { Model } from '../nn/model.js';
import { formatShape, sizeOf, type Shape } from '../nn/shape.js';

/** Calibration samples, one after the other, with the shape of one sample. */
export interface CalibrationSet {
  readonly shape: Shape;
  /** Values scaled to [0, 1], sample after sample. */
  readonly values: Float32Array;
  /** Where they come from, for error messages. */
  readonly source: string;
}

/** Images of the committed Fashion-MNIST sample used for calibration (its last ones). */
export const COMMITTED_CALIBRATION_IMAGES = 100;

/**
 * Reads an IDX file of unsigned bytes, N × (sample dimensions), gzip or not; N × H × W reads as
 * single-channel images [1, H, W].
 *
 * @throws {DataNotFoundError} if the file cannot be read.
 * @throws {FormatError} if it is not an unsigned-byte IDX file.
 * @throws {ShapeError} if it holds no samples or has no sample dimensions.
 */
export function readCalibrationFile(path: string): CalibrationSet {
  const idx = readIdxFile(path);
  const [count = 0, ...sample] = idx.dims;
  if (count === 0 || sample.length === 0) {
    throw new ShapeError(`calibration file ${path} holds no samples (dimensions [${idx.dims.join(', ')}])`);
  }
  return {
    shape: sample.length === 2 ? [1, ...sample] : sample,
    values: Float32Array.from(idx.data, (v) => v / 255),
    source: path,
  };
}

/** The last {@link COMMITTED_CALIBRATION_IMAGES} images of the committed Fashion-MNIST sample. */
export function committedCalibration(): CalibrationSet {
  const sample = loadFashionMnistSample();
  const size = sizeOf(sample.shape);
  return {
    shape: sample.shape,
    values: sample.images.subarray((sample.count - COMMITTED_CALIBRATION_IMAGES) * size),
    source: 'the committed Fashion-MNIST calibration images',
  };
}

/**
 * The calibration values for `model`.
 *
 * @throws {ShapeError} naming both shapes if the samples are not of the model's input shape.
 */
export function calibrationFor(model: Model, set: CalibrationSet): Float32Array {
  if (formatShape(set.shape) !== formatShape(model.inputShape)) {
    throw new ShapeError(
      `calibration data from ${set.source} is ${formatShape(set.shape)} per sample but the model takes ` +
        `${formatShape(model.inputShape)}; pass --calibration with images of the model's input shape`,
    );
  }
  checkCalibrationSize(model, set.values);
  return set.values;
}

/**
 * Checks that `values` is one or more whole samples of the model's input.
 *
 * @throws {ShapeError} otherwise.
 */
export function checkCalibrationSize(model: Model, values: ArrayLike<number>): void {
  const size = model.inputSize;
  if (values.length === 0 || values.length % size !== 0) {
    throw new ShapeError(
      `calibration data has ${values.length} values, not a whole number of the model's ${formatShape(model.inputShape)} inputs (${size} values each)`,
    );
  }
}
