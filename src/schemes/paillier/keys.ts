/**
 * Paillier keys with g = n + 1, CRT decryption, and key generation with real sizes by default.
 *
 * @module
 */
import { InvalidCiphertextError, InvalidKeyError, OverflowError } from '../../errors.js';
import { bitLength } from '../../math/bigint.js';
import { gcd, mod, modInv, modPow } from '../../math/modular.js';
import { isProbablePrime, randomPrime } from '../../math/prime.js';
import { PaillierCiphertext } from './ciphertext.js';
import { DjnNoise, type DjnOptions, type NoiseSource } from './noise.js';

/** Smallest modulus accepted without `insecure: true`. */
export const MIN_SECURE_BITS = 2048;
/** Default modulus size (112-bit security per NIST SP 800-57; 3072 gives 128-bit). */
export const DEFAULT_BITS = 2048;

/** Options shared by constructors that may accept small keys. */
export interface InsecureOption {
  /** Accept a modulus below 2048 bits. For tests and for comparing with published small-key figures only. */
  insecure?: boolean;
}

function checkModulusSize(bits: number, options: InsecureOption): void {
  if (bits < MIN_SECURE_BITS && !options.insecure) {
    throw new InvalidKeyError(
      `a ${bits}-bit Paillier modulus is insecure; use 2048 bits or more, or pass the insecure flag for tests`,
    );
  }
}

/** A Paillier public key (n, g = n + 1). Encrypts, and checks that ciphertexts belong to it. */
export class PaillierPublicKey {
  readonly n: bigint;
  readonly nSquared: bigint;
  /** The generator, always n + 1 (so g^m = 1 + m·n mod n²). */
  readonly g: bigint;
  /** python-paillier's max_int = ⌊n/3⌋ − 1: the largest |value| an encoding may hold. */
  readonly maxInt: bigint;
  /** Bit length of n. */
  readonly bits: number;
  private noise: NoiseSource | undefined;
  private readonly djnOptions: DjnOptions;

  /**
   * @throws InvalidKeyError if n is even, too small, or below 2048 bits without `insecure`.
   */
  constructor(n: bigint, options: InsecureOption & { djn?: DjnOptions } = {}) {
    if (typeof n !== 'bigint') throw new TypeError('PaillierPublicKey: n must be a bigint');
    if (n < 15n || (n & 1n) === 0n) throw new InvalidKeyError('Paillier modulus n must be an odd composite');
    this.bits = bitLength(n);
    checkModulusSize(this.bits, options);
    this.n = n;
    this.nSquared = n * n;
    this.g = n + 1n;
    this.maxInt = n / 3n - 1n;
    this.djnOptions = options.djn ?? {};
  }

  /** True when both keys have the same modulus. */
  equals(other: PaillierPublicKey): boolean {
    return this === other || this.n === other.n;
  }

  /**
   * The noise source used by {@link encrypt}: a DJN fixed-base table built on first use (about
   * 0.5 s for 2048 bits), unless one was installed with {@link useNoise}.
   */
  get noiseSource(): NoiseSource {
    this.noise ??= new DjnNoise(this.n, this.nSquared, this.djnOptions);
    return this.noise;
  }

  /** Installs a noise source (a {@link NoisePool}, or {@link ClassicNoise} for textbook encryption). */
  useNoise(source: NoiseSource): void {
    this.noise = source;
  }

  /**
   * Encrypts an integer plaintext. Negative values are taken modulo n (so they decrypt to n − |m|,
   * which {@link PaillierPrivateKey.decryptSigned} maps back).
   *
   * Timing: independent of the plaintext up to BigInt's size-dependent arithmetic on m·n.
   *
   * @throws RangeError if |m| ≥ n.
   */
  encrypt(m: bigint): PaillierCiphertext {
    return new PaillierCiphertext(this, this.encryptRaw(m), true);
  }

  /** The ciphertext integer for m, without wrapping it. @throws RangeError if |m| ≥ n. */
  encryptRaw(m: bigint, noise: bigint = this.noiseSource.next()): bigint {
    if (typeof m !== 'bigint') throw new TypeError('encrypt: plaintext must be a bigint');
    if (m >= this.n || -m >= this.n) throw new RangeError('encrypt: plaintext must satisfy |m| < n');
    const gm = (1n + mod(m, this.n) * this.n) % this.nSquared;
    return (gm * noise) % this.nSquared;
  }

  /**
   * Wraps a received ciphertext integer after checking 0 < c < n². The full membership test
   * gcd(c, n) = 1 costs about 1 ms at 2048 bits; it runs with `checkUnit` (decryption always
   * checks it for free with the factors).
   *
   * @throws InvalidCiphertextError if c is out of range or, with `checkUnit`, not a unit.
   */
  ciphertext(c: bigint, options: { checkUnit?: boolean } = {}): PaillierCiphertext {
    if (typeof c !== 'bigint') throw new TypeError('ciphertext must be a bigint');
    if (c <= 0n || c >= this.nSquared) {
      throw new InvalidCiphertextError('ciphertext is outside Z*_{n²} for this key (wrong key or corrupted value)');
    }
    if (options.checkUnit && gcd(c, this.n) !== 1n) {
      throw new InvalidCiphertextError('ciphertext is not invertible modulo n² (not in Z*_{n²})');
    }
    return new PaillierCiphertext(this, c, false);
  }

