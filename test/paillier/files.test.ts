import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError, InvalidKeyError, KeyMismatchError } from '../../src/errors.js';
import {
  decodeCiphertextTensor,
  encodeCiphertextTensor,
  generateKeyPair,
  privateKeyFromJwk,
  privateKeyToJwk,
  publicKeyFromJwk,
  publicKeyToJwk,
} from '../../src/schemes/paillier/index.js';
import { realKeys, smallKeys } from '../helpers/keys.js';

test('JWK key files round-trip and carry the python-paillier fields', () => {
  const { publicKey, privateKey } = realKeys();
  const jwk = JSON.parse(JSON.stringify(privateKeyToJwk(privateKey))) as Record<string, unknown>;
  assert.equal(jwk['kty'], 'DAJ');
  assert.deepEqual(jwk['key_ops'], ['decrypt']);
  const pub = jwk['pub'] as Record<string, unknown>;
  assert.equal(pub['alg'], 'PAI-GN1');
  assert.match(String(pub['n']), /^[A-Za-z0-9_-]+$/, 'unpadded base64url');
  const back = privateKeyFromJwk(jwk);
  assert.equal(back.publicKey.n, publicKey.n);
  assert.equal(back.decrypt(publicKey.encrypt(5n)), 5n);
  assert.equal(publicKeyFromJwk(JSON.stringify(publicKeyToJwk(publicKey))).n, publicKey.n);
});

test('malformed key files are FormatErrors; inconsistent ones InvalidKeyErrors', () => {
  const { privateKey } = realKeys();
  const good = privateKeyToJwk(privateKey);
  const cases: [unknown, typeof FormatError | typeof InvalidKeyError][] = [
    ['not json', FormatError],
    ['[]', FormatError],
    [{ ...good, kty: 'RSA' }, FormatError],
    [{ ...good, key_ops: ['encrypt'] }, FormatError],
    [{ ...good, p: 42 }, FormatError],
    [{ ...good, p: 'not*base64' }, FormatError],
    [{ ...good, pub: { ...good.pub, alg: 'RSA-OAEP' } }, FormatError],
    [{ ...good, q: good.p }, InvalidKeyError],
    [{ ...good, pub: { ...good.pub, n: 'AQAB' } }, InvalidKeyError],
  ];
  for (const [input, kind] of cases) assert.throws(() => privateKeyFromJwk(input), kind, JSON.stringify(input).slice(0, 60));
});

test('encrypted tensors round-trip in the binary format', () => {
  const { publicKey, privateKey } = smallKeys();
  const values = [1n, -2n, 3n, 4n, -5n, 6n];
  const cts = values.map((v) => publicKey.encrypt(v));
  const bytes = encodeCiphertextTensor({ shape: [2, 3], ciphertexts: cts, exponent: -8 });
  assert.equal(bytes.length, 17 + 64 + 8 + 6 * 128 + 4);
  const back = decodeCiphertextTensor(bytes, { expectedKey: publicKey });
  assert.deepEqual(back.shape, [2, 3]);
  assert.equal(back.exponent, -8);
  assert.deepEqual(back.ciphertexts.map((c) => privateKey.decryptSigned(c)), values);
});

test('truncated, corrupted or foreign tensor files are refused', () => {
  const { publicKey } = smallKeys();
  const bytes = encodeCiphertextTensor({ shape: [2], ciphertexts: [publicKey.encrypt(1n), publicKey.encrypt(2n)], exponent: 0 });
  for (const cut of [0, 10, 100, bytes.length - 1]) {
    assert.throws(() => decodeCiphertextTensor(bytes.subarray(0, cut), { insecure: true }), FormatError);
  }
  const flipped = bytes.slice();
  flipped[200] = flipped[200]! ^ 1;
  assert.throws(() => decodeCiphertextTensor(flipped, { insecure: true }), /checksum/);
  const magic = bytes.slice();
  magic[0] = 0;
  assert.throws(() => decodeCiphertextTensor(magic, { insecure: true }), /magic/);
  const other = generateKeyPair({ bits: 512, insecure: true }).publicKey;
  assert.throws(() => decodeCiphertextTensor(bytes, { expectedKey: other }), KeyMismatchError);
  assert.throws(() => decodeCiphertextTensor(bytes), InvalidKeyError, 'a 512-bit key in a file still needs the insecure flag');
  assert.throws(() => encodeCiphertextTensor({ shape: [3], ciphertexts: [publicKey.encrypt(1n)], exponent: 0 }), RangeError);
});
