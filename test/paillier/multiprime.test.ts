/**
 * Three-prime Paillier keys: pinned vectors made and decrypted by Python with λ (no per-prime
 * CRT), textbook-λ cross-checks, round trips at 2048 bits, and refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { InvalidKeyError, OverflowError } from '../../src/errors.js';
import { gcd, lcm, modInv, modPow } from '../../src/math/index.js';
import { PaillierPrivateKey, PaillierPublicKey, generateKeyPair, privateKeyToJwk } from '../../src/schemes/paillier/index.js';
import { PaillierWorkerPool } from '../../src/workers/paillier-pool.js';

interface ThreePrimeVectors {
  primes: string[];
  n: string;
  encryptions: { m: string; r: string; c: string }[];
}

const vectors = JSON.parse(readFileSync(new URL('../vectors/paillier-3prime-pinned.json', import.meta.url), 'utf8')) as ThreePrimeVectors;

/** Textbook decryption with λ = lcm of the (x − 1): independent of the per-prime CRT path. */
function textbookDecrypt(c: bigint, n: bigint, primes: readonly bigint[]): bigint {
  const n2 = n * n;
  const lambda = primes.reduce((a, x) => lcm(a, x - 1n), 1n);
  const mu = modInv((modPow(n + 1n, lambda, n2) - 1n) / n, n);
  return (((modPow(c, lambda, n2) - 1n) / n) * mu) % n;
}

let keys3: ReturnType<typeof generateKeyPair> | undefined;
const smallThree = () => (keys3 ??= generateKeyPair({ bits: 512, primes: 3, insecure: true }));

test('three-prime pinned vectors (Python, decrypted with λ) decrypt by per-prime CRT', () => {
  const pub = new PaillierPublicKey(BigInt(vectors.n), { insecure: true });
  const priv = new PaillierPrivateKey(pub, vectors.primes.map(BigInt).reverse());
  assert.equal(priv.primes.length, 3);
  assert.ok(priv.primes[0]! < priv.primes[1]! && priv.primes[1]! < priv.primes[2]!, 'primes sorted');
  for (const e of vectors.encryptions) {
    assert.equal(priv.decrypt(pub.ciphertext(BigInt(e.c))), BigInt(e.m));
    assert.equal(pub.encryptRaw(BigInt(e.m), modPow(BigInt(e.r), pub.n, pub.nSquared)), BigInt(e.c));
  }
});

test('three-prime keys: generated sizes, round trips and the textbook formula agree', () => {
  const { publicKey, privateKey } = smallThree();
  assert.equal(publicKey.bits, 512);
  assert.equal(privateKey.primes.reduce((a, b) => a * b, 1n), publicKey.n);
  assert.equal(gcd(publicKey.n, privateKey.primes.reduce((a, x) => a * (x - 1n), 1n)), 1n);
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: publicKey.n - 1n }), (m) => {
      const c = publicKey.encrypt(m);
      assert.equal(privateKey.decrypt(c), m);
      assert.equal(textbookDecrypt(c.value, publicKey.n, privateKey.primes), m);
    }),
    { numRuns: 40 },
  );
  assert.equal(privateKey.decryptSigned(publicKey.encrypt(-5n)), -5n);
  assert.equal(privateKey.decryptBounded(publicKey.encrypt(-77n), 100n), -77n);
  assert.throws(() => privateKey.decryptBounded(publicKey.encrypt(1n << 100n), 100n), OverflowError);
});

test('a 2048-bit three-prime key has three ~683-bit primes and decrypts', () => {
  const { publicKey, privateKey } = generateKeyPair({ primes: 3 });
  assert.equal(publicKey.bits, 2048);
  assert.deepEqual(privateKey.primes.map((x) => x.toString(2).length).sort(), [682, 683, 683]);
  for (const m of [0n, 1n, publicKey.n - 1n, publicKey.n / 3n]) assert.equal(privateKey.decrypt(publicKey.encrypt(m)), m);
});

test('three-prime keys decrypt alike on worker threads', async () => {
  const { publicKey, privateKey } = smallThree();
  const pool = new PaillierWorkerPool({ threads: 2 });
  try {
    const ms = [3n, 0n, publicKey.n - 2n, 123456789n];
    assert.deepEqual(await pool.decryptMany(privateKey, ms.map((m) => publicKey.encrypt(m))), ms);
  } finally {
    await pool.destroy();
  }
});

test('refusals: four primes, repeats, wrong products, gcd(n, λ) ≠ 1, q and JWK of a three-prime key', () => {
  const { publicKey, privateKey } = smallThree();
  const [a, b, c] = privateKey.primes as [bigint, bigint, bigint];
  assert.throws(() => new PaillierPrivateKey(publicKey, [a, b, c + 2n]), InvalidKeyError);
  assert.throws(() => new PaillierPrivateKey(publicKey, [a, a * b, c]), InvalidKeyError);
  assert.throws(() => new PaillierPrivateKey(new PaillierPublicKey(a * a * b, { insecure: true }), [a, a, b]), InvalidKeyError);
  assert.throws(() => new PaillierPrivateKey(new PaillierPublicKey(3n * 5n * 7n * 11n, { insecure: true }), [3n, 5n, 7n, 11n]), /two or three/);
  // 3 divides 7 − 1: (1 + n) no longer has order n in the way decryption needs.
  assert.throws(() => new PaillierPrivateKey(new PaillierPublicKey(3n * 7n * 11n, { insecure: true }), [3n, 7n, 11n]), /gcd\(n, λ\)/);
  assert.throws(() => privateKey.q, /3 prime factors/);
  assert.throws(() => privateKeyToJwk(privateKey), /two primes/);
  assert.throws(() => generateKeyPair({ bits: 512, primes: 4 as 3, insecure: true }), RangeError);
});
