/**
 * Where the bulk FE work of a training run happens: encryption (data owner) and decryption with
 * discrete logarithms (server). {@link LocalFeCompute} runs it on the calling thread; the worker
 * pool in `blindml/workers` (`FeWorkerPool`) spreads the same calls over threads. Both return the
 * same decrypted integers; ciphertexts differ only in their fresh randomness.
 *
 * @module
 */
import type { Ciphertext, FeEngine, FunctionKey, MasterPublicKey, SparseFunctionKey } from '../../schemes/fe/index.js';

/** One ciphertext and the sparse keys to apply to it. */
export interface SparseJob {
  readonly ct: Ciphertext;
  readonly keys: readonly SparseFunctionKey[];
}

/** Decrypted inner products with the discrete-log share of the time. */
export interface DecryptResult {
  /** result[c·keys + k] = <x_c, y_k>. */
  readonly values: Float64Array;
  /** Milliseconds spent in bounded discrete logarithms (summed over threads). */
  readonly dlogMs: number;
  readonly dlogCount: number;
}

/** Bulk FE operations, asynchronous so that they can run on other threads. */
export interface FeCompute {
  /**
   * Encrypts each vector under `mpk`.
   *
   * @throws {RangeError} (rejects) if a vector has the wrong length or an entry out of ±2^24.
   */
  encrypt(mpk: MasterPublicKey, xs: readonly Int32Array[]): Promise<Ciphertext[]>;
  /**
   * <x_c, y_k> for every ciphertext c and key k (see `FeEngine.decryptMany`).
   *
   * @throws (rejects) KeyMismatchError, InvalidKeyError, InnerProductOutOfBoundError.
   */
  decryptMany(cts: readonly Ciphertext[], keys: readonly FunctionKey[], bound: number): Promise<DecryptResult>;
  /**
   * For each job, <x, y> for each of its sparse keys (see `FeEngine.decryptSparse`); the values
   * of all jobs concatenated in order.
   *
   * @throws (rejects) KeyMismatchError, InvalidKeyError, InnerProductOutOfBoundError.
   */
  decryptSparse(jobs: readonly SparseJob[], bound: number): Promise<DecryptResult>;
  /** Releases threads, if any. */
  destroy(): Promise<void>;
}

/** {@link FeCompute} on the calling thread, with one engine. */
export class LocalFeCompute implements FeCompute {
  constructor(readonly engine: FeEngine) {}

  encrypt(mpk: MasterPublicKey, xs: readonly Int32Array[]): Promise<Ciphertext[]> {
    try {
      return Promise.resolve(this.engine.encrypt(mpk, xs));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  decryptMany(cts: readonly Ciphertext[], keys: readonly FunctionKey[], bound: number): Promise<DecryptResult> {
    try {
      const { dlogMs, dlogCount } = this.engine.stats;
      const values = this.engine.decryptMany(cts, keys, bound);
      return Promise.resolve({ values, dlogMs: this.engine.stats.dlogMs - dlogMs, dlogCount: this.engine.stats.dlogCount - dlogCount });
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  decryptSparse(jobs: readonly SparseJob[], bound: number): Promise<DecryptResult> {
    try {
      return Promise.resolve(sparseJobs(this.engine, jobs, bound));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  destroy(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Runs sparse decryption jobs on one engine (shared by the local path and the workers).
 *
 * @throws KeyMismatchError, InvalidKeyError, InnerProductOutOfBoundError.
 */
export function sparseJobs(engine: FeEngine, jobs: readonly SparseJob[], bound: number): DecryptResult {
  const { dlogMs, dlogCount } = engine.stats;
  const total = jobs.reduce((s, j) => s + j.keys.length, 0);
  const values = new Float64Array(total);
  let at = 0;
  for (const job of jobs) {
    values.set(engine.decryptSparse(job.ct, job.keys, bound), at);
    at += job.keys.length;
  }
  return { values, dlogMs: engine.stats.dlogMs - dlogMs, dlogCount: engine.stats.dlogCount - dlogCount };
}
