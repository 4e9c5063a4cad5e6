/**
 * The service's computation: a compiled polynomial network on CKKS ciphertexts whose slots are
 * images. Each stage visits its input ciphertexts once (column by column; those of a source at a
 * shallower level are first brought down to the stage's, see `compile.ts`): it forms the input's
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
  mulPlain,
  type CkksCiphertext,
  type CkksServiceKeys,
  type PlainText,
} from '../../schemes/ckks/index.js';
import { nafDigits, maxDoubling, type CompiledPolyNetwork, type IntegerStage } from './compile.js';
import { MODEL_INPUT } from './plan.js';

/** Progress of an evaluation: stage index and rows finished. */
export type EvaluateProgress = (stage: number, done: number, rows: number) => void;

/** Column c of a stage: a ciphertext, and whether the stage owns it (frees it after use). */
type ColumnReader = (c: number) => { readonly ct: CkksCiphertext; readonly owned: boolean };

/**
 * Evaluates the network. `input(c)` returns input ciphertext c, a fresh one at each call: it is
 * requested in order by every stage that reads the model input (once per column with a non-zero
 * weight), and the evaluator frees it after use, so it may be loaded lazily from bytes.
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
  // A stage's outputs live until the last stage that reads them (a shortcut keeps them longer).
  const lastReader = new Map<number, number>();
  net.stages.forEach((stage, s) => stage.sources.forEach((k) => lastReader.set(k, s)));
  const outputs: (CkksCiphertext[] | undefined)[] = [];
  try {
    net.stages.forEach((stage, s) => {
      const plains = new Map<number, PlainText>();
      try {
        outputs[s] = runStage(stage, keys, columnReader(net, stage, outputs, input, plains), (done) => onProgress?.(s, done, stage.rows));
      } finally {
        for (const p of plains.values()) free(p);
      }
      for (const k of stage.sources) {
        if (k !== MODEL_INPUT && lastReader.get(k) === s) {
          freeAll(outputs[k]!);
          outputs[k] = undefined;
        }
      }
    });
    const result = outputs[net.stages.length - 1]!;
    for (const ct of result) reinterpretScaleInPlace(ct, ct.scale / net.outputFactor);
    return result;
  } catch (e) {
    for (const o of outputs) if (o) freeAll(o);
    throw e;
  }
}

/**
 * Reads the stage's columns from the model input or earlier stages' outputs, bringing those of a
 * shallower source down to the stage's level. `plains` caches one plaintext per lifted source
 * (the caller frees them).
 */
function columnReader(
  net: CompiledPolyNetwork,
  stage: IntegerStage,
  outputs: readonly (CkksCiphertext[] | undefined)[],
  input: (c: number) => CkksCiphertext,
  plains: Map<number, PlainText>,
): ColumnReader {
  const first: number[] = [];
  let at = 0;
  for (const k of stage.sources) {
    first.push(at);
    at += k === MODEL_INPUT ? net.plan.inputSize : net.stages[k]!.rows;
  }
  // The scale of the stage's level: that of a source already there (one always is when lifts are needed).
  const deep = stage.sources.findIndex((k, j) => stage.lift[j] === null && k !== MODEL_INPUT);
  const levelScale = deep >= 0 ? outputs[stage.sources[deep]!]![0]!.scale : 0;
  return (c) => {
    let j = 0;
    while (j + 1 < first.length && first[j + 1]! <= c) j++;
    const k = stage.sources[j]!;
    const i = c - first[j]!;
    const raw = k === MODEL_INPUT ? input(i) : outputs[k]![i]!;
    const C = stage.lift[j];
    if (C === null || C === undefined) return { ct: raw, owned: k === MODEL_INPUT };
    try {
      return { ct: lift(raw, stage.level, C, levelScale, plains, j), owned: true };
    } finally {
      if (k === MODEL_INPUT) raw.free();
    }
  };
}

/**
 * x × C, brought down to `level` at exactly `scale`: modulus-switched to the level above, times
 * C encoded at scale·q/x.scale (q the prime the rescale drops), rescaled. Decrypts to C × x.
 *
 * @throws InvalidCiphertextError from the operations.
 */
function lift(x: CkksCiphertext, level: number, C: number, scale: number, plains: Map<number, PlainText>, key: number): CkksCiphertext {
  const context = x.context;
  const above = context.topLevel - level + 1;
  const moved = clone(x);
  try {
    modSwitchInPlace(moved, above);
    let plain = plains.get(key);
    if (!plain) {
      const q = Number(context.dataPrimes[above - 1]!);
      plain = context.encode(new Float64Array(context.slots).fill(C), (scale * q) / moved.scale, above);
      plains.set(key, plain);
    }
    const product = mulPlain(moved, plain);
    try {
      rescaleInPlace(product);
      // The scale is right up to rounding of the division above; make it exact so additions accept it.
      reinterpretScaleInPlace(product, scale);
      return product;
    } catch (e) {
      product.free();
      throw e;
    }
  } finally {
    moved.free();
  }
}

function runStage(stage: IntegerStage, keys: CkksServiceKeys, column: ColumnReader, progress: (done: number) => void): CkksCiphertext[] {
  const acc: (CkksCiphertext | undefined)[] = new Array(stage.rows);
  const outputs: CkksCiphertext[] = [];
  let like: CkksCiphertext | undefined;
  // doublings[j] = 2^j · x; j ≥ 1 live in scratch ciphertexts reused from column to column.
  const scratch: CkksCiphertext[] = [];
  try {
    for (let c = 0; c < stage.cols; c++) {
      if (stage.colOffsets[c] === stage.colOffsets[c + 1]) continue;
      const { ct: x, owned } = column(c);
      try {
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
        // Not needed past its column.
        if (owned) x.free();
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
            // Exact: a power of two times a double.
            if (stage.shift !== 0) reinterpretScaleInPlace(sq, sq.scale * 2 ** stage.shift);
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