  /** JSON-friendly summary (no secrets). */
  toJSON(): { n: string } {
    return { n: this.n.toString() };
  }
}

/** Options of the {@link PaillierPrivateKey} constructor. */
export interface PrivateKeyOptions {
  /** Check every factor with Miller–Rabin (default true; key generation skips it). */
  checkPrimes?: boolean;
}

/** One prime factor x of n with its CRT decryption constants. */
interface PrimeFactor {
  readonly x: bigint;
  readonly xSquared: bigint;
  /** L_x(g^(x−1) mod x²)⁻¹ mod x. */
  readonly h: bigint;
  /** (product of the factors before this one)⁻¹ mod x, for Garner's recombination (0 for the first). */
  readonly garner: bigint;
}

/**
 * A Paillier private key: the prime factors of n (two, or three for faster decryption) with
 * precomputed CRT constants.
 *
 * With three primes of ~683 bits for a 2048-bit n each decryption is three exponentiations modulo
 * 1366-bit squares with 683-bit exponents instead of two modulo 2048-bit squares with 1024-bit
 * exponents: about 2× faster (measured: 6.1 ms vs 12.2 ms). Factoring such an n is as hard as a
 * two-prime one by every known method (the number field sieve does not depend on the factors'
 * sizes; the elliptic-curve method's largest factor found is under 280 bits), which is why RFC 8017
 * allows multi-prime RSA keys; docs/security.md states the assumption. Three-prime keys have no
 * python-paillier JWK form.
 *
 * Timing: decryption time depends on the factors' bit patterns (fixed per key) and on the size of
 * the ciphertext, not on the plaintext.
 */
export class PaillierPrivateKey {
  readonly publicKey: PaillierPublicKey;
  /** The prime factors of n, smallest first (two or three). */
  readonly primes: readonly bigint[];
  /** The smallest prime factor. */
  readonly p: bigint;
  private readonly factors: readonly PrimeFactor[];

  /**
   * From two factors p, q (any order), or from a list of two or three distinct primes.
   *
   * @throws InvalidKeyError if the factors do not multiply to n, repeat, are not probable primes,
   *   are more than three, or share a factor with λ (Paillier needs gcd(n, λ) = 1).
   */
  constructor(publicKey: PaillierPublicKey, p: bigint, q: bigint, options?: PrivateKeyOptions);
  constructor(publicKey: PaillierPublicKey, primes: readonly bigint[], options?: PrivateKeyOptions);
  constructor(publicKey: PaillierPublicKey, a: bigint | readonly bigint[], b?: bigint | PrivateKeyOptions, c?: PrivateKeyOptions) {
    const primes = typeof a === 'bigint' ? [a, b as bigint] : [...a];
    const options = (typeof a === 'bigint' ? c : (b as PrivateKeyOptions | undefined)) ?? {};
    if (primes.some((x) => typeof x !== 'bigint')) throw new TypeError('Paillier factors must be bigints');
    checkFactors(publicKey.n, primes, options.checkPrimes !== false);
    primes.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    this.publicKey = publicKey;
    this.primes = primes;
    this.p = primes[0]!;
    let before = 1n;
    this.factors = primes.map((x) => {
      const xSquared = x * x;
      const factor = { x, xSquared, h: hFunction(x, xSquared, publicKey.g), garner: before === 1n ? 0n : modInv(before % x, x) };
      before *= x;
      return factor;
    });
  }

  /**
   * The larger factor of a two-prime key.
   *
   * @throws InvalidKeyError for a three-prime key (use {@link primes}).
   */
  get q(): bigint {
    if (this.primes.length !== 2) throw new InvalidKeyError(`this key has ${this.primes.length} prime factors; read primes instead of p and q`);
    return this.primes[1]!;
  }

  /**
   * Decrypts to the plaintext in [0, n) by CRT (one exponentiation per prime factor).
   *
   * @throws KeyMismatchError if the ciphertext belongs to another key.
   * @throws InvalidCiphertextError if it is not a unit modulo n².
   */
  decrypt(c: PaillierCiphertext): bigint {
    c.assertKey(this.publicKey);
    return this.decryptRaw(c.value);
  }

  /** {@link decrypt} on a raw ciphertext integer. */
  decryptRaw(c: bigint): bigint {
    // Garner: m = m₀ + x₀·(…) built up one factor at a time.
    let m = 0n;
    let modulus = 1n;
    for (const f of this.factors) {
      const r = this.halfDecrypt(c, f);
      m = modulus === 1n ? r : m + modulus * mod((r - m) * f.garner, f.x);
      modulus *= f.x;
    }
    return m;
  }

  /**
   * Decrypts to a signed value using python-paillier's bands: m ≤ maxInt is positive,
   * m ≥ n − maxInt is negative, anything between is an overflow.
   *
   * @throws OverflowError for a value in the overflow band.
   */
  decryptSigned(c: PaillierCiphertext): bigint {
    const m = this.decrypt(c);
    const { n, maxInt } = this.publicKey;
    if (m <= maxInt) return m;
    if (m >= n - maxInt) return m - n;
    throw new OverflowError('overflow detected in decrypted number (a result exceeded the encodable range)');
  }

