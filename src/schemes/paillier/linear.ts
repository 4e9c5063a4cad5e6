/**
 * Encrypted linear algebra: dot products and matrix–vector products of ciphertexts with signed
 * integer weights, by multi-exponentiation. Weights are split by sign so each output costs one
 * modular inversion (for the product of the negative-weight terms), not one per negative weight.
 *
 * Timing: depends on the weights (the evaluator's own values) and not on the encrypted inputs.
 *
 * @module
 */
import { KeyMismatchError } from '../../errors.js';
import { modInv } from '../../math/modular.js';
import { multiExp } from '../../math/multi-exp.js';
import { PaillierCiphertext } from './ciphertext.js';
import type { PaillierPublicKey } from './keys.js';

/** Signed integer weights: a plain array of safe integers or bigints, or a typed integer array. */
export type IntegerWeights = ArrayLike<number> | readonly bigint[];

/** Ciphertext integers of `cts`, after checking they all share `key`. */
export function ciphertextValues(cts: readonly PaillierCiphertext[], key: PaillierPublicKey): bigint[] {
  const values = new Array<bigint>(cts.length);
  for (let i = 0; i < cts.length; i++) {
    const c = cts[i]!;
    if (!c.publicKey.equals(key)) throw new KeyMismatchError('the ciphertexts were encrypted under different Paillier keys');
    values[i] = c.value;
  }
  return values;
}

/**
 * The two halves of a signed dot product modulo n²: Π x_i^(w_i) over positive weights and
 * Π x_i^(−w_i) over negative ones, so the caller can invert the second (once per output, or once
 * for many outputs with {@link batchInvert}).
 *
 * @throws RangeError if the lengths differ or a weight is not an integer with |w| < n.
 */
export function signedProducts(values: readonly bigint[], weights: IntegerWeights, key: PaillierPublicKey): { pos: bigint; neg: bigint } {
  if (values.length !== weights.length) throw new RangeError(`dot: ${values.length} ciphertexts but ${weights.length} weights`);
  const { n, nSquared } = key;
  const posBases: bigint[] = [];
  const posExps: (number | bigint)[] = [];
  const negBases: bigint[] = [];
  const negExps: (number | bigint)[] = [];
  for (let i = 0; i < values.length; i++) {
    const w = weights[i]!;
    if (typeof w === 'number' ? !Number.isSafeInteger(w) : w >= n || -w >= n) {
      throw new RangeError(`dot: weight ${i} must be an integer with |w| < n`);
    }
    if (w > 0) {
      posBases.push(values[i]!);
      posExps.push(w);
    } else if (w < 0) {
      negBases.push(values[i]!);
      negExps.push(-w);
    }
  }
  return {
    pos: posBases.length ? multiExp(posBases, posExps, nSquared) : 1n,
    neg: negBases.length ? multiExp(negBases, negExps, nSquared) : 1n,
  };
}

/**
 * Inverses of many units modulo m with one modular inversion and 3(k − 1) multiplications
 * (Montgomery's trick). Ones are passed through without cost.
 *
 * @throws RangeError if a value is not invertible.
 */
export function batchInvert(values: readonly bigint[], m: bigint): bigint[] {
  const prefix = new Array<bigint>(values.length);
  let acc = 1n;
  for (let i = 0; i < values.length; i++) {
    prefix[i] = acc;
    if (values[i] !== 1n) acc = (acc * values[i]!) % m;
  }
  let inv = modInv(acc, m);
  const out = new Array<bigint>(values.length);
  for (let i = values.length - 1; i >= 0; i--) {
    if (values[i] === 1n) {
      out[i] = 1n;
      continue;
    }
    out[i] = (inv * prefix[i]!) % m;
    inv = (inv * values[i]!) % m;
  }
  return out;
}

/** The plaintext b as the ciphertext-side factor g^b = 1 + b·n (mod n²). */
export function plainFactor(b: bigint, key: PaillierPublicKey): bigint {
  const { n } = key;
  return 1n + (((b % n) + n) % n) * n;
}

/**
 * Σ w_i·x_i on raw ciphertext integers modulo n²: the kernel shared by {@link dot}, {@link matVec}
 * and the worker pool. `bias`, if given, is added as a plaintext. One modular inversion.
 *
 * @throws RangeError if the lengths differ or a weight is not an integer with |w| < n.
 */
export function dotRaw(values: readonly bigint[], weights: IntegerWeights, key: PaillierPublicKey, bias?: bigint): bigint {
  const { nSquared } = key;
  const { pos, neg } = signedProducts(values, weights, key);
  let result = neg === 1n ? pos : (pos * modInv(neg, nSquared)) % nSquared;
  if (bias !== undefined && bias !== 0n) result = (result * plainFactor(bias, key)) % nSquared;
  return result;
}

/**
 * Enc(Σ w_i·x_i + bias) for ciphertexts x and signed integer weights w.
 *
 * @throws KeyMismatchError if the ciphertexts do not share one key; RangeError on bad weights.
 */
export function dot(cts: readonly PaillierCiphertext[], weights: IntegerWeights, bias?: bigint): PaillierCiphertext {
  if (cts.length === 0) throw new RangeError('dot: no ciphertexts');
  const key = cts[0]!.publicKey;
  return new PaillierCiphertext(key, dotRaw(ciphertextValues(cts, key), weights, key, bias), false);
}

/**
 * y = W·x + b for a row-major weight matrix W (rows × x.length) of signed integers.
 *
 * @throws KeyMismatchError, or RangeError if W's size or b's length does not match.
 */
export function matVec(
  cts: readonly PaillierCiphertext[],
  weights: IntegerWeights,
  rows: number,
  bias?: readonly bigint[],
): PaillierCiphertext[] {
  if (cts.length === 0) throw new RangeError('matVec: no ciphertexts');
  const cols = cts.length;
  if (weights.length !== rows * cols) throw new RangeError(`matVec: expected ${rows}×${cols} weights, got ${weights.length}`);
  if (bias && bias.length !== rows) throw new RangeError(`matVec: expected ${rows} biases, got ${bias.length}`);
  const key = cts[0]!.publicKey;
  const values = ciphertextValues(cts, key);
  const out: PaillierCiphertext[] = [];
  for (let r = 0; r < rows; r++) {
    const row = sliceWeights(weights, r * cols, (r + 1) * cols);
    out.push(new PaillierCiphertext(key, dotRaw(values, row, key, bias?.[r]), false));
  }
  return out;
}

/** A row of a weight matrix, without copying typed arrays. */
export function sliceWeights(weights: IntegerWeights, start: number, end: number): IntegerWeights {
  if (ArrayBuffer.isView(weights)) return (weights as unknown as Int32Array).subarray(start, end);
  return Array.prototype.slice.call(weights, start, end) as IntegerWeights;
}
