/**
 * CKKS keys. The client's {@link CkksKeyring} holds the secret key and never serializes it; it
 * exports a public bundle (public key, optionally relinearization keys and Galois keys for the
 * rotation steps the service asked for). The service's {@link CkksServiceKeys} loads that bundle:
 * it can encrypt (fresh zeros for re-randomization), relinearize and rotate, never decrypt.
 *
 * @module
 */
import { FormatError, KeyMismatchError } from '../../errors.js';
import { CkksCiphertext } from './ciphertext.js';
import type { CkksContext } from './context.js';
import { EnvelopeKind, KEY_ID_BYTES, checkSealHeader, keyIdHex, openEnvelope, sealEnvelope } from './envelope.js';
import { free, type Decryptor, type Encryptor, type GaloisKeys, type PublicKey, type RelinKeys, type SecretKey } from './seal.js';

/** What the public bundle should contain beyond the public key. */
export interface PublicBundleOptions {
  /** Include relinearization keys (needed for ciphertext × ciphertext products). */
  readonly relin?: boolean;
  /** Rotation steps the service needs Galois keys for (positive = left rotation). */
  readonly galoisSteps?: readonly number[];
}

/** The serialized public bundle: each part in its own envelope. */
export interface PublicBundle {
  readonly publicKey: Uint8Array;
  readonly relinKeys?: Uint8Array;
  readonly galoisKeys?: Uint8Array;
}

function encryptValues(context: CkksContext, encryptor: Encryptor, keyId: string, values: ArrayLike<number>, scale: number): CkksCiphertext {
  const plain = context.encode(values, scale);
  try {
    const ct = encryptor.encrypt(plain);
    if (ct === undefined) throw new Error('SEAL encrypt returned nothing');
    return new CkksCiphertext(context, keyId, ct);
  } finally {
    free(plain);
  }
}

/** The client's keys. Call {@link dispose} when done. */
export class CkksKeyring {
  private constructor(
    readonly context: CkksContext,
    /** Random id carried by every ciphertext and key made from this keyring. */
    readonly keyId: string,
    private readonly secretKey: SecretKey,
    private readonly publicKey: PublicKey,
    private readonly keyGenerator: ReturnType<CkksContext['seal']['KeyGenerator']>,
    private readonly encryptor: Encryptor,
    private readonly decryptor: Decryptor,
  ) {}

  /** Generates a fresh key pair (SEAL's generator, seeded from the platform CSPRNG). */
  static generate(context: CkksContext): CkksKeyring {
    const seal = context.seal;
    const kg = seal.KeyGenerator(context.context);
    const sk = kg.secretKey();
    const pk = kg.createPublicKey();
    const id = keyIdHex(globalThis.crypto.getRandomValues(new Uint8Array(KEY_ID_BYTES)));
    // With the secret key too, the encryptor can also make seeded symmetric ciphertexts (encryptSeeded).
    return new CkksKeyring(context, id, sk, pk, kg, seal.Encryptor(context.context, pk, sk), seal.Decryptor(context.context, sk));
  }

  /** Encrypts up to `context.slots` real values at `scale` (default the context's). */
  encrypt(values: ArrayLike<number>, scale: number = this.context.scale): CkksCiphertext {
    return encryptValues(this.context, this.encryptor, this.keyId, values, scale);
  }

  /**
   * Encrypts with the secret key and serializes at once, in SEAL's seeded form: the second half of
   * the ciphertext is replaced by the seed it was drawn from, so the bytes are half the size of
   * {@link encrypt}'s, and the noise is only the fresh error (no public-key term: about 2^10 times
   * smaller). Whoever loads it ({@link CkksCiphertext.load}) gets an ordinary ciphertext. Only the
   * key holder can make these; the service cannot.
   *
   * @returns a ciphertext envelope.
   */
  encryptSeeded(values: ArrayLike<number>, scale: number = this.context.scale): Uint8Array {
    const plain = this.context.encode(values, scale);
    try {
      const serializable = this.encryptor.encryptSymmetricSerializable(plain);
      try {
        const body = serializable.saveArray(this.context.seal.ComprModeType.none);
        return sealEnvelope(EnvelopeKind.ciphertext, this.context.fingerprint, this.keyId, body);
      } finally {
        free(serializable);
      }
    } finally {
      free(plain);
    }
  }

  /**
   * Decrypts and decodes all slots (real parts). CKKS is approximate: each value carries noise of
   * roughly 2^-(scaleBits − 20) relative to 1. The decryption reveals that noise, which depends on
   * the computation: never hand decrypted values back to whoever computed on the ciphertext
   * (Li–Micciancio); re-encrypt instead.
   *
   * @throws KeyMismatchError when the ciphertext is under another key.
   */
  decrypt(ct: CkksCiphertext): Float64Array {
    if (ct.keyId !== this.keyId || ct.context !== this.context) throw new KeyMismatchError('CKKS ciphertext under another key');
    const plain = this.decryptor.decrypt(ct.seal);
    if (plain === undefined) throw new Error('SEAL decrypt returned nothing');
    try {
      const out = this.context.encoder.decode(plain);
      return Float64Array.from(out as ArrayLike<number>);
    } finally {
      free(plain);
    }
  }

