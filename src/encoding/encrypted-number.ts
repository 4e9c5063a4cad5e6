/**
 * python-paillier's EncryptedNumber: a Paillier ciphertext of an {@link EncodedNumber} mantissa,
 * with its exponent in the clear. Arithmetic follows python-paillier exactly (exponents aligned
 * by lowering the larger one; a plaintext factor's own exponent is added), so results and files
 * agree with it.
 *
 * @module
 */
import { KeyMismatchError } from '../errors.js';
import { PaillierCiphertext } from '../schemes/paillier/ciphertext.js';
import type { PaillierPrivateKey, PaillierPublicKey } from '../schemes/paillier/keys.js';
import { encryptedNumberFromJson, encryptedNumberToJson, type EncryptedNumberJson } from '../schemes/paillier/jwk.js';
import { BASE, EncodedNumber, type EncodeOptions } from './encoded-number.js';

/** A plaintext operand: a number (float semantics), a bigint (int semantics) or an encoding. */
export type PlainOperand = number | bigint | EncodedNumber;

export class EncryptedNumber {
  constructor(
    readonly ciphertext: PaillierCiphertext,
    readonly exponent: number,
  ) {}

  get publicKey(): PaillierPublicKey {
    return this.ciphertext.publicKey;
  }

  /**
   * Encodes and encrypts.
   *
   * @throws EncodingError for non-finite input; OverflowError beyond max_int.
   */
  static encrypt(publicKey: PaillierPublicKey, scalar: PlainOperand, options: EncodeOptions = {}): EncryptedNumber {
    const encoded = scalar instanceof EncodedNumber ? scalar : EncodedNumber.encode(publicKey, scalar, options);
    encoded.assertKey(publicKey);
    return new EncryptedNumber(publicKey.encrypt(encoded.encoding), encoded.exponent);
  }

  /**
   * Reads pheutil's `{"v": "...", "e": ...}` for a given key.
   *
   * @throws FormatError for malformed JSON; InvalidCiphertextError for a value outside Z*_{n²}.
   */
  static fromJSON(publicKey: PaillierPublicKey, json: unknown): EncryptedNumber {
    const { ciphertext, exponent } = encryptedNumberFromJson(json);
    return new EncryptedNumber(publicKey.ciphertext(ciphertext), exponent);
  }

  /** pheutil's JSON form, obfuscating first if this ciphertext has not been (it is leaving). */
  toJSON(): EncryptedNumberJson {
    return encryptedNumberToJson(this.ciphertext.secure().value, this.exponent);
  }

  /** E(a + b). @throws KeyMismatchError; OverflowError if the plaintext cannot be encoded. */
  add(other: EncryptedNumber | PlainOperand): EncryptedNumber {
    if (other instanceof EncryptedNumber) {
      if (!other.publicKey.equals(this.publicKey)) throw new KeyMismatchError('attempted to add numbers encrypted under different Paillier keys');
      const [a, b] = alignExponents(this, other);
      return new EncryptedNumber(a.ciphertext.add(b.ciphertext), a.exponent);
    }
    const encoded =
      other instanceof EncodedNumber ? other : EncodedNumber.encode(this.publicKey, other, { maxExponent: this.exponent });
    encoded.assertKey(this.publicKey);
    let a: EncryptedNumber = this;
    let b = encoded;
    if (a.exponent > b.exponent) a = a.decreaseExponentTo(b.exponent);
    else if (a.exponent < b.exponent) b = b.decreaseExponentTo(a.exponent);
    return new EncryptedNumber(a.ciphertext.addPlain(b.encoding), a.exponent);
  }

  /** E(a − b). */
  sub(other: EncryptedNumber | PlainOperand): EncryptedNumber {
    if (other instanceof EncryptedNumber) return this.add(other.mul(-1n));
    if (other instanceof EncodedNumber) return this.add(new EncodedNumber(other.publicKey, (other.publicKey.n - other.encoding) % other.publicKey.n, other.exponent));
    return this.add(-other);
  }

  /** E(a · k) for a plaintext k; the result's exponent is the sum of both. */
  mul(k: PlainOperand): EncryptedNumber {
    const encoded = k instanceof EncodedNumber ? k : EncodedNumber.encode(this.publicKey, k);
    encoded.assertKey(this.publicKey);
    const { n, maxInt } = this.publicKey;
    const signed = encoded.encoding >= n - maxInt ? encoded.encoding - n : encoded.encoding;
    return new EncryptedNumber(this.ciphertext.mulPlain(signed), this.exponent + encoded.exponent);
  }

  /**
   * The same value at a lower exponent.
   *
   * @throws RangeError if newExp is above the current one; OverflowError if 16^(difference)
   *   exceeds max_int (python-paillier refuses the same).
   */
  decreaseExponentTo(newExp: number): EncryptedNumber {
    if (newExp > this.exponent) {
      throw new RangeError(`new exponent ${newExp} should be more negative than old exponent ${this.exponent}`);
    }
    // python-paillier multiplies by the integer 16^(exponent − newExp), which must itself encode.
    const product = this.mul(BigInt(BASE) ** BigInt(this.exponent - newExp));
    return new EncryptedNumber(product.ciphertext, newExp);
  }

  /** Re-randomized copy. */
  obfuscate(): EncryptedNumber {
    return new EncryptedNumber(this.ciphertext.obfuscate(), this.exponent);
  }
}

function alignExponents(a: EncryptedNumber, b: EncryptedNumber): [EncryptedNumber, EncryptedNumber] {
  if (a.exponent > b.exponent) return [a.decreaseExponentTo(b.exponent), b];
  if (a.exponent < b.exponent) return [a, b.decreaseExponentTo(a.exponent)];
  return [a, b];
}

/**
 * Decrypts to the encoding (mantissa mod n and exponent).
 *
 * @throws KeyMismatchError; InvalidCiphertextError.
 */
export function decryptEncoded(privateKey: PaillierPrivateKey, x: EncryptedNumber): EncodedNumber {
  return new EncodedNumber(privateKey.publicKey, privateKey.decrypt(x.ciphertext), x.exponent);
}

/**
 * Decrypts and decodes to a double.
 *
 * @throws OverflowError if the result overflowed; KeyMismatchError; InvalidCiphertextError.
 */
export function decryptNumber(privateKey: PaillierPrivateKey, x: EncryptedNumber): number {
  return decryptEncoded(privateKey, x).decode();
}
