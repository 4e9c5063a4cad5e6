import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataNotFoundError } from '../../src/errors.js';
import {
  FASHION_MNIST_SAMPLE,
  SAMPLE_COUNT,
  fashionMnistDataDir,
  findFashionMnist,
  loadFashionMnistSample,
} from '../../src/data/fashion-mnist.js';
import { readImagesFile, readLabelsFile } from '../../src/data/files.js';

test('the committed sample holds the first 1,000 test images and labels', () => {
  const images = readImagesFile(FASHION_MNIST_SAMPLE.images);
  assert.equal(images.count, SAMPLE_COUNT);
  assert.equal(images.rows, 28);
  assert.equal(images.cols, 28);
  const labels = readLabelsFile(FASHION_MNIST_SAMPLE.labels, 10);
  assert.equal(labels.length, SAMPLE_COUNT);
  // The first labels of the Fashion-MNIST test split, as published.
  assert.deepEqual(Array.from(labels.subarray(0, 10)), [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
  const counts = new Array<number>(10).fill(0);
  for (const l of labels) counts[l] = (counts[l] ?? 0) + 1;
  assert.ok(counts.every((c) => c > 50), `every class is represented: ${counts.join(',')}`);
});

test('loadFashionMnistSample scales pixels and honours limit', () => {
  const all = loadFashionMnistSample();
  assert.equal(all.count, 1000);
  assert.deepEqual(all.shape, [1, 28, 28]);
  assert.equal(all.images.length, 1000 * 784);
  let min = Infinity;
  let max = -Infinity;
  for (const v of all.images) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  assert.equal(min, 0);
  assert.equal(max, 1);
  const some = loadFashionMnistSample({ limit: 5 });
  assert.equal(some.count, 5);
  assert.deepEqual(some.images, all.images.subarray(0, 5 * 784));
  assert.deepEqual(Array.from(some.labels), [9, 2, 1, 1, 6]);
});

test('the data directory follows $BLINDML_DATA_DIR', () => {
  assert.equal(fashionMnistDataDir({ BLINDML_DATA_DIR: '/data' }), join('/data', 'fashion-mnist'));
  assert.match(fashionMnistDataDir({}), /\.cache[/\\]blindml[/\\]fashion-mnist$/);
});

test('a missing data set says how to fetch it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-fm-'));
  try {
    assert.throws(() => findFashionMnist('test', [dir]), (err: unknown) => {
      assert.ok(err instanceof DataNotFoundError);
      assert.match(err.message, /blindml data fetch fashion-mnist/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
