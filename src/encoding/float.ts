/**
 * Exact views of IEEE-754 doubles, so encodings match python-paillier bit for bit (Python's
 * `math.frexp`, `fractions.Fraction(float)` and `round` with ties to even).
 *
 * @module
 */

/** The exact value of a finite double as mantissa · 2^exponent with an integer mantissa. */
export function splitDouble(x: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const sign = hi >>> 31 ? -1n : 1n;
  const biased = (hi >>> 20) & 0x7ff;
  const fraction = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (biased === 0) return { mantissa: sign * fraction, exponent: -1074 };
  return { mantissa: sign * (fraction | (1n << 52n)), exponent: biased - 1075 };
}

/** Python's `math.frexp(x)[1]`: the e with |x| = f·2^e, f in [0.5, 1); 0 for x = 0. */
export function frexpExponent(x: number): number {
  if (x === 0) return 0;
  const { mantissa, exponent } = splitDouble(x);
  const abs = mantissa < 0n ? -mantissa : mantissa;
  return exponent + abs.toString(2).length;
}

/** round(num / 2^shift) with ties to even, for shift ≥ 0 (Python's round of an exact fraction). */
export function roundShiftHalfEven(num: bigint, shift: number): bigint {
  if (shift <= 0) return num << BigInt(-shift);
  const s = BigInt(shift);
  const negative = num < 0n;
  const abs = negative ? -num : num;
  let q = abs >> s;
  const rem = abs - (q << s);
  const half = 1n << (s - 1n);
  if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
  return negative ? -q : q;
}

/**
 * The text Python's `repr(float)` prints: the shortest round-trip digits, fixed notation for
 * exponents in [-4, 16) with at least one fractional digit, scientific ("1e-05", "1.5e+16")
 * otherwise. Used so `blindml paillier decrypt` prints what `pheutil decrypt` prints.
 */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [digitsPart, expPart] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = digitsPart.replace('.', '');
  const exp = Number(expPart);
  const sign = x < 0 ? '-' : '';
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
      const frac = digits.slice(exp + 1) || '0';
      return `${sign}${intPart}.${frac}`;
    }
    return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  }
  const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const e = Math.abs(exp).toString().padStart(2, '0');
  return `${sign}${mant}e${exp < 0 ? '-' : '+'}${e}`;
}
