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
    checkCiphertextData(context, env.body);
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
      wrapped.free();
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

// Offsets in SEAL 4's uncompressed Ciphertext serialization (after the 16-byte SEAL header):
// parms_id (32), is_ntt_form (1), size (8), poly_modulus_degree (8), coeff_modulus_size (8),
// scale (8), correction_factor (8), then the coefficients as a DynArray (16-byte header, count (8), data).
const AT_SIZE = 49;
const AT_DEGREE = 57;
const AT_PRIMES = 65;
const AT_COUNT = 105;
const AT_DATA = 113;
/** A seeded ciphertext's trailing seed object: SEAL header (16), generator type (1), seed (64). */
const SEED_BYTES = 81;

/**
 * Checks a serialized ciphertext's shape and that every coefficient is below its prime, before
 * SEAL parses it: SEAL rejects such data too, but its WebAssembly build leaks the buffer it read
 * into on that path, which a peer could use to exhaust the service's memory.
 *
 * @throws FormatError naming the first problem.
 */
function checkCiphertextData(context: CkksContext, body: Uint8Array): void {
  if (body[5] !== 0) throw new FormatError('CKKS ciphertext: compressed ciphertexts are not accepted');
  if (body.length < AT_DATA) throw new FormatError('CKKS ciphertext: truncated');
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const size = Number(view.getBigUint64(AT_SIZE, true));
  const degree = Number(view.getBigUint64(AT_DEGREE, true));
  const primes = Number(view.getBigUint64(AT_PRIMES, true));
  const count = view.getBigUint64(AT_COUNT, true);
  const n = context.params.polyModulusDegree;
  if (size !== 2) throw new FormatError(`CKKS ciphertext of size ${size} (expected 2)`);
  if (degree !== n) throw new FormatError(`CKKS ciphertext of degree ${degree}, expected ${n}`);
  if (primes < 1 || primes > context.dataPrimes.length) throw new FormatError(`CKKS ciphertext with ${primes} primes`);
  // Seeded form (CkksKeyring.encryptSeeded): only c0 is stored, then the seed of c1 as a small
  // SEAL object (16-byte SEAL header, then the generator type and the 64-byte seed).
  const seedAt = AT_DATA + 8 * n * primes;
  const seeded =
    count === BigInt(n * primes) && body.length === seedAt + SEED_BYTES &&
    view.getUint16(seedAt, true) === 0xa15e && view.getBigUint64(seedAt + 8, true) === BigInt(SEED_BYTES);
  if (!seeded && (count !== BigInt(size * n * primes) || body.length !== AT_DATA + 8 * size * n * primes)) {
    throw new FormatError('CKKS ciphertext: coefficient count does not match its shape');
  }
  for (let j = 0; j < primes; j++) {
    const q = context.dataPrimes[j]!;
    const qHi = Number(q >> 32n);
    const qLo = Number(q & 0xffffffffn);
    for (let poly = 0; poly < (seeded ? 1 : size); poly++) {
      const base = AT_DATA + 8 * (poly * primes * n + j * n);
      for (let i = 0; i < n; i++) {
        const hi = view.getUint32(base + 8 * i + 4, true);
        if (hi > qHi || (hi === qHi && view.getUint32(base + 8 * i, true) >= qLo)) {
          throw new FormatError('CKKS ciphertext data is invalid (a coefficient is not below its prime)');
        }
      }
    }
  }
}
