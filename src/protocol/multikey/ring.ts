/**
 * Arithmetic in the ring Z_{2^64} that the two training servers share values in, and the
 * fixed-point encoding on top of it.
 *
 * A training value v (a fixed-point integer, |v| < 2^40 in practice) is held as two shares
 * s1 + s2 ≡ v (mod 2^64): the service holds s1, the crypto server s2, and each share alone is a
 * uniform 64-bit number. Sums and products by public integers are local; products of two shared
 * values go through Paillier under the training key (see `two-party.ts`); re-scaling after a
 * product is the local truncation of SecureML (Mohassel–Zhang 2017): each server shifts its own
 * share, and the result is ⌊v/2^f⌋ or ⌊v/2^f⌋ + 1, except with probability about 2^(bits(v)+1−64)
 * (then the value is garbage; at |v| < 2^32 that is 2^-31 per truncation, see docs/security.md).
 *
 * @module
 */

/** Bits of the ring. */
export const RING_BITS = 64;
/** 2^64. */
export const RING = 1n << 64n;
const MASK = RING - 1n;
const HALF = 1n << 63n;

/** v mod 2^64 in [0, 2^64). */
export function reduce(v: bigint): bigint {
  return v & MASK;
}

/** The signed value of a ring element: in [−2^63, 2^63). */
export function toSigned(v: bigint): bigint {
  const r = v & MASK;
  return r >= HALF ? r - RING : r;
}

/** A uniform ring element from the platform CSPRNG. */
export function randomRing(): bigint {
  const w = globalThis.crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(w[0]!) << 32n) | BigInt(w[1]!);
}

/** `count` uniform ring elements. */
export function randomRingArray(count: number): bigint[] {
  const w = globalThis.crypto.getRandomValues(new Uint32Array(2 * count));
  const out = new Array<bigint>(count);
  for (let i = 0; i < count; i++) out[i] = (BigInt(w[2 * i]!) << 32n) | BigInt(w[2 * i + 1]!);
  return out;
}

/** A uniform integer in [0, 2^bits) from the CSPRNG (for statistical masks wider than the ring). */
export function randomBitsBig(bits: number): bigint {
  const words = Math.ceil(bits / 32);
  const w = globalThis.crypto.getRandomValues(new Uint32Array(words));
  let v = 0n;
  for (let i = 0; i < words; i++) v = (v << 32n) | BigInt(w[i]!);
  return v & ((1n << BigInt(bits)) - 1n);
}

/**
 * The service's half of a local truncation by 2^bits: ⌊s1 / 2^bits⌋ of the unsigned share.
 * Timing: constant for a given shift.
 */
export function truncateShare1(s1: bigint, bits: number): bigint {
  return (s1 & MASK) >> BigInt(bits);
}

/**
 * The crypto server's half: −⌊(−s2 mod 2^64) / 2^bits⌋ mod 2^64 (SecureML). Correct with high
 * probability only when the shares are uniformly random; a (public value, 0) pair is not.
 */
export function truncateShare2(s2: bigint, bits: number): bigint {
  return reduce(-(reduce(-s2) >> BigInt(bits)));
}

/** Floor division of a signed fixed-point value by 2^bits (the plaintext twin's truncation). */
export function truncatePlain(v: bigint, bits: number): bigint {
  return reduce(toSigned(v) >> BigInt(bits));
}

/**
 * Encodes a real number as a fixed-point ring element with `fracBits` fractional bits.
 *
 * @throws RangeError if x is not finite or does not fit in 2^40 after scaling.
 */
export function encodeFixed(x: number, fracBits: number): bigint {
  if (!Number.isFinite(x)) throw new RangeError('encodeFixed: value must be finite');
  const scaled = Math.round(x * 2 ** fracBits);
  if (Math.abs(scaled) >= 2 ** 40) throw new RangeError(`encodeFixed: ${x} does not fit the fixed-point range`);
  return reduce(BigInt(scaled));
}

/** The real number a fixed-point ring element stands for. */
export function decodeFixed(v: bigint, fracBits: number): number {
  return Number(toSigned(v)) / 2 ** fracBits;
}
