/**
 * Turning a user's own data into model inputs, from bytes already in memory: decoded pixels are
 * converted to the model's channel count, resized to its height and width and normalized; arrays
 * (`.npy`, CSV rows, IDX tensors) are cut into items of the model's input size, with channel-last
 * layouts moved to channel-first. Browser-safe: file access and image decoders live in
 * `./input-files.ts`.
 *
 * @module
 */
import { FormatError } from '../errors.js';

/** One model input with the name it is reported under (a file name, or `file[i]` for arrays). */
export interface NamedInput {
  readonly name: string;
  readonly values: Float32Array;
}

/** Decoded pixels: `channels` interleaved 8-bit values per pixel, row after row (RGBA from the decoders). */
export interface RasterImage {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly data: Uint8Array;
}

/**
 * How 8-bit values become model inputs.
 * - `unit`: v / 255, the [0, 1] range the bundled Fashion-MNIST models were trained on;
 * - `invert`: 1 − v / 255, for dark objects on a light background fed to a model trained on light
 *   objects on black (as Fashion-MNIST is);
 * - `none`: the values as they are (0–255);
 * - `standard`: (v / 255 − mean[c]) / std[c], per channel (one value applies to every channel).
 */
export type Normalization =
  | { readonly kind: 'unit' | 'invert' | 'none' }
  | { readonly kind: 'standard'; readonly mean: readonly number[]; readonly std: readonly number[] };

/**
 * Parses a `--normalize` value: `unit`, `invert`, `none`, or `MEAN/STD` with comma-separated
 * per-channel lists (`0.5/0.5`, `0.485,0.456,0.406/0.229,0.224,0.225`).
 *
 * @throws {FormatError} for anything else, or a standard deviation that is not positive.
 */
export function parseNormalization(text: string): Normalization {
  if (text === 'unit' || text === 'invert' || text === 'none') return { kind: text };
  const parts = text.split('/');
  const numbers = (s: string | undefined) => (s ?? '').split(',').map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
  const mean = numbers(parts[0]);
  const std = numbers(parts[1]);
  if (parts.length !== 2 || [...mean, ...std].some((x) => !Number.isFinite(x))) {
    throw new FormatError(`--normalize '${text}': expected unit, invert, none or MEAN/STD (e.g. 0.5/0.5 or 0.485,0.456,0.406/0.229,0.224,0.225)`);
  }
  if (std.some((s) => s <= 0)) throw new FormatError(`--normalize '${text}': standard deviations must be positive`);
  return { kind: 'standard', mean, std };
}

/**
 * Maps one 8-bit value of channel `c` to a model input.
 *
 * @throws {FormatError} when a per-channel list has neither one value nor one per channel.
 */
export function normalizer(norm: Normalization, channels: number): (v: number, c: number) => number {
  switch (norm.kind) {
    case 'unit':
      return (v) => v / 255;
    case 'invert':
      return (v) => 1 - v / 255;
    case 'none':
      return (v) => v;
    case 'standard': {
      for (const list of [norm.mean, norm.std]) {
        if (list.length !== 1 && list.length !== channels) {
          throw new FormatError(`--normalize gives ${list.length} values per list but the model has ${channels} channel(s)`);
        }
      }
      const at = (list: readonly number[], c: number) => list[list.length === 1 ? 0 : c]!;
      return (v, c) => (v / 255 - at(norm.mean, c)) / at(norm.std, c);
    }
  }
}

/**
 * Converts a decoded image to a `channels × height × width` model input: alpha composited over
 * black (the background of Fashion-MNIST-like data), colour to grey by ITU-R BT.601 luma when the
 * model takes one channel, grey repeated when it takes three; then resized (area average when
 * shrinking, bilinear when enlarging, the aspect ratio not kept) and normalized.
 *
 * @throws {FormatError} when the model takes neither 1 nor 3 channels.
 */
export function imageToInput(image: RasterImage, shape: readonly [number, number, number], norm: Normalization): Float32Array {
  const [channels, height, width] = shape;
  if (channels !== 1 && channels !== 3) {
    throw new FormatError(`images can feed models with 1 or 3 input channels; this one takes ${channels}`);
  }
  const planes = toPlanes(image, channels);
  const f = normalizer(norm, channels);
  const out = new Float32Array(channels * height * width);
  planes.forEach((plane, c) => {
    const resized = resize(plane, image.width, image.height, width, height);
    for (let i = 0; i < resized.length; i++) out[c * height * width + i] = f(resized[i]!, c);
  });
  return out;
}

