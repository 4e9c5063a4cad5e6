/**
 * The two-server protocols' bulk arithmetic (`TwoServerCompute`) on worker threads: products of
 * powers, encryption, decryption and packing, cut into chunks spread over the threads. Same
 * results as `LocalTwoServerCompute` (every task runs the same kernels).
 *
 * Node-only (worker_threads through piscina).
 *
 * @module
 */
import type { Piscina } from 'piscina';
import type { PowRow } from '../math/straus.js';
import type { TwoServerCompute } from '../protocol/two-server/compute.js';
import { MIN_SECURE_BITS, type PaillierPrivateKey, type PaillierPublicKey } from '../schemes/paillier/keys.js';
import { allSettledOrThrow, fixedPool } from './pool-support.js';
import type { TwoServerTask } from './two-server-tasks.js';

/** Options of {@link TwoServerWorkerPool}. */
export interface TwoServerPoolOptions {
  /** Worker threads; defaults to the machine's available parallelism. */
  threads?: number;
  /** Chunks per thread a bulk call is cut into. Default 3. */
  chunksPerThread?: number;
}

export class TwoServerWorkerPool implements TwoServerCompute {
  readonly threads: number;
  private readonly piscina: Piscina;
  private readonly chunksPerThread: number;

  constructor(options: TwoServerPoolOptions = {}) {
    ({ threads: this.threads, piscina: this.piscina } = fixedPool(import.meta.url, 'two-server-worker', 'TwoServerWorkerPool', options.threads));
    this.chunksPerThread = options.chunksPerThread ?? 3;
  }

  /** Rows spread over the workers; each task gets only the bases its rows use. */
  async powProducts(bases: readonly bigint[], rows: readonly PowRow[], m: bigint): Promise<bigint[]> {
    const tasks: Promise<bigint[]>[] = [];
    for (const [from, to] of this.ranges(rows.length)) {
      const remap = new Map<number, number>();
      const local: bigint[] = [];
      const part = rows.slice(from, to).map((row) => ({
        index: row.index.map((i) => {
          let j = remap.get(i);
          if (j === undefined) {
            const b = bases[i];
            if (b === undefined) throw new RangeError(`powProducts: base index ${i} out of range`);
            j = local.length;
            local.push(b);
            remap.set(i, j);
          }
          return j;
        }),
        exps: [...row.exps],
      }));
      tasks.push(this.run({ kind: 'pow', m, bases: local, rows: part }));
    }
    return (await allSettledOrThrow(tasks)).flat();
  }

  encrypt(key: PaillierPublicKey, values: readonly bigint[]): Promise<bigint[]> {
    const insecure = key.bits < MIN_SECURE_BITS;
    return this.chunked(values, 1, (chunk) => ({ kind: 'encrypt', n: key.n, insecure, values: chunk }));
  }

  decrypt(key: PaillierPrivateKey, values: readonly bigint[]): Promise<bigint[]> {
    const { n } = key.publicKey;
    const insecure = key.publicKey.bits < MIN_SECURE_BITS;
    return this.chunked(values, 1, (chunk) => ({ kind: 'decrypt', n, primes: [...key.primes], insecure, values: chunk }));
  }

  pack(values: readonly bigint[], slotBits: number, perCiphertext: number, nSquared: bigint): Promise<bigint[]> {
    return this.chunked(values, perCiphertext, (chunk) => ({ kind: 'pack', nSquared, values: chunk, slotBits, perCiphertext }));
  }

  /** Stops the workers. */
  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }

  private run(task: TwoServerTask): Promise<bigint[]> {
    return this.piscina.run(task) as Promise<bigint[]>;
  }

  /** [from, to) ranges cutting `count` items into at most threads·chunksPerThread chunks. */
  private ranges(count: number, unit = 1): [number, number][] {
    const units = Math.ceil(count / unit);
    const chunks = Math.max(1, Math.min(units, this.threads * this.chunksPerThread));
    const out: [number, number][] = [];
    let start = 0;
    for (let c = 0; c < chunks; c++) {
      const size = Math.floor(units / chunks) + (c < units % chunks ? 1 : 0);
      if (size === 0) continue;
      out.push([start * unit, Math.min(count, (start + size) * unit)]);
      start += size;
    }
    return out;
  }

  /** Runs `makeTask` on chunks whose sizes are multiples of `unit` (packing groups stay whole). */
  private async chunked(values: readonly bigint[], unit: number, makeTask: (chunk: bigint[]) => TwoServerTask): Promise<bigint[]> {
    if (values.length === 0) return [];
    const tasks = this.ranges(values.length, unit).map(([from, to]) => this.run(makeTask(values.slice(from, to))));
    return (await allSettledOrThrow(tasks)).flat();
  }
}
