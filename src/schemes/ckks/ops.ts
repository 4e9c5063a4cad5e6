/**
 * Homomorphic operations on {@link CkksCiphertext}s. Each returns a new ciphertext (the caller
 * frees it) unless its name ends in `InPlace`. All of them check that their operands share a key
 * and context. Timing depends only on the parameters and levels, never on the encrypted values.
 *
 * @module
 */
import { InvalidCiphertextError, KeyMismatchError } from '../../errors.js';
import { CkksCiphertext } from './ciphertext.js';
import type { CkksServiceKeys } from './keys.js';
import { normalizeStep } from './keys.js';
import type { PlainText } from './seal.js';

function wrap(like: CkksCiphertext, make: (dst: CkksCiphertext['seal']) => void): CkksCiphertext {
  const dst = like.context.seal.CipherText();
  try {
    make(dst);
  } catch (e) {
    dst.delete();
    throw new InvalidCiphertextError(`CKKS operation failed: ${String(e)}`);
  }
  return new CkksCiphertext(like.context, like.keyId, dst);
}

/** a + b (same level and scale). @throws KeyMismatchError, InvalidCiphertextError. */
export function add(a: CkksCiphertext, b: CkksCiphertext): CkksCiphertext {
  a.assertCompatible(b);
  return wrap(a, (dst) => a.context.evaluator.add(a.seal, b.seal, dst));
}

/** a += b. @throws KeyMismatchError, InvalidCiphertextError. */
export function addInPlace(a: CkksCiphertext, b: CkksCiphertext): void {
  a.assertCompatible(b);
  try {
    a.context.evaluator.add(a.seal, b.seal, a.seal);
  } catch (e) {
    throw new InvalidCiphertextError(`CKKS add failed (level or scale mismatch?): ${String(e)}`);
  }
}

/** a − b. @throws KeyMismatchError, InvalidCiphertextError. */
export function sub(a: CkksCiphertext, b: CkksCiphertext): CkksCiphertext {
  a.assertCompatible(b);
  return wrap(a, (dst) => a.context.evaluator.sub(a.seal, b.seal, dst));
}

/** a ⊙ plain (slot-wise); the result's scale is the product of both scales. @throws InvalidCiphertextError. */
export function mulPlain(a: CkksCiphertext, plain: PlainText): CkksCiphertext {
  return wrap(a, (dst) => a.context.evaluator.multiplyPlain(a.seal, plain, dst));
}

/** a + plain (same level and scale). @throws InvalidCiphertextError. */
export function addPlain(a: CkksCiphertext, plain: PlainText): CkksCiphertext {
  return wrap(a, (dst) => a.context.evaluator.addPlain(a.seal, plain, dst));
}

/** a ⊙ b, relinearized. @throws KeyMismatchError, InvalidCiphertextError (also without relinearization keys). */
export function multiply(a: CkksCiphertext, b: CkksCiphertext, keys: CkksServiceKeys): CkksCiphertext {
  a.assertCompatible(b);
  if (keys.keyId !== a.keyId) throw new KeyMismatchError('relinearization keys of another key pair');
  const relin = keys.relinKeys;
  if (!relin) throw new InvalidCiphertextError('no relinearization keys were provided');
  return wrap(a, (dst) => {
    a.context.evaluator.multiply(a.seal, b.seal, dst);
    a.context.evaluator.relinearize(dst, relin, dst);
  });
}

/** Divides by the last prime (scale drops by it, one level consumed), in place. @throws InvalidCiphertextError at the last level. */
export function rescaleInPlace(a: CkksCiphertext): void {
  if (a.levelPrimes <= 1) throw new InvalidCiphertextError('cannot rescale a ciphertext at the last level');
  a.context.evaluator.rescaleToNext(a.seal, a.seal);
}

/** Drops primes without changing the scale until `levelPrimes` remain, in place. */
export function modSwitchInPlace(a: CkksCiphertext, levelPrimes: number): void {
  if (levelPrimes > a.levelPrimes || levelPrimes < 1) throw new InvalidCiphertextError(`cannot switch from level ${a.levelPrimes} to ${levelPrimes}`);
  while (a.levelPrimes > levelPrimes) a.context.evaluator.cipherModSwitchToNext(a.seal, a.seal);
}

/**
 * Rotates slots left by `step` (slot i receives slot i + step).
 *
 * @throws KeyMismatchError for another key's Galois keys; InvalidCiphertextError when no Galois
 *   key for the step was provided.
 */
