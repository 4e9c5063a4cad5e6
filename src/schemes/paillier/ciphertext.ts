/**
 * A Paillier ciphertext bound to its public key, with the homomorphic operations. Operations on
 * ciphertexts of different keys throw instead of producing garbage.
 *
 * Results of homomorphic operations are deterministic functions of their inputs, so they reveal
 * relations between ciphertexts to anyone who saw the inputs; {@link PaillierCiphertext.obfuscate}
 * re-randomizes a ciphertext just before it leaves the process (python-paillier's rule), and
 * `isObfuscated` tells whether that is still needed.
 *
 * Timing: multiplying by a plaintext takes time that depends on the plaintext's size and sign
 * (a negative factor costs one modular inversion). The plaintext factors are the evaluating
 * party's own values (model weights), never the encrypted data.
 *
 * @module
 */
import { KeyMismatchError } from '../../errors.js';
import { modInv, modPow } from '../../math/modular.js';
import type { PaillierPublicKey } from './keys.js';

export class PaillierCiphertext {
  /**
   * @param publicKey - the key this ciphertext was made under.
   * @param value - the ciphertext integer in Z*_{n²}; not re-validated here (use
   *   `publicKey.ciphertext(c)` for values from outside).
   * @param isObfuscated - whether `value` already carries fresh randomness nobody else has seen.
   */
  constructor(
    readonly publicKey: PaillierPublicKey,
    readonly value: bigint,
    readonly isObfuscated = false,
  ) {}

  /** @throws KeyMismatchError unless this ciphertext was made under `key`. */
  assertKey(key: PaillierPublicKey): void {
    if (!this.publicKey.equals(key)) {
      throw new KeyMismatchError('the ciphertext was encrypted under a different Paillier key');
    }
  }

  private sameKey(other: PaillierCiphertext): void {
    if (!(other instanceof PaillierCiphertext)) throw new TypeError('expected a PaillierCiphertext');
    other.assertKey(this.publicKey);
  }

  private derive(value: bigint): PaillierCiphertext {
    return new PaillierCiphertext(this.publicKey, value, false);
  }

  /** Enc(a + b). @throws KeyMismatchError for ciphertexts under different keys. */
  add(other: PaillierCiphertext): PaillierCiphertext {
    this.sameKey(other);
    return this.derive((this.value * other.value) % this.publicKey.nSquared);
  }

  /** Enc(a − b). Costs one modular inversion. @throws KeyMismatchError. */
  sub(other: PaillierCiphertext): PaillierCiphertext {
    this.sameKey(other);
    const { nSquared } = this.publicKey;
    return this.derive((this.value * modInv(other.value, nSquared)) % nSquared);
  }

  /** Enc(−a). Costs one modular inversion. */
  neg(): PaillierCiphertext {
    return this.derive(modInv(this.value, this.publicKey.nSquared));
  }

  /** Enc(a + k) for a plaintext integer k with |k| < n. @throws RangeError otherwise. */
  addPlain(k: bigint): PaillierCiphertext {
    const { n, nSquared } = this.publicKey;
    if (typeof k !== 'bigint') throw new TypeError('addPlain: k must be a bigint');
    if (k >= n || -k >= n) throw new RangeError('addPlain: |k| must be below n');
    const gk = 1n + (((k % n) + n) % n) * n;
    return this.derive((this.value * gk) % nSquared);
  }

  /**
   * Enc(a · k) for a signed plaintext integer k with |k| < n. A negative k costs one inversion.
   * @throws RangeError if |k| ≥ n.
   */
  mulPlain(k: bigint): PaillierCiphertext {
    const { n, nSquared } = this.publicKey;
    if (typeof k !== 'bigint') throw new TypeError('mulPlain: k must be a bigint');
    if (k >= n || -k >= n) throw new RangeError('mulPlain: |k| must be below n');
    if (k >= 0n) return this.derive(modPow(this.value, k, nSquared));
    return this.derive(modPow(modInv(this.value, nSquared), -k, nSquared));
  }

  /** The same plaintext under fresh randomness from the key's noise source (or `noise`). */
  obfuscate(noise: bigint = this.publicKey.noiseSource.next()): PaillierCiphertext {
    return new PaillierCiphertext(this.publicKey, (this.value * noise) % this.publicKey.nSquared, true);
  }

  /** This ciphertext if already obfuscated, else an obfuscated copy: call before sending. */
  secure(): PaillierCiphertext {
    return this.isObfuscated ? this : this.obfuscate();
  }
}