  /**
   * Fast path for plaintexts known to satisfy |m| < bound ≤ p/4 (p the smallest factor): one
   * exponentiation modulo p² instead of one per factor. A plaintext outside the bound is detected
   * (an OverflowError) except with probability about bound/p, never silently wrapped.
   *
   * @throws RangeError if bound > p/4; OverflowError if the value is outside the bound.
   */
  decryptBounded(c: PaillierCiphertext, bound: bigint): bigint {
    c.assertKey(this.publicKey);
    if (bound <= 0n || bound > this.p >> 2n) throw new RangeError('decryptBounded: bound must be in (0, p/4]');
    const r = this.halfDecrypt(c.value, this.factors[0]!);
    const m = r > this.p >> 1n ? r - this.p : r;
    if (m >= bound || -m >= bound) {
      throw new OverflowError(`decrypted value exceeds the declared bound of ${bitLength(bound)} bits`);
    }
    return m;
  }

  private halfDecrypt(c: bigint, { x, xSquared, h }: PrimeFactor): bigint {
    if (c <= 0n || c >= this.publicKey.nSquared) {
      throw new InvalidCiphertextError('ciphertext is outside Z*_{n²} for this key (wrong key or corrupted value)');
    }
    const cx = c % xSquared;
    if (cx % x === 0n) throw new InvalidCiphertextError('ciphertext is not invertible modulo n² (not in Z*_{n²})');
    const u = modPow(cx, x - 1n, xSquared);
    return ((u - 1n) / x) * h % x;
  }
}

function checkFactors(n: bigint, primes: readonly bigint[], checkPrimes: boolean): void {
  if (primes.length < 2 || primes.length > 3) throw new InvalidKeyError(`a Paillier key has two or three prime factors, not ${primes.length}`);
  if (new Set(primes).size !== primes.length) throw new InvalidKeyError('Paillier factors must differ');
  if (primes.reduce((a, b) => a * b, 1n) !== n) throw new InvalidKeyError('Paillier factors do not multiply to the public modulus');
  if (checkPrimes && primes.some((x) => !isProbablePrime(x, 2))) throw new InvalidKeyError('Paillier factors are not prime');
  // Primes with 2·min > max always pass; this catches a key where one factor divides another's x − 1.
  if (gcd(n, primes.reduce((a, x) => a * (x - 1n), 1n)) !== 1n) throw new InvalidKeyError('gcd(n, λ) ≠ 1: these factors cannot make a Paillier key');
}

/** python-paillier's h_function: L_x(g^(x−1) mod x²)⁻¹ mod x. */
function hFunction(x: bigint, xSquared: bigint, g: bigint): bigint {
  const l = (modPow(g, x - 1n, xSquared) - 1n) / x;
  return modInv(l, x);
}

/** A matching public and private key. */
export interface PaillierKeyPair {
  publicKey: PaillierPublicKey;
  privateKey: PaillierPrivateKey;
}

/** Options of {@link generateKeyPair}. */
export interface KeyGenOptions extends InsecureOption {
  /** Modulus size in bits; 2048 (default), 3072, or more. Below 2048 needs `insecure`. */
  bits?: number;
  /**
   * Prime factors: 2 (default; python-paillier compatible) or 3 (about 2× faster decryption, see
   * {@link PaillierPrivateKey}; needs at least 2048 bits without `insecure`).
   */
  primes?: 2 | 3;
}

/**
 * Generates a key pair with random primes of (nearly) equal size whose top two bits are set,
 * retried until n has exactly `bits` bits.
 *
 * @throws InvalidKeyError for a size below 2048 bits without `insecure`; RangeError for an odd
 *   or tiny size, or a prime count other than 2 or 3.
 */
export function generateKeyPair(options: KeyGenOptions = {}): PaillierKeyPair {
  const bits = options.bits ?? DEFAULT_BITS;
  const count = options.primes ?? 2;
  if (!Number.isSafeInteger(bits) || bits < 64 || bits % 2 !== 0) {
    throw new RangeError('key size must be an even number of bits, at least 64');
  }
  if (count !== 2 && count !== 3) throw new RangeError('a Paillier key has 2 or 3 prime factors');
  checkModulusSize(bits, options);
  const sizes = Array.from({ length: count }, (_, i) => Math.floor(bits / count) + (i < bits % count ? 1 : 0));
  for (;;) {
    const primes = sizes.map((b) => randomPrime(b));
    if (new Set(primes).size !== count) continue;
    const n = primes.reduce((a, b) => a * b, 1n);
    if (bitLength(n) !== bits) continue;
    if (gcd(n, primes.reduce((a, x) => a * (x - 1n), 1n)) !== 1n) continue;
    const publicKey = new PaillierPublicKey(n, { insecure: options.insecure ?? false });
    const privateKey = new PaillierPrivateKey(publicKey, primes, { checkPrimes: false });
    return { publicKey, privateKey };
  }
}
