/**
 * Fixed-base exponentiation with a windowed table: base^(d·2^(w·j)) for every window j and digit d,
 * so base^e costs about (bits of e)/w multiplications and no squarings.
 *
 * This is what makes Damgård–Jurik–Nielsen style Paillier encryption cheap: the base h^n is fixed
 * per key and only the short exponent is random.
 *
 * Timing: the multiplications performed depend on which exponent digits are zero (a zero digit is
 * skipped), so time leaks roughly the number of zero windows of the exponent. For random
 * encryption exponents this reveals a few bits of a value that is never reused.
 *
 * @module
 */
import { bitLength } from './bigint.js';
import { mod } from './modular.js';

/** Precomputed powers of one base modulo one modulus. */
export class FixedBaseTable {
  readonly base: bigint;
  readonly modulus: bigint;
  /** Largest exponent bit length the table supports. */
  readonly maxBits: number;
  /** Window width in bits. */
  readonly windowBits: number;
  private readonly rows: bigint[][];

  /**
   * Builds the table: ⌈maxBits/w⌉·(2^w − 1) multiplications.
   *
   * @throws RangeError for a window outside [1, 12] or a non-positive maxBits.
   */
  constructor(base: bigint, modulus: bigint, maxBits: number, windowBits = 8) {
    if (!Number.isSafeInteger(windowBits) || windowBits < 1 || windowBits > 12) {
      throw new RangeError('FixedBaseTable: windowBits must be in [1, 12]');
    }
    if (!Number.isSafeInteger(maxBits) || maxBits <= 0) {
      throw new RangeError('FixedBaseTable: maxBits must be positive');
    }
    this.base = mod(base, modulus);
    this.modulus = modulus;
    this.maxBits = maxBits;
    this.windowBits = windowBits;
    const windows = Math.ceil(maxBits / windowBits);
    const digits = (1 << windowBits) - 1;
    this.rows = [];
    let rowBase = this.base;
    for (let j = 0; j < windows; j++) {
      const row: bigint[] = new Array<bigint>(digits);
      row[0] = rowBase;
      for (let d = 1; d < digits; d++) row[d] = (row[d - 1]! * rowBase) % modulus;
      this.rows.push(row);
      // next row base: rowBase^(2^w) = row[2^w - 2] * rowBase
      rowBase = (row[digits - 1]! * rowBase) % modulus;
    }
  }

  /** Number of table entries (memory is about entries × modulus bytes). */
  get entries(): number {
    return this.rows.length * ((1 << this.windowBits) - 1);
  }

  /**
   * base^exponent mod modulus.
   *
   * @throws RangeError if the exponent is negative or longer than maxBits.
   */
  pow(exponent: bigint): bigint {
    if (exponent < 0n) throw new RangeError('FixedBaseTable.pow: exponent must be non-negative');
    if (bitLength(exponent) > this.maxBits) {
      throw new RangeError(`FixedBaseTable.pow: exponent longer than ${this.maxBits} bits`);
    }
    const w = BigInt(this.windowBits);
    const mask = (1n << w) - 1n;
    const m = this.modulus;
    let result = 1n;
    let first = true;
    for (let j = 0; exponent !== 0n; j++) {
      const digit = Number(exponent & mask);
      exponent >>= w;
      if (digit === 0) continue;
      const entry = this.rows[j]![digit - 1]!;
      if (first) {
        result = entry;
        first = false;
      } else {
        result = (result * entry) % m;
      }
    }
    return result;
  }
}
