/**
 * Node-only loading of IDX files (`.idx3-ubyte`, `.idx1-ubyte`, either optionally `.gz`). The
 * format itself is parsed by the browser-safe `./idx.ts`; this module adds the file system and gzip.
 *
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DataNotFoundError, FormatError } from '../errors.js';
import {
  encodeIdx,
  idxImages,
  idxLabels,
  isGzip,
  parseIdx,
  pixelsToFloat32,
  type IdxImages,
  type IdxTensor,
} from './idx.js';

/** Images with one label each; `images` holds the pixels scaled to [0, 1], image after image. */
export interface LabeledImages {
  readonly count: number;
  /** Shape of one image as a model sees it: [channels, rows, cols]. */
  readonly shape: readonly [number, number, number];
  readonly images: Float32Array;
  readonly labels: Uint8Array;
}

/**
 * Decompresses `bytes` when they are gzip, and returns them unchanged otherwise.
 *
 * @throws {FormatError} if the bytes look like gzip but do not decompress.
 */
export function maybeGunzip(bytes: Uint8Array): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    return new Uint8Array(gunzipSync(bytes));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new FormatError(`corrupt gzip stream (${reason})`, { cause: err });
  }
}

/**
 * Reads and parses an IDX file, gzip-compressed or not (detected from the content, not the name).
 *
 * @throws {DataNotFoundError} if the file cannot be read.
 * @throws {FormatError} if it is not a valid unsigned-byte IDX file; the message names the file.
 */
export function readIdxFile(path: string): IdxTensor {
  let raw: Uint8Array;
  try {
    raw = readFileSync(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new DataNotFoundError(`cannot read ${path} (${reason})`, { cause: err });
  }
  return withPath(path, () => parseIdx(maybeGunzip(raw)));
}

/**
 * Reads an IDX image file (N × rows × cols, unsigned bytes).
 *
 * @throws {DataNotFoundError} if the file cannot be read.
 * @throws {FormatError} if it is malformed or not three-dimensional.
 */
export function readImagesFile(path: string): IdxImages {
  return withPath(path, () => idxImages(readIdxFile(path)));
}

/**
 * Reads an IDX label file (N unsigned bytes).
 *
 * @throws {DataNotFoundError} if the file cannot be read.
 * @throws {FormatError} if it is malformed, not one-dimensional, or has a label ≥ `numClasses`.
 */
export function readLabelsFile(path: string, numClasses?: number): Uint8Array {
  return withPath(path, () => idxLabels(readIdxFile(path), numClasses));
}

/**
 * Reads an image file and its label file, optionally skipping the first `skip` samples and keeping
 * at most `limit` after them.
 *
 * @throws {DataNotFoundError} if either file cannot be read.
 * @throws {FormatError} if either is malformed or their counts differ.
 * @throws {RangeError} if `limit` or `skip` is not a non-negative integer.
 */
export function readLabeledImages(
  imagesPath: string,
  labelsPath: string,
  options: { readonly limit?: number; readonly skip?: number; readonly numClasses?: number } = {},
): LabeledImages {
  const images = readImagesFile(imagesPath);
  const labels = readLabelsFile(labelsPath, options.numClasses);
  if (images.count !== labels.length) {
    throw new FormatError(
      `${imagesPath} has ${images.count} images but ${labelsPath} has ${labels.length} labels`,
    );
  }
  const { limit } = options;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
  }
  const skip = options.skip ?? 0;
  if (!Number.isInteger(skip) || skip < 0) throw new RangeError(`skip must be a non-negative integer, got ${skip}`);
  const available = Math.max(0, images.count - skip);
  const count = limit === undefined ? available : Math.min(limit, available);
  const pixelsPerImage = images.rows * images.cols;
  return {
    count,
    shape: [1, images.rows, images.cols],
    images: pixelsToFloat32(images.pixels.subarray(skip * pixelsPerImage, (skip + count) * pixelsPerImage)),
    labels: labels.slice(skip, skip + count),
  };
}

/**
 * Writes an unsigned-byte IDX file, gzip-compressed when `path` ends in `.gz`.
 *
 * @throws {RangeError} if `dims` do not match `data.length`.
 */
export function writeIdxFile(path: string, dims: readonly number[], data: Uint8Array): void {
  const bytes = encodeIdx(dims, data);
  writeFileSync(path, path.endsWith('.gz') ? gzipSync(bytes, { level: 9 }) : bytes);
}

function withPath<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof FormatError && !err.message.startsWith(path)) {
      throw new FormatError(`${path}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
