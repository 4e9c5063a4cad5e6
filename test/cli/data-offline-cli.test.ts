// Offline data: `train` uses the committed sample when Fashion-MNIST is missing (or with
// --data sample); `data fetch --from` takes a local directory or archive; errors say what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadImages } from '../../src/cli/commands/train.js';
import { FASHION_MNIST_FILES, SYSTEM_FASHION_MNIST_DIR, loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { runCli, runCliProcess } from '../helpers/cli.js';

const empty = mkdtempSync(join(tmpdir(), 'blindml-nodata-'));

test('without the full data set, fe training falls back to the committed sample and says so', () => {
  let note = '';
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string) => ((note += chunk), true)) as typeof process.stderr.write;
  let train: ReturnType<typeof loadImages>;
  let testSplit: ReturnType<typeof loadImages>;
  try {
    train = loadImages({ dataset: 'fashion-mnist' }, 'train', 2000, [empty]);
    testSplit = loadImages({ dataset: 'fashion-mnist' }, 'test', 50, [empty]);
  } finally {
    process.stderr.write = original;
  }
  assert.match(note, /not installed; training on the committed sample \(800 images, 200 to test\)\. `blindml data fetch fashion-mnist` gets the full set/);
  const sample = loadFashionMnistSample();
  assert.equal(train.count, 800);
  assert.equal(testSplit.count, 50);
  // The test images are the sample's last 200, never the ones trained on.
  assert.deepEqual(testSplit.images.subarray(0, 784), sample.images.subarray(800 * 784, 801 * 784));
  assert.throws(() => loadImages({ dataset: 'fashion-mnist', data: 'full' }, 'train', 10, [empty]), /run `blindml data fetch fashion-mnist`.*--from DIR\|ARCHIVE.*`train --data sample`/);
});

test('data fetch --from takes a tar archive holding the files in a subdirectory', async (t) => {
  if (!existsSync(join(SYSTEM_FASHION_MNIST_DIR, `${FASHION_MNIST_FILES.train.images}.gz`))) {
    t.skip(`needs Fashion-MNIST in ${SYSTEM_FASHION_MNIST_DIR} to build the archive`);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'blindml-fetch-'));
  const nested = join(work, 'src', 'fashion');
  mkdirSync(nested, { recursive: true });
  for (const { images, labels } of Object.values(FASHION_MNIST_FILES)) {
    for (const name of [images, labels]) symlinkSync(join(SYSTEM_FASHION_MNIST_DIR, `${name}.gz`), join(nested, `${name}.gz`));
  }
  const archive = join(work, 'fashion.tar');
  execFileSync('tar', ['-chf', archive, '-C', join(work, 'src'), 'fashion']);
  const out = join(work, 'out');
  const r = await runCli(['data', 'fetch', 'fashion-mnist', '--from', archive, '--data-dir', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /unpacking .*fashion\.tar/);
  assert.ok(existsSync(join(out, `${FASHION_MNIST_FILES.test.labels}.gz`)));
  const missing = await runCli(['data', 'fetch', 'fashion-mnist', '--from', join(work, 'nothing.tar'), '--data-dir', join(work, 'out2')]);
  assert.equal(missing.code, 1);
  assert.match(missing.lines.at(-1)!, /--from .*nothing\.tar: no such file or directory/);
  const wrongDir = await runCli(['data', 'fetch', 'fashion-mnist', '--from', empty, '--data-dir', join(work, 'out3')]);
  assert.equal(wrongDir.code, 1);
  assert.match(wrongDir.lines.at(-1)!, /train-images-idx3-ubyte\[\.gz\] is not in .* or below it/);
});

test('train --scheme fe --data sample trains on the committed images', async () => {
  const r = runCliProcess(['train', '--scheme', 'fe', '--data', 'sample', '--train-limit', '20', '--test-limit', '10', '--batch-size', '10', '--threads', '1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { samples: number; testSamples: number; identicalWeights: boolean };
  assert.deepEqual([out.samples, out.testSamples, out.identicalWeights], [20, 10, true]);
  const refused = await runCli(['train', '--scheme', 'fe', '--key-bits', '2048']);
  assert.equal(refused.code, 2);
  assert.match(refused.lines[0]!, /--key-bits sizes Paillier keys; --scheme fe has none/);
});
