/**
 * A CKKS context: one parameter set with its SEAL context, encoder and evaluator. Both parties
 * build one from the same {@link CkksParameters}; keys and ciphertexts remember the parameter
 * fingerprint and refuse to mix with another context's.
 *
 * @module
 */
import { FormatError, InvalidKeyError } from '../../errors.js';
import { checkParameters, parameterFingerprint, type CkksParameters } from './params.js';
import { free, loadSeal, type CKKSEncoder, type Context, type Evaluator, type PlainText, type SEALLibrary } from './seal.js';

/** Options for {@link CkksContext.create}. */
export interface ContextOptions {
  /** Allow a coefficient modulus beyond the 128-bit bound (tests only). */
  readonly insecure?: boolean;
}

/** One CKKS parameter set, ready to encode and evaluate. Call {@link dispose} when done. */
export class CkksContext {
  /** The parameter fingerprint written into every serialized object. */
  readonly fingerprint: string;
  /** The data primes of a fresh ciphertext, in SEAL's order. */
  readonly dataPrimes: readonly bigint[];
  private disposed = false;

  private constructor(
    /** The loaded SEAL library. */
    readonly seal: SEALLibrary,
    /** The parameters this context was built from. */
    readonly params: CkksParameters,
    /** SEAL's context. */
    readonly context: Context,
    /** SEAL's CKKS encoder. */
    readonly encoder: CKKSEncoder,
    /** SEAL's evaluator. */
    readonly evaluator: Evaluator,
  ) {
    this.fingerprint = parameterFingerprint(params);
    this.dataPrimes = Array.from(context.firstContextData.parms.coeffModulus as ArrayLike<bigint>);
  }

  /**
   * Builds the context.
   *
   * @throws InvalidKeyError when the parameters are malformed, below 128-bit security without
   *   `insecure`, or rejected by SEAL.
   */
  static async create(params: CkksParameters, options: ContextOptions = {}): Promise<CkksContext> {
    checkParameters(params, options.insecure);
    const seal = await loadSeal();
    const parms = seal.EncryptionParameters(seal.SchemeType.ckks);
    const n = params.polyModulusDegree;
    let context: Context | undefined;
    try {
      parms.setPolyModulusDegree(n);
      parms.setCoeffModulus(seal.CoeffModulus.Create(n, Int32Array.from(params.coeffModulusBits)));
      context = seal.Context(parms, true, options.insecure ? seal.SecurityLevel.none : seal.SecurityLevel.tc128);
      if (!context.parametersSet()) throw new InvalidKeyError(`SEAL rejected the CKKS parameters ${parameterFingerprint(params)}`);
      return new CkksContext(seal, params, context, seal.CKKSEncoder(context), seal.Evaluator(context));
    } catch (e) {
      free(context);
      if (e instanceof InvalidKeyError) throw e;
      throw new InvalidKeyError(`SEAL rejected the CKKS parameters ${parameterFingerprint(params)}: ${String(e)}`);
    } finally {
      free(parms);
    }
  }

  /** Number of real values one ciphertext holds (N/2). */
  get slots(): number {
    return this.params.polyModulusDegree / 2;
  }

  /** The default scale, 2^scaleBits. */
  get scale(): number {
    return 2 ** this.params.scaleBits;
  }

  /** Number of data primes (levels) of a fresh ciphertext. */
  get topLevel(): number {
    return this.params.coeffModulusBits.length - 1;
  }

  /**
   * Encodes real values (zero-padded to {@link slots}) as a plaintext at `scale`, at the level of a
   * ciphertext with `levelPrimes` data primes (default: fresh). The caller frees the result.
   *
   * @throws RangeError when there are more values than slots.
   */
  encode(values: ArrayLike<number>, scale: number = this.scale, levelPrimes: number = this.topLevel): PlainText {
    if (values.length > this.slots) throw new RangeError(`${values.length} values do not fit ${this.slots} slots`);
    const padded = new Float64Array(this.slots);
    padded.set(values as ArrayLike<number>);
    const plain = this.encoder.encode(padded, scale);
    if (plain === undefined) throw new Error('SEAL encode returned nothing');
    this.switchPlain(plain, levelPrimes);
    return plain;
  }

  /**
   * Serializes a plaintext in SEAL's own format, uncompressed (about 128 KiB at N = 8192 with two
   * data primes), for another context of the same parameters — a worker thread, or later use.
   * Loading one costs about 0.03 ms against 0.6 ms to encode it again.
   */
  savePlain(plain: PlainText): Uint8Array {
    return plain.saveArray(this.seal.ComprModeType.none);
  }

  /**
   * Loads what {@link savePlain} wrote. The caller frees the result.
   *
   * @throws FormatError when SEAL rejects the bytes (truncated, tampered, other parameters).
   */
  loadPlain(bytes: Uint8Array): PlainText {
    const plain = this.seal.PlainText();
    try {
      plain.loadArray(this.context, bytes);
      return plain;
    } catch (e) {
      free(plain);
      throw new FormatError(`CKKS plaintext rejected by SEAL: ${String(e)}`);
    }
  }

  /** Moves a plaintext down to the level with `levelPrimes` data primes. */
  switchPlain(plain: PlainText, levelPrimes: number): void {
    for (let l = this.topLevel; l > levelPrimes; l--) this.evaluator.plainModSwitchToNext(plain, plain);
  }

  /** Frees the SEAL objects (idempotent). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    free(this.evaluator, this.encoder, this.context);
  }
}
