/**
 * A session thread's plaintext products on the product threads: the session thread cannot reach
 * the product pool (a piscina pool belongs to the thread that made it), so it sends each large
 * round's products (and each prepared session's encoding) over a MessagePort to the main thread,
 * which hands them to its {@link CkksProductPool} and sends the partial sums back. The ciphertexts
 * and plaintexts move at every hop (transfer lists), so the main thread copies nothing and only
 * dispatches: one round of the reference CNN keeps both cores busy as it did on the main thread.
 *
 * Node-only (worker_threads).
 *
 * @module
 */
import type { MessagePort } from 'node:worker_threads';
import { BlindmlError } from '../errors.js';
import type { EncodeRequest, ProductEvaluator, ProductTask } from '../protocol/ckks-inference/products.js';
import { movableTask, movableValues } from './ckks-products-pool.js';
import { ownsBuffer } from './pool-support.js';

type RelayRequest = { readonly id: number } & ({ readonly products: ProductTask } | { readonly encode: EncodeRequest });
type RelayReply = { readonly id: number } & ({ readonly value: Uint8Array[][] | Uint8Array[] } | { readonly error: { readonly code: string; readonly message: string } });

/** Buffers of the reply's byte arrays (each the product thread's own). */
function buffersOf(value: Uint8Array[][] | Uint8Array[]): ArrayBuffer[] {
  const flat = (value as (Uint8Array | Uint8Array[])[]).flat();
  return [...new Set(flat.filter(ownsBuffer).map((b) => b.buffer as ArrayBuffer))];
}

/** The {@link ProductEvaluator} a session thread uses: every call goes over `port` to {@link serveProducts}. */
export class RelayedProducts implements ProductEvaluator {
  private serial = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();

  constructor(private readonly port: MessagePort) {
    port.on('message', (reply: RelayReply) => {
      const w = this.waiting.get(reply.id);
      if (!w) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) port.unref();
      if ('value' in reply) w.resolve(reply.value);
      else w.reject(reply.error.code === 'ERR_INTERNAL' ? new Error(reply.error.message) : new BlindmlError(reply.error.code, reply.error.message));
    });
    // The port keeps its thread alive only while a call waits for its answer.
    port.unref();
  }

  /** Moves the task's buffers to the main thread (the round uses them no more). */
  products(task: ProductTask): Promise<Uint8Array[][]> {
    const { task: moved, transferList } = movableTask(task);
    return this.call({ id: ++this.serial, products: moved }, transferList) as Promise<Uint8Array[][]>;
  }

  encode(request: EncodeRequest): Promise<Uint8Array[]> {
    const { values, transferList } = movableValues(request.values);
    return this.call({ id: ++this.serial, encode: { ...request, values } }, transferList) as Promise<Uint8Array[]>;
  }

  private call(request: RelayRequest, transferList: ArrayBuffer[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.set(request.id, { resolve, reject });
      this.port.ref();
      this.port.postMessage(request, transferList);
    });
  }
}

/**
 * Answers a session thread's {@link RelayedProducts} on `port` with `evaluator` (on the main
 * thread: it only dispatches, the work runs on the evaluator's threads).
 */
export function serveProducts(port: MessagePort, evaluator: ProductEvaluator): void {
  port.on('message', (request: RelayRequest) => {
    const run = 'products' in request ? evaluator.products(request.products) : evaluator.encode(request.encode);
    run.then(
      (value) => port.postMessage({ id: request.id, value } satisfies RelayReply, buffersOf(value)),
      (e: unknown) => {
        const known = e instanceof BlindmlError;
        port.postMessage({ id: request.id, error: { code: known ? e.code : 'ERR_INTERNAL', message: known ? e.message.slice(0, 2000) : 'internal error in a CKKS product thread' } } satisfies RelayReply);
      },
    );
  });
  port.unref();
}
