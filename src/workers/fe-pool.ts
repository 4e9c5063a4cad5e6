/**
 * Spreads the bulk work of functional-encryption training (encryption of many vectors,
 * decryption of many ciphertexts under many function keys, with their discrete logarithms) over
 * worker threads. Every task runs the same engine code as the single-thread path
 * (`LocalFeCompute`), so decrypted integers are identical; ciphertexts differ only in their fresh
 * randomness.
 *
 * Node-only (worker_threads through piscina).
 *
 * @module
 */
import type { Piscina } from 'piscina';
import type { DecryptResult, FeCompute, SparseJob } from '../protocol/fe-training/compute.js';
import type { Ciphertext, FunctionKey, MasterPublicKey } from '../schemes/fe/index.js';
import { reviveFeError, type FeTask, type FeTaskResult } from './fe-tasks.js';
import { allSettledOrThrow, fixedPool } from './pool-support.js';

/** Options of {@link FeWorkerPool}. */
export interface FePoolOptions {
  /** Worker threads; defaults to the machine's available parallelism. */
  readonly threads?: number;
  /** Discrete-log table cap of each worker's engine (entries). Default 2^20. */
  readonly maxDlogTable?: number;
}

/** Cuts `count` items into at most `parts` contiguous non-empty ranges. */
function ranges(count: number, parts: number): [number, number][] {
  const n = Math.max(1, Math.min(count, parts));
  const base = Math.floor(count / n);
  const extra = count % n;
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < n; i++) {
    const size = base + (i < extra ? 1 : 0);
    if (size > 0) out.push([start, start + size]);
    start += size;
  }
  return out;
}

/** {@link FeCompute} on worker threads. */
export class FeWorkerPool implements FeCompute {
  readonly threads: number;
  private readonly maxDlogTable: number;
  private readonly piscina: Piscina;

  /** @throws {RangeError} if threads is not a positive integer. */
  constructor(options: FePoolOptions = {}) {
    ({ threads: this.threads, piscina: this.piscina } = fixedPool(import.meta.url, 'fe-worker', 'FeWorkerPool', options.threads));
    this.maxDlogTable = options.maxDlogTable ?? 1 << 20;
  }

  private async run(task: FeTask): Promise<FeTaskResult> {
    const r = (await this.piscina.run(task)) as FeTaskResult;
    if (r.kind === 'error') throw reviveFeError(r);
    return r;
  }

  /**
   * Encrypts the vectors, one contiguous share per thread (each thread builds the h_i tables
   * for its share once).
   *
   * @throws (rejects) RangeError for a vector of the wrong length or an entry out of ±2^24.
   */
  async encrypt(mpk: MasterPublicKey, xs: readonly Int32Array[]): Promise<Ciphertext[]> {
    const parts = await allSettledOrThrow(
      ranges(xs.length, this.threads).map(([a, b]) =>
        this.run({ kind: 'encrypt', maxDlogTable: this.maxDlogTable, mpk, vectors: xs.slice(a, b) }),
      ),
    );
    return parts.flatMap((p) => (p.kind === 'encrypt' ? p.cts : []));
  }

  /**
   * Decrypts every ciphertext under every key, ciphertexts spread over the threads.
   *
   * @throws (rejects) KeyMismatchError, InvalidKeyError, InnerProductOutOfBoundError.
   */
  async decryptMany(cts: readonly Ciphertext[], keys: readonly FunctionKey[], bound: number): Promise<DecryptResult> {
    const split = ranges(cts.length, this.threads * 2);
    const parts = await allSettledOrThrow(
      split.map(([a, b]) => this.run({ kind: 'decrypt', maxDlogTable: this.maxDlogTable, cts: cts.slice(a, b), keys: [...keys], bound })),
    );
    const values = new Float64Array(cts.length * keys.length);
    let dlogMs = 0;
    let dlogCount = 0;
    parts.forEach((p, i) => {
      if (p.kind !== 'decrypt') return;
      values.set(p.values, (split[i]?.[0] ?? 0) * keys.length);
      dlogMs += p.dlogMs;
      dlogCount += p.dlogCount;
    });
    return { values, dlogMs, dlogCount };
  }

  /**
   * Sparse decryption jobs spread over the threads (contiguous shares; values in job order).
   *
   * @throws (rejects) KeyMismatchError, InvalidKeyError, InnerProductOutOfBoundError.
   */
  async decryptSparse(jobs: readonly SparseJob[], bound: number): Promise<DecryptResult> {
    const split = ranges(jobs.length, this.threads * 2);
    const parts = await allSettledOrThrow(
      split.map(([a, b]) => this.run({ kind: 'decrypt-sparse', maxDlogTable: this.maxDlogTable, jobs: jobs.slice(a, b), bound })),
    );
    const chunks: Float64Array[] = [];
    let dlogMs = 0;
    let dlogCount = 0;
    for (const p of parts) {
      if (p.kind !== 'decrypt') continue;
      chunks.push(p.values);
      dlogMs += p.dlogMs;
      dlogCount += p.dlogCount;
    }
    const values = new Float64Array(chunks.reduce((s, c) => s + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      values.set(c, at);
      at += c.length;
    }
    return { values, dlogMs, dlogCount };
  }

  /** Stops the workers. */
  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }
}
