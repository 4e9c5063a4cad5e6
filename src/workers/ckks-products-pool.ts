/**
 * The plaintext products of interactive CKKS rounds on worker threads: a round's task is cut into
 * parts by input ciphertext, each part evaluated by one worker (its own SEAL context), and the
 * service adds the partial sums. Rotations, bias and smudging stay on the service's thread.
 *
 * Node-only (worker_threads through piscina).
 *
 * @module
 */
import type { Piscina } from 'piscina';
import { BlindmlError, FormatError, InvalidCiphertextError, KeyMismatchError } from '../errors.js';
import type { EncodeRequest, ProductEvaluator, ProductTask, ProductTerm } from '../protocol/ckks-inference/products.js';
import type { CkksParameters } from '../schemes/ckks/index.js';
import { allSettledOrThrow, fixedPool, ownsBuffer } from './pool-support.js';

/** What a worker answers: the partial sums, or the error a bad input caused. */
export type ProductReply = { readonly outputs: Uint8Array[] } | { readonly error: { readonly code: string; readonly message: string } };

/** What a worker answers to an encoding request. */
export type EncodeReply = { readonly plaintexts: Uint8Array[] } | { readonly error: { readonly code: string; readonly message: string } };

const ERRORS: Record<string, new (message: string) => BlindmlError> = {
  ERR_FORMAT: FormatError,
  ERR_KEY_MISMATCH: KeyMismatchError,
  ERR_INVALID_CIPHERTEXT: InvalidCiphertextError,
};

/** A worker's error as the typed error it stands for (a plain Error for anything else). */
function rethrow(error: { readonly code: string; readonly message: string }): never {
  const Known = ERRORS[error.code];
  throw Known ? new Known(error.message) : new Error(error.message);
}

/** Splits a task into at most `parts` parts of consecutive inputs with about equal numbers of terms. */
export function splitTask(task: ProductTask, parts: number): ProductTask[] {
  const byInput: ProductTerm[][] = task.inputs.map(() => []);
  for (const t of task.terms) byInput[t.input]!.push(t);
  const used = byInput.map((list, i) => ({ list, i })).filter((e) => e.list.length > 0);
  const count = Math.max(1, Math.min(parts, used.length));
  const perPart = task.terms.length / count;
  const out: ProductTask[] = [];
  let at = 0;
  for (let k = 0; k < count && at < used.length; k++) {
    const inputs: Uint8Array[] = [];
    const terms: ProductTerm[] = [];
    while (at < used.length && (k === count - 1 || terms.length < perPart)) {
      const { list, i } = used[at++]!;
      for (const t of list) terms.push({ ...t, input: inputs.length });
      inputs.push(task.inputs[i]!);
    }
    out.push({ ...task, inputs, terms });
  }
  return out;
}

/**
 * The task with every input and plaintext in a buffer of its own, and those buffers, to post with
 * it as its transfer list: a view that is the whole of its buffer (not yet in `moved`) moves as it
 * is, any other is copied. The caller must not use what moves again.
 */
export function movableTask(task: ProductTask, moved = new Set<ArrayBufferLike>()): { task: ProductTask; transferList: ArrayBuffer[] } {
  const own = ownedBy(moved);
  const inputs = task.inputs.map(own);
  const terms = task.terms.map((t) => (t.values ? { ...t, values: own(t.values) } : { ...t, encoded: own(t.encoded!) }));
  const transferList = [...new Set([...inputs, ...terms.map((t) => (t.values ?? t.encoded)!)].map((b) => b.buffer as ArrayBuffer))];
  return { task: { ...task, inputs, terms }, transferList };
}

/** The values, each in a buffer of its own, and those buffers (as {@link movableTask}). */
export function movableValues(values: readonly Float64Array[]): { values: Float64Array[]; transferList: ArrayBuffer[] } {
  const out = values.map(ownedBy(new Set()));
  return { values: out, transferList: out.map((v) => v.buffer as ArrayBuffer) };
}

/** The view itself the first time its buffer (wholly its own) is seen, else a copy. */
function ownedBy(moved: Set<ArrayBufferLike>): <T extends Uint8Array | Float64Array>(b: T) => T {
  return (b) => {
    if (!ownsBuffer(b) || moved.has(b.buffer)) return b.slice() as typeof b;
    moved.add(b.buffer);
    return b;
  };
}

/** A {@link ProductEvaluator} over worker threads. Call {@link destroy} when done. */
export class CkksProductPool implements ProductEvaluator {
  readonly threads: number;
  private readonly piscina: Piscina;

  /** @throws RangeError if threads is not a positive integer. */
  constructor(options: { readonly threads?: number } = {}) {
    ({ threads: this.threads, piscina: this.piscina } = fixedPool(import.meta.url, 'ckks-products-worker', 'CkksProductPool', options.threads));
  }

  /** Creates each worker's SEAL context ahead of time (otherwise the first round pays for it). */
  async prepare(params: CkksParameters): Promise<void> {
    const empty: ProductTask = { params, keyId: '', inputScale: 1, weightScale: 1, inputs: [], terms: [], outputs: 0 };
    await allSettledOrThrow(Array.from({ length: this.threads }, () => this.piscina.run(empty)));
  }

  /**
   * Evaluates the task in parts, about two per thread. Memory moves to the workers rather than
   * being copied: the terms' plaintexts (values or encoded) that are the whole of their own buffer,
   * and every such input, are detached here (a round's ciphertexts and plaintexts are not used
   * again); inputs that are views of a shared buffer are copied.
   *
   * @throws FormatError, KeyMismatchError, InvalidCiphertextError for a bad input ciphertext.
   */
  async products(task: ProductTask): Promise<Uint8Array[][]> {
    const moved = new Set<ArrayBufferLike>();
    // Every copy is made before anything is posted (posting detaches what it moves).
    const prepared = splitTask(task, this.threads * 2).map((part) => movableTask(part, moved));
    const parts = prepared.map((p) => this.piscina.run(p.task, { transferList: p.transferList }) as Promise<ProductReply>);
    return (await allSettledOrThrow(parts)).map((r) => ('error' in r ? rethrow(r.error) : r.outputs));
  }

  /**
   * Encodes and serializes the plaintexts on the worker threads, the batch cut into one part per
   * thread; the value arrays move to the workers (detached here).
   */
  async encode(request: EncodeRequest): Promise<Uint8Array[]> {
    const per = Math.ceil(request.values.length / this.threads);
    const parts: Promise<EncodeReply>[] = [];
    for (let at = 0; at < request.values.length; at += per) {
      const values = request.values.slice(at, at + per);
      const transferList = [...new Set(values.filter(ownsBuffer).map((v) => v.buffer as ArrayBuffer))];
      parts.push(this.piscina.run({ encode: { ...request, values } }, { transferList }) as Promise<EncodeReply>);
    }
    return (await allSettledOrThrow(parts)).flatMap((r) => ('error' in r ? rethrow(r.error) : r.plaintexts));
  }

  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }
}
