import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FixedBaseTable,
  base64UrlToBigInt,
  bigIntToBase64Url,
  bigIntToBytes,
  bitLength,
  bytesToBigInt,
  crt2,
  gcd,
  isProbablePrime,
  isqrt,
  modInv,
  modPow,
  multiExp,
  randomBelow,
  randomPrime,
} from '../../src/math/index.js';

/** Square-and-multiply written the plain way, as a reference. */
function naivePow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r % m;
}

const big = (bits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });
const oddModulus = fc.bigInt({ min: 3n, max: (1n << 300n) - 1n }).map((m) => m | 1n);

test('modPow agrees with square-and-multiply', () => {
  fc.assert(
    fc.property(big(300), big(400), oddModulus, (b, e, m) => {
      assert.equal(modPow(b, e, m), naivePow(b, e, m));
    }),
    { numRuns: 200 },
  );
  assert.equal(modPow(5n, 0n, 7n), 1n);
  assert.equal(modPow(5n, 3n, 1n), 0n);
  assert.throws(() => modPow(2n, -1n, 7n), RangeError);
});

test('modInv inverts units and refuses non-units', () => {
  fc.assert(
    fc.property(big(256), oddModulus, (a, m) => {
      if (gcd(a, m) !== 1n) {
        assert.throws(() => modInv(a, m), RangeError);
        return;
      }
      assert.equal((modInv(a, m) * a) % m, 1n % m);
    }),
    { numRuns: 200 },
  );
  assert.equal(modInv(-3n, 7n), 2n); // -3 * 2 = -6 ≡ 1 (mod 7)
});

test('crt2 and isqrt', () => {
  const p = 1000003n;
  const q = 998244353n;
  const x = 123456789012345n;
  assert.equal(crt2(x % p, x % q, p, q, modInv(p, q)), x);
  fc.assert(
    fc.property(big(500), (n) => {
      const s = isqrt(n);
      assert.ok(s * s <= n && (s + 1n) * (s + 1n) > n);
    }),
  );
});

test('primality: known primes, composites and Carmichael numbers', () => {
  const primes = [2n, 3n, 65537n, 2n ** 127n - 1n, 2n ** 521n - 1n, 170141183460469231731687303715884105727n];
  for (const p of primes) assert.ok(isProbablePrime(p), `${p} is prime`);
  const composites = [1n, 0n, 561n, 41041n, 825265n, 321197185n, 2n ** 128n + 1n, (2n ** 61n - 1n) * (2n ** 89n - 1n)];
  for (const c of composites) assert.ok(!isProbablePrime(c), `${c} is composite`);
  // A strong pseudoprime to bases 2..37 (Arnault-style numbers fail random bases).
  assert.ok(!isProbablePrime(3825123056546413051n));
});

test('randomPrime has exactly the asked bits and the top two bits set', () => {
  for (const bits of [64, 256]) {
    const p = randomPrime(bits);
    assert.equal(bitLength(p), bits);
    assert.equal(p >> BigInt(bits - 2), 3n);
    assert.ok(isProbablePrime(p, 20));
  }
  assert.throws(() => randomPrime(8), RangeError);
});

test('randomBelow stays below its bound and reaches both ends', () => {
  const seen = new Set<bigint>();
  for (let i = 0; i < 400; i++) {
    const r = randomBelow(5n);
    assert.ok(r >= 0n && r < 5n);
    seen.add(r);
  }
  assert.equal(seen.size, 5);
  assert.throws(() => randomBelow(0n), RangeError);
});

test('fixed-base tables agree with modPow for every window size', () => {
  const m = (1n << 521n) - 1n;
  for (const w of [1, 3, 8]) {
    const table = new FixedBaseTable(123456789n, m, 200, w);
    fc.assert(
      fc.property(big(200), (e) => {
        assert.equal(table.pow(e), modPow(123456789n, e, m));
      }),
      { numRuns: 50 },
    );
    assert.throws(() => table.pow(1n << 200n), RangeError);
  }
});

test('multiExp agrees with a product of modPows (small, zero and large exponents)', () => {
  const m = (1n << 607n) - 1n;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(big(600), fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.constant(0))), { minLength: 1, maxLength: 40 }),
      (pairs) => {
        const bases = pairs.map(([b]) => b % m);
        const exps = pairs.map(([, e]) => e);
        const expected = pairs.reduce((acc, [b, e]) => (acc * modPow(b, BigInt(e), m)) % m, 1n);
        assert.equal(multiExp(bases, exps, m), expected);
      },
    ),
    { numRuns: 100 },
  );
  assert.equal(multiExp([5n, 7n], [2n ** 70n, 3n], m), (modPow(5n, 2n ** 70n, m) * 343n) % m);
  assert.equal(multiExp([], [], m), 1n);
  assert.throws(() => multiExp([1n], [-1], m), RangeError);
});

test('bytes and base64url conversions round-trip and match Node Buffer', () => {
  fc.assert(
    fc.property(big(2100), (x) => {
      assert.equal(bytesToBigInt(bigIntToBytes(x)), x);
      if (x !== 0n) {
        const viaBuffer = Buffer.from(bigIntToBytes(x)).toString('base64url');
        assert.equal(bigIntToBase64Url(x), viaBuffer);
      }
      assert.equal(base64UrlToBigInt(bigIntToBase64Url(x)), x);
    }),
  );
  assert.deepEqual([...bigIntToBytes(1n, 3)], [0, 0, 1]);
  assert.throws(() => bigIntToBytes(256n, 1), RangeError);
  assert.throws(() => base64UrlToBigInt('ab$d'), RangeError);
  assert.equal(base64UrlToBigInt('AQAB'), 65537n);
  assert.equal(base64UrlToBigInt('AQAB=='), 65537n);
});
