/**
 * Rows of a sparse integer linear map applied to Paillier ciphertexts: for each row r,
 * Enc(Σ e_t·x_{col_t} + bias_r), by multi-exponentiation (see `dotRaw`).
 *
 * @module
 */
import type { PaillierPublicKey } from '../schemes/paillier/keys.js';
import { batchInvert, plainFactor, signedProducts } from '../schemes/paillier/linear.js';
import { packRaw } from '../schemes/paillier/packing.js';

/** The integer map to apply: CSR structure with integer exponents (as exact doubles). */
export interface IntegerRows {
  readonly offsets: Int32Array;
  readonly indices: Int32Array;
  /** Integer exponents, |e| < 2^53. */
  readonly exponents: Float64Array;
  /** Plaintext added to each row (already scaled and, for packed ciphertexts, replicated). */
  readonly bias: readonly bigint[];
}

/**
 * Evaluates rows [rowStart, rowEnd) on ciphertext integers `values` under `key`. The negative
 * halves of all rows are inverted together (one modular inversion for the whole range).
 *
 * @throws RangeError if an exponent is not a safe integer.
 */
export function evaluateRows(key: PaillierPublicKey, values: readonly bigint[], rows: IntegerRows, rowStart: number, rowEnd: number): bigint[] {
  const pos: bigint[] = [];
  const neg: bigint[] = [];
  for (let r = rowStart; r < rowEnd; r++) {
    const from = rows.offsets[r]!;
    const to = rows.offsets[r + 1]!;
    const bases = new Array<bigint>(to - from);
    for (let t = from; t < to; t++) bases[t - from] = values[rows.indices[t]!]!;
    const halves = signedProducts(bases, rows.exponents.subarray(from, to), key);
    pos.push(halves.pos);
    neg.push(halves.neg);
  }
  const m = key.nSquared;
  const inverses = batchInvert(neg, m);
  // An empty row gives 1 = Enc(0) without randomness; ciphertexts are obfuscated before they leave.
  return pos.map((p, i) => {
    const b = rows.bias[rowStart + i]!;
    const c = (p * inverses[i]!) % m;
    return b === 0n ? c : (c * plainFactor(b, key)) % m;
  });
}

/** Where a service's heavy ciphertext work runs: this thread, or worker threads. */
export interface RowEvaluator {
  /** Rows [0, rowCount) of `rows` (see {@link evaluateRows}). */
  evaluate(key: PaillierPublicKey, values: readonly bigint[], rows: IntegerRows, rowCount: number): Promise<bigint[]>;
  /** Raises values to their factors and packs them (see `packRaw`). */
  pack(key: PaillierPublicKey, values: readonly bigint[], factors: readonly bigint[] | null, slotBits: number, perCiphertext: number): Promise<bigint[]>;
  /** `count` fresh random n-th residues (r^n mod n²) for re-randomizing ciphertexts. */
  noise(key: PaillierPublicKey, count: number): Promise<bigint[]>;
}

/** Evaluates on the calling thread. */
export const localRowEvaluator: RowEvaluator = {
  evaluate(key, values, rows, rowCount) {
    return Promise.resolve(evaluateRows(key, values, rows, 0, rowCount));
  },
  pack(key, values, factors, slotBits, perCiphertext) {
    return Promise.resolve(packRaw(values, factors, slotBits, perCiphertext, key.nSquared));
  },
  noise(key, count) {
    return Promise.resolve(Array.from({ length: count }, () => key.noiseSource.next()));
  },
};

/** Rows [start, end) as a map of their own (offsets rebased), to ship to another thread. */
export function sliceRows(rows: IntegerRows, start: number, end: number): IntegerRows {
  const from = rows.offsets[start]!;
  const to = rows.offsets[end]!;
  const offsets = new Int32Array(end - start + 1);
  for (let r = start; r <= end; r++) offsets[r - start] = rows.offsets[r]! - from;
  return { offsets, indices: rows.indices.slice(from, to), exponents: rows.exponents.slice(from, to), bias: rows.bias.slice(start, end) };
}
