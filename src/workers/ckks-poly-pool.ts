/**
 * ckks-poly requests on worker threads: each request (a batch of N/2 images) is evaluated whole
 * by one worker, so W workers serve W batches at once with no traffic between them. Batch
 * throughput grows with the cores; the latency of one batch does not change.
 *
 * Node-only (worker_threads through piscina).
 *
 * @module
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import type { CompiledPolyNetwork, PolyEvaluator } from '../protocol/ckks-poly/index.js';
import type { PublicBundle } from '../schemes/ckks/index.js';
import { fixedPool } from './pool-support.js';

/** What a worker receives: the network, the client's public keys and the request bytes. */
export interface PolyWorkerTask {
  readonly net: CompiledPolyNetwork;
  readonly keys: PublicBundle;
  readonly request: Uint8Array;
  /** Receives the fraction of the evaluation done (0–1) as it advances. */
  readonly progress?: MessagePort;
}

/** A {@link PolyEvaluator} over worker threads. Call {@link destroy} when done. */
export class CkksPolyWorkerPool implements PolyEvaluator {
  readonly threads: number;
  private readonly piscina: Piscina;

  /** @throws {RangeError} if threads is not a positive integer. */
  constructor(options: { readonly threads?: number } = {}) {
    ({ threads: this.threads, piscina: this.piscina } = fixedPool(import.meta.url, 'ckks-poly-worker', 'CkksPolyWorkerPool', options.threads));
  }

  /**
   * Evaluates one infer request; the answer is a protocol message (an `error` one for bad input).
   * `onProgress` gets the fraction done (0–1) now and then while the thread works.
   */
  async evaluate(net: CompiledPolyNetwork, keys: PublicBundle, request: Uint8Array, onProgress?: (fraction: number) => void): Promise<Uint8Array> {
    if (!onProgress) return (await this.piscina.run({ net, keys, request } satisfies PolyWorkerTask)) as Uint8Array;
    const channel = new MessageChannel();
    channel.port1.on('message', (fraction: number) => onProgress(fraction));
    try {
      return (await this.piscina.run({ net, keys, request, progress: channel.port2 } satisfies PolyWorkerTask, { transferList: [channel.port2] })) as Uint8Array;
    } finally {
      channel.port1.close();
    }
  }

  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }
}
