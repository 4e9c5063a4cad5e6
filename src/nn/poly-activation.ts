/**
 * Polynomial stand-ins for ReLU and sigmoid, for networks that a service evaluates entirely on
 * CKKS ciphertexts (CryptoNets, MSCryptoNet): a ciphertext can be added and multiplied, so every
 * nonlinearity must become a low-degree polynomial, valid only on the interval the fit was made
 * for. Each fit therefore carries its interval and its largest error on it.
 *
 * Three constructions, degree 1–4 (2–4 is what the protocols use):
 * - `least-squares`: the polynomial minimizing the squared error over a uniform grid of
 *   {@link FIT_SAMPLES} points of the interval (the same thing `numpy.polyfit` computes);
 * - `chebyshev`: interpolation at the degree + 1 Chebyshev points of the first kind (what
 *   `numpy.polynomial.chebyshev.chebinterpolate` computes), close to the minimax polynomial;
 * - `mscryptonet`: for a ReLU, fit the sigmoid (ReLU's smoothed derivative) by least squares at
 *   one degree less, then integrate it from 0, so the result is ReLU-like and vanishes at 0.
 *
 * Coefficients are in the power basis, lowest first: p(x) = c[0] + c[1]·x + … + c[d]·x^d.
 * Everything here is plaintext arithmetic on public model parameters (no secrets, no timing
 * concerns). Browser-safe.
 *
 * @module
 */

/** The activations a polynomial can stand in for. */
export type PolyTarget = 'relu' | 'sigmoid';

/** How a polynomial is fitted; see the module comment. */
export type PolyFitMethod = 'least-squares' | 'chebyshev' | 'mscryptonet';

/** A closed interval [lo, hi] with lo < hi. */
export type Interval = readonly [number, number];

/** A fitted polynomial and how good it is. */
export interface PolyFit {
  readonly target: PolyTarget;
  readonly method: PolyFitMethod;
  readonly degree: number;
  /** Power-basis coefficients, lowest first (degree + 1 of them). */
  readonly coefficients: readonly number[];
  /** Where the fit is meant to be used. */
  readonly interval: Interval;
  /** max |p(x) − f(x)| over {@link ERROR_GRID} evenly spaced points of the interval, ends included. */
  readonly maxError: number;
}

/** Grid points of the least-squares fit. */
export const FIT_SAMPLES = 1001;
/** Grid points on which {@link PolyFit.maxError} is measured. */
export const ERROR_GRID = 20001;
/** Highest degree fitted here (higher degrees cost CKKS levels the protocols cannot afford). */
export const MAX_FIT_DEGREE = 4;

const TARGETS: Record<PolyTarget, (x: number) => number> = {
  relu: (x) => (x > 0 ? x : 0),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
};

/** The exact activation a polynomial stands in for. */
export function targetFunction(target: PolyTarget): (x: number) => number {
  return TARGETS[target];
}

/**
 * Fits `target` on `interval` with `method` at `degree`.
 *
 * @throws {RangeError} for a degree outside 1–{@link MAX_FIT_DEGREE} (2–4 for `mscryptonet`,
 *   whose sigmoid fit has degree − 1 ≥ 1), an interval that is not finite with lo < hi, or
 *   `mscryptonet` for a target other than ReLU.
 */
export function fitActivation(target: PolyTarget, method: PolyFitMethod, degree: number, interval: Interval): PolyFit {
  checkInterval(interval);
  checkDegree(degree, method === 'mscryptonet' ? 2 : 1);
  const f = targetFunction(target);
  let coefficients: number[];
  if (method === 'least-squares') coefficients = leastSquares(f, degree, interval);
  else if (method === 'chebyshev') coefficients = chebyshevInterpolate(f, degree, interval);
  else {
    if (target !== 'relu') throw new RangeError(`the mscryptonet construction approximates ReLU, not ${target}`);
    coefficients = integrateFromZero(leastSquares(TARGETS.sigmoid, degree - 1, interval));
  }
  return { target, method, degree, coefficients, interval: [interval[0], interval[1]], maxError: maxError(coefficients, f, interval) };
}

/**
 * p(x) by Horner's rule.
 *
 * @param coefficients power basis, lowest first.
 */
export function evaluatePolynomial(coefficients: ArrayLike<number>, x: number): number {
  let acc = 0;
  for (let i = coefficients.length - 1; i >= 0; i--) acc = acc * x + (coefficients[i] as number);
  return acc;
}

/**
 * max |p(x) − f(x)| over `points` evenly spaced points of `interval`, both ends included.
 *
 * @throws {RangeError} for a bad interval or fewer than 2 points.
 */
export function maxError(
  coefficients: ArrayLike<number>,
  f: (x: number) => number,
  interval: Interval,
  points = ERROR_GRID,
): number {
  checkInterval(interval);
  if (!Number.isSafeInteger(points) || points < 2) throw new RangeError(`points must be an integer ≥ 2, got ${points}`);
  const [lo, hi] = interval;
  let worst = 0;
  for (let i = 0; i < points; i++) {
    const x = lo + ((hi - lo) * i) / (points - 1);
    worst = Math.max(worst, Math.abs(evaluatePolynomial(coefficients, x) - f(x)));
  }
  return worst;
}