export function rotate(a: CkksCiphertext, step: number, keys: CkksServiceKeys): CkksCiphertext {
  if (keys.keyId !== a.keyId) throw new KeyMismatchError('Galois keys of another key pair');
  const s = normalizeStep(step, a.context.slots);
  if (s === 0) return wrap(a, (dst) => dst.copy(a.seal));
  const gk = keys.galoisKeys;
  if (!gk || !keys.canRotate(s)) throw new InvalidCiphertextError(`no Galois key for a rotation by ${s}`);
  return wrap(a, (dst) => a.context.evaluator.rotateVector(a.seal, s, gk, dst));
}

/** A copy of `a` (the caller frees it). */
export function clone(a: CkksCiphertext): CkksCiphertext {
  return wrap(a, (dst) => dst.copy(a.seal));
}

/** −a. @throws InvalidCiphertextError. */
export function negate(a: CkksCiphertext): CkksCiphertext {
  return wrap(a, (dst) => a.context.evaluator.negate(a.seal, dst));
}

/** a −= b. @throws KeyMismatchError, InvalidCiphertextError. */
export function subInPlace(a: CkksCiphertext, b: CkksCiphertext): void {
  a.assertCompatible(b);
  try {
    a.context.evaluator.sub(a.seal, b.seal, a.seal);
  } catch (e) {
    throw new InvalidCiphertextError(`CKKS sub failed (level or scale mismatch?): ${String(e)}`);
  }
}

/** a += plain (same level and scale). @throws InvalidCiphertextError. */
export function addPlainInPlace(a: CkksCiphertext, plain: PlainText): void {
  try {
    a.context.evaluator.addPlain(a.seal, plain, a.seal);
  } catch (e) {
    throw new InvalidCiphertextError(`CKKS addPlain failed (level or scale mismatch?): ${String(e)}`);
  }
}

/**
 * Changes the scale `a` is read at, without touching its data: afterwards it decrypts to its old
 * value × old scale / `scale`. Used to fold known constant factors into the scale instead of
 * spending a multiplication (and a level) on them.
 *
 * @throws RangeError for a scale that is not a positive finite number.
 */
export function reinterpretScaleInPlace(a: CkksCiphertext, scale: number): void {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`scale must be positive and finite, got ${scale}`);
  a.seal.setScale(scale);
}

/**
 * a², not relinearized: a ciphertext of size 3, which additions and integer weights accept as
 * they are. CryptoNets' trick: relinearizing after the next linear layer, once per output of
 * that layer instead of once per square, saves most of the key-switching work.
 *
 * @throws InvalidCiphertextError for a ciphertext that is not of size 2.
 */
export function squareUnrelinearized(a: CkksCiphertext): CkksCiphertext {
  if (a.seal.size !== 2) throw new InvalidCiphertextError(`cannot square a ciphertext of size ${a.seal.size}; relinearize it first`);
  return wrap(a, (dst) => a.context.evaluator.square(a.seal, dst));
}

/**
 * Brings a ciphertext of size 3 back to size 2 (no-op at size 2), in place.
 *
 * @throws KeyMismatchError for another key's relinearization keys; InvalidCiphertextError without them.
 */
export function relinearizeInPlace(a: CkksCiphertext, keys: CkksServiceKeys): void {
  if (a.seal.size === 2) return;
  if (keys.keyId !== a.keyId) throw new KeyMismatchError('relinearization keys of another key pair');
  const relin = keys.relinKeys;
  if (!relin) throw new InvalidCiphertextError('no relinearization keys were provided');
  try {
    a.context.evaluator.relinearize(a.seal, relin, a.seal);
  } catch (e) {
    throw new InvalidCiphertextError(`CKKS relinearize failed: ${String(e)}`);
  }
}

/**
 * dst = a + b, reusing dst's memory (no allocation once dst has grown to this size): for hot loops.
 *
 * @throws KeyMismatchError, InvalidCiphertextError.
 */
export function addInto(dst: CkksCiphertext, a: CkksCiphertext, b: CkksCiphertext): void {
  a.assertCompatible(b);
  a.assertCompatible(dst);
  try {
    a.context.evaluator.add(a.seal, b.seal, dst.seal);
  } catch (e) {
    throw new InvalidCiphertextError(`CKKS add failed (level or scale mismatch?): ${String(e)}`);
  }
}

/** An empty ciphertext under `like`'s key and context, to be filled by {@link addInto}. */
export function emptyLike(like: CkksCiphertext): CkksCiphertext {
  return new CkksCiphertext(like.context, like.keyId, like.context.seal.CipherText());
}
