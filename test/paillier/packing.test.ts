import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OverflowError } from '../../src/errors.js';
import { SlotLayout, decryptPacked, dot, encryptPacked, packCiphertexts } from '../../src/schemes/paillier/index.js';
import { smallKeys } from '../helpers/keys.js';

test('packing round-trips signed values at the edges of the bound', () => {
  const layout = new SlotLayout(512, { bound: 1000n });
  fc.assert(
    fc.property(fc.array(fc.bigInt({ min: -1000n, max: 1000n }), { minLength: 1, maxLength: layout.slots }), (values) => {
      const n = (1n << 511n) + 187n; // any odd modulus of the right size
      const packed = layout.pack(values);
      const plaintext = ((packed % n) + n) % n;
      assert.deepEqual(layout.unpack(plaintext, n, values.length), values);
    }),
  );
});

test('sums of a declared number of weighted terms never carry between slots', () => {
  const { publicKey, privateKey } = smallKeys();
  const terms = 6;
  const layout = SlotLayout.forSums(publicKey.bits, { valueBound: 255n, weightBound: 127n, terms });
  const slots = Math.min(layout.slots, 5);
  const sample = fc.array(fc.bigInt({ min: -255n, max: 255n }), { minLength: slots, maxLength: slots });
  fc.assert(
    fc.property(
      fc.array(sample, { minLength: terms, maxLength: terms }),
      fc.array(fc.integer({ min: -127, max: 127 }), { minLength: terms, maxLength: terms }),
      (rows, weights) => {
        // Each ciphertext packs the same position of `slots` samples; one dot product serves all.
        const cts = rows.map((row) => encryptPacked(publicKey, layout, row));
        const result = decryptPacked(privateKey, layout, dot(cts, weights), slots);
        const expected = Array.from({ length: slots }, (_, s) => rows.reduce((acc, row, t) => acc + row[s]! * BigInt(weights[t]!), 0n));
        assert.deepEqual(result, expected);
      },
    ),
    { numRuns: 25 },
  );
});

test('packing results into one ciphertext divides decryptions', () => {
  const { publicKey, privateKey } = smallKeys();
  const layout = new SlotLayout(publicKey.bits, { bound: 1n << 40n });
  const values = [5n, -(1n << 40n), 0n, 1n << 40n, -3n].slice(0, layout.slots);
  const packed = packCiphertexts(values.map((v) => publicKey.encrypt(v)), layout);
  assert.deepEqual(decryptPacked(privateKey, layout, packed, values.length), values);
  assert.throws(() => packCiphertexts([], layout), RangeError);
});

test('a slot pushed past its bound is reported, never returned wrong', () => {
  const { publicKey, privateKey } = smallKeys();
  const layout = new SlotLayout(publicKey.bits, { bound: 100n, guardBits: 6 });
  assert.throws(() => layout.pack([101n]), OverflowError);
  const ct = encryptPacked(publicKey, layout, [60n, 60n, -60n]);
  assert.throws(() => decryptPacked(privateKey, layout, ct.mulPlain(2n), 3), OverflowError);
  // Overflowing the top slot leaves bits above it.
  const top = encryptPacked(publicKey, layout, [1n]);
  assert.throws(() => decryptPacked(privateKey, layout, top, 0), OverflowError);
  assert.throws(() => new SlotLayout(64, { bound: 1n << 80n }), RangeError);
  assert.throws(() => new SlotLayout(512, { bound: 10n, slots: 1000 }), RangeError);
});
