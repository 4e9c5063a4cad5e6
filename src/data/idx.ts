/**
 * The IDX format used by MNIST and Fashion-MNIST, parsed from bytes already in memory. Browser-safe:
 * decompression and file access live in `./files.ts`.
 *
 * Layout: two zero bytes, a dtype byte, a dimension count byte, one big-endian uint32 per
 * dimension, then the values in row-major order. {@link parseIdx} accepts dtype 0x08 (unsigned
 * byte), what every MNIST-format image and label file uses; {@link parseIdxNumbers} also accepts
 * 0x0D (big-endian float32), which carries calibration inputs of models that do not read pixels.
 *
 * @module
 */
import { FormatError } from '../errors.js';

/** The dtype byte of unsigned 8-bit values. */
export const IDX_UBYTE = 0x08;
/** The dtype byte of 32-bit floats (big-endian, as the IDX format stores every multi-byte type). */
export const IDX_FLOAT32 = 0x0d;

const HEADER_BYTES = 4;
const DTYPE_NAMES: Readonly<Record<number, string>> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

/** A parsed IDX file: its dimensions and its values, row-major. */
export interface IdxTensor {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

/** A stack of greyscale images with their raw 0–255 pixels, row-major, image after image. */
export interface IdxImages {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  readonly pixels: Uint8Array;
}

/** True when `bytes` start with the gzip magic number (1f 8b). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses an uncompressed IDX file. The returned `data` is a view into `bytes`, not a copy.
 *
 * @throws {FormatError} if the bytes are gzip-compressed, the magic number is wrong, the dtype is
 *   not unsigned byte, or the length does not match the header (truncated or trailing bytes).
 */
export function parseIdx(bytes: Uint8Array): IdxTensor {
  const { dims, data } = parseWith(bytes, [IDX_UBYTE]);
  return { dims, data };
}

/** Values of an IDX file of unsigned bytes or float32, with where they came from. */
export interface IdxNumbers {
  readonly dims: readonly number[];
  readonly values: Float32Array;
  /** True for unsigned bytes (8-bit data such as pixels), false for float32. */
  readonly bytes: boolean;
}

/**
 * Parses an uncompressed IDX file of unsigned bytes or big-endian float32 values.
 *
 * @throws {FormatError} as {@link parseIdx} does (another dtype, a bad header or length), or for a
 *   float that is not finite.
 */
export function parseIdxNumbers(bytes: Uint8Array): IdxNumbers {
  const { dims, data, dtype } = parseWith(bytes, [IDX_UBYTE, IDX_FLOAT32]);
  if (dtype === IDX_UBYTE) return { dims, values: Float32Array.from(data), bytes: true };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const values = new Float32Array(data.length / 4);
  for (let i = 0; i < values.length; i++) {
    values[i] = view.getFloat32(4 * i, false);
    if (!Number.isFinite(values[i]!)) throw new FormatError(`IDX: value ${i} is ${values[i]}`);
  }
  return { dims, values, bytes: false };
}

function parseWith(bytes: Uint8Array, accepted: readonly number[]): IdxTensor & { dtype: number } {
  if (isGzip(bytes)) {
    throw new FormatError('IDX: the bytes are gzip-compressed; decompress them first');
  }
  if (bytes.length < HEADER_BYTES) {
    throw new FormatError(`IDX: truncated header (${bytes.length} bytes)`);
  }
  const [zero0, zero1, dtype, ndims] = bytes as unknown as [number, number, number, number];
  if (zero0 !== 0 || zero1 !== 0) {
    throw new FormatError(
      `IDX: bad magic number 0x${hex(bytes.subarray(0, 4))} (expected 0x0000 then dtype and rank)`,
    );
  }
  if (!accepted.includes(dtype)) {
    const name = DTYPE_NAMES[dtype];
    throw new FormatError(
      name === undefined
        ? `IDX: unknown dtype 0x${dtype.toString(16).padStart(2, '0')}`
        : `IDX: dtype ${name} is not supported (only ${accepted.map((d) => DTYPE_NAMES[d]).join(' or ')})`,
    );
  }
  if (ndims === 0) {
    throw new FormatError('IDX: zero dimensions');
  }
  const dataStart = HEADER_BYTES + 4 * ndims;
  if (bytes.length < dataStart) {
    throw new FormatError(`IDX: truncated header (${bytes.length} bytes, ${ndims} dimensions declared)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let size = dtype === IDX_FLOAT32 ? 4 : 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(HEADER_BYTES + 4 * i, false);
    dims.push(d);
    size *= d;
  }
  const actual = bytes.length - dataStart;
  if (actual !== size) {
    const what = actual < size ? 'truncated' : 'trailing bytes';
    throw new FormatError(
      `IDX: ${what}: dims [${dims.join(', ')}] need ${size} bytes of data, found ${actual}`,
    );
  }
  return { dims, data: bytes.subarray(dataStart), dtype };
}

/**
 * Serializes values as an uncompressed unsigned-byte IDX file.
 *
 * @throws {RangeError} if a dimension is not a uint32 or the product of `dims` differs from
 *   `data.length`.
 */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  return encodeWith(dims, data, IDX_UBYTE, data.length);
}

/**
 * Serializes values as an uncompressed float32 IDX file (big-endian).
 *
 * @throws {RangeError} as {@link encodeIdx} does.
 */
export function encodeIdxFloat32(dims: readonly number[], values: ArrayLike<number>): Uint8Array {
  const data = new Uint8Array(4 * values.length);
  const view = new DataView(data.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i]!, false);
  return encodeWith(dims, data, IDX_FLOAT32, values.length);
}

function encodeWith(dims: readonly number[], data: Uint8Array, dtype: number, count: number): Uint8Array {
  if (dims.length === 0 || dims.length > 255) {
    throw new RangeError(`encodeIdx: rank must be 1..255, got ${dims.length}`);
  }
  let size = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) {
      throw new RangeError(`encodeIdx: bad dimension ${d}`);
    }
    size *= d;
  }
  if (size !== count) {
    throw new RangeError(`encodeIdx: dims [${dims.join(', ')}] need ${size} values, got ${count}`);
  }
  const out = new Uint8Array(HEADER_BYTES + 4 * dims.length + data.length);
  out[2] = dtype;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(HEADER_BYTES + 4 * i, d, false));
  out.set(data, HEADER_BYTES + 4 * dims.length);
  return out;
}

/**
 * Reads a parsed IDX tensor as a stack of images (N × rows × cols).
 *
 * @throws {FormatError} if the tensor is not three-dimensional, or does not have the expected
 *   image size when `expect` is given.
 */
export function idxImages(
  tensor: IdxTensor,
  expect?: { readonly rows: number; readonly cols: number },
): IdxImages {
  const [count, rows, cols] = tensor.dims;
  if (tensor.dims.length !== 3 || count === undefined || rows === undefined || cols === undefined) {
    throw new FormatError(
      `IDX images: expected 3 dimensions (count, rows, cols), got [${tensor.dims.join(', ')}]`,
    );
  }
  if (expect && (rows !== expect.rows || cols !== expect.cols)) {
    throw new FormatError(
      `IDX images: expected ${expect.rows}×${expect.cols} images, got ${rows}×${cols}`,
    );
  }
  return { count, rows, cols, pixels: tensor.data };
}

/**
 * Reads a parsed IDX tensor as a vector of class labels.
 *
 * @throws {FormatError} if the tensor is not one-dimensional, or a label is ≥ `numClasses` when
 *   that is given.
 */
export function idxLabels(tensor: IdxTensor, numClasses?: number): Uint8Array {
  if (tensor.dims.length !== 1) {
    throw new FormatError(`IDX labels: expected 1 dimension, got [${tensor.dims.join(', ')}]`);
  }
  if (numClasses !== undefined) {
    const bad = tensor.data.findIndex((label) => label >= numClasses);
    if (bad >= 0) {
      throw new FormatError(
        `IDX labels: label ${tensor.data[bad]} at index ${bad} is not below ${numClasses}`,
      );
    }
  }
  return tensor.data;
}

/** Scales raw 0–255 pixels to floats in [0, 1], the input convention of blindml's models. */
export function pixelsToFloat32(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = (pixels[i] as number) / 255;
  return out;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