/**
 * The symmetric interval [−B, B] that covers `values`, with B = margin × max |v| (so a fit made
 * on it also covers inputs a little beyond what calibration saw). Used to take a fit's interval
 * from the pre-activation values of calibration images.
 *
 * @throws {RangeError} if `values` is empty or holds a non-finite number, or margin < 1.
 */
export function calibratedInterval(values: ArrayLike<number>, margin = 1.1): Interval {
  if (!(margin >= 1) || !Number.isFinite(margin)) throw new RangeError(`margin must be a finite number ≥ 1, got ${margin}`);
  if (values.length === 0) throw new RangeError('no calibration values');
  let b = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isFinite(v)) throw new RangeError(`calibration value ${i} is not finite`);
    b = Math.max(b, Math.abs(v));
  }
  if (b === 0) throw new RangeError('every calibration value is 0: no interval to fit on');
  return [-b * margin, b * margin];
}

/** Discrete least squares on a uniform grid, solved in t = (x − mid)/half ∈ [−1, 1] for conditioning. */
function leastSquares(f: (x: number) => number, degree: number, interval: Interval): number[] {
  const [lo, hi] = interval;
  const mid = (lo + hi) / 2;
  const half = (hi - lo) / 2;
  const n = degree + 1;
  const gram = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const rhs = new Array<number>(n).fill(0);
  const powers = new Array<number>(2 * n - 1);
  for (let s = 0; s < FIT_SAMPLES; s++) {
    const t = -1 + (2 * s) / (FIT_SAMPLES - 1);
    const y = f(mid + half * t);
    powers[0] = 1;
    for (let k = 1; k < powers.length; k++) powers[k] = (powers[k - 1] as number) * t;
    for (let i = 0; i < n; i++) {
      rhs[i] = (rhs[i] as number) + y * (powers[i] as number);
      for (let j = 0; j < n; j++) (gram[i] as number[])[j] = ((gram[i] as number[])[j] as number) + (powers[i + j] as number);
    }
  }
  return fromUnitVariable(solve(gram, rhs), mid, half);
}

/** Interpolation at the Chebyshev points of the first kind, x_k = mid + half·cos(π(k + ½)/n). */
function chebyshevInterpolate(f: (x: number) => number, degree: number, interval: Interval): number[] {
  const [lo, hi] = interval;
  const mid = (lo + hi) / 2;
  const half = (hi - lo) / 2;
  const n = degree + 1;
  const vandermonde: number[][] = [];
  const rhs: number[] = [];
  for (let k = 0; k < n; k++) {
    const t = Math.cos((Math.PI * (k + 0.5)) / n);
    vandermonde.push(Array.from({ length: n }, (_, j) => t ** j));
    rhs.push(f(mid + half * t));
  }
  return fromUnitVariable(solve(vandermonde, rhs), mid, half);
}

/** ∫₀ˣ p(t) dt. */
function integrateFromZero(coefficients: readonly number[]): number[] {
  return [0, ...coefficients.map((c, k) => c / (k + 1))];
}

/** Given q(t) = Σ a_k t^k with t = (x − mid)/half, the coefficients of p(x) = q(t). */
function fromUnitVariable(a: readonly number[], mid: number, half: number): number[] {
  const out = new Array<number>(a.length).fill(0);
  // (x − mid)^k / half^k expanded binomially.
  for (let k = 0; k < a.length; k++) {
    const ak = (a[k] as number) / half ** k;
    let binom = 1;
    for (let j = 0; j <= k; j++) {
      out[j] = (out[j] as number) + ak * binom * (-mid) ** (k - j);
      binom = (binom * (k - j)) / (j + 1);
    }
  }
  return out;
}

/** Gaussian elimination with partial pivoting on a small dense system (copies its inputs). */
function solve(matrix: readonly (readonly number[])[], rhs: readonly number[]): number[] {
  const n = rhs.length;
  const a = matrix.map((row, i) => [...row, rhs[i] as number]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const p = a[col]![col]!;
    if (p === 0) throw new RangeError('singular system in polynomial fit');
    for (let r = col + 1; r < n; r++) {
      const factor = a[r]![col]! / p;
      for (let c = col; c <= n; c++) a[r]![c] = a[r]![c]! - factor * a[col]![c]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let acc = a[r]![n]!;
    for (let c = r + 1; c < n; c++) acc -= a[r]![c]! * x[c]!;
    x[r] = acc / a[r]![r]!;
  }
  return x;
}

function checkInterval(interval: Interval): void {
  const [lo, hi] = interval;
  if (interval.length !== 2 || !Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi)) {
    throw new RangeError(`interval must be two finite numbers lo < hi, got [${interval.join(', ')}]`);
  }
}

function checkDegree(degree: number, min: number): void {
  if (!Number.isSafeInteger(degree) || degree < min || degree > MAX_FIT_DEGREE) {
    throw new RangeError(`degree must be an integer in ${min}–${MAX_FIT_DEGREE}, got ${degree}`);
  }
}
