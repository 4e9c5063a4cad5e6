// The CKKS operations ckks-poly added to src/schemes/ckks: seeded encryption, allocation-free and
// sign-changing additions, squaring with relinearization apart, and scale reinterpretation.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CkksCiphertext, CkksContext, CkksKeyring, CkksServiceKeys, addInto, clone, emptyLike, multiply, negate, reinterpretScaleInPlace,
  relinearizeInPlace, rescaleInPlace, squareUnrelinearized, subInPlace,
} from '../../src/schemes/ckks/index.js';
import { FormatError, InvalidCiphertextError, KeyMismatchError } from '../../src/errors.js';

describe('ckks operations for polynomial networks', async () => {
  const ctx = await CkksContext.create({ polyModulusDegree: 8192, coeffModulusBits: [40, 40, 60], scaleBits: 30 });
  const ring = CkksKeyring.generate(ctx);
  const keys = CkksServiceKeys.load(ctx, ring.exportPublic({ relin: true }));
  after(() => {
    keys.dispose();
    ring.dispose();
    ctx.dispose();
  });
  const xs = Float64Array.from({ length: 64 }, (_, i) => Math.sin(i) * 3);
  const close = (got: Float64Array, want: (i: number) => number, tol: number) => {
    for (let i = 0; i < xs.length; i++) assert.ok(Math.abs(got[i]! - want(i)) < tol, `slot ${i}: ${got[i]} vs ${want(i)}`);
  };

  test('seeded encryption: half the bytes of a public-key ciphertext, loads and decrypts; truncation is refused', () => {
    const seeded = ring.encryptSeeded(xs);
    const full = ring.encrypt(xs);
    const fullBytes = full.save();
    full.free();
    assert.ok(seeded.length < 0.55 * fullBytes.length, `${seeded.length} vs ${fullBytes.length}`);
    const ct = CkksCiphertext.load(ctx, ring.keyId, seeded, { levelPrimes: 2, scale: ctx.scale });
    close(ring.decrypt(ct), (i) => xs[i]!, 1e-5);
    ct.free();
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, seeded.subarray(0, seeded.length - 1)), FormatError);
    const other = CkksKeyring.generate(ctx);
    assert.throws(() => CkksCiphertext.load(ctx, ring.keyId, other.encryptSeeded(xs)), KeyMismatchError);
    other.dispose();
  });

  test('clone, negate, subInPlace and addInto compute what they say', () => {
    const a = ring.encrypt(xs);
    const b = clone(a);
    const n = negate(a);
    const d = emptyLike(a);
    addInto(d, a, b); // 2x
    subInPlace(d, n); // 3x
    close(ring.decrypt(d), (i) => 3 * xs[i]!, 1e-4);
    close(ring.decrypt(n), (i) => -xs[i]!, 1e-5);
    for (const c of [a, b, n, d]) c.free();
  });

  test('squareUnrelinearized then relinearize and rescale equals multiply then rescale', () => {
    const a = ring.encrypt(xs);
    const sq = squareUnrelinearized(a);
    assert.equal(sq.seal.size, 3);
    assert.throws(() => squareUnrelinearized(sq), InvalidCiphertextError);
    relinearizeInPlace(sq, keys);
    assert.equal(sq.seal.size, 2);
    rescaleInPlace(sq);
    const ref = multiply(a, a, keys);
    rescaleInPlace(ref);
    const got = ring.decrypt(sq);
    // Scale 2^30 squared and divided by a 40-bit prime leaves 2^20: about three decimals.
    close(ring.decrypt(ref), (i) => got[i]!, 1e-2);
    close(got, (i) => xs[i]! ** 2, 1e-2);
    for (const c of [a, sq, ref]) c.free();
  });

  test('reinterpretScaleInPlace changes what a ciphertext decrypts to by the scale ratio', () => {
    const a = ring.encrypt(xs);
    reinterpretScaleInPlace(a, a.scale / 4);
    close(ring.decrypt(a), (i) => 4 * xs[i]!, 1e-4);
    assert.throws(() => reinterpretScaleInPlace(a, 0), RangeError);
    assert.throws(() => reinterpretScaleInPlace(a, Number.NaN), RangeError);
    a.free();
  });
});
