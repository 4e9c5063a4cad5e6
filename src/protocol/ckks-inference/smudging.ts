/**
 * Smudging (noise flooding) of the interactive CKKS protocol: an encryption of zero, added to
 * every ciphertext before it leaves the service, whose noise drowns the noise the computation
 * left (which depends on the model's weights).
 *
 * A fresh public-key encryption of zero from SEAL has noise coefficients of standard deviation
 * √((1 + 2N/3)/12) ≈ 21 at N = 8192 (SEAL encrypts at the key level and divides by the special
 * prime; the rounding ε0 + ε1·s is what is left). Scaling it by a constant 2^k alone would give
 * noise in 2^k·Z: the low k bits of every decrypted coefficient would still be the computation's
 * own, readable by a client that decrypts to coefficients. So the flood is
 *
 *     Enc(0)·R_high·2^c + Enc(0)·R_low
 *
 * with R_high and R_low random plaintext polynomials (random reals encoded by the CKKS encoder:
 * integer coefficients of known variance, coprime in practice). Each product's noise ε∗R is a sum
 * of N terms ε_j·R_i−j — a discrete Gaussian-like distribution on Z of standard deviation
 * √N·rms(R)·21: the high term has 2^floodBits times a fresh encryption's standard deviation on
 * the lattice 2^c·Z, and the low term, 4·2^c times it on Z, fills that lattice's gaps (its
 * deviation is 85 times the gap, far above the smoothing parameter of Z at 2^-40).
 *
 * @module
 */
import { randomBytes } from '../../math/random.js';
import { addInPlace, free, mulPlain, type CkksCiphertext, type CkksContext, type CkksServiceKeys } from '../../schemes/ckks/index.js';

/**
 * Largest log2(√N·rms) of a random polynomial: its coefficients (a few times rms < 2^46) must be
 * exact doubles, or the encoder's rounding would put them all on a sublattice of Z again.
 */
const MAX_SPREAD_BITS = 50;

/** Largest smudging exponent two terms can reach with exact random polynomials. */
export const MAX_FLOOD_BITS = 2 * MAX_SPREAD_BITS - 2;

/**
 * Smallest smudging exponent: below it the random polynomial's coefficients (rms 2^(bits)/√N)
 * round mostly to zero — at 1 bit all of them, and the product is a transparent ciphertext SEAL
 * refuses. At 8 bits (rms ≥ 2 up to N = 16384) the rounding adds at most 2% to the variance.
 */
export const MIN_FLOOD_BITS = 8;

/** Real values uniform in [−1, 1), from the CSPRNG (53 bits each). */
function uniformReals(count: number): Float64Array {
  const bytes = randomBytes(8 * count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float64Array.from({ length: count }, (_, i) => ((view.getUint32(8 * i) & 0x1fffff) * 2 ** 32 + view.getUint32(8 * i + 4)) / 2 ** 52 - 1);
}

/**
 * Enc(0)·R at `scale` whose noise has √N·rms(R) = 2^spreadBits times a fresh encryption's
 * standard deviation: R encodes uniform reals in [−1, 1) at √3·2^spreadBits (a coefficient of an
 * encoding at S has variance S²/(3N) for such values).
 */
function spreadZero(context: CkksContext, keys: CkksServiceKeys, scale: number, spreadBits: number): CkksCiphertext {
  const encodeScale = Math.sqrt(3) * 2 ** spreadBits;
  const r = context.encode(uniformReals(context.slots), encodeScale);
  const zero = keys.encrypt(new Float64Array(0), scale / encodeScale);
  try {
    return mulPlain(zero, r);
  } finally {
    zero.free();
    free(r);
  }
}

/**
 * A smudging ciphertext at `scale`: an encryption of zero whose noise has 2^floodBits times a fresh
 * encryption's standard deviation and spreads over every integer, not over a sublattice.
 *
 * Timing: up to two encryptions, three encodings and three plaintext products, the same for every
 * ciphertext of a model.
 *
 * @throws RangeError unless floodBits is an integer in [{@link MIN_FLOOD_BITS}, {@link MAX_FLOOD_BITS}].
 */
export function smudgingZero(context: CkksContext, keys: CkksServiceKeys, scale: number, floodBits: number): CkksCiphertext {
  if (!Number.isInteger(floodBits) || floodBits < MIN_FLOOD_BITS || floodBits > MAX_FLOOD_BITS) {
    throw new RangeError(`floodBits must be an integer in [${MIN_FLOOD_BITS}, ${MAX_FLOOD_BITS}], got ${floodBits}`);
  }
  if (floodBits <= MAX_SPREAD_BITS) return spreadZero(context, keys, scale, floodBits);
  // The high term's noise lies on 2^lattice·Z; the low one spreads 4 times that gap over Z. Just
  // above MAX_SPREAD_BITS the lattice shrinks so that the high term keeps MIN_FLOOD_BITS of spread.
  const lattice = Math.min(MAX_SPREAD_BITS - 2, floodBits - MIN_FLOOD_BITS);
  const constant = context.encode(new Float64Array(context.slots).fill(1), 2 ** lattice);
  const inner = spreadZero(context, keys, scale / 2 ** lattice, floodBits - lattice);
  try {
    const high = mulPlain(inner, constant);
    const low = spreadZero(context, keys, scale, lattice + 2);
    try {
      addInPlace(high, low);
      return high;
    } finally {
      low.free();
    }
  } finally {
    inner.free();
    free(constant);
  }
}
