/**
 * Probable primes: trial division by small primes, Miller–Rabin with random bases, and random
 * prime generation by an incremental sieve.
 *
 * Timing: generation time depends on the (secret) prime found; this is the usual trade-off of
 * every incremental prime search and reveals nothing a remote party can observe.
 *
 * @module
 */
import { bitLength } from './bigint.js';
import { modPow } from './modular.js';
import { randomBelow, randomBits } from './random.js';

const SMALL_PRIMES: readonly number[] = (() => {
  const limit = 17864; // the first 2048 primes
  const sieve = new Uint8Array(limit);
  const primes: number[] = [];
  for (let i = 2; i < limit; i++) {
    if (sieve[i]) continue;
    primes.push(i);
    for (let j = i * i; j < limit; j += i) sieve[j] = 1;
  }
  return primes;
})();

/**
 * Miller–Rabin rounds for an error probability below 2^-112 on random candidates of this size
 * (FIPS 186-5, table B.1, with margin).
 */
function roundsFor(bits: number): number {
  if (bits >= 1536) return 4;
  if (bits >= 1024) return 5;
  if (bits >= 512) return 8;
  if (bits >= 256) return 16;
  return 40;
}

/** One Miller–Rabin round with base a, for odd n = d·2^s + 1. */
function millerRabinRound(n: bigint, d: bigint, s: number, a: bigint): boolean {
  let x = modPow(a, d, n);
  const nMinus1 = n - 1n;
  if (x === 1n || x === nMinus1) return true;
  for (let i = 1; i < s; i++) {
    x = (x * x) % n;
    if (x === nMinus1) return true;
    if (x === 1n) return false;
  }
  return false;
}

/**
 * True if n is prime with overwhelming probability (random-base Miller–Rabin, base 2 first).
 *
 * @param rounds - random-base rounds; defaults to a size-dependent count.
 */
export function isProbablePrime(n: bigint, rounds?: number): boolean {
  if (n < 2n) return false;
  for (const p of SMALL_PRIMES) {
    const bp = BigInt(p);
    if (n === bp) return true;
    if (n % bp === 0n) return false;
  }
  let d = n - 1n;
  let s = 0;
  while ((d & 1n) === 0n) {
    d >>= 1n;
    s++;
  }
  if (!millerRabinRound(n, d, s, 2n)) return false;
  const count = rounds ?? roundsFor(bitLength(n));
  for (let i = 0; i < count; i++) {
    const a = 2n + randomBelow(n - 3n);
    if (!millerRabinRound(n, d, s, a)) return false;
  }
  return true;
}

/**
 * A random prime of exactly `bits` bits whose two top bits are set, so the product of two such
 * primes has exactly 2·bits bits.
 *
 * @throws RangeError if bits < 16.
 */
export function randomPrime(bits: number): bigint {
  if (!Number.isSafeInteger(bits) || bits < 16) throw new RangeError('randomPrime: bits must be >= 16');
  const top = (1n << BigInt(bits - 1)) | (1n << BigInt(bits - 2));
  for (;;) {
    const start = randomBits(bits) | top | 1n;
    const found = sieveSearch(start, bits);
    if (found !== undefined) return found;
  }
}

/** Walks odd numbers from start, skipping those with a small factor, within a window of 2^16. */
function sieveSearch(start: bigint, bits: number): bigint | undefined {
  const residues = SMALL_PRIMES.map((p) => Number(start % BigInt(p)));
  const span = 1 << 16;
  for (let offset = 0; offset < span; offset += 2) {
    let composite = false;
    for (let i = 1; i < SMALL_PRIMES.length; i++) {
      if ((residues[i]! + offset) % SMALL_PRIMES[i]! === 0) {
        composite = true;
        break;
      }
    }
    if (composite) continue;
    const candidate = start + BigInt(offset);
    if (bitLength(candidate) !== bits) return undefined;
    if (isProbablePrime(candidate)) return candidate;
  }
  return undefined;
}
