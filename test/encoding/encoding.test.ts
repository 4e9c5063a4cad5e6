import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EncodingError, OverflowError } from '../../src/errors.js';
import {
  EncodedNumber,
  EncryptedNumber,
  decryptEncoded,
  decryptNumber,
  frexpExponent,
  pythonFloatRepr,
  roundShiftHalfEven,
} from '../../src/encoding/index.js';
import { smallKeys } from '../helpers/keys.js';

test('frexpExponent matches Python math.frexp on pinned values', () => {
  // Values from Python 3: [math.frexp(x)[1] for x in ...]
  const cases: [number, number][] = [
    [0, 0], [1, 1], [0.5, 0], [0.75, 0], [3.14, 2], [-1.5, 1], [1e-5, -16], [1e300, 997], [5e-324, -1073], [2 ** 53, 54],
  ];
  for (const [x, e] of cases) assert.equal(frexpExponent(x), e, `frexp(${x})`);
});

test('roundShiftHalfEven rounds ties to even like Python round(Fraction)', () => {
  assert.equal(roundShiftHalfEven(5n, 1), 2n); // 2.5 -> 2
  assert.equal(roundShiftHalfEven(7n, 1), 4n); // 3.5 -> 4
  assert.equal(roundShiftHalfEven(-5n, 1), -2n);
  assert.equal(roundShiftHalfEven(-7n, 1), -4n);
  assert.equal(roundShiftHalfEven(11n, 2), 3n); // 2.75 -> 3
  assert.equal(roundShiftHalfEven(3n, -2), 12n);
});

test('pythonFloatRepr prints what Python repr prints', () => {
  const cases: [number, string][] = [
    [5, '5.0'], [0.1, '0.1'], [1e-5, '1e-05'], [0.0001, '0.0001'], [1e16, '1e+16'], [1234567890123456.0, '1234567890123456.0'],
    [-2.5, '-2.5'], [1.6400000000000001, '1.6400000000000001'], [3e-300, '3e-300'], [1.5e300, '1.5e+300'], [0, '0.0'], [-0, '-0.0'],
    [123456.789, '123456.789'], [Number.MAX_VALUE, '1.7976931348623157e+308'],
  ];
  for (const [x, s] of cases) assert.equal(pythonFloatRepr(x), s);
});

test('encode/decode round-trips every finite double exactly', () => {
  const { publicKey } = smallKeys();
  fc.assert(
    fc.property(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e30, max: 1e30 }), (x) => {
      const decoded = EncodedNumber.encode(publicKey, x).decode();
      assert.ok(Object.is(decoded, x) || (x === 0 && decoded === 0), `${x} -> ${decoded}`);
    }),
    { numRuns: 500 },
  );
});

test('encode with precision and maxExponent follows python-paillier', () => {
  const { publicKey } = smallKeys();
  const e = EncodedNumber.encode(publicKey, 0.1, { precision: 1e-3 });
  assert.equal(e.exponent, Math.floor(Math.log(1e-3) / Math.log(16))); // -3
  assert.equal(e.mantissa(), 410n); // round(0.1 * 16^3) = round(409.6)
  const i = EncodedNumber.encode(publicKey, 15n);
  assert.equal(i.exponent, 0);
  assert.equal(i.decodeBigInt(), 15n);
  const low = EncodedNumber.encode(publicKey, 15n, { maxExponent: -2 });
  assert.equal(low.exponent, -2);
  assert.equal(low.mantissa(), 15n * 256n);
  assert.equal(low.decodeBigInt(), 15n);
  assert.equal(EncodedNumber.encode(publicKey, -3n).encoding, publicKey.n - 3n);
});

test('non-finite values and overflow are typed errors', () => {
  const { publicKey } = smallKeys();
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    assert.throws(() => EncodedNumber.encode(publicKey, bad), EncodingError);
  }
  assert.throws(() => EncodedNumber.encode(publicKey, publicKey.maxInt + 1n), OverflowError);
  assert.throws(() => EncodedNumber.encode(publicKey, 1, { precision: -1 }), EncodingError);
  const band = new EncodedNumber(publicKey, publicKey.maxInt + 1n, 0);
  assert.throws(() => band.decode(), OverflowError);
  assert.throws(() => new EncodedNumber(publicKey, publicKey.n, 0).decode(), EncodingError);
});

test('encrypted arithmetic matches python-paillier semantics', () => {
  const { publicKey, privateKey } = smallKeys();
  // Tiny magnitudes would need exponent gaps beyond a 512-bit key's max_int (python-paillier refuses them too).
  const small = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).filter((x) => x === 0 || Math.abs(x) > 1e-60);
  fc.assert(
    fc.property(small, small, (a, b) => {
      const ea = EncryptedNumber.encrypt(publicKey, a);
      const eb = EncryptedNumber.encrypt(publicKey, b);
      const sum = decryptNumber(privateKey, ea.add(eb));
      assert.ok(Math.abs(sum - (a + b)) <= 1e-9 * Math.max(1, Math.abs(a) + Math.abs(b)), `${a}+${b}=${sum}`);
      // Adding a plain scalar encodes it at most at ea's exponent (python-paillier's rule), so it may lose bits below 16^exponent.
      const plainSum = decryptNumber(privateKey, ea.add(b));
      assert.ok(Math.abs(plainSum - (a + b)) <= 16 ** ea.exponent + 1e-9 * Math.max(1, Math.abs(a) + Math.abs(b)), `${a}+plain ${b}=${plainSum}`);
      const prod = decryptNumber(privateKey, ea.mul(b));
      assert.ok(Math.abs(prod - a * b) <= 1e-9 * Math.max(1, Math.abs(a * b)), `${a}*${b}=${prod}`);
      assert.ok(Math.abs(decryptNumber(privateKey, ea.sub(eb)) - (a - b)) <= 1e-9 * Math.max(1, Math.abs(a) + Math.abs(b)));
    }),
    { numRuns: 40 },
  );
  const x = EncryptedNumber.encrypt(publicKey, 2.5).decreaseExponentTo(-32);
  assert.equal(x.exponent, -32);
  assert.equal(decryptNumber(privateKey, x), 2.5);
  assert.throws(() => x.decreaseExponentTo(-31), RangeError);
  assert.throws(() => EncryptedNumber.encrypt(publicKey, 1).add(EncryptedNumber.encrypt(publicKey, 5e-324)), OverflowError);
  assert.equal(decryptEncoded(privateKey, EncryptedNumber.encrypt(publicKey, 7n).mul(-3n)).decodeBigInt(), -21n);
});

test('encrypted numbers survive their JSON form and refuse junk', () => {
  const { publicKey, privateKey } = smallKeys();
  const x = EncryptedNumber.encrypt(publicKey, -1.25).mul(2);
  const json = JSON.parse(JSON.stringify(x)) as unknown;
  const back = EncryptedNumber.fromJSON(publicKey, json);
  assert.equal(decryptNumber(privateKey, back), -2.5);
  assert.notEqual(back.ciphertext.value, x.ciphertext.value, 'toJSON obfuscates a computed ciphertext');
  for (const junk of ['{', '[]', '{"v": 5, "e": 0}', '{"v": "12a", "e": 0}', '{"v": "1", "e": 0.5}', '{"v": "0", "e": 0}']) {
    assert.throws(() => EncryptedNumber.fromJSON(publicKey, junk), (err: Error) => err.name === 'FormatError' || err.name === 'InvalidCiphertextError');
  }
});
