/**
 * Recognizes an elementwise polynomial written out as ONNX arithmetic, the way PyTorch exports
 * `c2 * x * x + c1 * x + c0`, `x ** 2`, or Horner's rule: a run of Mul, Add, Sub, Div and Pow
 * nodes whose operands are the tensor the run started from (x), tensors the run computed, and
 * scalar constants. Each tensor of the run is tracked as a polynomial in x; when the run ends,
 * the importer turns the last one into a single {@link Polynomial} layer.
 *
 * Operands that are not scalars (per-channel constants), a division by a tensor, a non-integer
 * or negative power, or a degree above {@link MAX_POLYNOMIAL_DEGREE} are refused: they are not a
 * polynomial of one variable that blindml can evaluate. Browser-safe.
 *
 * @module
 */
import { MAX_POLYNOMIAL_DEGREE } from './layers.js';

/** The ONNX operators a polynomial run consists of. */
export const POLYNOMIAL_OPS: readonly string[] = ['Mul', 'Add', 'Sub', 'Div', 'Pow'];

/** One operand of a node in the run: a tracked tensor or a scalar constant. */
export type PolyOperand = { readonly tensor: string } | { readonly scalar: number };

/** Power-basis coefficients, lowest first. */
export type Coefficients = readonly number[];

/** The polynomials (in the run's base tensor) of every tensor the run has computed. */
export class PolynomialRun {
  private readonly polys = new Map<string, Coefficients>();

  /**
   * @param base the tensor the run starts from (the chain's current tensor).
   * @param firstNode name of the run's first node, for error messages.
   */
  constructor(
    readonly base: string,
    readonly firstNode: string,
  ) {
    this.polys.set(base, [0, 1]);
  }

  /** Whether `tensor` is x or was computed by the run. */
  tracks(tensor: string): boolean {
    return this.polys.has(tensor);
  }

  /** The polynomial of a tracked tensor. */
  coefficientsOf(tensor: string): Coefficients {
    const p = this.polys.get(tensor);
    if (p === undefined) throw new RangeError(`tensor '${tensor}' is not part of the polynomial`);
    return p;
  }

  /**
   * Applies one node and records its output.
   *
   * @returns undefined on success, or why the node is not a step of a polynomial.
   */
  apply(op: string, operands: readonly PolyOperand[], output: string): string | undefined {
    if (operands.length !== 2) return `${operands.length} operands (expected 2)`;
    const [a, b] = operands as [PolyOperand, PolyOperand];
    const result = this.combine(op, a, b);
    if (typeof result === 'string') return result;
    const trimmed = trim(result);
    if (trimmed.length - 1 > MAX_POLYNOMIAL_DEGREE) {
      return `degree ${trimmed.length - 1} (at most ${MAX_POLYNOMIAL_DEGREE})`;
    }
    this.polys.set(output, trimmed);
    return undefined;
  }

  private combine(op: string, a: PolyOperand, b: PolyOperand): Coefficients | string {
    const pa = this.asPoly(a);
    const pb = this.asPoly(b);
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

  private asPoly(o: PolyOperand): Coefficients {
    return 'scalar' in o ? [o.scalar] : this.coefficientsOf(o.tensor);
  }
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
