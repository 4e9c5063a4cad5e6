// Reading a user's own inputs: .npy/CSV/IDX arrays cut to the model's shape, PNG/JPEG decoded,
// converted, resized and normalized; class names kept in an ONNX model's metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import onnxProto from 'onnx-proto';
import { FormatError } from '../../src/errors.js';
import { arrayToInputs, imageToInput, parseCsv, parseNormalization, parseNpy, resize } from '../../src/data/inputs.js';
import { decodeImage } from '../../src/data/input-files.js';
import { parseLabelList, readModelLabels, withModelLabels } from '../../src/data/onnx-labels.js';
import { importOnnx } from '../../src/nn/onnx.js';
import { runPlaintext } from '../../src/nn/plaintext.js';
import { formatSeconds, honestEta } from '../../src/cli/progress.js';

/** An .npy file as np.save writes it (version 1, header padded to 64 bytes). */
function npy(descr: string, shape: readonly number[], data: Uint8Array, fortran = false): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}

const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
const unit = parseNormalization('unit');

test('parseNpy reads float32, float64 and uint8 arrays with their shapes', () => {
  const a = parseNpy(npy('<f4', [2, 3], f32([1, 2, 3, 4, 5, 6.5])));
  assert.deepEqual(a.shape, [2, 3]);
  assert.deepEqual(Array.from(a.data), [1, 2, 3, 4, 5, 6.5]);
  assert.equal(a.bytes, false);
  const d = parseNpy(npy('<f8', [2], new Uint8Array(Float64Array.from([0.25, -1]).buffer)));
  assert.deepEqual(Array.from(d.data), [0.25, -1]);
  const u = parseNpy(npy('|u1', [1, 2, 2], Uint8Array.of(0, 51, 255, 102)));
  assert.equal(u.bytes, true);
  assert.deepEqual(u.shape, [1, 2, 2]);
});

test('parseNpy refuses Fortran order, unknown dtypes, short data and non-npy bytes', () => {
  assert.throws(() => parseNpy(npy('<f4', [2], f32([1, 2]), true)), /Fortran/);
  assert.throws(() => parseNpy(npy('<c8', [1], new Uint8Array(8))), /dtype <c8/);
  assert.throws(() => parseNpy(npy('<f4', [3], f32([1, 2]))), /needs 12 data bytes, the file has 8/);
  assert.throws(() => parseNpy(new TextEncoder().encode('hello world')), FormatError);
});

