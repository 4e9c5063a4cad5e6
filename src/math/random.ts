/**
 * Cryptographic randomness from `globalThis.crypto.getRandomValues` only, so the same code runs in
 * Node and in browsers.
 *
 * @module
 */
import { bitLength, bytesToBigInt } from './bigint.js';

const MAX_CHUNK = 65536; // getRandomValues refuses more than 64 KiB per call

/** Returns `length` cryptographically random bytes. */
export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += MAX_CHUNK) {
    globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + MAX_CHUNK)));
  }
  return out;
}

/** A uniformly random integer in [0, 2^bits). */
export function randomBits(bits: number): bigint {
  if (bits <= 0) return 0n;
  const bytes = randomBytes(Math.ceil(bits / 8));
  const excess = bytes.length * 8 - bits;
  bytes[0] = bytes[0]! & (0xff >> excess);
  return bytesToBigInt(bytes);
}

/**
 * A uniformly random integer in [0, max) by rejection sampling.
 *
 * @throws RangeError if `max <= 0`.
 */
export function randomBelow(max: bigint): bigint {
  if (max <= 0n) throw new RangeError('randomBelow: max must be positive');
  const bits = bitLength(max - 1n);
  for (;;) {
    const candidate = randomBits(bits);
    if (candidate < max) return candidate;
  }
}

/** A uniformly random integer in [1, n) coprime to n (for n a Paillier modulus, almost always the first draw). */
export function randomUnit(n: bigint, gcdFn: (a: bigint, b: bigint) => bigint): bigint {
  for (;;) {
    const r = randomBelow(n);
    if (r !== 0n && gcdFn(r, n) === 1n) return r;
  }
}
