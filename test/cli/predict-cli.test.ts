// `blindml predict` as a new user runs it: their own PNG/JPEG files, a directory, .npy and IDX files,
// encrypted predictions with class names and probabilities, in process under Paillier and CKKS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { FASHION_MNIST_CLASSES, loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { encodeIdx } from '../../src/data/idx.js';
import { runCli, runCliProcess } from '../helpers/cli.js';

interface PredictJson {
  scheme: string;
  classNames: string[];
  predictions: Array<{ input: string; label: number; className: string; probability: number; logits: number[]; probabilities: number[]; plaintextLabel: number }>;
}

const dir = mkdtempSync(join(tmpdir(), 'blindml-predict-'));
const sample = loadFashionMnistSample({ limit: 3 });
const cifar = new URL('../../models/cifar-shaped.onnx', import.meta.url).pathname;
const small = new URL('../../models/fashion-small.onnx', import.meta.url).pathname;

/** Sample image i as 56×56 RGBA pixels (each pixel doubled), as a user's larger picture would be. */
function rgba(i: number, alpha = 255): PNG {
  const png = new PNG({ width: 56, height: 56 });
  for (let y = 0; y < 56; y++) {
    for (let x = 0; x < 56; x++) {
      const v = Math.round(255 * sample.images[i * 784 + (y >> 1) * 28 + (x >> 1)]!);
      png.data.set([v, v, v, alpha], (y * 56 + x) * 4);
    }
  }
  return png;
}

const photos = join(dir, 'photos');
mkdirSync(photos);
writeFileSync(join(photos, 'a.png'), PNG.sync.write(rgba(0)));
writeFileSync(join(photos, 'b.jpg'), jpeg.encode({ data: rgba(1).data, width: 56, height: 56 }, 95).data);
writeFileSync(join(photos, 'notes.txt'), 'not an image');
// Image 2 as a (1, 28, 28, 1) float32 .npy (channel-last, values in [0, 1]).
const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 28, 28, 1), }".padEnd(117, ' ') + '\n';
const npyPrefix = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length, 0);
const npyFile = join(dir, 'c.npy');
writeFileSync(npyFile, Buffer.concat([npyPrefix, Buffer.from(header), Buffer.from(sample.images.slice(2 * 784, 3 * 784).buffer)]));

// Image 1 again as a Kaggle-style CSV row: a header, a label column, pixels 0–255.
const csvFile = join(dir, 'rows.csv');
const pixels = Array.from(sample.images.subarray(784, 2 * 784), (v) => Math.round(255 * v));
writeFileSync(csvFile, `label,${pixels.map((_, i) => `pixel${i + 1}`).join(',')}\n${sample.labels[1]},${pixels.join(',')}\n`);

function predict(args: readonly string[]): { code: number; stdout: string; stderr: string; lines: string[] } {
  return runCliProcess(['predict', ...args, '--threads', '0']);
}

