/**
 * The bulk of a CKKS round: sums of plaintext products, outputs[o] = Σ inputs[i] ⊙ encode(values)
 * over the terms (i, o, values). Encoding the per-session plaintexts and multiplying is nearly all
 * of the service's time and every term is independent, so large rounds may go through a
 * {@link ProductEvaluator} that splits them over worker threads (`src/workers/ckks-products-pool.ts`);
 * otherwise {@link sumOfProducts} runs them on the service's thread. Rotations, bias and smudging
 * stay with the service.
 *
 * @module
 */
import { FormatError } from '../../errors.js';
import { CkksCiphertext, CkksContext, addInPlace, free, mulPlain, type CkksParameters, type PlainText } from '../../schemes/ckks/index.js';

/**
 * One plaintext product: input ciphertext `input` times a plaintext, added to output `output`. The
 * plaintext is given as `values` (encoded at the task's weight scale when used) or as `encoded`
 * (a plaintext {@link encodePlaintexts} made ahead of time); exactly one of them.
 */
export interface ProductTerm {
  readonly input: number;
  readonly output: number;
  readonly values?: Float64Array;
  readonly encoded?: Uint8Array;
}

/** A batch of products over serialized ciphertexts (all under one key, fresh, at `inputScale`). */
export interface ProductTask {
  readonly params: CkksParameters;
  readonly keyId: string;
  readonly inputScale: number;
  readonly weightScale: number;
  readonly inputs: readonly Uint8Array[];
  readonly terms: readonly ProductTerm[];
  readonly outputs: number;
}

/**
 * Evaluates product tasks. The result is one or more partial sums per output (serialized; an
 * empty array where a part had no term for that output); the caller adds the parts.
 *
 * Implementations throw what {@link CkksCiphertext.load} throws for a bad input ciphertext:
 * FormatError, KeyMismatchError, InvalidCiphertextError.
 */
export interface ProductEvaluator {
  products(task: ProductTask): Promise<Uint8Array[][]>;
  /** {@link encodePlaintexts} for a batch (the pool spreads it over its threads). */
  encode(request: EncodeRequest): Promise<Uint8Array[]>;
}

/** Values to encode as plaintexts at `scale` (fresh level) for the parameters `params`. */
export interface EncodeRequest {
  readonly params: CkksParameters;
  readonly scale: number;
  readonly values: readonly Float64Array[];
}

/**
 * Encodes each vector at `scale` and serializes it (SEAL's format, for any context of the same
 * parameters); what a prepared session keeps instead of encoding during a round.
 */
export function encodePlaintexts(context: CkksContext, scale: number, values: readonly Float64Array[]): Uint8Array[] {
  return values.map((v) => {
    const plain = context.encode(v, scale);
    try {
      return context.savePlain(plain);
    } finally {
      free(plain);
    }
  });
}

/** The term's plaintext (encoded now, or loaded). The caller frees it. */
function plaintextOf(context: CkksContext, term: ProductTerm, scale: number): PlainText {
  if (term.encoded) return context.loadPlain(term.encoded);
  if (!term.values) throw new FormatError('a product term without a plaintext');
  return context.encode(term.values, scale);
}

/**
 * The sums of a task on this thread with `context` (whose parameters must be `task.params`): one
 * ciphertext per output, null where no term had that output. The caller frees them.
 *
 * @throws FormatError, KeyMismatchError, InvalidCiphertextError for a bad input ciphertext.
 */
export function sumOfProducts(context: CkksContext, task: ProductTask): (CkksCiphertext | null)[] {
  const byInput = new Map<number, ProductTerm[]>();
  for (const t of task.terms) {
    const list = byInput.get(t.input);
    if (list) list.push(t);
    else byInput.set(t.input, [t]);
  }
  const sums: (CkksCiphertext | null)[] = new Array(task.outputs).fill(null);
  try {
    for (const [i, terms] of byInput) {
      const x = CkksCiphertext.load(context, task.keyId, task.inputs[i]!, { levelPrimes: context.topLevel, scale: task.inputScale });
      try {
        for (const t of terms) {
          const plain = plaintextOf(context, t, task.weightScale);
          let prod: CkksCiphertext;
          try {
            prod = mulPlain(x, plain);
          } finally {
            free(plain);
          }
          const sum = sums[t.output];
          if (sum) {
            addInPlace(sum, prod);
            prod.free();
          } else {
            sums[t.output] = prod;
          }
        }
      } finally {
        x.free();
      }
    }
    return sums;
  } catch (e) {
    for (const s of sums) s?.free();
    throw e;
  }
}

/**
 * {@link sumOfProducts}, serialized (what a worker sends back): an empty array where no term had
 * that output.
 *
 * @throws as {@link sumOfProducts}.
 */
export function evaluateProducts(context: CkksContext, task: ProductTask): Uint8Array[] {
  const sums = sumOfProducts(context, task);
  try {
    return sums.map((s) => (s ? s.save() : new Uint8Array(0)));
  } finally {
    for (const s of sums) s?.free();
  }
}
