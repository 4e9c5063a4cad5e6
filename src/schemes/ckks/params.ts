/**
 * CKKS parameter choice at 128-bit security. SEAL refuses any coefficient modulus larger than the
 * HomomorphicEncryption.org standard's bound for the ring (`CoeffModulus.MaxBitCount(N, tc128)`),
 * so every parameter set this module produces is checked against that bound when the context is
 * built, and again here so the error names the depth that did not fit.
 *
 * @module
 */
import { InvalidKeyError } from '../../errors.js';

/** The HE standard's largest total coefficient-modulus size (bits) at 128-bit classical security. */
export const MAX_COEFF_BITS_128: Readonly<Record<number, number>> = { 1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881 };

/** A CKKS parameter set: ring degree N (N/2 slots), the coefficient-modulus primes' sizes, scale. */
export interface CkksParameters {
  /** Ring degree N; ciphertexts hold N/2 complex slots (we use the real parts). */
  readonly polyModulusDegree: number;
  /** Bit sizes of the RNS primes; the last is SEAL's special (key-switching) prime. */
  readonly coeffModulusBits: readonly number[];
  /** log2 of the default encoding scale. */
  readonly scaleBits: number;
}

/** What a computation between client re-encryptions needs from the parameters. */
export interface ParameterRequirements {
  /** Number of rescales (multiplicative depth) between encryption and decryption. */
  readonly depth: number;
  /** log2 of the scale each rescale divides by (and of fresh encodings). */
  readonly scaleBits: number;
  /** Bits above the scale the decrypted values need (integer part plus sign), at the last level. */
  readonly headroomBits: number;
  /** Smallest ring degree to consider (more slots per ciphertext). */
  readonly minDegree?: number;
}

/**
 * The smallest ring whose 128-bit bound fits `depth` rescale primes of `scaleBits`, a first prime
 * of `scaleBits + headroomBits` and a special prime as large as the largest other prime.
 *
 * @throws RangeError when no ring up to 32768 fits.
 */
export function chooseParameters(req: ParameterRequirements): CkksParameters {
  const first = req.scaleBits + req.headroomBits;
  if (!Number.isInteger(req.depth) || req.depth < 0) throw new RangeError('depth must be a non-negative integer');
  if (first > 60 || req.scaleBits > 60 || req.scaleBits < 20) throw new RangeError('primes must have 20 to 60 bits');
  const bits = [first, ...Array.from({ length: req.depth }, () => req.scaleBits)];
  const special = Math.max(...bits);
  const total = bits.reduce((a, b) => a + b, 0) + special;
  for (const degree of [1024, 2048, 4096, 8192, 16384, 32768]) {
    if (degree < (req.minDegree ?? 0)) continue;
    if (total <= (MAX_COEFF_BITS_128[degree] ?? 0)) {
      return { polyModulusDegree: degree, coeffModulusBits: [...bits, special], scaleBits: req.scaleBits };
    }
  }
  throw new RangeError(`no ring up to N = 32768 fits depth ${req.depth} at 2^${req.scaleBits} with 128-bit security`);
}

/**
 * Checks a parameter set against the 128-bit bound.
 *
 * @throws InvalidKeyError when the modulus is too large for the ring (less than 128-bit security)
 *   and `insecure` is not set, or the set is malformed.
 */
export function checkParameters(params: CkksParameters, insecure = false): void {
  const n = params.polyModulusDegree;
  const bound = MAX_COEFF_BITS_128[n];
  if (bound === undefined) throw new InvalidKeyError(`ring degree ${n} is not one of ${Object.keys(MAX_COEFF_BITS_128).join(', ')}`);
  if (params.coeffModulusBits.length < 2) throw new InvalidKeyError('CKKS needs at least one data prime and the special prime');
  for (const b of params.coeffModulusBits) {
    if (!Number.isInteger(b) || b < 20 || b > 60) throw new InvalidKeyError(`coefficient prime of ${b} bits (allowed: 20 to 60)`);
  }
  const total = params.coeffModulusBits.reduce((a, b) => a + b, 0);
  if (total > bound && !insecure) {
    throw new InvalidKeyError(`a ${total}-bit coefficient modulus at N = ${n} is below 128-bit security (at most ${bound} bits); pass insecure to allow it`);
  }
}

/** A short, stable fingerprint of a parameter set, written into every serialized object. */
export function parameterFingerprint(params: CkksParameters): string {
  return `N${params.polyModulusDegree}q${params.coeffModulusBits.join('.')}s${params.scaleBits}`;
}
