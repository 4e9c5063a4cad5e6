/**
 * python-paillier-compatible fixed-point numbers: value = mantissa · 16^exponent, the mantissa
 * stored modulo n with x ≤ max_int positive, x ≥ n − max_int negative (max_int = ⌊n/3⌋ − 1), and
 * the band between them reserved for overflow detection.
 *
 * Numbers follow Python's float semantics (exponent from `math.frexp`, exact rounding with ties
 * to even); bigints follow Python's int semantics (exponent 0 unless asked otherwise). Encodings
 * produced here are identical to python-paillier's for the same inputs.
 *
 * @module
 */
import { EncodingError, KeyMismatchError, OverflowError } from '../errors.js';
import { mod } from '../math/modular.js';
import type { PaillierPublicKey } from '../schemes/paillier/keys.js';
import { frexpExponent, roundShiftHalfEven, splitDouble } from './float.js';

/** The encoding base (python-paillier's `EncodedNumber.BASE`). */
export const BASE = 16;
/** log2 of {@link BASE}. */
export const LOG2_BASE = 4;
/** Mantissa bits of a double. */
export const FLOAT_MANTISSA_BITS = 53;

/** Options of {@link EncodedNumber.encode}. */
export interface EncodeOptions {
  /** Fix the exponent so this number is still distinguishable from zero. */
  precision?: number;
  /** The exponent will be at most this (python-paillier's `max_exponent`). */
  maxExponent?: number;
}

/** A plaintext ready for Paillier encryption: `encoding` in [0, n) and a base-16 exponent. */
export class EncodedNumber {
  constructor(
    readonly publicKey: PaillierPublicKey,
    readonly encoding: bigint,
    readonly exponent: number,
  ) {}

  /**
   * Encodes a number (Python float semantics) or bigint (Python int semantics).
   *
   * @throws EncodingError for NaN, ±Infinity or a bad precision; OverflowError if the mantissa
   *   exceeds max_int.
   */
  static encode(publicKey: PaillierPublicKey, scalar: number | bigint, options: EncodeOptions = {}): EncodedNumber {
    const exponent = chooseExponent(scalar, options);
    const mantissa = mantissaAt(scalar, exponent);
    if (mantissa > publicKey.maxInt || -mantissa > publicKey.maxInt) {
      throw new OverflowError(`cannot encode ${String(scalar)}: the integer needs to be within ±max_int of the key`);
    }
    return new EncodedNumber(publicKey, mod(mantissa, publicKey.n), exponent);
  }

  /**
   * The signed mantissa.
   *
   * @throws OverflowError if the encoding lies in the overflow band (a computation overflowed);
   *   EncodingError if it is not below n (corrupted).
   */
  mantissa(): bigint {
    const { n, maxInt } = this.publicKey;
    if (this.encoding < 0n || this.encoding >= n) throw new EncodingError('attempted to decode a corrupted number');
    if (this.encoding <= maxInt) return this.encoding;
    if (this.encoding >= n - maxInt) return this.encoding - n;
    throw new OverflowError('overflow detected in decrypted number');
  }

  /**
   * The value as a double (exact when it is representable; correctly rounded otherwise).
   *
   * @throws OverflowError (overflow band, or too large for a double); EncodingError if corrupted.
   */
  decode(): number {
    const m = this.mantissa();
    if (this.exponent >= 0) return checkFinite(Number(m * BigInt(BASE) ** BigInt(this.exponent)));
    return checkFinite(divideByPowerOfTwo(m, -this.exponent * LOG2_BASE));
  }

  /**
   * The value as an exact integer (python-paillier returns an int when exponent ≥ 0).
   *
   * @throws RangeError if the exponent is negative and the value is not an integer.
   */
  decodeBigInt(): bigint {
    const m = this.mantissa();
    if (this.exponent >= 0) return m * BigInt(BASE) ** BigInt(this.exponent);
    const shift = BigInt(-this.exponent * LOG2_BASE);
    if (m % (1n << shift) !== 0n) throw new RangeError('decodeBigInt: value is not an integer');
    return m >> shift;
  }

