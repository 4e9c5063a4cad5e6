/**
 * Helpers shared by the worker pools: where a worker entry module lives (beside the module that
 * starts it, as TypeScript source under tsx and as compiled JavaScript from dist/), and waiting
 * for every task of a call before reporting its failure.
 *
 * @module
 */

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
