import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataNotFoundError } from '../../src/errors.js';
import {
  FASHION_MNIST_FILES,
  FASHION_MNIST_SAMPLE,
  SAMPLE_COUNT,
  fashionMnistDataDir,
  fetchFashionMnist,
  findFashionMnist,
  loadFashionMnist,
  loadFashionMnistSample,
} from '../../src/data/fashion-mnist.js';
import { readImagesFile, readLabelsFile, writeIdxFile } from '../../src/data/files.js';

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

test('fetch copies an installed copy into the data directory, verifies it, and then finds it there', () => {
  const root = mkdtempSync(join(tmpdir(), 'blindml-fetch-'));
  try {
    const system = join(root, 'system');
    mkdirSync(system);
    for (const split of Object.values(FASHION_MNIST_FILES)) {
      writeIdxFile(join(system, `${split.images}.gz`), [split.count, 28, 28], new Uint8Array(split.count * 784));
      writeIdxFile(join(system, `${split.labels}.gz`), [split.count], new Uint8Array(split.count).fill(3));
    }
    const lines: string[] = [];
    const dataDir = join(root, 'data');
    const log = (line: string) => lines.push(line);
    assert.equal(fetchFashionMnist({ dataDir, systemDir: system, log }), dataDir);
    assert.match(lines[0] ?? '', /copying Fashion-MNIST from/);
    assert.equal(loadFashionMnist('test', { dirs: [dataDir], limit: 2 }).labels[1], 3);
    lines.length = 0;
    fetchFashionMnist({ dataDir, systemDir: system, log });
    assert.deepEqual(lines, [`Fashion-MNIST is already in ${dataDir}`]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('fetch without apt-get says how to get the files by hand', () => {
  const root = mkdtempSync(join(tmpdir(), 'blindml-fetch-'));
  const path = process.env['PATH'];
  process.env['PATH'] = root;
  try {
    assert.throws(
      () => fetchFashionMnist({ dataDir: join(root, 'data'), systemDir: join(root, 'none') }),
      (err: unknown) => err instanceof DataNotFoundError && /apt-get is not available/.test(err.message),
    );
  } finally {
    process.env['PATH'] = path;
    rmSync(root, { recursive: true, force: true });
  }
});