  /**
   * The same value at a lower exponent (the mantissa is multiplied by 16^(exponent − newExp)).
   *
   * @throws RangeError if newExp is above the current exponent.
   */
  decreaseExponentTo(newExp: number): EncodedNumber {
    if (newExp > this.exponent) {
      throw new RangeError(`new exponent ${newExp} should be more negative than old exponent ${this.exponent}`);
    }
    const factor = BigInt(BASE) ** BigInt(this.exponent - newExp);
    return new EncodedNumber(this.publicKey, (this.encoding * factor) % this.publicKey.n, newExp);
  }

  /** @throws KeyMismatchError unless this was encoded for `key`. */
  assertKey(key: PaillierPublicKey): void {
    if (!this.publicKey.equals(key)) throw new KeyMismatchError('the number was encoded for a different Paillier key');
  }
}

function chooseExponent(scalar: number | bigint, options: EncodeOptions): number {
  let exponent: number;
  if (options.precision !== undefined) {
    const p = options.precision;
    if (!Number.isFinite(p) || p <= 0) throw new EncodingError('precision must be a positive finite number');
    exponent = Math.floor(Math.log(p) / Math.log(BASE));
  } else if (typeof scalar === 'bigint') {
    exponent = 0;
  } else if (typeof scalar === 'number') {
    if (!Number.isFinite(scalar)) throw new EncodingError(`cannot encode ${scalar}: only finite numbers can be encrypted`);
    exponent = Math.floor((frexpExponent(scalar) - FLOAT_MANTISSA_BITS) / LOG2_BASE);
  } else {
    throw new EncodingError(`cannot encode a value of type ${typeof scalar}`);
  }
  if (options.maxExponent !== undefined) exponent = Math.min(options.maxExponent, exponent);
  return exponent;
}

/** round(scalar · 16^-exponent), exactly, ties to even. */
function mantissaAt(scalar: number | bigint, exponent: number): bigint {
  if (typeof scalar === 'number') {
    if (!Number.isFinite(scalar)) throw new EncodingError(`cannot encode ${scalar}: only finite numbers can be encrypted`);
    const { mantissa, exponent: e2 } = splitDouble(scalar);
    return roundShiftHalfEven(mantissa, LOG2_BASE * exponent - e2);
  }
  if (typeof scalar !== 'bigint') throw new EncodingError(`cannot encode a value of type ${typeof scalar}`);
  return roundShiftHalfEven(scalar, LOG2_BASE * exponent);
}

/**
 * m / 2^k correctly rounded to a double, subnormals included (Python's int / int true division):
 * one rounding, straight to the precision of the result, so no double rounding below 2^-1022.
 */
function divideByPowerOfTwo(m: bigint, k: number): number {
  if (m === 0n) return 0;
  const abs = m < 0n ? -m : m;
  const bits = abs.toString(2).length;
  // Exponent of the last bit kept: 53 significant bits, but never below the smallest subnormal.
  const lsb = Math.max(bits - k - FLOAT_MANTISSA_BITS, -1074);
  const value = scaleByPowerOfTwo(Number(roundShiftHalfEven(abs, lsb + k)), lsb);
  return m < 0n ? -value : value;
}

/** x · 2^e in steps, so no intermediate power of two overflows or underflows. */
function scaleByPowerOfTwo(x: number, e: number): number {
  while (e !== 0 && x !== 0 && Number.isFinite(x)) {
    const step = Math.max(-1000, Math.min(1000, e));
    x *= 2 ** step;
    e -= step;
  }
  return x;
}

function checkFinite(x: number): number {
  if (!Number.isFinite(x)) throw new OverflowError('decoded result is too large for a double');
  return x;
}