  /** Serializes the public bundle for the service. The secret key never leaves. */
  exportPublic(options: PublicBundleOptions = {}): PublicBundle {
    const { fingerprint } = this.context;
    const none = this.context.seal.ComprModeType.none;
    const zstd = this.context.seal.ComprModeType.zstd;
    const bundle: { publicKey: Uint8Array; relinKeys?: Uint8Array; galoisKeys?: Uint8Array } = {
      publicKey: sealEnvelope(EnvelopeKind.publicKey, fingerprint, this.keyId, this.publicKey.saveArray(none)),
    };
    if (options.relin) {
      // Serializable (seeded) keys are half the size of materialized ones.
      const rk = this.keyGenerator.createRelinKeysSerializable();
      try {
        bundle.relinKeys = sealEnvelope(EnvelopeKind.relinKeys, fingerprint, this.keyId, rk.saveArray(zstd));
      } finally {
        free(rk);
      }
    }
    if (options.galoisSteps && options.galoisSteps.length > 0) {
      const steps = [...new Set(options.galoisSteps.map((s) => normalizeStep(s, this.context.slots)))].filter((s) => s !== 0);
      const gk = this.keyGenerator.createGaloisKeysSerializable(Int32Array.from(steps));
      try {
        bundle.galoisKeys = sealEnvelope(EnvelopeKind.galoisKeys, fingerprint, this.keyId, gk.saveArray(zstd));
      } finally {
        free(gk);
      }
    }
    return bundle;
  }

  /** Frees the WASM objects (idempotent). */
  dispose(): void {
    free(this.encryptor, this.decryptor, this.publicKey, this.secretKey, this.keyGenerator);
  }
}

/** Maps a rotation step into SEAL's accepted range (−slots/2, slots/2]. */
export function normalizeStep(step: number, slots: number): number {
  const s = ((step % slots) + slots) % slots;
  return s > slots / 2 ? s - slots : s;
}

function loadPart<T extends { loadArray(ctx: unknown, a: Uint8Array): void; delete(): void }>(
  make: () => T,
  context: CkksContext,
  bytes: Uint8Array,
  kind: (typeof EnvelopeKind)[keyof typeof EnvelopeKind],
  keyId: string | undefined,
  what: string,
): { object: T; keyId: string } {
  const env = openEnvelope(bytes, { kind, fingerprint: context.fingerprint, ...(keyId !== undefined ? { keyId } : {}) });
  checkSealHeader(env.body, what);
  const object = make();
  try {
    object.loadArray(context.context, env.body);
  } catch (e) {
    free(object);
    throw new FormatError(`CKKS ${what} rejected by SEAL (truncated or tampered): ${String(e)}`);
  }
  return { object, keyId: env.keyId };
}

/** The service's view of a client's keys: encrypt, relinearize, rotate; no decryption. */
export class CkksServiceKeys {
  private constructor(
    readonly context: CkksContext,
    readonly keyId: string,
    private readonly publicKey: PublicKey,
    private readonly encryptor: Encryptor,
    /** Relinearization keys, when the bundle had them. */
    readonly relinKeys: RelinKeys | undefined,
    /** Galois keys, when the bundle had them. */
    readonly galoisKeys: GaloisKeys | undefined,
  ) {}

  /**
   * Loads a client's public bundle.
   *
   * @throws FormatError for malformed, truncated or tampered parts.
   * @throws KeyMismatchError when the parts are for other parameters or from different keyrings.
   */
  static load(context: CkksContext, bundle: PublicBundle): CkksServiceKeys {
    const seal = context.seal;
    const loaded: Array<{ delete(): void }> = [];
    try {
      const pk = loadPart(() => seal.PublicKey(), context, bundle.publicKey, EnvelopeKind.publicKey, undefined, 'public key');
      loaded.push(pk.object);
      const rk = bundle.relinKeys ? loadPart(() => seal.RelinKeys(), context, bundle.relinKeys, EnvelopeKind.relinKeys, pk.keyId, 'relinearization keys') : undefined;
      if (rk) loaded.push(rk.object);
      const gk = bundle.galoisKeys ? loadPart(() => seal.GaloisKeys(), context, bundle.galoisKeys, EnvelopeKind.galoisKeys, pk.keyId, 'Galois keys') : undefined;
      if (gk) loaded.push(gk.object);
      const encryptor = seal.Encryptor(context.context, pk.object);
      return new CkksServiceKeys(context, pk.keyId, pk.object, encryptor, rk?.object, gk?.object);
    } catch (e) {
      free(...loaded);
      throw e;
    }
  }

  /** Encrypts under the client's public key (for example fresh zeros that re-randomize a result). */
  encrypt(values: ArrayLike<number>, scale: number = this.context.scale): CkksCiphertext {
    return encryptValues(this.context, this.encryptor, this.keyId, values, scale);
  }

  /** Whether a Galois key exists for this rotation step. */
  canRotate(step: number): boolean {
    const s = normalizeStep(step, this.context.slots);
    if (s === 0) return true;
    if (!this.galoisKeys) return false;
    const n = this.context.params.polyModulusDegree;
    // SEAL's Galois element for a left rotation by s is 3^s mod 2N (5 in the paper's notation; SEAL uses 3).
    const elt = galoisElement(s, n);
    return this.galoisKeys.hasKey(elt);
  }

  /** Frees the WASM objects (idempotent). */
  dispose(): void {
    free(this.encryptor, this.publicKey, this.relinKeys, this.galoisKeys);
  }
}

/** SEAL's Galois element for a left rotation by `step` slots in a ring of degree `n`. */
export function galoisElement(step: number, n: number): number {
  const m = 2 * n;
  const slots = n / 2;
  let e = ((step % slots) + slots) % slots;
  // 3^e mod 2N by squaring: every intermediate is below (2N)² ≤ 2^32, exact in a double.
  let g = 1;
  let base = 3 % m;
  while (e > 0) {
    if (e & 1) g = (g * base) % m;
    base = (base * base) % m;
    e >>= 1;
  }
  return g;
}
