/**
 * Worker-thread entry point for {@link PaillierWorkerPool} (loaded by piscina). The thread's key
 * cache takes its bounds from the pool (`workerData`) and listens on the pool's broadcast channel
 * for keys to drop, so a key the service lets go of leaves every thread at once.
 *
 * @module
 */
import { BroadcastChannel } from 'node:worker_threads';
import { workerData } from 'piscina';
import { configureKeyCache, forgetKey, runPaillierTask, type KeyCacheLimits, type PaillierTask } from './paillier-tasks.js';

const data = workerData as { keyCache?: KeyCacheLimits; channel?: string } | undefined;
if (data?.keyCache) configureKeyCache(data.keyCache);
if (data?.channel) {
  const channel = new BroadcastChannel(data.channel);
  channel.onmessage = (event) => {
    const n = (event as unknown as { data?: { forget?: unknown } }).data?.forget;
    if (typeof n === 'bigint') forgetKey(n);
  };
  // The channel must not keep a thread alive that piscina wants to end.
  channel.unref();
}

export default function handle(task: PaillierTask): bigint[] {
  return runPaillierTask(task);
}
