/**
 * Statistics for the privacy tests. Every distribution test draws fresh randomness (no seeds) and
 * fails a correct implementation with probability at most {@link FALSE_ALARM} per assertion, the
 * rate the test names; the powers against the broken variants are stated where they are used.
 */

/** Probability that a distribution assertion fails although the mechanism is correct. */
export const FALSE_ALARM = 1e-6;

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 significant digits). */
function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const y = x - 1;
  let a = c[0]!;
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The regularized upper incomplete gamma function Q(a, x) (series below a + 1, continued fraction above). */
function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lead = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 10_000; n++) {
      term *= x / (a + n);
      sum += term;
      if (term < sum * 1e-16) break;
    }
    return 1 - sum * Math.exp(lead);
  }
  // Lentz's method for the continued fraction.
  let b = x + 1 - a;
  let c = 1e300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(lead) * h;
}

/** P(χ²_df ≥ x). */
export function chiSquareSurvival(x: number, df: number): number {
  return gammaQ(df / 2, x / 2);
}

/**
 * Pearson's χ² goodness of fit of `counts` against probabilities `p` (summing to 1); returns the
 * statistic and its p-value. Each expected count should be at least 5 or so for the χ²
 * approximation; the tests size their samples far above that.
 */
export function chiSquare(counts: ArrayLike<number>, p: ArrayLike<number>): { statistic: number; pValue: number } {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  let statistic = 0;
  for (let i = 0; i < counts.length; i++) {
    const e = total * p[i]!;
    statistic += (counts[i]! - e) ** 2 / e;
  }
  return { statistic, pValue: chiSquareSurvival(statistic, counts.length - 1) };
}

/** χ² test of `counts` against the uniform distribution over its cells. */
export function chiSquareUniform(counts: ArrayLike<number>): { statistic: number; pValue: number } {
  return chiSquare(counts, Array.from({ length: counts.length }, () => 1 / counts.length));
}

/** Ranks 0..n−1 (ties broken by position, which only matters for exactly equal values). */
function ranks(v: readonly number[]): number[] {
  const idx = v.map((_, i) => i).sort((a, b) => v[a]! - v[b]!);
  const r = new Array<number>(v.length);
  idx.forEach((i, k) => (r[i] = k));
  return r;
}

/**
 * Spearman's rank correlation. Under independence (e.g. one of the two sequences in a uniformly
 * random order) it has mean 0 and variance 1/(n − 1), whatever the values.
 */
export function spearman(a: readonly number[], b: readonly number[]): number {
  const ra = ranks(a);
  const rb = ranks(b);
  const n = a.length;
  const mean = (n - 1) / 2;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    num += (ra[i]! - mean) * (rb[i]! - mean);
    da += (ra[i]! - mean) ** 2;
    db += (rb[i]! - mean) ** 2;
  }
  return num / Math.sqrt(da * db);
}

/** z such that P(N(0,1) ≥ z) = FALSE_ALARM (one-sided). */
export const Z_FALSE_ALARM = 4.753424;

/** Sample variance. */
export function variance(v: ArrayLike<number>): number {
  let mean = 0;
  for (let i = 0; i < v.length; i++) mean += v[i]!;
  mean /= v.length;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i]! - mean) ** 2;
  return s / (v.length - 1);
}
