/**
 * ckks-poly requests on worker threads: each request (a batch of N/2 images) is evaluated whole
 * by one worker, so W workers serve W batches at once with no traffic between them. Batch
 * throughput grows with the cores; the latency of one batch does not change.
 *
 * Node-only (worker_threads through piscina).
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { CompiledPolyNetwork, PolyEvaluator } from '../protocol/ckks-poly/index.js';
import type { PublicBundle } from '../schemes/ckks/index.js';
import { siblingModuleUrl } from './pool-support.js';

/** What a worker receives: the network, the client's public keys and the request bytes. */
export interface PolyWorkerTask {
  readonly net: CompiledPolyNetwork;
  readonly keys: PublicBundle;
  readonly request: Uint8Array;
}

/** A {@link PolyEvaluator} over worker threads. Call {@link destroy} when done. */
export class CkksPolyWorkerPool implements PolyEvaluator {
  readonly threads: number;
  private readonly piscina: Piscina;

  /** @throws {RangeError} if threads is not a positive integer. */
  constructor(options: { readonly threads?: number } = {}) {
    this.threads = options.threads ?? availableParallelism();
    if (!Number.isSafeInteger(this.threads) || this.threads < 1) throw new RangeError('CkksPolyWorkerPool: threads must be >= 1');
    this.piscina = new Piscina({ filename: siblingModuleUrl(import.meta.url, 'ckks-poly-worker'), minThreads: this.threads, maxThreads: this.threads, idleTimeout: 60_000 });
  }

  /** Evaluates one infer request; the answer is a protocol message (an `error` one for bad input). */
  async evaluate(net: CompiledPolyNetwork, keys: PublicBundle, request: Uint8Array): Promise<Uint8Array> {
    const task: PolyWorkerTask = { net, keys, request };
    return (await this.piscina.run(task)) as Uint8Array;
  }

  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }
}
