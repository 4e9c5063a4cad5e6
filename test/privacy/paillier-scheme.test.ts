/**
 * The Paillier scheme's hiding mechanisms (docs/security.md, "Encryption and its randomness (DJN)",
 * "Obfuscation", "Files"): the DJN exponent's length and the noise's distribution, and
 * obfuscation of every ciphertext a serializer writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DjnNoise } from '../../src/schemes/paillier/noise.js';
import { decodeCiphertextTensor, encodeCiphertextTensor } from '../../src/schemes/paillier/tensor-file.js';
import { EncryptedNumber } from '../../src/encoding/index.js';
import { randomBits } from '../../src/math/random.js';
import { smallKeys } from '../helpers/keys.js';
import { FALSE_ALARM, chiSquareUniform } from './stats.js';
import { randomnessOf } from './paillier-harness.js';

test('DJN: the random exponent has ⌈k/2⌉ bits (1024 at n = 2048)', () => {
  // Any odd 2048-bit n will do for the exponent's size; a small table keeps this cheap.
  const n = randomBits(2048) | (1n << 2047n) | 1n;
  assert.equal(new DjnNoise(n, n * n, { windowBits: 2 }).exponentBits, 1024);
  assert.equal(new DjnNoise(smallKeys().publicKey.n, smallKeys().publicKey.nSquared, { windowBits: 2 }).exponentBits, 256);
});

test('DJN noise: never repeats (a short exponent would), is an n-th residue, and its bits are uniform', () => {
  const { publicKey, privateKey } = smallKeys();
  const djn = new DjnNoise(publicKey.n, publicKey.nSquared, { windowBits: 4 });
  // 3,000 draws: with an exponent of b bits, a repeat has probability ≈ 1 − exp(−3000²/2^(b+1)):
  // certain at b = 16 (1 − e^−68), below 2^-230 at the 256 bits of a 512-bit key.
  const seen = new Set<bigint>();
  const lowBytes = new Array<number>(16).fill(0);
  for (let i = 0; i < 3000; i++) {
    const v = djn.next();
    assert.ok(!seen.has(v), 'a noise value repeated');
    seen.add(v);
    // An n-th residue: it decrypts to 0 and is its own randomness part.
    if (i < 50) assert.equal(privateKey.decryptRaw(v), 0n);
    lowBytes[Number(v & 15n)]!++;
  }
  // The residue mod n² is a uniform-looking group element: its low 4 bits are uniform (χ², 15 df).
  assert.ok(chiSquareUniform(lowBytes).pValue >= FALSE_ALARM, `low nibbles ${lowBytes}`);
});

test('tensor files: a ciphertext that is not yet obfuscated is written with fresh randomness, same plaintext', () => {
  const { publicKey, privateKey } = smallKeys();
  const fresh = [5n, -7n, 11n].map((m) => publicKey.encrypt(m));
  // Results of homomorphic operations are deterministic functions of their inputs.
  const computed = [fresh[0]!.add(fresh[1]!), fresh[2]!.mulPlain(3n), fresh[0]!.addPlain(2n)];
  assert.ok(computed.every((c) => !c.isObfuscated));
  const bytes = encodeCiphertextTensor({ shape: [3], ciphertexts: computed, exponent: 0 });
  const back = decodeCiphertextTensor(bytes, { insecure: true, expectedKey: publicKey });
  back.ciphertexts.forEach((c, i) => {
    assert.notEqual(c.value, computed[i]!.value);
    assert.notEqual(randomnessOf(privateKey, c.value), randomnessOf(privateKey, computed[i]!.value), 'the file carries the computation’s own randomness');
    assert.equal(privateKey.decryptSigned(c), privateKey.decryptSigned(computed[i]!));
  });
  // A caller that asks for no obfuscation gets the values as they are (and takes the risk).
  const raw = decodeCiphertextTensor(encodeCiphertextTensor({ shape: [3], ciphertexts: computed, exponent: 0 }, { obfuscate: false }), { insecure: true, expectedKey: publicKey });
  assert.deepEqual(raw.ciphertexts.map((c) => c.value), computed.map((c) => c.value));
  // Fresh encryptions are already obfuscated and are written as they are.
  const same = decodeCiphertextTensor(encodeCiphertextTensor({ shape: [3], ciphertexts: fresh, exponent: 0 }), { insecure: true, expectedKey: publicKey });
  assert.deepEqual(same.ciphertexts.map((c) => c.value), fresh.map((c) => c.value));
});

test('encrypted-number JSON obfuscates a computed ciphertext before it leaves', () => {
  const { publicKey, privateKey } = smallKeys();
  const c = publicKey.encrypt(9n).mulPlain(4n);
  const back = EncryptedNumber.fromJSON(publicKey, JSON.parse(JSON.stringify(new EncryptedNumber(c, 0))));
  assert.notEqual(randomnessOf(privateKey, back.ciphertext.value), randomnessOf(privateKey, c.value));
  assert.equal(privateKey.decryptSigned(back.ciphertext), 36n);
});
