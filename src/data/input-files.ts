/**
 * Node-only reading of a user's inputs from files: PNG and JPEG images (pngjs, jpeg-js), a directory
 * of them, NumPy `.npy` arrays, CSV rows and IDX tensors of any rank (bytes or float32, gzip or not). The conversion to
 * the model's input shape is `./inputs.ts`.
 *
 * @module
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { DataNotFoundError, FormatError } from '../errors.js';
import { parseIdxNumbers } from './idx.js';
import { maybeGunzip } from './files.js';
import {
  arrayToInputs, imageToInput, parseCsv, parseNpy, type NamedInput, type Normalization, type NumericArray, type RasterImage,
} from './inputs.js';

/** The file kinds `readInputs` accepts, by extension (`.gz` may follow the IDX ones). */
export const INPUT_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.npy', '.csv', '.idx', '-ubyte'] as const;

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/** Largest decoded image accepted, in megapixels (a bound on memory for a hostile file). */
const MAX_MEGAPIXELS = 100;

/**
 * Reads every input in `paths` (files, or directories whose PNG/JPEG files are read in name order)
 * as model inputs of `shape`. Images are converted and resized to the shape; arrays must hold
 * inputs of its size (see `arrayToInputs`).
 *
 * @throws {DataNotFoundError} for a path that cannot be read or a directory without images.
 * @throws {FormatError} naming the file, for a corrupt file, an unknown kind or a shape that does not fit.
 */
export function readInputs(paths: readonly string[], shape: readonly number[], norm: Normalization): NamedInput[] {
  return paths.flatMap((path) => {
    if (isDirectory(path)) {
      const images = readdirSync(path).filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase())).sort();
      if (images.length === 0) throw new DataNotFoundError(`${path} holds no .png, .jpg or .jpeg files`);
      return images.map((f) => readInputFile(join(path, f), shape, norm)).flat();
    }
    return readInputFile(path, shape, norm);
  });
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (err) {
    throw new DataNotFoundError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

/** One file's inputs (one for an image, one per item for an array). */
function readInputFile(path: string, shape: readonly number[], norm: Normalization): NamedInput[] {
  const bytes = readBytes(path);
  const name = basename(path);
  const ext = extname(path.replace(/\.gz$/i, '')).toLowerCase();
  try {
    if (IMAGE_EXTENSIONS.has(ext) || isPng(bytes) || isJpeg(bytes)) {
      if (shape.length !== 3) throw new FormatError(`the model takes ${shape.join('×')} inputs, not images; give .npy or CSV rows`);
      return [{ name, values: imageToInput(decodeImage(bytes), shape as [number, number, number], norm) }];
    }
    return arrayToInputs(readArray(bytes, ext), shape, norm, name);
  } catch (err) {
    if (err instanceof FormatError && !err.message.startsWith(name)) throw new FormatError(`${name}: ${err.message}`, { cause: err });
    throw err;
  }
}

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new DataNotFoundError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

function readArray(raw: Uint8Array, ext: string): NumericArray {
  const bytes = maybeGunzip(raw);
  if (ext === '.npy' || bytes[0] === 0x93) return parseNpy(bytes);
  if (ext === '.csv') return parseCsv(new TextDecoder().decode(bytes));
  if (bytes[0] === 0 && bytes[1] === 0) {
    const idx = parseIdxNumbers(bytes);
    return { shape: idx.dims, data: idx.values, bytes: idx.bytes };
  }
  throw new FormatError(`unknown input kind (expected ${INPUT_EXTENSIONS.join(', ')})`);
}

const isPng = (b: Uint8Array) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
const isJpeg = (b: Uint8Array) => b[0] === 0xff && b[1] === 0xd8;

/**
 * Decodes a PNG (any bit depth, palette, interlace) or baseline/progressive JPEG to RGBA.
 *
 * @throws {FormatError} for a corrupt image or one above {@link MAX_MEGAPIXELS}.
 */
export function decodeImage(bytes: Uint8Array): RasterImage {
  try {
    if (isPng(bytes)) {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      if (png.width * png.height > MAX_MEGAPIXELS * 1e6) throw new FormatError(`image of ${png.width}×${png.height} is too large`);
      return { width: png.width, height: png.height, channels: 4, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    }
    if (isJpeg(bytes)) {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_MEGAPIXELS, maxMemoryUsageInMB: 1024 });
      return { width: img.width, height: img.height, channels: 4, data: img.data };
    }
  } catch (err) {
    if (err instanceof FormatError) throw err;
    throw new FormatError(`corrupt image (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  throw new FormatError('not a PNG or JPEG image');
}