/** Channel planes (0–255 floats) of an image, alpha composited over black. */
function toPlanes(image: RasterImage, channels: 1 | 3): Float32Array[] {
  const { width, height, data } = image;
  const k = image.channels;
  const pixels = width * height;
  const rgb = [new Float32Array(pixels), new Float32Array(pixels), new Float32Array(pixels)] as const;
  for (let p = 0; p < pixels; p++) {
    const alpha = k === 2 || k === 4 ? data[p * k + k - 1]! / 255 : 1;
    const grey = k <= 2;
    for (let c = 0; c < 3; c++) rgb[c]![p] = data[p * k + (grey ? 0 : c)]! * alpha;
  }
  if (channels === 3) return [...rgb];
  const luma = new Float32Array(pixels);
  for (let p = 0; p < pixels; p++) luma[p] = 0.299 * rgb[0][p]! + 0.587 * rgb[1][p]! + 0.114 * rgb[2][p]!;
  return [luma];
}

/**
 * Resizes one plane: each output pixel averages the source area it covers along an axis that
 * shrinks (no aliasing when a photo becomes 28×28) and interpolates linearly along one that grows.
 */
export function resize(plane: Float32Array, width: number, height: number, toWidth: number, toHeight: number): Float32Array {
  if (width === toWidth && height === toHeight) return plane;
  const rows = resampleAxis(width, toWidth);
  const cols = resampleAxis(height, toHeight);
  const horizontal = new Float32Array(toWidth * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < toWidth; x++) {
      let sum = 0;
      for (const [i, wgt] of rows[x]!) sum += wgt * plane[y * width + i]!;
      horizontal[y * toWidth + x] = sum;
    }
  }
  const out = new Float32Array(toWidth * toHeight);
  for (let y = 0; y < toHeight; y++) {
    for (let x = 0; x < toWidth; x++) {
      let sum = 0;
      for (const [i, wgt] of cols[y]!) sum += wgt * horizontal[i * toWidth + x]!;
      out[y * toWidth + x] = sum;
    }
  }
  return out;
}

/** For each output index along an axis, the source indices and weights that make it (summing to 1). */
function resampleAxis(from: number, to: number): Array<Array<[number, number]>> {
  const scale = from / to;
  return Array.from({ length: to }, (_, o) => {
    if (scale > 1) {
      // Area average over [o·scale, (o+1)·scale).
      const start = o * scale;
      const end = start + scale;
      const taps: Array<[number, number]> = [];
      for (let i = Math.floor(start); i < Math.min(from, Math.ceil(end)); i++) {
        const overlap = Math.min(end, i + 1) - Math.max(start, i);
        if (overlap > 0) taps.push([i, overlap / scale]);
      }
      return taps;
    }
    // Bilinear with pixel centres aligned (as PyTorch's align_corners=False).
    const x = Math.min(from - 1, Math.max(0, (o + 0.5) * scale - 0.5));
    const i = Math.floor(x);
    const t = x - i;
    return t === 0 || i + 1 >= from ? [[i, 1]] : [[i, 1 - t], [i + 1, t]];
  });
}

/** A numeric array with its shape, from an `.npy` or IDX file or CSV rows. */
export interface NumericArray {
  readonly shape: readonly number[];
  readonly data: Float32Array;
  /** True when every value is a whole number in 0–255 and the source said bytes (uint8) or looks like pixels. */
  readonly bytes: boolean;
}

/**
 * Cuts an array into model inputs named `<source>[i]`. Leading axes count items, trailing axes
 * must hold one input: the model's shape (`C,H,W`), its channel-last form (`H,W,C`, moved to
 * channel-first), or the same number of values flat. 8-bit data is normalized with `norm`; other
 * numbers are used as they are (already in the model's scale).
 *
 * @throws {FormatError} naming the source and the shapes that would fit.
 */
export function arrayToInputs(array: NumericArray, modelShape: readonly number[], norm: Normalization, source: string): NamedInput[] {
  const size = modelShape.reduce((a, b) => a * b, 1);
  const shape = array.shape;
  let k = shape.length;
  let trailing = 1;
  while (k > 0 && trailing < size) trailing *= shape[--k]!;
  if (trailing !== size || array.data.length % size !== 0) {
    const [c, h, w] = modelShape;
    const hint = modelShape.length === 3 ? `(N, ${c}, ${h}, ${w}), (N, ${h}, ${w}, ${c}) or (N, ${size})` : `(N, ${size})`;
    throw new FormatError(`${source} has shape (${shape.join(', ')}) but the model takes ${modelShape.join('×')} inputs: give ${hint}`);
  }
  // Unit axes belong to a shaped input with fewer axes than the model (a 3×1×2 input stored as
  // 1×2×3); a flat row stays a row.
  while (k > 0 && shape.length - k > 1 && shape.length - k < modelShape.length && shape[k - 1] === 1) k--;
  const inner = shape.slice(k);
  const channelsLast = modelShape.length === 3 && modelShape[0]! > 1 && inner.length === 3 && inner[2] === modelShape[0] && inner[0] === modelShape[1] && inner[1] === modelShape[2];
  const channels = modelShape.length === 3 ? modelShape[0]! : 1;
  const f = array.bytes ? normalizer(norm, channels) : (v: number) => v;
  const count = array.data.length / size;
  const plane = size / channels;
  return Array.from({ length: count }, (_, n) => {
    const item = array.data.subarray(n * size, (n + 1) * size);
    const values = new Float32Array(size);
    for (let c = 0; c < channels; c++) {
      for (let p = 0; p < plane; p++) {
        values[c * plane + p] = f(channelsLast ? item[p * channels + c]! : item[c * plane + p]!, c);
      }
    }
    return { name: count === 1 && k === 0 ? source : `${source}[${n}]`, values };
  });
}

