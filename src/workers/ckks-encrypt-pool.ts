/**
 * The CKKS client's encryptions on worker threads. Each worker loads only the client's public key
 * (never the secret key), keeps its own pool of precomputed encryptions of zero, and answers with
 * serialized ciphertexts; a round's vectors are cut into one part per thread.
 *
 * Node-only (worker_threads through piscina).
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { BlindmlError, FormatError, KeyMismatchError } from '../errors.js';
import type { CkksEncryptor, CkksEncryptorFactory } from '../protocol/ckks-inference/client.js';
import type { CkksParameters } from '../schemes/ckks/index.js';
import { allSettledOrThrow, siblingModuleUrl } from './pool-support.js';

/** A task for a worker: precompute zeros, encrypt vectors, or drop a key's state. */
export type EncryptTask =
  | { readonly kind: 'precompute'; readonly params: CkksParameters; readonly publicKey: Uint8Array; readonly scale: number; readonly count: number }
  | { readonly kind: 'encrypt'; readonly params: CkksParameters; readonly publicKey: Uint8Array; readonly scale: number; readonly vectors: Float64Array[] }
  | { readonly kind: 'drop'; readonly publicKey: Uint8Array };

/** What a worker answers. */
export type EncryptReply = { readonly outputs: Uint8Array[] } | { readonly error: { readonly code: string; readonly message: string } };

const ERRORS: Record<string, new (message: string) => BlindmlError> = { ERR_FORMAT: FormatError, ERR_KEY_MISMATCH: KeyMismatchError };

/** A {@link CkksEncryptorFactory} over worker threads. Call {@link destroy} when done. */
export class CkksEncryptPool implements CkksEncryptorFactory {
  readonly threads: number;
  private readonly piscina: Piscina;

  /** @throws RangeError if threads is not a positive integer. */
  constructor(options: { readonly threads?: number } = {}) {
    this.threads = options.threads ?? availableParallelism();
    if (!Number.isSafeInteger(this.threads) || this.threads < 1) throw new RangeError('CkksEncryptPool: threads must be >= 1');
    this.piscina = new Piscina({ filename: siblingModuleUrl(import.meta.url, 'ckks-encrypt-worker'), minThreads: this.threads, maxThreads: this.threads, idleTimeout: 60_000 });
  }

  /** An encryptor for one client's public key (a blindml envelope). */
  forKeys(params: CkksParameters, publicKey: Uint8Array): CkksEncryptor {
    const run = async (task: EncryptTask, transferList: ArrayBuffer[] = []): Promise<Uint8Array[]> => {
      const reply = (await this.piscina.run(task, { transferList })) as EncryptReply;
      if (!('error' in reply)) return reply.outputs;
      const Known = ERRORS[reply.error.code];
      throw Known ? new Known(reply.error.message) : new Error(reply.error.message);
    };
    const threads = this.threads;
    return {
      async encrypt(vectors: Float64Array[], scale: number): Promise<Uint8Array[]> {
        const per = Math.ceil(vectors.length / threads);
        const parts = Array.from({ length: Math.ceil(vectors.length / per) }, (_, k) => vectors.slice(k * per, (k + 1) * per));
        const done = await allSettledOrThrow(parts.map((part) => run({ kind: 'encrypt', params, publicKey, scale, vectors: part })));
        return done.flat();
      },
      async precompute(count: number, scale: number): Promise<void> {
        const per = Math.ceil(count / threads);
        await allSettledOrThrow(Array.from({ length: threads }, (_, k) => run({ kind: 'precompute', params, publicKey, scale, count: Math.max(0, Math.min(per, count - k * per)) })));
      },
      dispose(): void {
        // Every thread holds this key's zeros: ask each to drop them (failures only leave memory to the pool's end).
        for (let k = 0; k < threads; k++) void run({ kind: 'drop', publicKey }).catch(() => undefined);
      },
    };
  }

  async destroy(): Promise<void> {
    await this.piscina.destroy();
  }
}
