// The README's library example, kept runnable so the README cannot drift from the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlotLayout, decryptPacked, dot, encryptPacked } from '../../src/schemes/paillier/index.js';
import { EncryptedNumber, decryptNumber } from '../../src/encoding/index.js';
import { realKeys } from '../helpers/keys.js';

test('the README example gives the values the README shows', () => {
  const { publicKey, privateKey } = realKeys();
  const xs = [3n, -1n, 4n].map((v) => publicKey.encrypt(v));
  assert.equal(privateKey.decryptSigned(dot(xs, [2, -7, 5], 10n)), 43n);
  const a = EncryptedNumber.encrypt(publicKey, 3.14);
  assert.equal(decryptNumber(privateKey, a.mul(2).add(1.5)), 7.78);
  const layout = SlotLayout.forSums(publicKey.bits, { valueBound: 255n, weightBound: 127n, terms: 784 });
  const packed = encryptPacked(publicKey, layout, [1n, -2n, 3n]);
  assert.deepEqual(decryptPacked(privateKey, layout, packed.mulPlain(3n), 3), [3n, -6n, 9n]);
});