const NPY_DTYPES: Readonly<Record<string, { bytes: number; read: (v: DataView, o: number) => number }>> = {
  '|u1': { bytes: 1, read: (v, o) => v.getUint8(o) },
  '|i1': { bytes: 1, read: (v, o) => v.getInt8(o) },
  '|b1': { bytes: 1, read: (v, o) => v.getUint8(o) },
  '<u2': { bytes: 2, read: (v, o) => v.getUint16(o, true) },
  '<i2': { bytes: 2, read: (v, o) => v.getInt16(o, true) },
  '<i4': { bytes: 4, read: (v, o) => v.getInt32(o, true) },
  '<i8': { bytes: 8, read: (v, o) => Number(v.getBigInt64(o, true)) },
  '<f4': { bytes: 4, read: (v, o) => v.getFloat32(o, true) },
  '<f8': { bytes: 8, read: (v, o) => v.getFloat64(o, true) },
};

/**
 * Parses a NumPy `.npy` file (format versions 1–3, C order, little-endian numbers as `np.save`
 * writes them on every common machine). `uint8` arrays count as 8-bit data.
 *
 * @throws {FormatError} for a bad magic string or header, Fortran order, an unsupported dtype, or
 *   a length that does not match the shape.
 */
export function parseNpy(bytes: Uint8Array): NumericArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw new FormatError('not a .npy file (no \\x93NUMPY magic string)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (major < 1 || major > 3 || start + headerLength > bytes.length) throw new FormatError(`.npy: unsupported version ${major} or truncated header`);
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new FormatError(`.npy: malformed header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') throw new FormatError('.npy: Fortran-order arrays are not supported (save with np.ascontiguousarray)');
  const dtype = NPY_DTYPES[descr];
  if (!dtype) throw new FormatError(`.npy: dtype ${descr} is not supported (use float32, float64 or an integer type)`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new FormatError(`.npy: bad shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLength;
  if (bytes.length - dataStart !== count * dtype.bytes) {
    throw new FormatError(`.npy: shape (${shape.join(', ')}) needs ${count * dtype.bytes} data bytes, the file has ${bytes.length - dataStart}`);
  }
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = dtype.read(view, dataStart + i * dtype.bytes);
  return { shape, data, bytes: descr === '|u1' };
}

/**
 * Parses CSV text: one input per row, numbers separated by commas. A first row that is not all
 * numbers is a header; a column headed `label` (as in the Kaggle Fashion-MNIST CSVs) is dropped.
 * Rows of whole numbers in 0–255 whose largest value exceeds 1 count as 8-bit pixels.
 *
 * @throws {FormatError} naming the line of a row with a different length or a non-number.
 */
export function parseCsv(text: string): NumericArray {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new FormatError('CSV: no rows');
  const cells = (line: string) => line.split(',').map((c) => c.trim());
  let first = 0;
  let drop = -1;
  const head = cells(lines[0]!);
  if (head.some((c) => c === '' || !Number.isFinite(Number(c)))) {
    first = 1;
    drop = head.findIndex((c) => c.toLowerCase().replace(/"/g, '') === 'label');
  }
  const width = head.length - (drop >= 0 ? 1 : 0);
  const rows = lines.length - first;
  const data = new Float32Array(rows * width);
  let pixels = true;
  let max = 0;
  for (let r = 0; r < rows; r++) {
    const row = cells(lines[first + r]!);
    if (row.length !== head.length) throw new FormatError(`CSV line ${first + r + 1}: ${row.length} values, the first row has ${head.length}`);
    let j = 0;
    row.forEach((c, i) => {
      if (i === drop) return;
      const v = c === '' ? Number.NaN : Number(c);
      if (!Number.isFinite(v)) throw new FormatError(`CSV line ${first + r + 1}: '${c}' is not a number`);
      if (!Number.isInteger(v) || v < 0 || v > 255) pixels = false;
      max = Math.max(max, v);
      data[r * width + j++] = v;
    });
  }
  return { shape: [rows, width], data, bytes: pixels && max > 1 };
}
