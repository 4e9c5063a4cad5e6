import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliProcess } from '../helpers/cli.js';
import { maxAbsDiff, runOrt } from '../nn/onnx-helpers.js';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { breastCancerSplit } from '../../src/data/breast-cancer.js';
import { loadDiabetes, splitDiabetes } from '../../src/data/diabetes.js';
import { exportOnnx } from '../../src/nn/onnx-export.js';
import { readInputStandardization, readModelLabels } from '../../src/data/onnx-labels.js';
import { importOnnx } from '../../src/nn/onnx.js';
import { argmaxRows, runPlaintext } from '../../src/nn/plaintext.js';
import { FeEngine } from '../../src/schemes/fe/index.js';
import { feMlpExport } from '../../src/train/export.js';
import { DEFAULT_MLP, Mlp } from '../../src/train/fe/mlp.js';
import { DEFAULT_QUANT, quantizeInputs } from '../../src/train/fe/quantize.js';
import { runFeTraining } from '../../src/train/fe/run.js';
import { MSCRYPTONET_MLP, predict } from '../../src/train/multikey/mlp.js';
import { DEFAULT_SMLP } from '../../src/train/smlp/config.js';
import { fixedFeatures } from '../../src/train/smlp/model.js';
import { twinForward } from '../../src/train/smlp/twin.js';

const sample = loadFashionMnistSample({ limit: 200 });
const images = (from: number, to: number) => ({
  count: to - from,
  features: 784,
  images: sample.images.subarray(from * 784, to * 784),
  labels: sample.labels.subarray(from, to),
});
/** A float64 `.npy` file of rows. */
function npy(rows: readonly number[][]): Uint8Array {
  const header = `{'descr': '<f8', 'fortran_order': False, 'shape': (${rows.length}, ${rows[0]!.length}), }`.padEnd(118) + '\n';
  const data = Float64Array.from(rows.flat());
  return Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length, 0]), Buffer.from(header), Buffer.from(data.buffer)]);
}

/** Pixels on the training code's grid (multiples of 1/100), where the export is exact. */
const onGrid = (x: Float32Array) => Float32Array.from(quantizeInputs(x, DEFAULT_QUANT), (v) => v / DEFAULT_QUANT.xScale);

test('fe export: the ONNX file computes the MLP\'s own predictions (quantized first layer, logits out)', () => {
  const mlp = new Mlp({ ...DEFAULT_MLP, hidden: 16 }, DEFAULT_QUANT);
  const model = importOnnx(exportOnnx(feMlpExport(mlp, DEFAULT_QUANT, [1, 28, 28])));
  assert.deepEqual(model.inputShape, [1, 28, 28]);
  const set = images(0, 200);
  const own = mlp.predict(quantizeInputs(set.images, DEFAULT_QUANT), set.count);
  const exported = argmaxRows(runPlaintext(model, onGrid(set.images)), 10);
  assert.deepEqual(Array.from(exported), Array.from(own));
});

