// Calibration data must have the model's input shape: refused with one line otherwise, never cut to fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ShapeError } from '../../src/errors.js';
import { calibrationFor, checkCalibrationSize, committedCalibration, readCalibrationFile } from '../../src/cli/calibration.js';
import { importOnnx } from '../../src/nn/onnx.js';
import { runCli } from '../helpers/cli.js';

const zoo = (file: string) => new URL(`../../models/zoo/${file}`, import.meta.url).pathname;
const lenet = importOnnx(readFileSync(zoo('lenet5.onnx')));

test('calibration files are read in the model input layout: N×H×W as one channel, 4-D as given', () => {
  const grey = readCalibrationFile(zoo('data/lenet5-calibration-images.idx.gz'));
  assert.deepEqual(grey.shape, [1, 32, 32]);
  assert.equal(calibrationFor(lenet, grey).length, 100 * 32 * 32);
  const nhwc = readCalibrationFile(zoo('data/keras-style-calibration-images.idx.gz'));
  assert.deepEqual(nhwc.shape, [28, 28, 1]);
  const keras = importOnnx(readFileSync(zoo('keras-style.onnx')));
  assert.equal(calibrationFor(keras, nhwc).length, 100 * 784);
  // Same number of values per sample, other layout: refused, not reinterpreted.
  assert.throws(() => calibrationFor(keras, committedCalibration()), /\[1, 28, 28\] per sample but the model takes \[28, 28, 1\]/);
});

test('calibration data of the wrong size is a ShapeError, never sliced', () => {
  assert.throws(() => calibrationFor(lenet, committedCalibration()), (err: unknown) =>
    err instanceof ShapeError && /\[1, 28, 28\] per sample but the model takes \[1, 32, 32\]/.test(err.message));
  // 100 images of 784 values are not a whole number of 1024-value inputs (the old crash: applyMap 576 inputs for 1024 columns).
  assert.throws(() => checkCalibrationSize(lenet, new Float32Array(78_400)), /78400 values, not a whole number of the model's \[1, 32, 32\] inputs/);
  assert.throws(() => checkCalibrationSize(lenet, new Float32Array(0)), ShapeError);
  assert.doesNotThrow(() => checkCalibrationSize(lenet, new Float32Array(2048)));
});

test('infer refuses the committed calibration images for a 32×32 model in one line, for every scheme', async () => {
  for (const scheme of ['paillier', 'ckks', 'ckks-poly']) {
    const r = await runCli([
      'infer', '--model', zoo('lenet5.onnx'), '--scheme', scheme,
      '--images', zoo('data/lenet5-eval-images.idx.gz'), '--labels', zoo('data/lenet5-eval-labels.idx.gz'),
      '--limit', '1', '--key-bits', '512', '--insecure', '--workers', '0',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.lines.length, 1, r.stderr);
    assert.match(r.lines[0]!, /^blindml: calibration data from the committed Fashion-MNIST calibration images is \[1, 28, 28\] per sample but the model takes \[1, 32, 32\]; pass --calibration/);
  }
  const wrong = await runCli([
    'infer', '--model', zoo('lenet5.onnx'), '--calibration', zoo('data/mobilenet-style-calibration-images.idx.gz'),
    '--images', zoo('data/lenet5-eval-images.idx.gz'), '--labels', zoo('data/lenet5-eval-labels.idx.gz'),
    '--limit', '1', '--key-bits', '512', '--insecure', '--workers', '0',
  ]);
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.match(wrong.lines[0]!, /mobilenet-style-calibration-images\.idx\.gz is \[1, 28, 28\] per sample but the model takes \[1, 32, 32\]/);
});
