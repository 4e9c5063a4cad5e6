/**
 * Worker-thread entry point for {@link CkksPolyWorkerPool} (loaded by piscina). Keeps one CKKS
 * context per parameter set and the keys of the last few clients, so a client's batches after the
 * first skip the key loading.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { BlindmlError } from '../errors.js';
import { decodePolyMessage, encodePolyMessage, evaluateRequest, expectPolyMessage, type PolyMessage } from '../protocol/ckks-poly/index.js';
import { CkksContext, CkksServiceKeys, parameterFingerprint } from '../schemes/ckks/index.js';
import type { PolyWorkerTask } from './ckks-poly-pool.js';

const contexts = new Map<string, Promise<CkksContext>>();
const keyCache = new Map<string, CkksServiceKeys>();
const MAX_KEYS = 4;

async function keysFor(task: PolyWorkerTask): Promise<CkksServiceKeys> {
  const fp = parameterFingerprint(task.net.params);
  let ctx = contexts.get(fp);
  if (!ctx) {
    ctx = CkksContext.create(task.net.params);
    contexts.set(fp, ctx);
  }
  const context = await ctx;
  // A digest of the uploaded keys identifies them (a reused key id with other keys is another entry).
  const id = `${fp}:${createHash('sha256').update(task.keys.publicKey).update(task.keys.relinKeys ?? new Uint8Array(0)).digest('hex')}`;
  let keys = keyCache.get(id);
  if (!keys) {
    keys = CkksServiceKeys.load(context, task.keys);
    keyCache.set(id, keys);
    while (keyCache.size > MAX_KEYS) {
      const [oldest, old] = keyCache.entries().next().value as [string, CkksServiceKeys];
      old.dispose();
      keyCache.delete(oldest);
    }
  }
  return keys;
}

/** Posts the fraction of rows done over all stages to the task's port, in steps of at least 1%. */
function progressReporter(task: PolyWorkerTask): (stage: number, done: number, rows: number) => void {
  const rows = task.net.stages.map((s) => s.rows);
  const total = rows.reduce((a, b) => a + b, 0);
  let sent = 0;
  return (stage, done) => {
    const fraction = (rows.slice(0, stage).reduce((a, b) => a + b, 0) + done) / total;
    if (fraction - sent < 0.01 && fraction < 1) return;
    sent = fraction;
    task.progress?.postMessage(fraction);
  };
}

export default async function handle(task: PolyWorkerTask): Promise<Uint8Array> {
  try {
    const msg = expectPolyMessage(decodePolyMessage(task.request), 'infer');
    const keys = await keysFor(task);
    return encodePolyMessage(evaluateRequest(task.net, keys, msg as Extract<PolyMessage, { type: 'infer' }>, task.progress && progressReporter(task)));
  } catch (e) {
    const known = e instanceof BlindmlError;
    return encodePolyMessage({ type: 'error', code: known ? e.code : 'ERR_INTERNAL', message: known ? e.message.slice(0, 2000) : 'internal error', blobs: [] });
  }
}
