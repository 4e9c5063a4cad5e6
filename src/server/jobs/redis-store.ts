/**
 * What the front replicas and `blindml worker` processes share in Redis, and how they name it.
 * Everything lives under `blindml:` (BullMQ's own keys under `blindml:bull:`):
 *
 * | key | holds | lifetime |
 * |---|---|---|
 * | `blindml:poly:model:<sha256>` | a model's ONNX and calibration bytes (content-addressed) | 1 day after its last job |
 * | `blindml:poly:session:<id>` | a session's client IP, model id, public and relinearization keys | `sessionIdleMs` after its last use |
 * | `blindml:poly:job:<id>:keys`, `…:input` | the job's copy of the keys, its uploaded ciphertexts | until the job finishes (at most `jobTimeoutMs`) |
 * | `blindml:poly:job:<id>:result` | the reply (encrypted logits, or a typed error) and the client IP | until fetched, at most `resultTtlMs` |
 * | `blindml:poly:job:<id>:done` | that a reply was stored, so a second run of the job (its lock lost) neither computes nor replaces it | `resultTtlMs` |
 * | `blindml:poly:{sessions,jobs}:{all,ip:<ip>}` | sorted sets counting places against the limits (score: when each lapses) | refreshed with their members |
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { BlindmlError } from '../../errors.js';
import type { ModelSource } from './types.js';

/** The BullMQ queue of ckks-poly jobs. */
export const POLY_QUEUE = 'ckks-poly';
/** BullMQ's key prefix. */
export const BULL_PREFIX = 'blindml:bull';
const P = 'blindml:poly';

/** How long a model's bytes stay in Redis after the last job that used them. */
export const MODEL_TTL_MS = 24 * 3600_000;

/** The data of a BullMQ ckks-poly job (the bytes are under the keys named by its id). */
export interface PolyJobData {
  readonly ip: string;
  readonly modelId: string;
  /** Content hash of the model's bytes ({@link modelKey}). */
  readonly source: string;
  /** How long the worker keeps the result for the client. */
  readonly resultTtlMs: number;
}

export const modelKey = (hash: string) => `${P}:model:${hash}`;
export const sessionKey = (id: string) => `${P}:session:${id}`;
export const jobKeysKey = (id: string) => `${P}:job:${id}:keys`;
export const jobInputKey = (id: string) => `${P}:job:${id}:input`;
export const jobResultKey = (id: string) => `${P}:job:${id}:result`;
export const jobDoneKey = (id: string) => `${P}:job:${id}:done`;
/** The sorted set of places of `kind`, for one address or for everyone. */
export const slotsKey = (kind: 'sessions' | 'jobs', ip?: string) => (ip === undefined ? `${P}:${kind}:all` : `${P}:${kind}:ip:${ip}`);

/** Content hash of a model's bytes (ONNX, then calibration when there is one). */
export function sourceHash(source: ModelSource): string {
  const h = createHash('sha256').update(source.onnx);
  if (source.calibration) h.update('\0calibration\0').update(source.calibration);
  return h.digest('hex');
}

/** Redis could not be reached or refused a command. */
export class RedisUnavailableError extends BlindmlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_REDIS_UNAVAILABLE', message, options);
  }
}

/**
 * Opens a connection to `url` (`redis://[user:pass@]host:port[/db]` or `rediss://` for TLS) and
 * checks it answers.
 *
 * @param forWorker BullMQ workers need commands that block: no per-request retry limit.
 * @throws RedisUnavailableError when the URL is not a Redis URL or nothing answers within 5 s.
 */
export async function connectRedis(url: string, forWorker = false): Promise<Redis> {
  if (!/^rediss?:\/\//.test(url)) throw new RedisUnavailableError(`--redis ${url}: expected redis://host:port (or rediss:// for TLS)`);
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 5_000, maxRetriesPerRequest: forWorker ? null : 3, enableOfflineQueue: true });
  // Connection errors are reported by the commands that fail; without a listener ioredis logs them.
  let why = '';
  redis.on('error', (err: Error) => void (why ||= err.message));
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new RedisUnavailableError(`cannot reach Redis at ${redactUrl(url)}: ${why || (err instanceof Error ? err.message : String(err))}`, { cause: err });
  }
  return redis;
}

/** The URL without its password (for messages and logs). */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
