import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ristretto255 } from '@noble/curves/ed25519.js';
import { Kernel, limbsOf } from '../../src/schemes/fe/curve/kernel.js';
import { readExtended, writeExtended } from '../../src/schemes/fe/curve/group.js';
import { FixedBaseTable } from '../../src/schemes/fe/curve/fixed-base.js';
import { combine, MsmScratch } from '../../src/schemes/fe/curve/msm.js';

const P = (1n << 255n) - 19n;
const G = ristretto255.Point.BASE;
const kernel = new Kernel();
const fieldArb = fc.bigInt({ min: 0n, max: P - 1n });

test('field multiply, add, subtract, invert and freeze agree with bigint arithmetic', () => {
  const [a, b, c] = [kernel.alloc(40), kernel.alloc(40), kernel.alloc(40)];
  fc.assert(
    fc.property(fieldArb, fieldArb, (x, y) => {
      kernel.writeFe(a, x);
      kernel.writeFe(b, y);
      kernel.fe_mul(c, a, b);
      assert.equal(kernel.readFe(c), (x * y) % P);
      kernel.fe_sub(c, a, b);
      assert.equal(kernel.readFe(c), (((x - y) % P) + P) % P);
      kernel.fe_add(c, a, b);
      kernel.fe_freeze(c);
      assert.deepEqual(Array.from(kernel.i32.subarray(c >> 2, (c >> 2) + 10)), limbsOf((x + y) % P));
      if (x !== 0n) {
        kernel.invert(c, a);
        kernel.fe_mul(c, c, a);
        assert.equal(kernel.readFe(c), 1n);
      }
    }),
    { numRuns: 200 },
  );
});

test('freeze gives canonical limbs at the edges (p − 1, p, p + 1, 2^255 − 1)', () => {
  const a = kernel.alloc(40);
  for (const v of [P - 1n, P, P + 1n, (1n << 255n) - 1n, 0n]) {
    kernel.i32.set(limbsOf(v & ((1n << 255n) - 1n)), a >> 2);
    kernel.fe_freeze(a);
    assert.deepEqual(Array.from(kernel.i32.subarray(a >> 2, (a >> 2) + 10)), limbsOf(v % P));
  }
});

test('point add, subtract, double and mixed add agree with noble-curves', () => {
  const [p, q, r, cq, aff, niels] = [160, 160, 160, 160, 80, 120].map((n) => kernel.alloc(n)) as [number, number, number, number, number, number];
  const scalar = fc.bigInt({ min: 1n, max: (1n << 252n) - 1n });
  fc.assert(
    fc.property(scalar, scalar, (s, t) => {
      const A = G.multiply(s);
      const B = G.multiply(t);
      writeExtended(kernel, p, A);
      writeExtended(kernel, q, B);
      kernel.toCached(cq, q);
      kernel.add(r, p, cq);
      assert.ok(readExtended(kernel, r).equals(A.add(B)));
      kernel.sub(r, p, cq);
      assert.ok(readExtended(kernel, r).equals(A.subtract(B)));
      kernel.dbl(r, p);
      assert.ok(readExtended(kernel, r).equals(A.double()));
      kernel.toAffineBatch(aff, q, 1);
      kernel.affineToNiels(niels, aff);
      kernel.madd(r, p, niels);
      assert.ok(readExtended(kernel, r).equals(A.add(B)));
      kernel.msub(r, p, niels);
      assert.ok(readExtended(kernel, r).equals(A.subtract(B)));
    }),
    { numRuns: 15 },
  );
});

test('long chains of additions stay exact (no limb overflow)', () => {
  const [acc, base, cached] = [kernel.alloc(160), kernel.alloc(160), kernel.alloc(160)];
  const B = G.multiply(987654321n);
  writeExtended(kernel, base, B);
  kernel.toCached(cached, base);
  kernel.setIdentity(acc);
  for (let i = 0; i < 5000; i++) kernel.add(acc, acc, cached);
  for (let i = 0; i < 20; i++) kernel.dbl(acc, acc);
  assert.ok(readExtended(kernel, acc).equals(B.multiply(5000n * (1n << 20n))));
});

test('fixed-base multiplication and small-coefficient combinations agree with noble', () => {
  const m = kernel.mark();
  const base = kernel.alloc(160);
  const out = kernel.alloc(160);
  const B = G.multiply(4242n);
  writeExtended(kernel, base, B);
  for (const w of [4, 5, 8]) {
    const table = new FixedBaseTable(kernel, base, w);
    for (const s of [1n, 2n, 15n, 16n, 17n, ristretto255.Point.Fn.ORDER - 1n, (1n << 252n) + 12345n]) {
      table.mul(out, s);
      assert.ok(readExtended(kernel, out).equals(B.multiply(s % ristretto255.Point.Fn.ORDER)), `w=${w} s=${s}`);
    }
  }
  // combine: Σ c_i P_i with small and larger coefficients (several windows)
  const points = [3n, 5n, 7n, 11n].map((s) => G.multiply(s));
  const niels = kernel.alloc(4 * 120);
  const aff = kernel.alloc(80);
  const ext = kernel.alloc(160);
  points.forEach((pt, i) => {
    writeExtended(kernel, ext, pt);
    kernel.toAffineBatch(aff, ext, 1);
    kernel.affineToNiels(niels + 120 * i, aff);
  });
  const scratch = new MsmScratch(kernel, 64);
  for (const coeffs of [[1, -2, 0, 3], [0, 0, 0, 0], [100000, -99999, 7, -1], [-64, 63, 65, 1]]) {
    combine(kernel, scratch, out, niels, 4, coeffs);
    const expected = coeffs.reduce((acc, c, i) => acc + BigInt(c) * [3n, 5n, 7n, 11n][i]!, 0n);
    const e = ((expected % ristretto255.Point.Fn.ORDER) + ristretto255.Point.Fn.ORDER) % ristretto255.Point.Fn.ORDER;
    const want = e === 0n ? ristretto255.Point.ZERO : G.multiply(e);
    assert.ok(readExtended(kernel, out).equals(want), `coeffs ${coeffs}`);
  }
  assert.throws(() => combine(kernel, scratch, out, niels, 4, [0.5, 0, 0, 0]), RangeError);
  kernel.release(m);
});
