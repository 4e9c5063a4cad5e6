import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { InvalidKeyError, KeyMismatchError } from '../../src/errors.js';
import { FeEngine, InnerProductOutOfBoundError } from '../../src/schemes/fe/index.js';

// A small baby-step table so giant steps are exercised too.
const engine = new FeEngine({ maxDlogTable: 1 << 12 });
const dot = (x: readonly number[], y: readonly number[]) => x.reduce((s, v, i) => s + v * (y[i] ?? 0), 0);

test('decrypt(encrypt(x), keyDer(y)) = <x, y> (fast-check)', () => {
  const { mpk, msk } = engine.setup(6);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -200, max: 200 }), { minLength: 6, maxLength: 6 }),
      fc.array(fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 6, maxLength: 6 }), { minLength: 1, maxLength: 5 }),
      (x, ys) => {
        const [ct] = engine.encrypt(mpk, [x]);
        const keys = ys.map((y) => engine.keyDer(msk, y));
        const got = engine.decrypt(ct!, keys, 6 * 200 * 50);
        assert.deepEqual(Array.from(got), ys.map((y) => dot(x, y) + 0));
      },
    ),
    { numRuns: 25 },
  );
});

test('many samples and keys at once; results beyond the baby-step table use giant steps', () => {
  const { mpk, msk } = engine.setup(20);
  const xs = Array.from({ length: 9 }, (_, n) => Array.from({ length: 20 }, (_, i) => ((n * 31 + i * 17) % 101) * (i % 3 === 0 ? -1 : 1)));
  const ys = Array.from({ length: 7 }, (_, k) => Array.from({ length: 20 }, (_, i) => ((k * 13 + i * 7) % 61) - 30));
  xs[0] = Array.from({ length: 20 }, () => 100); // large products: 100·Σy
  const cts = engine.encrypt(mpk, xs);
  const keys = ys.map((y) => engine.keyDer(msk, y));
  const got = engine.decryptMany(cts, keys, 20 * 100 * 30);
  xs.forEach((x, n) => ys.forEach((y, k) => assert.equal(got[n * ys.length + k], dot(x, y))));
  assert.ok(Math.max(...Array.from(got, Math.abs)) > 1 << 12, 'some results needed giant steps');
});

test('an inner product outside the declared bound is an error, never a wrong value', () => {
  const { mpk, msk } = engine.setup(3);
  const [ct] = engine.encrypt(mpk, [[1000, 2000, 3000]]);
  const key = engine.keyDer(msk, [1, 1, 1]); // <x, y> = 6000
  assert.equal(engine.decrypt(ct!, [key], 6000)[0], 6000);
  assert.throws(() => engine.decrypt(ct!, [key], 5999), InnerProductOutOfBoundError);
  assert.throws(() => engine.decrypt(ct!, [key], 10), InnerProductOutOfBoundError);
  const neg = engine.keyDer(msk, [-1, 0, 0]);
  assert.equal(engine.decrypt(ct!, [neg], 1000)[0], -1000);
  assert.throws(() => engine.decrypt(ct!, [neg], 999), InnerProductOutOfBoundError);
});

test('keys and ciphertexts of different setups refuse each other', () => {
  const a = engine.setup(4);
  const b = engine.setup(4);
  const [ct] = engine.encrypt(a.mpk, [[1, 2, 3, 4]]);
  const key = engine.keyDer(b.msk, [1, 1, 1, 1]);
  assert.throws(() => engine.decrypt(ct!, [key], 100), KeyMismatchError);
});

test('junk: wrong lengths, non-integers, out-of-range entries, bad bounds', () => {
  const { mpk, msk } = engine.setup(4);
  assert.throws(() => engine.keyDer(msk, [1, 2, 3]), RangeError);
  assert.throws(() => engine.keyDer(msk, [1, 2, 3, 0.5]), RangeError);
  assert.throws(() => engine.keyDer(msk, [1, 2, 3, 2 ** 30]), RangeError);
  assert.throws(() => engine.encrypt(mpk, [[1, 2, 3]]), RangeError);
  assert.throws(() => engine.encrypt(mpk, [[1, 2, 3, Number.NaN]]), RangeError);
  assert.throws(() => engine.encrypt(mpk, [[1, 2, 3, 2 ** 25]]), RangeError);
  assert.throws(() => engine.setup(0), RangeError);
  const [ct] = engine.encrypt(mpk, [[1, 2, 3, 4]]);
  const long = engine.setup(5);
  const forged = { ...engine.keyDer(long.msk, [1, 1, 1, 1, 1]), setupId: mpk.setupId };
  assert.throws(() => engine.decrypt(ct!, [forged], 100), InvalidKeyError);
  assert.throws(() => engine.decrypt(ct!, [engine.keyDer(msk, [1, 1, 1, 1])], -1), RangeError);
  assert.throws(() => engine.decrypt(ct!, [engine.keyDer(msk, [1, 1, 1, 1])], 1.5), RangeError);
});

test('plaintext entries above the small-multiple table still encrypt exactly', () => {
  const { mpk, msk } = engine.setup(2);
  const [ct] = engine.encrypt(mpk, [[5000, -70000]]);
  assert.equal(engine.decrypt(ct!, [engine.keyDer(msk, [1, 0])], 100000)[0], 5000);
  assert.equal(engine.decrypt(ct!, [engine.keyDer(msk, [0, 1])], 100000)[0], -70000);
});

test('two encryptions of the same vector differ (fresh randomness)', () => {
  const { mpk } = engine.setup(3);
  const [a, b] = engine.encrypt(mpk, [[1, 2, 3], [1, 2, 3]]);
  assert.notDeepEqual(Array.from(a!.points), Array.from(b!.points));
});
