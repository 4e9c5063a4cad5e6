/**
 * Parameters of the two-server Paillier protocols (S1 computes on ciphertexts, S2 holds the
 * private key and helps on blinded values).
 *
 * - Additive masks are uniform in [0, 2^(valueBits + σ)) for a value with |v| < 2^valueBits, so
 *   the masked value's distribution is within statistical distance 2^−σ of the mask's own,
 *   whatever v is (σ = {@link STATISTICAL_BITS} = 40).
 * - Comparisons (ReLU and its derivative) blind each value by a uniform factor in
 *   [2^(ρ−1), 2^ρ) (ρ = {@link BLIND_FACTOR_BITS}), which keeps the sign and hides the magnitude
 *   up to about a factor of two, and shuffle the values by a fresh uniform permutation.
 *
 * @module
 */

/** σ: statistical security of every additive mask, in bits. */
export const STATISTICAL_BITS = 40;

/** ρ: bits of the positive blinding factor of comparisons. */
export const BLIND_FACTOR_BITS = 32;

/** Guard bits of each packed slot (overflow detection at S2). */
export const SLOT_GUARD_BITS = 4;

/** Largest value bound, in bits, a masked operand may declare (keeps slots well inside n). */
export const MAX_VALUE_BITS = 400;

/** Bits of the additive mask for values with |v| < 2^valueBits. */
export function maskBits(valueBits: number): number {
  return valueBits + STATISTICAL_BITS;
}

/**
 * Slot width for masked values: a value v + r with |v| < 2^valueBits and r < 2^(valueBits+σ) is
 * below 2^(valueBits+σ+1); one sign bit and the guard bits on top.
 */
export function maskedSlotBits(valueBits: number): number {
  return maskBits(valueBits) + 2 + SLOT_GUARD_BITS;
}
