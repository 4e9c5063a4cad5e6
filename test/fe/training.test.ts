import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { FeEngine } from '../../src/schemes/fe/index.js';
import { runFeTraining } from '../../src/train/fe/run.js';
import { SeededRandom } from '../../src/train/fe/prng.js';
import { quantizeDelta, DEFAULT_QUANT } from '../../src/train/fe/quantize.js';

test('encrypted CryptoNN training and its plaintext twin agree exactly (small run)', async () => {
  const sample = loadFashionMnistSample({ limit: 100 });
  const slice = (from: number, to: number) => ({
    count: to - from,
    features: 784,
    images: sample.images.subarray(from * 784, to * 784),
    labels: sample.labels.subarray(from, to),
  });
  const result = await runFeTraining({
    train: slice(0, 60),
    test: slice(60, 100),
    epochs: 1,
    batchSize: 30,
    hidden: 12,
    engine: new FeEngine({ maxDlogTable: 1 << 16 }),
  });
  assert.equal(result.identicalWeights, true);
  assert.equal(result.accuracy, result.plaintextAccuracy);
  assert.equal(result.samples, 60);
  assert.ok(result.innerProducts > 0);
  assert.ok(result.keyRequests >= 6, 'labels, rows and columns for each of 2 batches');
});

test('the seeded PRNG is deterministic and the δ quantizer keeps the largest entry at ±maxDelta', () => {
  const a = new SeededRandom(7);
  const b = new SeededRandom(7);
  assert.deepEqual(a.permutation(20), b.permutation(20));
  assert.equal(a.normal(), b.normal());
  const { vector, scale } = quantizeDelta(Float64Array.from([0.001, -0.004, 0.0002]), DEFAULT_QUANT);
  assert.equal(Math.max(...Array.from(vector, Math.abs)), DEFAULT_QUANT.maxDelta);
  assert.ok(scale > 0);
  assert.deepEqual(quantizeDelta(new Float64Array(3), DEFAULT_QUANT).scale, 0);
});