test('arrayToInputs cuts items, moves channel-last to channel-first and normalizes only 8-bit data', () => {
  // Two 3×1×2 images stored as (N, H, W, C) = (2, 1, 2, 3).
  const nhwc = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const items = arrayToInputs({ shape: [2, 1, 2, 3], data: nhwc, bytes: false }, [3, 1, 2], unit, 'x.npy');
  assert.deepEqual(items.map((i) => i.name), ['x.npy[0]', 'x.npy[1]']);
  assert.deepEqual(Array.from(items[0]!.values), [1, 4, 2, 5, 3, 6]);
  const flat = arrayToInputs({ shape: [6], data: Float32Array.from([0, 51, 102, 153, 204, 255]), bytes: true }, [3, 1, 2], unit, 'y.npy');
  assert.equal(flat[0]!.name, 'y.npy');
  assert.deepEqual(Array.from(flat[0]!.values).map((v) => Math.round(v * 10) / 10), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.throws(
    () => arrayToInputs({ shape: [5, 32, 32], data: new Float32Array(5 * 1024), bytes: false }, [3, 32, 32], unit, 'z.npy'),
    /z\.npy has shape \(5, 32, 32\) but the model takes 3×32×32 inputs: give \(N, 3, 32, 32\), \(N, 32, 32, 3\) or \(N, 3072\)/,
  );
});

test('parseCsv drops a header and its label column, and tells 8-bit pixels from other numbers', () => {
  const kaggle = parseCsv('label,pixel1,pixel2\n3,0,255\n1,12,7\n');
  assert.deepEqual(kaggle.shape, [2, 2]);
  assert.deepEqual(Array.from(kaggle.data), [0, 255, 12, 7]);
  assert.equal(kaggle.bytes, true);
  const floats = parseCsv('0.5,-1\n0.25,2\n');
  assert.deepEqual(floats.shape, [2, 2]);
  assert.equal(floats.bytes, false);
  assert.throws(() => parseCsv('1,2\n3\n'), /CSV line 2: 1 values, the first row has 2/);
  assert.throws(() => parseCsv('1,2\n3,x\n'), /CSV line 2: 'x' is not a number/);
});

test('imageToInput composites alpha over black, converts to grey or colour, and normalizes', () => {
  // 1×1 RGBA red at half opacity.
  const red = { width: 1, height: 1, channels: 4, data: Uint8Array.of(255, 0, 0, 128) };
  const grey = imageToInput(red, [1, 1, 1], parseNormalization('none'));
  assert.ok(Math.abs(grey[0]! - 0.299 * 255 * (128 / 255)) < 1e-3);
  const colour = imageToInput(red, [3, 1, 1], parseNormalization('0.5/0.25'));
  assert.deepEqual(Array.from(colour).map((v) => Math.round(v * 1000) / 1000), [((128 / 255) - 0.5) / 0.25, -2, -2].map((v) => Math.round(v * 1000) / 1000));
  const inverted = imageToInput({ width: 1, height: 1, channels: 4, data: Uint8Array.of(255, 255, 255, 255) }, [1, 1, 1], parseNormalization('invert'));
  assert.equal(inverted[0], 0);
  assert.throws(() => imageToInput(red, [2, 1, 1], unit), /1 or 3 input channels/);
  assert.throws(() => imageToInput(red, [3, 1, 1], parseNormalization('0.5,0.5/1')), /2 values per list but the model has 3 channel/);
});

test('resize averages areas when shrinking and interpolates when enlarging', () => {
  const plane = Float32Array.from([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30]); // 4×4
  assert.deepEqual(Array.from(resize(plane, 4, 4, 2, 2)), [5, 9, 21, 25]);
  assert.deepEqual(Array.from(resize(plane, 4, 4, 1, 1)), [15]);
  const up = resize(Float32Array.from([0, 4]), 2, 1, 4, 1);
  assert.deepEqual(Array.from(up), [0, 1, 3, 4]);
});

test('parseNormalization accepts the documented modes and refuses the rest', () => {
  assert.deepEqual(parseNormalization('invert'), { kind: 'invert' });
  assert.deepEqual(parseNormalization('0.485,0.456,0.406/0.229,0.224,0.225'), { kind: 'standard', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  assert.throws(() => parseNormalization('bright'), /expected unit, invert, none or MEAN\/STD/);
  assert.throws(() => parseNormalization('0.5/0'), /must be positive/);
});

test('decodeImage reads PNG and JPEG to RGBA and refuses corrupt data', () => {
  const png = new PNG({ width: 3, height: 2 });
  png.data.fill(200);
  const decoded = decodeImage(PNG.sync.write(png));
  assert.deepEqual([decoded.width, decoded.height, decoded.data.length], [3, 2, 24]);
  assert.equal(decoded.data[0], 200);
  const jpg = jpeg.encode({ data: Buffer.alloc(8 * 8 * 4, 90), width: 8, height: 8 }, 100).data;
  const fromJpeg = decodeImage(jpg);
  assert.deepEqual([fromJpeg.width, fromJpeg.height], [8, 8]);
  assert.ok(Math.abs(fromJpeg.data[0]! - 90) <= 2);
  const broken = PNG.sync.write(png).subarray(0, 40);
  assert.throws(() => decodeImage(broken), FormatError);
  assert.throws(() => decodeImage(Uint8Array.of(1, 2, 3)), /not a PNG or JPEG/);
});

test('class names round-trip through the ONNX metadata; the model and its other bytes are unchanged', () => {
  const bytes = readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url));
  assert.equal(readModelLabels(bytes), undefined);
  const names = Array.from({ length: 10 }, (_, i) => `kind ${i}`);
  const once = withModelLabels(bytes, names);
  const twice = withModelLabels(once, [...names].reverse());
  assert.deepEqual(readModelLabels(once), names);
  assert.deepEqual(readModelLabels(twice), [...names].reverse());
  // protobufjs decodes the result: exactly one 'labels' entry, the graph intact.
  const decoded = onnxProto.onnx.ModelProto.decode(twice);
  assert.deepEqual(decoded.metadataProps.filter((p) => p.key === 'labels').length, 1);
  const input = new Float32Array(784).fill(0.5);
  assert.deepEqual(Array.from(runPlaintext(importOnnx(twice), input)), Array.from(runPlaintext(importOnnx(bytes), input)));
  assert.deepEqual(parseLabelList('cat, dog'), ['cat', 'dog']);
  assert.deepEqual(parseLabelList('cat\ndog\n'), ['cat', 'dog']);
  assert.deepEqual(parseLabelList('["a, b", "c"]'), ['a, b', 'c']);
  assert.throws(() => parseLabelList('a,,b'), /non-empty class names/);
});

test('the ETA counts only items since the clock started', () => {
  // 60 s of set-up happened before the clock; two items took 10 s: eight more take 40 s.
  assert.equal(honestEta(10_000, 0, 0, 2, 10), 40);
  assert.equal(honestEta(5_000, 0, 0, 0, 10), undefined);
  assert.equal(formatSeconds(187), '3m07s');
});
