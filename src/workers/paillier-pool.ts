/**
 * Spreads bulk Paillier work (encryption, decryption, noise for pools, matrix–vector products)
 * over worker threads. Results are identical to the single-thread functions: every task runs the
 * same code ({@link runPaillierTask}), only in another thread.
 *
 * Node-only (worker_threads through piscina); the browser uses Web Workers instead.
 *
 * @module
 */
import { BroadcastChannel } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { PaillierCiphertext } from '../schemes/paillier/ciphertext.js';
import { MIN_SECURE_BITS, type PaillierPrivateKey, type PaillierPublicKey } from '../schemes/paillier/keys.js';
import { ciphertextValues, type IntegerWeights } from '../schemes/paillier/linear.js';
import { sliceRows, type IntegerRows, type RowEvaluator } from '../tensor/paillier-sparse.js';
import { DEFAULT_KEY_CACHE, type KeyCacheLimits, type PaillierTask } from './paillier-tasks.js';
import { allSettledOrThrow, fixedPool } from './pool-support.js';

/** Options of {@link PaillierWorkerPool}. */
export interface PaillierPoolOptions {
  /** Worker threads; defaults to the machine's available parallelism. */
  threads?: number;
  /** Tasks per thread a bulk call is cut into (more evens out uneven work). Default 4. */
  chunksPerThread?: number;
  /** Bounds of each thread's key cache (keys with their DJN tables). Default 8 keys, 60 s idle. */
  keyCache?: KeyCacheLimits;
}

let pools = 0;

export class PaillierWorkerPool implements RowEvaluator {
  readonly threads: number;
  private readonly piscina: Piscina;
  private readonly chunksPerThread: number;
  /** Tells every thread of this pool (and no other) which keys to drop. */
  private readonly channel: BroadcastChannel;

  constructor(options: PaillierPoolOptions = {}) {
    const channel = `blindml-paillier-keys-${process.pid}-${++pools}`;
    const workerData = { keyCache: options.keyCache ?? DEFAULT_KEY_CACHE, channel };
    ({ threads: this.threads, piscina: this.piscina } = fixedPool(import.meta.url, 'paillier-worker', 'PaillierWorkerPool', options.threads, workerData));
    this.chunksPerThread = options.chunksPerThread ?? 4;
    this.channel = new BroadcastChannel(channel);
    this.channel.unref();
  }

  /**
   * Drops the key with modulus n, and its DJN table, from every thread (asynchronously: a thread
   * busy with a task drops it when the task ends). Safe to call for a key the threads never saw.
   */
  forgetKey(n: bigint): void {
    this.channel.postMessage({ forget: n });
  }

  /** Keys one of the threads holds (with one thread: the pool's whole cache). */
  async cachedKeys(): Promise<number> {
    const [count] = await this.run({ kind: 'cached' });
    return Number(count);
  }

  /** Encrypts many integers; each worker builds its own DJN table on first use. */
  async encryptMany(key: PaillierPublicKey, values: readonly bigint[]): Promise<PaillierCiphertext[]> {
    const insecure = key.bits < MIN_SECURE_BITS;
    const parts = await this.mapChunks(values, (chunk) => ({ kind: 'encrypt', n: key.n, insecure, values: chunk }));
    return parts.map((c) => new PaillierCiphertext(key, c, true));
  }

  /** Computes `count` noise values (r^n mod n²) for a {@link NoisePool}. */
  async noise(key: PaillierPublicKey, count: number): Promise<bigint[]> {
    const insecure = key.bits < MIN_SECURE_BITS;
    const sizes = this.split(count);
    const parts = await allSettledOrThrow(sizes.map((c) => this.run({ kind: 'noise', n: key.n, insecure, count: c })));
    return parts.flat();
  }

  /** Decrypts many ciphertexts to plaintexts in [0, n). @throws KeyMismatchError, InvalidCiphertextError. */
  async decryptMany(key: PaillierPrivateKey, cts: readonly PaillierCiphertext[]): Promise<bigint[]> {
    const values = ciphertextValues(cts, key.publicKey);
    const { n } = key.publicKey;
    const insecure = key.publicKey.bits < MIN_SECURE_BITS;
    return this.mapChunks(values, (chunk) => ({ kind: 'decrypt', n, primes: [...key.primes], insecure, values: chunk }));
  }

