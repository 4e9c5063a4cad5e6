/**
 * A ckks-poly batch worker (`blindml worker --redis …`): takes jobs from the BullMQ queue that
 * `serve --redis` fills, compiles each model once (cached by content hash), evaluates each job on
 * a worker thread, reports progress, and stores the reply in Redis for the client's poll.
 *
 * Delivery: BullMQ holds a lock on a running job that this process renews while the job runs. A
 * worker that dies (even by SIGKILL) stops renewing it; after `lockDurationMs` another worker's
 * stalled-job check (every `stalledIntervalMs`) puts the job back in the queue and it runs again
 * from its stored inputs, which stay in Redis until a reply is stored. A job whose input is bad
 * (a typed protocol error) fails once: its error is stored as the reply and it is not retried.
 * Other errors are retried (the front sets the attempts) and then fail.
 *
 * @module
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { BlindmlError } from '../../errors.js';
import { compilePolyNetwork, decodePolyMessage, encodePolyMessage, type CompiledPolyNetwork } from '../../protocol/ckks-poly/index.js';
import { CkksPolyWorkerPool } from '../../workers/ckks-poly-pool.js';
import { importUpload } from '../registry.js';
import { BULL_PREFIX, POLY_QUEUE, connectRedis, jobDoneKey, jobInputKey, jobKeysKey, jobResultKey, modelKey, slotsKey, type PolyJobData } from './redis-store.js';

/** Options of {@link startPolyWorker}. */
export interface PolyWorkerOptions {
  /** `redis://host:port` of the queue the front replicas fill. */
  readonly redis: string;
  /** Jobs evaluated at once, one worker thread each. Default 1. */
  readonly threads?: number;
  /** How long a job's lock lasts without renewal: a dead worker's job is taken over after this. Default 30 s. */
  readonly lockDurationMs?: number;
  /** How often this worker looks for jobs whose worker died. Default 30 s. */
  readonly stalledIntervalMs?: number;
  /** Times a job may lose its worker before it fails for good. Default 2. */
  readonly maxStalledCount?: number;
  /** Compiled models kept (by content hash). Default 4. */
  readonly compiledModels?: number;
  /** One line per event worth a log (job done or failed). */
  readonly log?: (line: string) => void;
}

/** A running worker. */
export interface PolyWorker {
  /** Jobs this worker finished (with a result or a typed error). */
  processed(): number;
  /** Stops taking jobs, lets the running ones finish, frees threads and connections. */
  close(): Promise<void>;
}

/** How often progress goes to Redis at most. */
const PROGRESS_EVERY_MS = 250;

/**
 * Stores a job's reply once. KEYS: done marker, result, input, keys, the address's and everyone's
 * job places; ARGV: reply, client address, result lifetime (ms), when the place lapses, job id.
 * Returns 0 (changing nothing) when a reply was stored before.
 */
