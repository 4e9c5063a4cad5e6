/**
 * The service's computation: a compiled polynomial network on CKKS ciphertexts whose slots are
 * images. Each stage visits its input ciphertexts once (column by column): it forms the input's
 * doublings 2^j·x and adds or subtracts them into the accumulators of the rows that use the input,
 * one addition per non-zero signed digit of the integer weight. Then each row gets its bias
 * (one plaintext addition) and, between stages, is squared, relinearized and rescaled. (CryptoNets
 * leaves squares unrelinearized and relinearizes the next layer's outputs instead; measured here,
 * that saves little, since the additions then work on three polynomials instead of two, and
 * rescaling size-3 ciphertexts loses about 7 bits of precision.)
 *
 * Every ciphertext made here is freed here, also when an operation throws; the caller frees the
 * inputs it passed and the outputs it received.
 *
 * Timing: the sequence of operations depends only on the compiled model (public to the service)
 * and the number of slots, never on the encrypted values.
 *
 * @module
 */
import {
  addInPlace,
  addInto,
  addPlainInPlace,
  clone,
  emptyLike,
  modSwitchInPlace,
  negate,
  reinterpretScaleInPlace,
  relinearizeInPlace,
  rescaleInPlace,
  squareUnrelinearized,
  subInPlace,
  free,
  type CkksCiphertext,
  type CkksServiceKeys,
} from '../../schemes/ckks/index.js';
import { nafDigits, maxDoubling, type CompiledPolyNetwork, type IntegerStage } from './compile.js';

/** Progress of an evaluation: stage index and rows finished. */
export type EvaluateProgress = (stage: number, done: number, rows: number) => void;

/**
 * Evaluates the network. `input(c)` returns input ciphertext c (each is requested once, in
 * order; the evaluator frees it after use, so it may be loaded lazily from bytes).
 *
 * @returns the output ciphertexts, one per logit, read at a scale that makes them decrypt to the
 *   logits themselves.
 * @throws KeyMismatchError / InvalidCiphertextError from the operations (inputs under another key,
 *   at the wrong level or scale); nothing stays allocated when it throws.
 */
export function evaluatePolyNetwork(
  net: CompiledPolyNetwork,
  keys: CkksServiceKeys,
  input: (c: number) => CkksCiphertext,
  onProgress?: EvaluateProgress,
): CkksCiphertext[] {
  let next: (c: number) => CkksCiphertext = input;
  let owned: CkksCiphertext[] = [];
  try {
    net.stages.forEach((stage, s) => {
      const outputs = runStage(stage, keys, next, (done) => onProgress?.(s, done, stage.rows));
      freeAll(owned);
      owned = outputs;
      next = (c) => outputs[c]!;
    });
    for (const ct of owned) reinterpretScaleInPlace(ct, ct.scale / net.outputFactor);
    return owned;
  } catch (e) {
    freeAll(owned);
    throw e;
  }
}

function runStage(stage: IntegerStage, keys: CkksServiceKeys, input: (c: number) => CkksCiphertext, progress: (done: number) => void): CkksCiphertext[] {
  const acc: (CkksCiphertext | undefined)[] = new Array(stage.rows);
  const outputs: CkksCiphertext[] = [];
  let like: CkksCiphertext | undefined;
  // doublings[j] = 2^j · x; j ≥ 1 live in scratch ciphertexts reused from column to column.
  const scratch: CkksCiphertext[] = [];
  try {
    for (let c = 0; c < stage.cols; c++) {
      const x = input(c);
      try {
        if (stage.colOffsets[c] === stage.colOffsets[c + 1]) continue;
        like ??= clone(x);
        const top = maxDoubling(stage, c);
        while (scratch.length < top) scratch.push(emptyLike(x));
        const power = (j: number): CkksCiphertext => (j === 0 ? x : scratch[j - 1]!);
        for (let j = 1; j <= top; j++) addInto(power(j), power(j - 1), power(j - 1));
        for (let t = stage.colOffsets[c]!; t < stage.colOffsets[c + 1]!; t++) {
          const r = stage.rowIndex[t]!;
          for (const [j, sign] of nafDigits(stage.weights[t]!)) {
            const term = power(j);
            const a = acc[r];
            if (a === undefined) acc[r] = sign > 0 ? clone(term) : negate(term);
            else if (sign > 0) addInPlace(a, term);
            else subInPlace(a, term);
          }
        }
      } finally {
        // The loader handed x over; it is not needed past its column.
        x.free();
      }
    }
    for (let r = 0; r < stage.rows; r++) {
      const a = acc[r] ?? zeroLike(like, keys);
      acc[r] = undefined;
      let keep = false;
      try {
        addBias(a, stage.bias[r]!);
        if (stage.square) {
          const sq = squareUnrelinearized(a);
          try {
            // Relinearize before rescaling: rescaling a size-3 ciphertext multiplies its rounding
            // error by s² and costs about 7 bits of precision (measured); after the rescale the
            // key-switching noise is no longer divided by the dropped prime either.
            relinearizeInPlace(sq, keys);
            rescaleInPlace(sq);
          } catch (e) {
            sq.free();
            throw e;
          }
          outputs.push(sq);
        } else {
          outputs.push(a);
          keep = true;
        }
      } finally {
        if (!keep) a.free();
      }
      progress(r + 1);
    }
    return outputs;
  } catch (e) {
    freeAll(outputs);
    freeAll(acc);
    throw e;
  } finally {
    freeAll(scratch);
    like?.free();
  }
}

function freeAll(cts: readonly (CkksCiphertext | undefined)[]): void {
  for (const ct of cts) ct?.free();
}

/** Adds a constant to every slot (encoded at the ciphertext's own scale and level). */
function addBias(a: CkksCiphertext, value: number): void {
  if (value === 0) return;
  const plain = a.context.encode(new Float64Array(a.context.slots).fill(value), a.scale, a.levelPrimes);
  try {
    addPlainInPlace(a, plain);
  } finally {
    free(plain);
  }
}

/** An encryption of 0 at the level and scale of `like`, for a row whose weights all rounded to 0. */
function zeroLike(like: CkksCiphertext | undefined, keys: CkksServiceKeys): CkksCiphertext {
  if (!like) throw new RangeError('a stage without any non-zero weight');
  const z = keys.encrypt(new Float64Array(0), like.scale);
  modSwitchInPlace(z, like.levelPrimes);
  return z;
}
