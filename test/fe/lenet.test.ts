import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidKeyError, KeyMismatchError } from '../../src/errors.js';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { FeEngine, KeyRequestRefusedError } from '../../src/schemes/fe/index.js';
import { KeyAuthority } from '../../src/protocol/fe-training/authority.js';
import { signKeyRequest } from '../../src/protocol/fe-training/messages.js';
import { runFeTraining } from '../../src/train/fe/run.js';
import { FeWorkerPool } from '../../src/workers/fe-pool.js';

const engine = new FeEngine({ maxDlogTable: 1 << 12 });

test('sparse function keys decrypt the same inner products as dense keys', () => {
  const { mpk, msk } = engine.setup(30);
  const x = Int32Array.from({ length: 30 }, (_, i) => ((i * 11) % 17) - 8);
  const [ct] = engine.encrypt(mpk, [x]);
  const indices = Int32Array.from([0, 2, 3, 7, 9]);
  const coeffs = Int32Array.from([5, -3, 0, 12, -7]);
  const keys = [0, 4, 20].map((shift) => engine.keyDerSparse(msk, indices, coeffs, shift));
  const got = engine.decryptSparse(ct!, keys, 5000);
  keys.forEach((key, q) => {
    const dense = new Int32Array(30);
    indices.forEach((i, j) => (dense[i + key.shift] = coeffs[j]!));
    assert.equal(key.sk, engine.keyDer(msk, dense).sk);
    assert.equal(got[q], engine.decrypt(ct!, [engine.keyDer(msk, dense)], 5000)[0]);
  });
  assert.throws(() => engine.keyDerSparse(msk, indices, coeffs, 21), RangeError);
  assert.throws(() => engine.decryptSparse(ct!, [{ ...keys[0]!, shift: 25 }], 5000), InvalidKeyError);
  const other = engine.setup(30);
  assert.throws(() => engine.decryptSparse(ct!, [engine.keyDerSparse(other.msk, indices, coeffs, 0)], 5000), KeyMismatchError);
});

test('patch setups: kernels and error maps are judged in their own spaces and expanded by the authority', () => {
  const authority = new KeyAuthority(engine);
  const session = authority.registerServer('server');
  const geometry = { height: 8, width: 8, kernel: 3 };
  const mpk = authority.setupPatches(geometry, 127, 31);
  let seq = 0;
  const ask = (purpose: 'patches' | 'patch-gradients' | 'rows', vectors: Int32Array[]) =>
    authority.handlePatches(signKeyRequest(session, seq++, mpk.setupId, purpose, vectors));
  const kernel = (s: number) => Int32Array.from({ length: 9 }, (_, i) => ((i * 5 + s) % 11) - 5 || 2);
  const [a, b] = ask('patches', [kernel(0), kernel(3)]);
  assert.ok(a && 'keys' in a && a.keys.length === 36, '6×6 output positions');
  assert.ok(b && 'keys' in b);
  // in a 9-dimensional patch space the 9th independent kernel would complete the rank
  const more = ask('patches', [1, 2, 4, 5, 6, 7, 8].map(kernel));
  assert.equal(more.filter((r) => 'refused' in r).length >= 1, true);
  const sparse = new Int32Array(9);
  sparse[4] = 3;
  assert.ok('refused' in ask('patches', [sparse])[0]!);
  const map = Int32Array.from({ length: 36 }, (_, i) => (i % 7) - 3 || 1);
  const [g] = ask('patch-gradients', [map]);
  assert.ok(g && 'keys' in g && g.keys.length === 9, 'one key per kernel offset');
  // the keys compute the correlation of the map with the image
  const x = Int32Array.from({ length: 64 }, (_, i) => (i * 3) % 10);
  const [ct] = engine.encrypt(mpk, [x]);
  const values = engine.decryptSparse(ct!, g.keys, 100000);
  const expected = Array.from({ length: 9 }, (_, u) => {
    let s = 0;
    for (let p = 0; p < 36; p++) s += map[p]! * x[(Math.floor(p / 6) + Math.floor(u / 3)) * 8 + (p % 6) + (u % 3)]!;
    return s;
  });
  assert.deepEqual(Array.from(values), expected);
  assert.throws(() => ask('rows', [kernel(9)]), KeyRequestRefusedError);
  assert.throws(() => ask('patches', [Int32Array.from({ length: 10 }, () => 1)]), /length 10/);
  assert.throws(() => authority.handle(signKeyRequest(session, seq++, mpk.setupId, 'patches', [kernel(9)])), /handlePatches/);
});

test('LeNet-5 with an encrypted first convolution matches its plaintext twin, on one thread and on workers', async () => {
  const sample = loadFashionMnistSample({ limit: 12 });
  const slice = (from: number, to: number) => ({
    count: to - from,
    features: 784,
    images: sample.images.subarray(from * 784, to * 784),
    labels: sample.labels.subarray(from, to),
  });
  const common = { model: 'lenet5', train: slice(0, 4), test: slice(4, 12), epochs: 1, batchSize: 2 } as const;
  const single = await runFeTraining({ ...common, engine: new FeEngine({ maxDlogTable: 1 << 16 }) });
  assert.equal(single.model, 'lenet5');
  assert.equal(single.identicalWeights, true);
  assert.equal(single.accuracy, single.plaintextAccuracy);
  assert.ok(single.innerProducts >= 4 * 6 * 576);
  const pool = new FeWorkerPool({ threads: 2, maxDlogTable: 1 << 16 });
  try {
    const threaded = await runFeTraining({ ...common, engine: new FeEngine({ maxDlogTable: 1 << 10 }), compute: pool });
    assert.equal(threaded.identicalWeights, true);
    assert.deepEqual(threaded.perEpoch.map((e) => e.loss), single.perEpoch.map((e) => e.loss));
  } finally {
    await pool.destroy();
  }
});