const FINISH = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then return 0 end
redis.call('HSET', KEYS[2], 'reply', ARGV[1], 'ip', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('ZADD', KEYS[5], 'XX', ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[6], 'XX', ARGV[4], ARGV[5])
return 1`;

/**
 * Connects to Redis and starts taking jobs.
 *
 * @throws RedisUnavailableError when Redis cannot be reached; RangeError for a bad thread count.
 */
export async function startPolyWorker(options: PolyWorkerOptions): Promise<PolyWorker> {
  const threads = options.threads ?? 1;
  const pool = new CkksPolyWorkerPool({ threads });
  let redis: Redis;
  try {
    redis = await connectRedis(options.redis, true);
  } catch (err) {
    await pool.destroy();
    throw err;
  }
  const log = options.log ?? (() => undefined);
  const compiled = new LRUCache<string, Promise<CompiledPolyNetwork>>({ max: options.compiledModels ?? 4 });
  let processed = 0;

  /** The model's compiled network, compiled on first use (a typed error for a model it cannot run). */
  function networkOf(hash: string): Promise<CompiledPolyNetwork> {
    let net = compiled.get(hash);
    if (!net) {
      net = redis.hgetallBuffer(modelKey(hash)).then((files) => {
        if (!files['onnx']) throw new BlindmlError('ERR_UNKNOWN_MODEL', "the model's bytes are no longer stored; submit the job again");
        const source = importUpload(files['calibration'] ? { onnx: files['onnx'], calibration: files['calibration'] } : { onnx: files['onnx'] });
        return compilePolyNetwork(source.model, source.calibration);
      });
      compiled.set(hash, net);
      // A failed compilation is not kept: the bytes may come back.
      net.catch(() => compiled.delete(hash));
    }
    return net;
  }

  /**
   * Stores the reply for the client, drops the job's inputs and starts its result's expiry clock —
   * unless a reply was stored already: then it changes nothing and returns false.
   */
  async function finish(job: Job<PolyJobData>, reply: Uint8Array): Promise<boolean> {
    const id = job.id!;
    const ip = job.data.ip;
    const keys = [jobDoneKey(id), jobResultKey(id), jobInputKey(id), jobKeysKey(id), slotsKey('jobs', ip), slotsKey('jobs')];
    const args = [Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength), ip, job.data.resultTtlMs, Date.now() + job.data.resultTtlMs, id];
    const stored = Number(await redis.eval(FINISH, keys.length, ...keys, ...args)) === 1;
    if (stored) processed++;
    return stored;
  }

  const refuse = (code: string, message: string) => encodePolyMessage({ type: 'error', code, message: message.slice(0, 2000), blobs: [] });

  async function run(job: Job<PolyJobData>): Promise<void> {
    const id = job.id!;
    // A job runs again when its worker lost the lock (a stall, a slow machine) after storing the
    // reply: that run must neither compute again nor replace the reply with "inputs expired".
    if ((await redis.exists(jobDoneKey(id))) === 1) return;
    const [input, keys] = await Promise.all([redis.getBuffer(jobInputKey(id)), redis.hgetallBuffer(jobKeysKey(id))]);
    if (!input || !keys['publicKey']) {
      if (!(await finish(job, refuse('ERR_BUSY', 'the job waited too long for a worker and its inputs expired; submit it again')))) return;
      throw new UnrecoverableError('inputs expired');
    }
    let net: CompiledPolyNetwork;
    try {
      net = await networkOf(job.data.source);
    } catch (err) {
      if (!(err instanceof BlindmlError)) throw err;
      if (!(await finish(job, refuse(err.code === 'ERR_UNKNOWN_MODEL' ? err.code : 'ERR_UNSUPPORTED_MODEL', err.message)))) return;
      throw new UnrecoverableError(err.code);
    }
    let last = 0;
    const reply = await pool.evaluate(net, { publicKey: keys['publicKey'], ...(keys['relinKeys'] ? { relinKeys: keys['relinKeys'] } : {}) }, input, (fraction) => {
      if (performance.now() - last < PROGRESS_EVERY_MS) return;
      last = performance.now();
      job.updateProgress(Math.round(fraction * 1000) / 1000).catch(() => undefined);
    });
    const head = decodePolyMessage(reply);
    if (head.type !== 'error') {
      if (await finish(job, reply)) log(`job ${id} done (${head.type === 'result' ? head.count : 0} images)`);
      return;
    }
    // Internal errors (not the input's fault) get the front's attempts; the last one answers the client.
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (head.code === 'ERR_INTERNAL' && !lastAttempt) throw new Error('internal error while evaluating');
    if (!(await finish(job, reply))) return;
    log(`job ${id} failed: ${head.code}`);
    throw new UnrecoverableError(head.code);
  }

  const worker = new Worker<PolyJobData>(POLY_QUEUE, run, {
    connection: redis,
    prefix: BULL_PREFIX,
    concurrency: threads,
    lockDuration: options.lockDurationMs ?? 30_000,
    stalledInterval: options.stalledIntervalMs ?? 30_000,
    maxStalledCount: options.maxStalledCount ?? 2,
  });
  worker.on('error', (err) => log(`queue error: ${err.message.slice(0, 200)}`));
  await worker.waitUntilReady();

  let closing: Promise<void> | undefined;
  return {
    processed: () => processed,
    close: () =>
      (closing ??= (async () => {
        await worker.close();
        await pool.destroy();
        await redis.quit().catch(() => undefined);
      })()),
  };
}
