/**
 * Multi-exponentiation: Π bases[i]^exps[i] mod m for many bases with small non-negative
 * exponents, by the Bos–Coster method. With 784 bases and 15-bit exponents it needs about
 * 2.4 multiplications per base, against about 20 for one exponentiation per base and about 3.2
 * for a bucket (Pippenger) method at this size.
 *
 * Timing: the sequence of multiplications depends on the exponents (typically model weights,
 * the service's own secret) but not on the bases (the ciphertexts). An observer who can time the
 * service learns something about its weights, nothing about the encrypted inputs.
 *
 * @module
 */
import { modPow } from './modular.js';

/** Largest exponent the Bos–Coster path accepts; larger ones fall back to per-base modPow. */
const MAX_SMALL_EXPONENT = 2 ** 52;

/**
 * Π bases[i]^exps[i] mod m.
 *
 * @param bases - values already reduced mod m.
 * @param exps - non-negative exponents (numbers below 2^52, or bigints).
 * @throws RangeError if the lengths differ or an exponent is negative.
 */
export function multiExp(bases: readonly bigint[], exps: ArrayLike<number | bigint>, m: bigint): bigint {
  if (bases.length !== exps.length) throw new RangeError('multiExp: bases and exponents differ in length');
  const small: number[] = [];
  const smallBases: bigint[] = [];
  let result = 1n;
  for (let i = 0; i < bases.length; i++) {
    const e = exps[i]!;
    if (e < 0) throw new RangeError('multiExp: exponents must be non-negative');
    if (e === 0 || e === 0n) continue;
    if (typeof e === 'number' && e < MAX_SMALL_EXPONENT) {
      small.push(e);
      smallBases.push(bases[i]!);
    } else if (typeof e === 'bigint' && e < BigInt(MAX_SMALL_EXPONENT)) {
      small.push(Number(e));
      smallBases.push(bases[i]!);
    } else {
      result = (result * modPow(bases[i]!, BigInt(e), m)) % m;
    }
  }
  if (small.length === 0) return result;
  return (result * bosCoster(smallBases, small, m)) % m;
}

/**
 * Bos–Coster on a max-heap: repeatedly rewrite x1^e1 · x2^e2 (e1 ≥ e2 the two largest) as
 * x1^(e1 mod e2) · (x2·x1^⌊e1/e2⌋)^e2 until one term remains.
 */
function bosCoster(bases: bigint[], exps: number[], m: bigint): bigint {
  const heap = new ExponentHeap(bases, exps);
  while (heap.size > 1) {
    const [x1, e1] = heap.pop();
    const top = heap.top;
    const e2 = heap.exps[top]!;
    const q = Math.floor(e1 / e2);
    const factor = q === 1 ? x1 : modPow(x1, BigInt(q), m);
    heap.bases[top] = (heap.bases[top]! * factor) % m;
    const rest = e1 - q * e2;
    if (rest > 0) heap.push(x1, rest);
  }
  const [x, e] = heap.pop();
  return e === 1 ? x : modPow(x, BigInt(e), m);
}

/** A binary max-heap of (base, exponent) pairs keyed by exponent, stored in parallel arrays. */
class ExponentHeap {
  readonly bases: bigint[] = [];
  readonly exps: number[] = [];

  constructor(bases: bigint[], exps: number[]) {
    for (let i = 0; i < bases.length; i++) this.push(bases[i]!, exps[i]!);
  }

  get size(): number {
    return this.exps.length;
  }

  /** Index of the largest exponent after the last pop (always the root). */
  get top(): number {
    return 0;
  }

  push(base: bigint, exp: number): void {
    const { bases, exps } = this;
    let i = exps.length;
    bases.push(base);
    exps.push(exp);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (exps[parent]! >= exp) break;
      bases[i] = bases[parent]!;
      exps[i] = exps[parent]!;
      i = parent;
    }
    bases[i] = base;
    exps[i] = exp;
  }

  pop(): [bigint, number] {
    const { bases, exps } = this;
    const rootBase = bases[0]!;
    const rootExp = exps[0]!;
    const lastBase = bases.pop()!;
    const lastExp = exps.pop()!;
    const n = exps.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && exps[right]! > exps[left]! ? right : left;
        if (exps[child]! <= lastExp) break;
        bases[i] = bases[child]!;
        exps[i] = exps[child]!;
        i = child;
      }
      bases[i] = lastBase;
      exps[i] = lastExp;
    }
    return [rootBase, rootExp];
  }
}
