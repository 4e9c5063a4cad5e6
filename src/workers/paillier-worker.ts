/**
 * Worker-thread entry point for {@link PaillierWorkerPool} (loaded by piscina). The thread's key
 * cache takes its bounds from the pool (`workerData`) and listens on the pool's broadcast channel
 * for keys to drop, so a key the service lets go of leaves every thread at once.
 *
 * @module
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BroadcastChannel } from 'node:worker_threads';
import { workerData } from 'piscina';
import { configureKeyCache, forgetKey, runPaillierTask, type KeyCacheLimits, type PaillierTask } from './paillier-tasks.js';

/**
 * A full garbage collection soon after keys were dropped. A DJN table is tens of MiB of bigints;
 * a thread that then sits idle allocates nothing, so V8 would never collect them and the process
 * would keep the memory. (`--expose-gc` set at run time exposes gc() to new contexts only.)
 */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
let collecting: ReturnType<typeof setTimeout> | undefined;
function collectSoon(): void {
  collecting ??= setTimeout(() => {
    collecting = undefined;
    gc();
  }, 200);
  collecting.unref();
}

const data = workerData as { keyCache?: KeyCacheLimits; channel?: string } | undefined;
if (data?.keyCache) configureKeyCache(data.keyCache, collectSoon);
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