test('train --scheme fe (library) → export → import: the file scores what the encrypted run scored; infer accepts it', async () => {
  const test = images(60, 200);
  const result = await runFeTraining({
    train: images(0, 60), test, epochs: 1, batchSize: 30, hidden: 12,
    engine: new FeEngine({ maxDlogTable: 1 << 16 }),
    export: { inputShape: [1, 28, 28] },
  });
  assert.ok(result.exported);
  const bytes = exportOnnx(result.exported);
  const predicted = argmaxRows(runPlaintext(importOnnx(bytes), onGrid(test.images)), 10);
  const right = predicted.reduce((n, p, i) => n + +(p === test.labels[i]), 0);
  assert.equal(right / test.count, result.accuracy);
  const dir = mkdtempSync(join(tmpdir(), 'blindml-export-'));
  try {
    const file = join(dir, 'fe.onnx');
    writeFileSync(file, bytes);
    const run = runCliProcess(['infer', '--model', file, '--limit', '2', '--key-bits', '512', '--insecure', '--workers', '0', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).agreement, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await assert.rejects(runFeTraining({ train: images(0, 60), test, epochs: 1, model: 'lenet5', export: { inputShape: [1, 28, 28] } }), RangeError);
});

/** Rows as CSV with a header naming the columns, full precision. */
const csvRows = (rows: readonly ArrayLike<number>[]): string =>
  `${Array.from({ length: rows[0]!.length }, (_, j) => `f${j}`).join(',')}\n${rows.map((r) => Array.from(r).join(',')).join('\n')}\n`;

test('train --scheme smlp --export → predict on raw CSV rows: the user\'s decrypted weights give the training code\'s predictions', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-export-'));
  try {
    const file = join(dir, 'smlp.onnx');
    const out = join(dir, 'result.json');
    // Initial weights come from the CSPRNG, so each run trains a different network.
    const r = await runCli(['train', '--scheme', 'smlp', '--dataset', 'breast-cancer', '--key-bits', '512', '--insecure', '--train-limit', '48', '--test-limit', '16', '--epochs', '1', '--threads', '1', '--export', file, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(readFileSync(out, 'utf8'));
    const bytes = readFileSync(file);
    const model = importOnnx(bytes);
    assert.deepEqual(model.inputShape, [30]);
    assert.deepEqual(readModelLabels(bytes), ['malignant', 'benign']);
    const { train: tr, test: t, mean, std, clip } = breastCancerSplit();
    assert.deepEqual(readInputStandardization(bytes, 30), { mean: Array.from(mean), std: Array.from(std), clip: 15 }, 'the standardisation and the clip the training used');
    assert.equal(clip, 15);
    // The file takes standardised features (what the training encrypted).
    const logits = runPlaintext(model, t.x);
    const weights = { w1: result.weights.w1.map(BigInt), w2: result.weights.w2.map(BigInt) };
    const x = fixedFeatures(t.x, t.count, 30, DEFAULT_SMLP.fracBits);
    const unit = 2 ** DEFAULT_SMLP.fracBits;
    const own: number[] = [];
    for (let s = 0; s < t.count; s++) {
      own.push(Number(twinForward(DEFAULT_SMLP, weights, x.slice(s * 31, (s + 1) * 31), 31).yHat) / unit);
      assert.ok(Math.abs(logits[2 * s + 1]! - own[s]!) < 2e-3, `sample ${s}: ${logits[2 * s + 1]} vs ${own[s]}`);
      assert.equal(logits[2 * s]!, -logits[2 * s + 1]!);
    }
    const right = argmaxRows(logits.subarray(0, 32), 2).reduce((n, p, i) => n + +(p === t.y[i]), 0);
    assert.equal(right / 16, result.accuracy, 'the encrypted run classified the first 16 test records the same way');

    // predict on the raw rows (as a user has them), calibrated on raw training rows: encrypted
    // (Paillier, in process), standardised on the client from the file's metadata.
    const raw = (set: typeof t, n: number) => Array.from({ length: n }, (_, s) => Array.from({ length: 30 }, (_, j) => set.x[s * 30 + j]! * std[j]! + mean[j]!));
    // A 17th row, an outlier: one feature 40 standard deviations out, which the training clipped to
    // 15 — and so must predict (the file's network on the clipped row). The feature is the one
    // where clipping changes this network's output most, so an unclipped prediction fails.
    const at = (j: number, v: number) => {
      const row = Float32Array.from(t.x.subarray(0, 30));
      row[j] = v;
      return runPlaintext(model, row)[1]!;
    };
    const feature = Array.from({ length: 30 }, (_, j) => j).reduce((best, j) => (Math.abs(at(j, 15) - at(j, 40)) > Math.abs(at(best, 15) - at(best, 40)) ? j : best), 0);
    const [asClipped, asRaw] = [at(feature, 15), at(feature, 40)];
    assert.ok(Math.abs(asClipped - asRaw) > 0.05, `clipping feature ${feature} changes the output: ${asClipped} vs ${asRaw}`);
    const outlier = raw(t, 1)[0]!;
    outlier[feature] = mean[feature]! + 40 * std[feature]!;
    writeFileSync(join(dir, 'rows.csv'), csvRows([...raw(t, 16), outlier]));
    writeFileSync(join(dir, 'calibration.csv'), csvRows(raw(tr, 64)));
    const run = runCliProcess(['predict', join(dir, 'rows.csv'), '--model', file, '--calibration', join(dir, 'calibration.csv'), '--key-bits', '512', '--insecure', '--threads', '0', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const predicted = JSON.parse(run.stdout) as { predictions: { input: string; label: number; className: string; logits: number[] }[] };
    assert.equal(predicted.predictions.length, 17);
    const last = predicted.predictions.pop()!;
    assert.ok(Math.abs(last.logits[1]! - asClipped) < 1e-2, `the outlier: ${last.logits[1]} vs ${asClipped} clipped (${asRaw} unclipped)`);
    predicted.predictions.forEach((p, s) => {
      assert.equal(p.input, `rows.csv[${s}]`);
      assert.equal(p.label, own[s]! > 0 ? 1 : 0, `row ${s}: ŷ = ${own[s]}, encrypted logits ${p.logits}`);
      assert.equal(p.className, ['malignant', 'benign'][p.label]);
      assert.ok(Math.abs(p.logits[1]! - own[s]!) < 1e-2, `row ${s}: ${p.logits[1]} vs ${own[s]}`);
    });
    const missing = await runCli(['train', '--scheme', 'smlp', '--dataset', 'breast-cancer', '--export', join(dir, 'no', 'such', 'x.onnx')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('train --scheme multikey --export → predict on raw records: the target in its own units, as the training code predicts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-export-'));
  try {
    const file = join(dir, 'multikey.onnx');
    const out = join(dir, 'result.json');
    const r = await runCli(['train', '--scheme', 'multikey', '--dataset', 'diabetes', '--providers', '3', '--key-bits', '1024', '--insecure', '--train-limit', '16', '--test-limit', '20', '--epochs', '1', '--threads', '1', '--export', file, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(readFileSync(out, 'utf8'));
    const split = splitDiabetes(loadDiabetes());
    const test = split.test.features.slice(0, 20);
    const standardised = Float64Array.from(test.flatMap((row) => Array.from(row)));
    const weights = { W1: Float64Array.from(result.weights.W1), b1: Float64Array.from(result.weights.b1), W2: Float64Array.from(result.weights.W2), b2: Float64Array.from(result.weights.b2) };
    const own = predict(weights, test, MSCRYPTONET_MLP).map((y) => y * split.targetStd + split.targetMean);
    const bytes = readFileSync(file);
    assert.deepEqual(readInputStandardization(bytes, 10), { mean: Array.from(split.featureMean), std: Array.from(split.featureStd) });
    const got = runPlaintext(importOnnx(bytes), standardised);
    own.forEach((expected, i) => assert.ok(Math.abs(got[i]! - expected) < 1e-3 * split.targetStd, `record ${i}: ${got[i]} vs ${expected}`));
    // onnxruntime reads the same file and computes the same outputs.
    const ort = await runOrt(bytes, Float32Array.from(standardised), [10]);
    assert.ok(maxAbsDiff(ort, got) < 1e-3, `onnxruntime differs by ${maxAbsDiff(ort, got)}`);

    // predict on raw records (.npy, float64) under ckks-poly (the network's squares are the
    // service's): one value per record, as the training code predicts.
    const raw = test.map((row) => Array.from(row, (v, f) => v * split.featureStd[f]! + split.featureMean[f]!));
    writeFileSync(join(dir, 'records.npy'), npy(raw));
    writeFileSync(join(dir, 'calibration.csv'), csvRows(split.train.features.slice(0, 32).map((row) => Array.from(row, (v, f) => v * split.featureStd[f]! + split.featureMean[f]!))));
    const run = runCliProcess(['predict', join(dir, 'records.npy'), '--model', file, '--calibration', join(dir, 'calibration.csv'), '--scheme', 'ckks-poly', '--threads', '0', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const values = (JSON.parse(run.stdout) as { predictions: { value: number; plaintextValue: number }[] }).predictions;
    assert.equal(values.length, 20);
    // ckks-poly rounds weights to 10 bits: within 1% of the target's spread.
    values.forEach((p, i) => assert.ok(Math.abs(p.value - own[i]!) < 1e-2 * split.targetStd, `record ${i}: ${p.value} vs ${own[i]}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
