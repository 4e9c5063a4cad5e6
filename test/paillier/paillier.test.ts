import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { InvalidCiphertextError, InvalidKeyError, KeyMismatchError, OverflowError } from '../../src/errors.js';
import { modPow } from '../../src/math/index.js';
import {
  ClassicNoise,
  batchInvert,
  NoisePool,
  PaillierPrivateKey,
  PaillierPublicKey,
  dot,
  generateKeyPair,
  matVec,
} from '../../src/schemes/paillier/index.js';
import { realKeys, smallKeys } from '../helpers/keys.js';

interface PinnedVectors {
  p: string;
  q: string;
  n: string;
  encryptions: { m: string; r: string; rn: string; c: string }[];
}

const pinned = JSON.parse(readFileSync(new URL('../vectors/paillier-512-pinned.json', import.meta.url), 'utf8')) as PinnedVectors;

test('pinned vectors: encryption with a given r and CRT decryption match textbook Paillier', () => {
  const pub = new PaillierPublicKey(BigInt(pinned.n), { insecure: true });
  const priv = new PaillierPrivateKey(pub, BigInt(pinned.p), BigInt(pinned.q));
  for (const v of pinned.encryptions) {
    const rn = modPow(BigInt(v.r), pub.n, pub.nSquared);
    assert.equal(rn, BigInt(v.rn));
    assert.equal(pub.encryptRaw(BigInt(v.m), rn), BigInt(v.c), `encrypt ${v.m}`);
    assert.equal(priv.decryptRaw(BigInt(v.c)), BigInt(v.m), `decrypt ${v.m}`);
  }
});

test('2048-bit keys by default; small keys only with the insecure flag', () => {
  const { publicKey, privateKey } = realKeys();
  assert.equal(publicKey.bits, 2048);
  assert.equal(publicKey.g, publicKey.n + 1n);
  assert.equal(privateKey.p * privateKey.q, publicKey.n);
  assert.throws(() => generateKeyPair({ bits: 1024 }), InvalidKeyError);
  assert.throws(() => new PaillierPublicKey(BigInt(pinned.n)), InvalidKeyError);
  assert.throws(() => generateKeyPair({ bits: 1023, insecure: true }), RangeError);
});

test('3072-bit keys on request', () => {
  const { publicKey, privateKey } = generateKeyPair({ bits: 3072 });
  assert.equal(publicKey.bits, 3072);
  assert.equal(privateKey.decryptSigned(publicKey.encrypt(-12345n)), -12345n);
});

test('encryption is probabilistic and decrypts at 2048 bits', () => {
  const { publicKey, privateKey } = realKeys();
  const a = publicKey.encrypt(7n);
  const b = publicKey.encrypt(7n);
  assert.notEqual(a.value, b.value);
  assert.equal(privateKey.decrypt(a), 7n);
  assert.equal(privateKey.decrypt(publicKey.encrypt(publicKey.n - 1n)), publicKey.n - 1n);
  assert.equal(privateKey.decryptSigned(publicKey.encrypt(-1n)), -1n);
  assert.ok(a.isObfuscated);
  const o = a.add(b).obfuscate();
  assert.ok(o.isObfuscated);
  assert.equal(privateKey.decrypt(o), 14n);
});

test('homomorphic add, sub, neg, addPlain and signed mulPlain', () => {
  const { publicKey, privateKey } = smallKeys();
  const bound = publicKey.maxInt >> 70n;
  const value = fc.bigInt({ min: -bound, max: bound });
  const factor = fc.bigInt({ min: -(1n << 64n), max: 1n << 64n });
  fc.assert(
    fc.property(value, value, factor, (a, b, k) => {
      const ca = publicKey.encrypt(a);
      const cb = publicKey.encrypt(b);
      assert.equal(privateKey.decryptSigned(ca.add(cb)), a + b);
      assert.equal(privateKey.decryptSigned(ca.sub(cb)), a - b);
      assert.equal(privateKey.decryptSigned(ca.neg()), -a);
      assert.equal(privateKey.decryptSigned(ca.addPlain(b)), a + b);
      assert.equal(privateKey.decryptSigned(ca.mulPlain(k)), a * k);
    }),
    { numRuns: 60 },
  );
});

test('dot and matVec equal the plaintext computation, with one key and signed 16-bit weights', () => {
  const { publicKey, privateKey } = smallKeys();
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: -32768, max: 32767 })), { minLength: 1, maxLength: 30 }),
      fc.integer({ min: -5000, max: 5000 }),
      (pairs, bias) => {
        const xs = pairs.map(([x]) => publicKey.encrypt(BigInt(x)));
        const ws = pairs.map(([, w]) => w);
        const expected = pairs.reduce((s, [x, w]) => s + BigInt(x) * BigInt(w), BigInt(bias));
        assert.equal(privateKey.decryptSigned(dot(xs, ws, BigInt(bias))), expected);
        assert.equal(privateKey.decryptSigned(dot(xs, new Int32Array(ws), BigInt(bias))), expected);
        assert.equal(privateKey.decryptSigned(dot(xs, ws.map(BigInt), BigInt(bias))), expected);
      },
    ),
    { numRuns: 40 },
  );
  const xs = [3n, -1n, 4n].map((v) => publicKey.encrypt(v));
  const out = matVec(xs, new Int32Array([1, 2, 3, -4, -5, -6]), 2, [10n, 20n]);
  assert.deepEqual(out.map((c) => privateKey.decryptSigned(c)), [3n - 2n + 12n + 10n, -12n + 5n - 24n + 20n]);
  assert.throws(() => matVec(xs, [1, 2], 2), RangeError);
  assert.throws(() => dot(xs, [1, 2]), RangeError);
  assert.throws(() => dot(xs, [1.5, 2, 3]), RangeError);
});

