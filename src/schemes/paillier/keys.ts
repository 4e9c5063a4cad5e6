/**
 * Paillier keys with g = n + 1, CRT decryption, and key generation with real sizes by default.
 *
 * @module
 */
import { InvalidCiphertextError, InvalidKeyError, OverflowError } from '../../errors.js';
import { bitLength } from '../../math/bigint.js';
import { crt2, gcd, mod, modInv, modPow } from '../../math/modular.js';
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

/**
 * A Paillier private key (the factors p < q) with precomputed CRT constants.
 *
 * Timing: decryption time depends on the factors' bit patterns (fixed per key) and on the size of
 * the ciphertext, not on the plaintext.
 */
export class PaillierPrivateKey {
  readonly publicKey: PaillierPublicKey;
  readonly p: bigint;
  readonly q: bigint;
  private readonly pSquared: bigint;
  private readonly qSquared: bigint;
  private readonly hp: bigint;
  private readonly hq: bigint;
  private readonly pInvModQ: bigint;

  /**
   * @throws InvalidKeyError if p·q ≠ n, p = q, or either factor is not a probable prime.
   */
  constructor(publicKey: PaillierPublicKey, p: bigint, q: bigint, options: { checkPrimes?: boolean } = {}) {
    if (typeof p !== 'bigint' || typeof q !== 'bigint') throw new TypeError('Paillier factors must be bigints');
    if (p === q) throw new InvalidKeyError('Paillier factors p and q must differ');
    if (p * q !== publicKey.n) throw new InvalidKeyError('Paillier factors do not multiply to the public modulus');
    if (q < p) [p, q] = [q, p];
    if (options.checkPrimes !== false && (!isProbablePrime(p, 2) || !isProbablePrime(q, 2))) {
      throw new InvalidKeyError('Paillier factors are not prime');
    }
    this.publicKey = publicKey;
    this.p = p;
    this.q = q;
    this.pSquared = p * p;
    this.qSquared = q * q;
    this.hp = hFunction(p, this.pSquared, publicKey.g);
    this.hq = hFunction(q, this.qSquared, publicKey.g);
    this.pInvModQ = modInv(p, q);
  }

  /**
   * Decrypts to the plaintext in [0, n) by CRT (two half-size exponentiations).
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
    const mp = this.decryptModP(c);
    const mq = this.halfDecrypt(c, this.q, this.qSquared, this.hq);
    return crt2(mp, mq, this.p, this.q, this.pInvModQ);
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
   * Fast path for plaintexts known to satisfy |m| < bound ≤ p/4: one half-size exponentiation
   * instead of two. A plaintext outside the bound is detected (an OverflowError) except with
   * probability about bound/p, never silently wrapped.
   *
   * @throws RangeError if bound > p/4; OverflowError if the value is outside the bound.
   */
  decryptBounded(c: PaillierCiphertext, bound: bigint): bigint {
    c.assertKey(this.publicKey);
    if (bound <= 0n || bound > this.p >> 2n) throw new RangeError('decryptBounded: bound must be in (0, p/4]');
    const r = this.decryptModP(c.value);
    const m = r > this.p >> 1n ? r - this.p : r;
    if (m >= bound || -m >= bound) {
      throw new OverflowError(`decrypted value exceeds the declared bound of ${bitLength(bound)} bits`);
    }
    return m;
  }

  private decryptModP(c: bigint): bigint {
    return this.halfDecrypt(c, this.p, this.pSquared, this.hp);
  }

  private halfDecrypt(c: bigint, x: bigint, xSquared: bigint, hx: bigint): bigint {
    if (c <= 0n || c >= this.publicKey.nSquared) {
      throw new InvalidCiphertextError('ciphertext is outside Z*_{n²} for this key (wrong key or corrupted value)');
    }
    const cx = c % xSquared;
    if (cx % x === 0n) throw new InvalidCiphertextError('ciphertext is not invertible modulo n² (not in Z*_{n²})');
    const u = modPow(cx, x - 1n, xSquared);
    return ((u - 1n) / x) * hx % x;
  }
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
}

/**
 * Generates a key pair with two random primes whose top two bits are set, so n has exactly `bits`
 * bits.
 *
 * @throws InvalidKeyError for a size below 2048 bits without `insecure`; RangeError for an odd
 *   or tiny size.
 */
export function generateKeyPair(options: KeyGenOptions = {}): PaillierKeyPair {
  const bits = options.bits ?? DEFAULT_BITS;
  if (!Number.isSafeInteger(bits) || bits < 64 || bits % 2 !== 0) {
    throw new RangeError('key size must be an even number of bits, at least 64');
  }
  checkModulusSize(bits, options);
  for (;;) {
    const p = randomPrime(bits / 2);
    const q = randomPrime(bits / 2);
    if (p === q) continue;
    const n = p * q;
    if (bitLength(n) !== bits) continue;
    const publicKey = new PaillierPublicKey(n, { insecure: options.insecure ?? false });
    const privateKey = new PaillierPrivateKey(publicKey, p, q, { checkPrimes: false });
    return { publicKey, privateKey };
  }
}