function assertConsistent(out: PredictJson, names: readonly string[]): void {
  for (const p of out.predictions) {
    assert.equal(p.label, p.plaintextLabel, `${p.input}: the encrypted prediction differs from the plaintext model`);
    assert.equal(p.className, names[p.label]);
    assert.equal(p.logits.length, names.length);
    assert.ok(Math.abs(p.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    assert.equal(p.probability, Math.max(...p.probabilities));
    assert.equal(p.label, p.logits.indexOf(Math.max(...p.logits)));
  }
}

test('predict (Paillier): a directory of PNG/JPEG photos, a channel-last .npy and CSV rows, one JSON item per input', () => {
  const r = predict([photos, npyFile, csvFile, '--key-bits', '1024', '--insecure', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as PredictJson;
  assert.equal(out.scheme, 'paillier');
  assert.deepEqual(out.classNames, [...FASHION_MNIST_CLASSES]);
  assert.deepEqual(out.predictions.map((p) => p.input), ['a.png', 'b.jpg', 'c.npy[0]', 'rows.csv[0]']);
  assertConsistent(out, FASHION_MNIST_CLASSES);
  // The sample's first three items are an ankle boot, a pullover and trousers; the model gets them right.
  assert.deepEqual(out.predictions.map((p) => p.label), [...Array.from(sample.labels), sample.labels[1]]);
});

test('predict (CKKS) prints one line per input: name, class name, probability', () => {
  const r = predict([join(photos, 'a.png'), npyFile, '--scheme', 'ckks']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 2, r.stdout);
  assert.match(lines[0]!, /^a\.png\s+Ankle boot\s+\d+\.\d%$/);
  assert.match(lines[1]!, /^c\.npy\[0\]\s+Trouser\s+\d+\.\d%$/);
  assert.match(r.stderr, /every prediction matches the plaintext model/);
});

test('class names stored by `model label` are what predict prints; `model info` lists them', () => {
  const labelled = join(dir, 'labelled.onnx');
  const names = ['top', 'trousers', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot'];
  const label = runCliProcess(['model', 'label', small, '--labels', names.join(','), '-o', labelled]);
  assert.equal(label.code, 0, label.stderr);
  assert.match(runCliProcess(['model', 'info', labelled]).stdout, /class names: top, trousers, pullover/);
  const r = predict([join(photos, 'a.png'), '--model', labelled, '--scheme', 'ckks', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as PredictJson;
  assert.deepEqual(out.classNames, names);
  assert.equal(out.predictions[0]!.className, 'boot');
  const wrong = runCliProcess(['model', 'label', small, '--labels', 'a,b', '-o', labelled]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /2 class names for a model with 10 outputs/);
});

test('predict feeds a colour model from a PNG, calibrated on a 4-D IDX file (N×3×32×32)', () => {
  const colour = new PNG({ width: 40, height: 30 });
  for (let i = 0; i < colour.data.length; i++) colour.data[i] = i % 4 === 3 ? 255 : (i * 37) % 256;
  const png = join(dir, 'colour.png');
  writeFileSync(png, PNG.sync.write(colour));
  const calibration = new Uint8Array(6 * 3 * 32 * 32).map((_, i) => (i * 13 + (i >> 7)) % 256);
  const idx = join(dir, 'calibration-idx4-ubyte');
  writeFileSync(idx, encodeIdx([6, 3, 32, 32], calibration));
  const missing = predict([png, '--model', cifar, '--scheme', 'ckks']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /takes 3×32×32 inputs and the committed calibration images are 1×28×28: pass --calibration/);
  // The input after --calibration is an input, not calibration data; --calibration repeats.
  const r = predict(['--model', cifar, '--scheme', 'ckks', '--calibration', idx, '--calibration', idx, png, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as PredictJson;
  assertConsistent(out, Array.from({ length: 10 }, (_, i) => `class ${i}`));
});

test('predict refuses what does not fit in one line each', async () => {
  const wrongShape = join(dir, 'wrong.npy');
  const h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 27), }".padEnd(53, ' ') + '\n';
  writeFileSync(wrongShape, Buffer.concat([Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length, 0), Buffer.from(h), Buffer.alloc(2 * 27 * 4)]));
  const cases: Array<[string[], RegExp]> = [
    [[wrongShape], /^blindml: wrong\.npy has shape \(2, 27\) but the model takes 1×28×28 inputs/],
    [[npyFile, '--normalize', 'bright'], /^blindml: --normalize 'bright': expected unit, invert, none or MEAN\/STD/],
    [[npyFile, '--scheme', 'ckks', '--key-bits', '4096'], /^blindml: --key-bits sizes Paillier keys/],
    [[join(dir, 'missing.png')], /^blindml: cannot read .*missing\.png \(ENOENT\)/],
    [[join(photos, 'notes.txt')], /^blindml: notes\.txt: unknown input kind/],
    [[npyFile, '--threads', '-3'], /argument '-3' is invalid\. expected a non-negative integer/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(['predict', ...args]);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.lines[0]!, message);
  }
});
