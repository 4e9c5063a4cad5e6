/**
 * ckks-poly requests on worker threads: each request (a batch of N/2 images) is evaluated whole
 * by one worker, so W workers serve W batches at once with no traffic between them. Batch
 * throughput grows with the cores; the latency of one batch does not change.
 *
 * Node-only (worker_threads through piscina).
 *
 * @module
 */
import type { Piscina } from 'piscina';
import type { CompiledPolyNetwork, PolyEvaluator } from '../protocol/ckks-poly/index.js';
import type { PublicBundle } from '../schemes/ckks/index.js';
import { fixedPool } from './pool-support.js';

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
    ({ threads: this.threads, piscina: this.piscina } = fixedPool(import.meta.url, 'ckks-poly-worker', 'CkksPolyWorkerPool', options.threads));
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
