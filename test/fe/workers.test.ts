import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { KeyMismatchError } from '../../src/errors.js';
import { FeEngine, InnerProductOutOfBoundError } from '../../src/schemes/fe/index.js';
import { LocalFeCompute } from '../../src/protocol/fe-training/compute.js';
import { FeWorkerPool } from '../../src/workers/fe-pool.js';
import { runFeTraining } from '../../src/train/fe/run.js';

const engine = new FeEngine({ maxDlogTable: 1 << 12 });

test('the FE worker pool encrypts and decrypts to the same integers as the single-thread path', async () => {
  const pool = new FeWorkerPool({ threads: 2, maxDlogTable: 1 << 12 });
  try {
    const { mpk, msk } = engine.setup(20);
    const xs = Array.from({ length: 7 }, (_, j) => Int32Array.from({ length: 20 }, (_, i) => ((i * 13 + j * 5) % 23) - 11));
    const keys = [1, 2, 3].map((s) => engine.keyDer(msk, Int32Array.from({ length: 20 }, (_, i) => ((i * s + 3) % 9) - 4)));
    const cts = await pool.encrypt(mpk, xs);
    assert.equal(cts.length, 7);
    const local = await new LocalFeCompute(engine).decryptMany(cts, keys, 4000);
    const threaded = await pool.decryptMany(cts, keys, 4000);
    assert.deepEqual(Array.from(threaded.values), Array.from(local.values));
    const expected = xs.flatMap((x) => keys.map((k) => x.reduce((s, v, i) => s + v * (k.y[i] ?? 0), 0)));
    assert.deepEqual(Array.from(threaded.values), expected);
    assert.equal(threaded.dlogCount, 21);
    // errors keep their class across the thread boundary
    await assert.rejects(pool.decryptMany(cts, keys, 3), InnerProductOutOfBoundError);
    const other = engine.setup(20);
    await assert.rejects(pool.decryptMany(cts, [engine.keyDer(other.msk, keys[0]!.y)], 4000), KeyMismatchError);
    await assert.rejects(pool.encrypt(mpk, [new Int32Array(19)]), RangeError);
  } finally {
    await pool.destroy();
  }
});

test('training with the worker pool ends with the same weights as on one thread and as the twin', async () => {
  const sample = loadFashionMnistSample({ limit: 30 });
  const slice = (from: number, to: number) => ({
    count: to - from,
    features: 784,
    images: sample.images.subarray(from * 784, to * 784),
    labels: sample.labels.subarray(from, to),
  });
  const common = { train: slice(0, 20), test: slice(20, 30), epochs: 1, batchSize: 10, hidden: 6 } as const;
  const single = await runFeTraining({ ...common, engine: new FeEngine({ maxDlogTable: 1 << 16 }) });
  const pool = new FeWorkerPool({ threads: 2, maxDlogTable: 1 << 16 });
  try {
    const threaded = await runFeTraining({ ...common, engine: new FeEngine({ maxDlogTable: 1 << 10 }), compute: pool });
    assert.equal(threaded.identicalWeights, true);
    assert.equal(single.identicalWeights, true);
    assert.deepEqual(threaded.perEpoch.map((e) => e.loss), single.perEpoch.map((e) => e.loss));
    assert.equal(threaded.accuracy, single.accuracy);
  } finally {
    await pool.destroy();
  }
});
