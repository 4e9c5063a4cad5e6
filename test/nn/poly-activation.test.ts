import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ERROR_GRID,
  calibratedInterval,
  evaluatePolynomial,
  fitActivation,
  maxError,
  targetFunction,
  type Interval,
  type PolyFitMethod,
  type PolyTarget,
} from '../../src/nn/poly-activation.js';

// Pinned against numpy 1.24 (test/vectors/poly-fits.py prints them): np.polyfit on
// np.linspace(lo, hi, 1001); chebinterpolate + cheb2poly; polyint of the sigmoid polyfit.
const PINNED: readonly [PolyTarget, PolyFitMethod, number, Interval, number[]][] = [
  ['relu', 'least-squares', 2, [-5, 5], [0.46921594030267993, 0.5, 0.09365662406539757]],
  ['relu', 'least-squares', 4, [-5, 5], [0.2932573285782195, 0.49999999999999906, 0.16389990998643145, 0, -0.003271487938730597]],
  ['sigmoid', 'least-squares', 3, [-8, 8], [0.5, 0.15001362747637154, 0, -0.0015891267541582842]],
  ['relu', 'least-squares', 3, [-2, 6], [0.2594754174266666, 0.5340121373627722, 0.18110518962604674, -0.019194222575597563]],
  ['relu', 'chebyshev', 2, [-5, 5], [0, 0.5, 0.11547005383792502]],
  ['sigmoid', 'chebyshev', 3, [-8, 8], [0.5, 0.16551710818027826, 0, -0.0017930738109872854]],
  ['relu', 'chebyshev', 4, [-1, 3], [0.1, 0.6469231406814049, 0.40776835371752573, -0.18203724159839402, 0.027345747199464567]],
  ['relu', 'mscryptonet', 2, [-5, 5], [0, 0.5, 0.06556525398578657]],
  ['relu', 'mscryptonet', 4, [-6, 6], [0, 0.5, 0.0902525003924476, 0, -0.0007713748819970248]],
];

test('fits match numpy to 1e-9', () => {
  for (const [target, method, degree, interval, expected] of PINNED) {
    const fit = fitActivation(target, method, degree, interval);
    assert.equal(fit.coefficients.length, degree + 1);
    fit.coefficients.forEach((c, i) => {
      assert.ok(Math.abs(c - expected[i]!) < 1e-9, `${target} ${method} ${degree} c${i}: ${c} vs ${expected[i]}`);
    });
    assert.deepEqual(fit.interval, interval);
  }
});

test('closed forms: Chebyshev ReLU of degree 2 on [-B, B] is x/2 + x²/(B√3)', () => {
  for (const b of [1, 3.5, 10]) {
    const { coefficients } = fitActivation('relu', 'chebyshev', 2, [-b, b]);
    assert.ok(Math.abs(coefficients[0]!) < 1e-12 * b);
    assert.ok(Math.abs(coefficients[1]! - 0.5) < 1e-12);
    assert.ok(Math.abs(coefficients[2]! - 1 / (b * Math.sqrt(3))) < 1e-12);
  }
});

test('reported max error matches the closed form: Chebyshev ReLU degree 2 on [-B, B] errs most at ±B√3/4, by B√3/16', () => {
  for (const b of [1, 4, 12]) {
    const fit = fitActivation('relu', 'chebyshev', 2, [-b, b]);
    // e(x) = x²/(B√3) − x/2 on (0, B) has its minimum −B√3/16 at x = B√3/4; at ±B it is only B(1/√3 − 1/2).
    assert.ok(Math.abs(fit.maxError - (b * Math.sqrt(3)) / 16) < 1e-7 * b, `B=${b}: ${fit.maxError}`);
  }
});

test('property: the reported max error bounds |p − f| anywhere in the interval (up to the grid spacing)', () => {
  const methods: [PolyTarget, PolyFitMethod, number][] = [
    ['relu', 'least-squares', 2], ['relu', 'least-squares', 4], ['relu', 'chebyshev', 3],
    ['sigmoid', 'least-squares', 3], ['sigmoid', 'chebyshev', 4], ['relu', 'mscryptonet', 2], ['relu', 'mscryptonet', 4],
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...methods),
      fc.double({ min: 0.5, max: 20, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      ([target, method, degree], b, u) => {
        const fit = fitActivation(target, method, degree, [-b, b]);
        const x = -b + 2 * b * u;
        const f = targetFunction(target);
        // |p − f| is Lipschitz with constant ≤ max|p'| + 1 on the interval; between grid points
        // it can exceed the grid maximum by at most that times half the spacing.
        let lip = 1;
        for (let k = 1; k < fit.coefficients.length; k++) lip += k * Math.abs(fit.coefficients[k]!) * b ** (k - 1);
        const slack = (lip * (2 * b)) / (ERROR_GRID - 1) / 2;
        return Math.abs(evaluatePolynomial(fit.coefficients, x) - f(x)) <= fit.maxError + slack + 1e-12;
      },
    ),
    { numRuns: 200 },
  );
});

test('error shrinks with degree for least squares on a fixed interval; MSCryptoNet is ReLU-like', () => {
  const e2 = fitActivation('sigmoid', 'least-squares', 2, [-6, 6]).maxError;
  const e3 = fitActivation('sigmoid', 'least-squares', 3, [-6, 6]).maxError;
  assert.ok(e3 < e2);
  const ms = fitActivation('relu', 'mscryptonet', 2, [-5, 5]);
  assert.equal(evaluatePolynomial(ms.coefficients, 0), 0);
  assert.ok(evaluatePolynomial(ms.coefficients, 5) > 2.5 && evaluatePolynomial(ms.coefficients, -5) < 2.5);
});

test('calibratedInterval covers the values with a margin', () => {
  assert.deepEqual(calibratedInterval([0.5, -2, 1], 1.5), [-3, 3]);
  assert.deepEqual(calibratedInterval(Float64Array.of(4)), [-4 * 1.1, 4 * 1.1]);
});

test('junk input is refused with RangeError', () => {
  assert.throws(() => fitActivation('relu', 'least-squares', 0, [-1, 1]), RangeError);
  assert.throws(() => fitActivation('relu', 'least-squares', 5, [-1, 1]), RangeError);
  assert.throws(() => fitActivation('relu', 'least-squares', 2.5, [-1, 1]), RangeError);
  assert.throws(() => fitActivation('relu', 'mscryptonet', 1, [-1, 1]), RangeError);
  assert.throws(() => fitActivation('sigmoid', 'mscryptonet', 2, [-1, 1]), RangeError);
  assert.throws(() => fitActivation('relu', 'chebyshev', 2, [1, 1]), RangeError);
  assert.throws(() => fitActivation('relu', 'chebyshev', 2, [2, 1]), RangeError);
  assert.throws(() => fitActivation('relu', 'chebyshev', 2, [-Infinity, 1]), RangeError);
  assert.throws(() => fitActivation('relu', 'chebyshev', 2, [Number.NaN, 1]), RangeError);
  assert.throws(() => maxError([1], Math.abs, [0, 1], 1), RangeError);
  assert.throws(() => calibratedInterval([]), RangeError);
  assert.throws(() => calibratedInterval([0, 0]), RangeError);
  assert.throws(() => calibratedInterval([1, Number.NaN]), RangeError);
  assert.throws(() => calibratedInterval([1], 0.5), RangeError);
});
