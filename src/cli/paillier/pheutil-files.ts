/**
 * Loading and writing the files `pheutil` reads and writes (JWK keys, `{"v", "e"}` encrypted
 * numbers), with the checks pheutil leaves out: key size, ciphertext range and invertibility,
 * exponent sanity, and a key fingerprint.
 *
 * The fingerprint: blindml adds `"key_sha256"` (SHA-256 of the big-endian bytes of n, in hex) to
 * the encrypted numbers it writes. pheutil reads only "v" and "e", so the files stay
 * interchangeable; blindml refuses a file whose fingerprint names another key. Without it (files
 * from pheutil) nothing in a Paillier ciphertext tells which key made it: a ciphertext under
 * another key is caught by the range check, or at decryption by the overflow band and the double
 * range, except with a probability that is negligible at 2048 bits but not at small test keys.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { FormatError, InvalidCiphertextError, InvalidKeyError, KeyMismatchError, OverflowError, BlindmlError } from '../../errors.js';
import { bigIntToBytes } from '../../math/bigint.js';
import { EncodedNumber } from '../../encoding/encoded-number.js';
import { EncryptedNumber } from '../../encoding/encrypted-number.js';
import { ClassicNoise } from '../../schemes/paillier/noise.js';
import { MIN_SECURE_BITS, type PaillierPrivateKey, type PaillierPublicKey } from '../../schemes/paillier/keys.js';
import { encryptedNumberFromJson, parseJson, privateKeyFromJwk, publicKeyFromJwk } from '../../schemes/paillier/jwk.js';
import { readInputText } from './files.js';
import { pythonJsonDumps, type JsonValue } from './python-compat.js';

/** pheutil stores every result at this exponent (or lower), so files agree on the scale. */
export const PHEUTIL_EXPONENT = -32;
/** Largest key accepted: bigger moduli in a file are far more likely junk than real keys. */
export const MAX_KEY_BITS = 16384;
/**
 * Largest |exponent| accepted in a ciphertext file. python-paillier's floats use exponents in
 * [-282, 242] and each multiplication adds one; a bound keeps 16^e from exhausting memory.
 */
export const MAX_ABS_EXPONENT = 10_000;

/** Receives pheutil's progress lines. */
export type LogFn = (line: string) => void;

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Prefixes a library error's message with the file it came from, keeping its class and code. */
function inFile<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BlindmlError && !err.message.startsWith(`'${path}'`)) err.message = `'${path}': ${err.message}`;
    throw err;
  }
}

/**
 * Refuses a modulus below 2048 bits unless `--insecure` was given.
 *
 * @throws InvalidKeyError naming the flag.
 */
export function checkKeySize(bits: number, insecure: boolean): void {
  if (bits > MAX_KEY_BITS) throw new InvalidKeyError(`a ${bits}-bit key is larger than the ${MAX_KEY_BITS} bits blindml accepts`);
  if (bits < MIN_SECURE_BITS && !insecure) {
    throw new InvalidKeyError(
      `a ${bits}-bit Paillier key is insecure; use ${MIN_SECURE_BITS} bits or more, or pass --insecure (for tests only)`,
    );
  }
}

function readJson(path: string, what: string): unknown {
  const text = readInputText(path);
  return inFile(path, () => parseJson(text, what));
}

function publicKeyOf(jwk: unknown, insecure: boolean): PaillierPublicKey {
  const key = publicKeyFromJwk(jwk, { insecure: true });
  checkKeySize(key.bits, insecure);
  // One-shot commands encrypt once: r^n directly is cheaper than building a fixed-base table.
  key.useNoise(new ClassicNoise(key.n, key.nSquared));
  return key;
}

/**
 * Reads a public key file (pheutil's JWK), or stdin for "-".
 *
 * @throws FileAccessError; FormatError for malformed JSON or fields (and for a private key file
 *   given in place of a public one); InvalidKeyError for a bad or small modulus.
 */
export function loadPublicKeyFile(path: string, insecure: boolean): PaillierPublicKey {
  const jwk = readJson(path, 'public key');
  return inFile(path, () => {
    if (isRecord(jwk) && 'pub' in jwk && !('n' in jwk)) {
      throw new FormatError("this is a private key file; give the public key (make it with 'blindml paillier extract')");
    }
    return publicKeyOf(jwk, insecure);
  });
}

/**
 * Reads a private key file and returns the key with the JSON it came from.
 *
 * @throws FileAccessError; FormatError for malformed JSON or fields (and for a public key file);
 *   InvalidKeyError for a small modulus or factors that do not match it.
 */
export function loadPrivateKeyFile(path: string, insecure: boolean): { key: PaillierPrivateKey; jwk: Record<string, unknown> } {
  const jwk = readJson(path, 'private key');
  return inFile(path, () => {
    if (!isRecord(jwk)) throw new FormatError('invalid private key: expected a JSON object');
    if (jwk['alg'] === 'PAI-GN1' && !('pub' in jwk)) {
      throw new FormatError('this is a public key file; decryption and extraction need the private key');
    }
    // Check the modulus size before the factors: a huge junk modulus would make the primality
    // test of its "factors" take minutes.
    if (isRecord(jwk['pub'])) publicKeyOf(jwk['pub'], insecure);
    const key = privateKeyFromJwk(jwk, { insecure: true });
    key.publicKey.useNoise(new ClassicNoise(key.publicKey.n, key.publicKey.nSquared));
    return { key, jwk };
  });
}

