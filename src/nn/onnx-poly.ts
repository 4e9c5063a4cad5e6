/**
 * Elementwise polynomials written out as ONNX arithmetic, the way PyTorch exports
 * `c2 * x * x + c1 * x + c0`, `x ** 2`, `(x - mean) / std` or Horner's rule: Mul, Add, Sub, Div
 * and Pow nodes whose operands are polynomials of one tensor x and scalar constants. The importer
 * tracks every such tensor as a polynomial in x and only creates a layer (an affine map for
 * degree 1, a {@link Polynomial} above) where a tensor is read by something else.
 *
 * A division by a tensor, a non-integer or negative power, or a degree above
 * {@link MAX_POLYNOMIAL_DEGREE} are refused: they are not a polynomial blindml can evaluate.
 * Browser-safe.
 *
 * @module
 */
import { MAX_POLYNOMIAL_DEGREE } from './layers.js';

/** Power-basis coefficients, lowest first. */
export type Coefficients = readonly number[];

/** One operand: a polynomial of the common variable, or a scalar constant. */
export type PolyOperand = { readonly poly: Coefficients } | { readonly scalar: number };

/**
 * The polynomial `a op b`.
 *
 * @returns the trimmed coefficients, or why the node is not a step of a polynomial.
 */
export function combinePolynomials(op: string, a: PolyOperand, b: PolyOperand): Coefficients | string {
  const result = combine(op, a, b);
  if (typeof result === 'string') return result;
  const trimmed = trim(result);
  if (trimmed.length - 1 > MAX_POLYNOMIAL_DEGREE) return `degree ${trimmed.length - 1} (at most ${MAX_POLYNOMIAL_DEGREE})`;
  return trimmed;
}

function combine(op: string, a: PolyOperand, b: PolyOperand): Coefficients | string {
  const pa = asPoly(a);
  const pb = asPoly(b);
  switch (op) {
    case 'Add':
      return add(pa, pb);
    case 'Sub':
      return add(pa, scale(pb, -1));
    case 'Mul':
      return multiply(pa, pb);
    case 'Div':
      if (!('scalar' in b)) return 'division by a tensor (only by a constant)';
      if (b.scalar === 0) return 'division by zero';
      return scale(pa, 1 / b.scalar);
    case 'Pow': {
      if (!('scalar' in b)) return 'a tensor exponent (only a constant one)';
      const e = b.scalar;
      if (!Number.isInteger(e) || e < 1 || e > MAX_POLYNOMIAL_DEGREE) return `exponent ${e} (only an integer 1–${MAX_POLYNOMIAL_DEGREE})`;
      let p: Coefficients = [1];
      for (let i = 0; i < e; i++) p = multiply(p, pa);
      return p;
    }
    default:
      return `${op} is not polynomial arithmetic`;
  }
}

function asPoly(o: PolyOperand): Coefficients {
  return 'scalar' in o ? [o.scalar] : o.poly;
}

function add(a: Coefficients, b: Coefficients): Coefficients {
  return Array.from({ length: Math.max(a.length, b.length) }, (_, i) => (a[i] ?? 0) + (b[i] ?? 0));
}

function scale(a: Coefficients, s: number): Coefficients {
  return a.map((c) => c * s);
}

function multiply(a: Coefficients, b: Coefficients): Coefficients {
  const out = new Array<number>(a.length + b.length - 1).fill(0);
  a.forEach((x, i) => b.forEach((y, j) => (out[i + j] = (out[i + j] as number) + x * y)));
  return out;
}

function trim(a: Coefficients): Coefficients {
  let n = a.length;
  while (n > 1 && a[n - 1] === 0) n--;
  return a.slice(0, n);
}
