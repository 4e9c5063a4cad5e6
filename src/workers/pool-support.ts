/**
 * Helpers shared by the worker pools: a fixed-size piscina pool, where a worker entry module lives (beside the module that
 * starts it, as TypeScript source under tsx and as compiled JavaScript from dist/), and waiting
 * for every task of a call before reporting its failure.
 *
 * @module
 */

import { availableParallelism } from 'node:os';
import { Piscina, transferableSymbol, valueSymbol } from 'piscina';

/**
 * A pool of exactly `threads` workers (default: the machine's parallelism) running the sibling
 * module `worker` of `base`, kept for a minute when idle. With `workerData` (which reaches each
 * thread) the threads also run their event loops between tasks (piscina's `atomics: 'async'`),
 * so their timers and channel messages are handled while they wait.
 *
 * @throws RangeError (naming `owner`) if threads is not a positive integer.
 */
export function fixedPool(base: string, worker: string, owner: string, threads = availableParallelism(), workerData?: unknown): { threads: number; piscina: Piscina } {
  if (!Number.isSafeInteger(threads) || threads < 1) throw new RangeError(`${owner}: threads must be >= 1`);
  return { threads, piscina: new Piscina({ filename: siblingModuleUrl(base, worker), minThreads: threads, maxThreads: threads, idleTimeout: 60_000, ...(workerData === undefined ? {} : { workerData, atomics: 'async' as const }) }) };
}

/** URL of the sibling module `name` (no extension) of the module whose URL is `base`. */
export function siblingModuleUrl(base: string, name: string): string {
  const ext = base.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, base).href;
}

/**
 * Like Promise.all, but waits for every task to settle before rejecting with the first failure:
 * a pool must not be destroyed while tasks of a failed call are still running (piscina then
 * raises an uncaught "Unexpected message from Worker").
 */
export async function allSettledOrThrow<T>(tasks: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** True if the view is the whole of an ordinary (transferable) buffer. */
export function ownsBuffer(b: ArrayBufferView): boolean {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && !(b.buffer instanceof SharedArrayBuffer);
}

/** A worker's reply whose byte arrays move to the caller's thread instead of being copied. */
class MovedReply {
  constructor(
    private readonly reply: object,
    private readonly buffers: ArrayBuffer[],
  ) {}
  get [transferableSymbol](): object {
    return this.buffers;
  }
  get [valueSymbol](): object {
    return this.reply;
  }
}

/**
 * What a worker returns so that the buffers of `views` that are the whole of their own buffer move
 * with `reply` (piscina's transfer); the others are copied. The worker must not use them again.
 */
export function moveReply(reply: object, views: readonly ArrayBufferView[]): unknown {
  return Piscina.move(new MovedReply(reply, [...new Set(views.filter(ownsBuffer).map((v) => v.buffer as ArrayBuffer))]));
}