/** Hex SHA-256 of n's big-endian bytes: the `key_sha256` field blindml writes. */
export function keyFingerprint(key: PaillierPublicKey): string {
  return createHash('sha256').update(bigIntToBytes(key.n)).digest('hex');
}

/**
 * Reads an encrypted number file for `key`.
 *
 * @param checkUnit - also check gcd(c, n) = 1 (decryption checks it anyway; homomorphic
 *   operations would otherwise carry a non-unit into their output).
 * @throws FileAccessError; FormatError for malformed JSON or fields or an absurd exponent;
 *   KeyMismatchError if its fingerprint names another key; InvalidCiphertextError if the value is
 *   outside Z*_{n²}.
 */
export function loadEncryptedFile(path: string, key: PaillierPublicKey, checkUnit: boolean): EncryptedNumber {
  const json = readJson(path, 'encrypted number');
  return inFile(path, () => {
    if (isRecord(json)) checkCiphertextShape(json, key);
    const { ciphertext, exponent } = encryptedNumberFromJson(json);
    if (Math.abs(exponent) > MAX_ABS_EXPONENT) {
      throw new FormatError(`invalid encrypted number: exponent ${exponent} is outside ±${MAX_ABS_EXPONENT}`);
    }
    return new EncryptedNumber(key.ciphertext(ciphertext, { checkUnit }), exponent);
  });
}

function checkCiphertextShape(json: Record<string, unknown>, key: PaillierPublicKey): void {
  const fp = json['key_sha256'];
  if (fp !== undefined && fp !== keyFingerprint(key)) {
    throw new KeyMismatchError('this number was encrypted under a different Paillier key (its key_sha256 does not match)');
  }
  const v = json['v'];
  // Refuse an oversized decimal before BigInt parses it (quadratic in its length).
  if (typeof v === 'string' && v.length > key.nSquared.toString().length + 1) {
    throw new InvalidCiphertextError('ciphertext is outside Z*_{n²} for this key (wrong key or corrupted value)');
  }
}

/**
 * pheutil's `serialise_encrypted`: lowers the exponent to -32 when it is higher (logging, as
 * pheutil does, "Exponent is less than -32" otherwise) and writes `{"v", "e"}` plus blindml's
 * `key_sha256`, re-randomizing the ciphertext first if it has not been.
 *
 * @throws OverflowError if lowering the exponent needs a factor beyond max_int (python-paillier
 *   raises there too).
 */
export function serialiseEncrypted(enc: EncryptedNumber, log: LogFn): string {
  let out = enc;
  if (enc.exponent > PHEUTIL_EXPONENT) {
    checkLoweringFactor(enc.publicKey, enc.exponent);
    out = enc.decreaseExponentTo(PHEUTIL_EXPONENT);
  } else {
    log('Exponent is less than -32');
  }
  const { v, e } = out.toJSON();
  const obj: JsonValue = { v, e, key_sha256: keyFingerprint(out.publicKey) };
  return pythonJsonDumps(obj);
}

function checkLoweringFactor(key: PaillierPublicKey, exponent: number): void {
  // 16^k > max_int is detectable from sizes alone; only then compute it.
  const shift = 4 * (exponent - PHEUTIL_EXPONENT);
  if (shift >= key.bits || 1n << BigInt(shift) > key.maxInt) {
    throw new OverflowError(
      `the result is too large for a ${key.bits}-bit key: lowering its exponent from ${exponent} to ` +
        `${PHEUTIL_EXPONENT} needs the factor 16^${exponent - PHEUTIL_EXPONENT}, beyond max_int`,
    );
  }
}

/**
 * Encodes and encrypts a float as pheutil's `encrypt` does, at exponent -32 (or lower). The
 * encoding is lowered before encryption, which gives the same plaintext as pheutil's lowering
 * afterwards and lets the overflow check see the mantissa.
 *
 * @throws EncodingError for a non-finite value; OverflowError if the value does not fit the key
 *   at exponent -32.
 */
export function encryptForPheutil(key: PaillierPublicKey, value: number, log: LogFn): string {
  let encoded = EncodedNumber.encode(key, value);
  if (encoded.exponent > PHEUTIL_EXPONENT) {
    const factor = 16n ** BigInt(encoded.exponent - PHEUTIL_EXPONENT);
    const m = encoded.mantissa() * factor;
    if (m > key.maxInt || -m > key.maxInt) {
      throw new OverflowError(`cannot encrypt ${value}: at exponent ${PHEUTIL_EXPONENT} it exceeds the range of a ${key.bits}-bit key`);
    }
    encoded = encoded.decreaseExponentTo(PHEUTIL_EXPONENT);
  } else {
    log('Exponent is less than -32');
  }
  const enc = EncryptedNumber.encrypt(key, encoded);
  const { v, e } = enc.toJSON();
  return pythonJsonDumps({ v, e, key_sha256: keyFingerprint(key) });
}
