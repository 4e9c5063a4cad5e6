/**
 * Modular arithmetic on bigints: reduction, gcd, inverse, sliding-window exponentiation, CRT.
 *
 * Timing: JS BigInt operations take time that depends on operand sizes and values; none of these
 * functions is constant-time. They are used on secret values (Paillier primes, decryption
 * exponents) only inside the key holder's process, where the threat model is a remote party that
 * sees ciphertexts and results, not local timing.
 *
 * @module
 */
import { bitLength } from './bigint.js';

/** x mod m in [0, m). */
export function mod(x: bigint, m: bigint): bigint {
  const r = x % m;
  return r < 0n ? r + m : r;
}

/** Greatest common divisor of |a| and |b|. */
export function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  if (b < 0n) b = -b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Least common multiple of |a| and |b|. */
export function lcm(a: bigint, b: bigint): bigint {
  if (a === 0n || b === 0n) return 0n;
  const g = gcd(a, b);
  const r = (a / g) * b;
  return r < 0n ? -r : r;
}

/**
 * The inverse of a modulo m, by the extended Euclidean algorithm.
 *
 * @throws RangeError if gcd(a, m) ≠ 1 (no inverse exists) or m ≤ 1.
 */
export function modInv(a: bigint, m: bigint): bigint {
  if (m <= 1n) throw new RangeError('modInv: modulus must be > 1');
  let r0 = mod(a, m);
  let r1 = m;
  let s0 = 1n;
  let s1 = 0n;
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new RangeError('modInv: value is not invertible');
  return mod(s0, m);
}

function windowBits(exponentBits: number): number {
  if (exponentBits <= 24) return 2;
  if (exponentBits <= 80) return 3;
  if (exponentBits <= 240) return 4;
  if (exponentBits <= 672) return 5;
  return 6;
}

/**
 * base^exponent mod m by left-to-right sliding windows over odd powers.
 *
 * @throws RangeError for a negative exponent (use {@link modInv} first) or m ≤ 0.
 */
export function modPow(base: bigint, exponent: bigint, m: bigint): bigint {
  if (m <= 0n) throw new RangeError('modPow: modulus must be positive');
  if (exponent < 0n) throw new RangeError('modPow: exponent must be non-negative');
  if (m === 1n) return 0n;
  base = mod(base, m);
  if (exponent === 0n) return 1n;
  const bits = exponent.toString(2);
  const w = windowBits(bits.length);
  // odd[i] = base^(2i+1)
  const odd: bigint[] = [base];
  const sq = (base * base) % m;
  for (let i = 1; i < 1 << (w - 1); i++) odd.push((odd[i - 1]! * sq) % m);
  let result = 1n;
  let started = false;
  let i = 0;
  while (i < bits.length) {
    if (bits[i] === '0') {
      if (started) result = (result * result) % m;
      i++;
      continue;
    }
    // The longest window of at most w bits starting here that ends in a 1.
    let end = Math.min(i + w, bits.length);
    while (bits[end - 1] === '0') end--;
    const value = parseInt(bits.slice(i, end), 2);
    if (started) {
      for (let k = i; k < end; k++) result = (result * result) % m;
      result = (result * odd[(value - 1) >> 1]!) % m;
    } else {
      result = odd[(value - 1) >> 1]!;
      started = true;
    }
    i = end;
  }
  return result;
}

/**
 * Chinese remaindering for two coprime moduli: the x in [0, p·q) with x ≡ a (mod p), x ≡ b (mod q),
 * given pInvModQ = p⁻¹ mod q.
 */
export function crt2(a: bigint, b: bigint, p: bigint, q: bigint, pInvModQ: bigint): bigint {
  const u = mod((b - a) * pInvModQ, q);
  return a + u * p;
}

/** Integer square root: the largest s with s² ≤ n. @throws RangeError for n < 0. */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError('isqrt: negative input');
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(bitLength(n) / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}
