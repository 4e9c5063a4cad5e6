import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../../src/errors.js';
import {
  encodeIdx,
  idxImages,
  idxLabels,
  isGzip,
  parseIdx,
  pixelsToFloat32,
  encodeIdxFloat32,
  parseIdxNumbers,
} from '../../src/data/idx.js';
import { maybeGunzip, readIdxFile, readLabeledImages } from '../../src/data/files.js';

const tiny = encodeIdx([2, 2, 3], Uint8Array.from([0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]));

test('encodeIdx writes the MNIST header: 00 00 08 rank, big-endian dims', () => {
  assert.deepEqual(Array.from(tiny.subarray(0, 16)), [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]);
});

test('parseIdx round-trips encodeIdx', () => {
  const parsed = parseIdx(tiny);
  assert.deepEqual(parsed.dims, [2, 2, 3]);
  assert.deepEqual(Array.from(parsed.data), [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
  const images = idxImages(parsed);
  assert.equal(images.count, 2);
  assert.equal(images.rows, 2);
  assert.equal(images.cols, 3);
});

test('pixelsToFloat32 scales to [0, 1]', () => {
  assert.deepEqual(Array.from(pixelsToFloat32(Uint8Array.from([0, 255]))), [0, 1]);
});

test('gzip is detected and undone by content, not by name', () => {
  const gz = gzipSync(tiny);
  assert.ok(isGzip(gz));
  assert.ok(!isGzip(tiny));
  assert.deepEqual(maybeGunzip(gz), new Uint8Array(tiny));
  assert.equal(maybeGunzip(tiny), tiny);
});

function withHeader(bytes: number[]): Uint8Array {
  return Uint8Array.from(bytes);
}

const junk: Array<[string, Uint8Array, RegExp]> = [
  ['empty', new Uint8Array(0), /truncated header/],
  ['two bytes', withHeader([0, 0]), /truncated header/],
  ['wrong magic', withHeader([1, 2, 8, 1, 0, 0, 0, 0]), /bad magic/],
  ['text file', new TextEncoder().encode('hello, world\n'), /bad magic/],
  ['float32 dtype', withHeader([0, 0, 0x0d, 1, 0, 0, 0, 0]), /float32 is not supported/],
  ['unknown dtype', withHeader([0, 0, 0x42, 1, 0, 0, 0, 0]), /unknown dtype 0x42/],
  ['rank zero', withHeader([0, 0, 8, 0]), /zero dimensions/],
  ['dims cut short', withHeader([0, 0, 8, 3, 0, 0, 0, 2, 0, 0]), /truncated header/],
  ['data cut short', tiny.subarray(0, tiny.length - 1), /truncated.*need 12 bytes of data, found 11/],
  ['trailing bytes', Uint8Array.from([...tiny, 7]), /trailing bytes/],
  ['gzip not undone', gzipSync(tiny), /gzip-compressed/],
  ['huge dims', withHeader([0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), /truncated/],
];

for (const [name, bytes, message] of junk) {
  test(`parseIdx refuses junk: ${name}`, () => {
    assert.throws(() => parseIdx(bytes), (err: unknown) => {
      assert.ok(err instanceof FormatError, `expected FormatError, got ${String(err)}`);
      assert.match(err.message, message);
      assert.ok(!err.message.includes('\n'), 'one-line message');
      return true;
    });
  });
}

test('idxImages and idxLabels check rank, image size and label range', () => {
  const labels = parseIdx(encodeIdx([3], Uint8Array.from([0, 9, 10])));
  assert.throws(() => idxImages(labels), FormatError);
  assert.throws(() => idxLabels(parseIdx(tiny)), FormatError);
  assert.throws(() => idxLabels(labels, 10), /label 10 at index 2/);
  assert.deepEqual(Array.from(idxLabels(labels)), [0, 9, 10]);
  assert.throws(() => idxImages(parseIdx(tiny), { rows: 28, cols: 28 }), /expected 28×28 images, got 2×3/);
});

test('files: corrupt gzip, mismatched counts and missing files are typed errors naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-idx-'));
  try {
    const gz = gzipSync(tiny);
    const corrupt = join(dir, 'corrupt.gz');
    writeFileSync(corrupt, gz.subarray(0, gz.length - 6));
    assert.throws(() => readIdxFile(corrupt), (err: unknown) => {
      assert.ok(err instanceof FormatError);
      assert.match(err.message, /corrupt\.gz: corrupt gzip stream/);
      return true;
    });
    const images = join(dir, 'images.idx3-ubyte');
    const labels = join(dir, 'labels.idx1-ubyte.gz');
    writeFileSync(images, tiny);
    writeFileSync(labels, gzipSync(encodeIdx([3], Uint8Array.from([1, 2, 3]))));
    assert.throws(() => readLabeledImages(images, labels), /has 2 images but .* has 3 labels/);
    assert.throws(() => readIdxFile(join(dir, 'missing')), { code: 'ERR_DATA_NOT_FOUND' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('float32 IDX: encodeIdxFloat32 and parseIdxNumbers round-trip (big-endian); bytes read as bytes; non-finite values refused', () => {
  const values = Float32Array.of(0.001, -4254.5, 3.25, 1e-7, 0, 17);
  const bytes = encodeIdxFloat32([2, 3], values);
  assert.deepEqual(Array.from(bytes.subarray(0, 4)), [0, 0, 0x0d, 2]);
  assert.deepEqual(Array.from(bytes.subarray(12, 16)), Array.from(new Uint8Array(Float32Array.of(0.001).buffer)).reverse());
  const parsed = parseIdxNumbers(bytes);
  assert.deepEqual(parsed.dims, [2, 3]);
  assert.deepEqual(parsed.values, values);
  assert.equal(parsed.bytes, false);
  const ubyte = parseIdxNumbers(tiny);
  assert.equal(ubyte.bytes, true);
  assert.deepEqual(Array.from(ubyte.values), Array.from(parseIdx(tiny).data));
  assert.throws(() => parseIdxNumbers(encodeIdxFloat32([1], [Number.NaN])), /value 0 is NaN/);
  assert.throws(() => parseIdxNumbers(bytes.subarray(0, bytes.length - 2)), /truncated.*need 24 bytes of data, found 22/);
  assert.throws(() => parseIdx(bytes), /float32 is not supported \(only unsigned byte\)/);
  assert.throws(() => encodeIdxFloat32([4], values), RangeError);
});
