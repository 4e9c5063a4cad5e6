/**
 * A CKKS ciphertext tied to its context and key. The wrapper owns one SEAL `CipherText` (WASM
 * memory): call {@link CkksCiphertext.free} when done, or hand it to an operation that consumes it.
 *
 * @module
 */
import { FormatError, InvalidCiphertextError, KeyMismatchError } from '../../errors.js';
import type { CkksContext } from './context.js';
import { EnvelopeKind, checkSealHeader, openEnvelope, sealEnvelope } from './envelope.js';
import { free, type CipherText } from './seal.js';

/** A ciphertext under the key `keyId` for the parameters of `context`. */
export class CkksCiphertext {
  private static live = 0;
  private freed = false;

  /**
   * Wrappers made and not yet freed, in this process. Tests use it to show that failures free
   * everything they allocated (node-seal would only reclaim forgotten ones at garbage collection).
   */
  static get liveCount(): number {
    return CkksCiphertext.live;
  }

  constructor(
    /** The context it belongs to. */
    readonly context: CkksContext,
    /** The id of the key it is encrypted under. */
    readonly keyId: string,
    /** The SEAL object (owned). */
    readonly seal: CipherText,
  ) {
    CkksCiphertext.live++;
  }

  /** Data primes left (a fresh ciphertext has `context.topLevel`). */
  get levelPrimes(): number {
    return this.seal.coeffModulusSize;
  }

  /** The ciphertext's scale. */
  get scale(): number {
    return this.seal.scale;
  }

  /** Serializes into a blindml envelope (SEAL's format inside, uncompressed: ciphertexts barely compress). */
  save(): Uint8Array {
    return sealEnvelope(EnvelopeKind.ciphertext, this.context.fingerprint, this.keyId, this.seal.saveArray(this.context.seal.ComprModeType.none));
  }

  /**
   * Loads a ciphertext and checks its parameters, key, level and scale.
   *
   * @throws FormatError when the bytes are malformed, truncated or tampered so SEAL rejects them.
   * @throws KeyMismatchError for another parameter set or key.
   * @throws InvalidCiphertextError when the level or scale differs from `expect`'s.
   */
  static load(context: CkksContext, keyId: string, bytes: Uint8Array, expect: { levelPrimes?: number; scale?: number } = {}): CkksCiphertext {
    const env = openEnvelope(bytes, { kind: EnvelopeKind.ciphertext, fingerprint: context.fingerprint, keyId });
    checkSealHeader(env.body, 'ciphertext');
    const ct = context.seal.CipherText();
    try {
      ct.loadArray(context.context, env.body);
    } catch (e) {
      free(ct);
      throw new FormatError(`CKKS ciphertext rejected by SEAL (truncated or tampered): ${String(e)}`);
    }
    const wrapped = new CkksCiphertext(context, keyId, ct);
    try {
      wrapped.expect(expect);
    } catch (e) {
      throw e;
    }
    return wrapped;
  }

  /**
   * Checks level and scale.
   *
   * @throws InvalidCiphertextError when either differs (scales compared to 1 part in 2^20).
   */
  expect(expect: { levelPrimes?: number; scale?: number }): void {
    if (this.seal.size !== 2) throw new InvalidCiphertextError(`CKKS ciphertext of size ${this.seal.size} (expected 2: relinearized)`);
    if (expect.levelPrimes !== undefined && this.levelPrimes !== expect.levelPrimes) {
      throw new InvalidCiphertextError(`CKKS ciphertext at level ${this.levelPrimes}, expected ${expect.levelPrimes}`);
    }
    if (expect.scale !== undefined && Math.abs(this.scale / expect.scale - 1) > 2 ** -20) {
      throw new InvalidCiphertextError(`CKKS ciphertext at scale 2^${Math.log2(this.scale).toFixed(2)}, expected 2^${Math.log2(expect.scale).toFixed(2)}`);
    }
  }

  /** Refuses to combine with a ciphertext under another key or context. */
  assertCompatible(other: CkksCiphertext): void {
    if (other.context !== this.context || other.keyId !== this.keyId) throw new KeyMismatchError('CKKS ciphertexts under different keys or parameters');
  }

  /** Frees the WASM memory (idempotent). */
  free(): void {
    if (!this.freed) {
      this.freed = true;
      CkksCiphertext.live--;
    }
    free(this.seal);
  }
}