  /**
   * y = W·x + b with rows spread over the workers (see `matVec` in `blindml/paillier`).
   *
   * @throws KeyMismatchError; RangeError if W's size does not match.
   */
  async matVec(cts: readonly PaillierCiphertext[], weights: IntegerWeights, rows: number, bias?: readonly bigint[]): Promise<PaillierCiphertext[]> {
    if (cts.length === 0) throw new RangeError('matVec: no ciphertexts');
    if (weights.length !== rows * cts.length) throw new RangeError(`matVec: expected ${rows}×${cts.length} weights, got ${weights.length}`);
    if (bias && bias.length !== rows) throw new RangeError(`matVec: expected ${rows} biases, got ${bias.length}`);
    const key = cts[0]!.publicKey;
    const values = ciphertextValues(cts, key);
    const insecure = key.bits < MIN_SECURE_BITS;
    const tasks: Promise<bigint[]>[] = [];
    let start = 0;
    for (const size of this.split(rows)) {
      const task: PaillierTask = { kind: 'matvec', n: key.n, insecure, values, weights, rowStart: start, rowEnd: start + size };
      if (bias) task.bias = [...bias];
      tasks.push(this.run(task));
      start += size;
    }
    return (await allSettledOrThrow(tasks)).flat().map((c) => new PaillierCiphertext(key, c, false));
  }

  /**
   * Sparse integer rows on ciphertexts (the encrypted linear layers), rows spread over the workers.
   * Same results as `evaluateRows` on one thread.
   */
  async evaluate(key: PaillierPublicKey, values: readonly bigint[], rows: IntegerRows, rowCount: number): Promise<bigint[]> {
    const insecure = key.bits < MIN_SECURE_BITS;
    const tasks: Promise<bigint[]>[] = [];
    let start = 0;
    for (const size of this.split(rowCount)) {
      const part = sliceRows(rows, start, start + size);
      tasks.push(this.run({ kind: 'rows', n: key.n, insecure, values, rows: part, rowStart: 0, rowEnd: size }));
      start += size;
    }
    return (await allSettledOrThrow(tasks)).flat();
  }

  /** Raises values to their factors and packs them (see `packRaw`), groups spread over the workers. */
  async pack(key: PaillierPublicKey, values: readonly bigint[], factors: readonly bigint[] | null, slotBits: number, perCiphertext: number): Promise<bigint[]> {
    const groups = Math.ceil(values.length / perCiphertext);
    const tasks: Promise<bigint[]>[] = [];
    let group = 0;
    for (const size of this.split(groups)) {
      const from = group * perCiphertext;
      const to = Math.min(values.length, (group + size) * perCiphertext);
      tasks.push(this.run({ kind: 'pack', n: key.n, values: values.slice(from, to), factors: factors ? factors.slice(from, to) : null, slotBits, perCiphertext }));
      group += size;
    }
    return (await allSettledOrThrow(tasks)).flat();
  }

  /** Stops the workers. */
  async destroy(): Promise<void> {
    this.channel.close();
    await this.piscina.destroy();
  }

  private run(task: PaillierTask): Promise<bigint[]> {
    return this.piscina.run(task) as Promise<bigint[]>;
  }

  /** Sizes of the chunks `count` items are cut into (none empty). */
  private split(count: number): number[] {
    const chunks = Math.max(1, Math.min(count, this.threads * this.chunksPerThread));
    const base = Math.floor(count / chunks);
    const extra = count % chunks;
    return Array.from({ length: chunks }, (_, i) => base + (i < extra ? 1 : 0)).filter((s) => s > 0);
  }

  private async mapChunks(items: readonly bigint[], makeTask: (chunk: bigint[]) => PaillierTask): Promise<bigint[]> {
    const tasks: Promise<bigint[]>[] = [];
    let start = 0;
    for (const size of this.split(items.length)) {
      tasks.push(this.run(makeTask(items.slice(start, start + size))));
      start += size;
    }
    return (await allSettledOrThrow(tasks)).flat();
  }
}