test('operations refuse ciphertexts under another key', () => {
  const a = smallKeys();
  const b = generateKeyPair({ bits: 512, insecure: true });
  const ca = a.publicKey.encrypt(1n);
  const cb = b.publicKey.encrypt(1n);
  assert.throws(() => ca.add(cb), KeyMismatchError);
  assert.throws(() => ca.sub(cb), KeyMismatchError);
  assert.throws(() => dot([ca, cb], [1, 1]), KeyMismatchError);
  assert.throws(() => b.privateKey.decrypt(ca), KeyMismatchError);
});

test('ciphertexts outside Z*_{n²} are refused', () => {
  const { publicKey, privateKey } = smallKeys();
  for (const bad of [0n, -5n, publicKey.nSquared, publicKey.nSquared + 1n]) {
    assert.throws(() => publicKey.ciphertext(bad), InvalidCiphertextError);
    assert.throws(() => privateKey.decryptRaw(bad), InvalidCiphertextError);
  }
  const multipleOfP = privateKey.p * 12345n;
  assert.throws(() => publicKey.ciphertext(multipleOfP, { checkUnit: true }), InvalidCiphertextError);
  assert.throws(() => privateKey.decrypt(publicKey.ciphertext(multipleOfP)), InvalidCiphertextError);
});

test('a private key refuses factors that do not match or are not prime', () => {
  const { publicKey, privateKey } = smallKeys();
  assert.throws(() => new PaillierPrivateKey(publicKey, privateKey.p, privateKey.q + 2n), InvalidKeyError);
  assert.throws(() => new PaillierPrivateKey(publicKey, 1n, publicKey.n), InvalidKeyError);
  assert.throws(() => new PaillierPublicKey(10n, { insecure: true }), InvalidKeyError);
});

test('decryptSigned reports the overflow band; decryptBounded reports values beyond its bound', () => {
  const { publicKey, privateKey } = smallKeys();
  const middle = publicKey.encrypt(publicKey.n / 2n);
  assert.throws(() => privateKey.decryptSigned(middle), OverflowError);
  assert.equal(privateKey.decryptBounded(publicKey.encrypt(-99n), 100n), -99n);
  assert.throws(() => privateKey.decryptBounded(publicKey.encrypt(100n), 100n), OverflowError);
  assert.throws(() => privateKey.decryptBounded(middle, 1n << 64n), OverflowError);
  assert.throws(() => privateKey.decryptBounded(middle, privateKey.p), RangeError);
  fc.assert(
    fc.property(fc.bigInt({ min: -(1n << 200n), max: 1n << 200n }), (m) => {
      assert.equal(privateKey.decryptBounded(publicKey.encrypt(m), (1n << 200n) + 1n), m);
    }),
    { numRuns: 30 },
  );
});

test('classic noise and noise pools give ciphertexts that decrypt alike', () => {
  const { privateKey } = smallKeys();
  const publicKey = new PaillierPublicKey(privateKey.publicKey.n, { insecure: true });
  publicKey.useNoise(new ClassicNoise(publicKey.n, publicKey.nSquared));
  assert.equal(new PaillierPrivateKey(publicKey, privateKey.p, privateKey.q).decrypt(publicKey.encrypt(99n)), 99n);
  const pool = new NoisePool(new ClassicNoise(publicKey.n, publicKey.nSquared));
  pool.fill(3);
  assert.equal(pool.size, 3);
  publicKey.useNoise(pool);
  const seen = new Set<bigint>();
  for (let i = 0; i < 5; i++) seen.add(publicKey.encrypt(1n).value); // 3 from the pool, 2 fresh
  assert.equal(seen.size, 5);
  assert.equal(pool.size, 0);
});

test('plaintexts of |m| ≥ n are refused', () => {
  const { publicKey } = smallKeys();
  assert.throws(() => publicKey.encrypt(publicKey.n), RangeError);
  assert.throws(() => publicKey.encrypt(-publicKey.n), RangeError);
  assert.throws(() => publicKey.encrypt(1.5 as unknown as bigint), TypeError);
  assert.throws(() => publicKey.encrypt(1n).mulPlain(publicKey.n), RangeError);
});

test('batchInvert inverts many units with one inversion and passes ones through', () => {
  const { publicKey } = smallKeys();
  const m = publicKey.nSquared;
  const values = [publicKey.encrypt(1n).value, 1n, publicKey.encrypt(-5n).value, publicKey.encrypt(9n).value];
  const inverses = batchInvert(values, m);
  values.forEach((v, i) => assert.equal((v * inverses[i]!) % m, 1n));
  assert.deepEqual(batchInvert([], m), []);
  assert.throws(() => batchInvert([smallKeys().privateKey.p], m), RangeError);
});
