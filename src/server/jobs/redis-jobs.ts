/**
 * ckks-poly sessions and jobs in Redis, run by `blindml worker` processes through BullMQ
 * (`serve --redis`). The front checks each request as without Redis, then:
 *
 * - a session's keys go to Redis (the front loads them once to check them and frees them), so a
 *   session opened through one replica is usable through every replica;
 * - a job's ciphertexts, its own copy of the keys and (content-addressed, once) the model's bytes go
 *   to Redis, and a BullMQ job names them: a worker needs nothing but Redis;
 * - a poll, on any replica, reads the job's state and progress from BullMQ and takes its reply
 *   from Redis (once; an unfetched reply expires after `resultTtlMs`);
 * - places against the limits are counted in sorted sets, checked and taken atomically (a Lua
 *   script), so every replica enforces the same per-client and global limits.
 *
 * Names and lifetimes of the keys: `redis-store.ts`.
 *
 * @module
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { encodePolyMessage, ProtocolError, type CkksPolyService } from '../../protocol/ckks-poly/index.js';
import {
  BULL_PREFIX, MODEL_TTL_MS, POLY_QUEUE, jobInputKey, jobKeysKey, jobResultKey, modelKey, sessionKey, slotsKey, sourceHash, type PolyJobData,
} from './redis-store.js';
import { refusals, type JobPoll, type ModelSource, type PolyJobBackend, type PolyLimits, type Refusal, type Slot } from './types.js';

/** Options of the Redis backend beyond the front's limits. */
export interface RedisJobOptions {
  /** How long a job may wait for a worker and run before its inputs are dropped. Default 1 h. */
  readonly jobTimeoutMs?: number;
  /** Runs of a job that fails for an internal reason (not bad input, which fails at once). Default 3. */
  readonly attempts?: number;
  /** How often a waiting poll looks at the job again. Default 200 ms. */
  readonly pollIntervalMs?: number;
}

/** How long a place is held for an upload that is still arriving. */
const UPLOAD_HOLD_MS = 10 * 60_000;
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Drops lapsed places, then takes one for ARGV[4] unless the address (KEYS[1]) or everyone
 * (KEYS[2]) is at its limit. Returns -1 / -2 when refused, else the places held in all.
 */
const ADMIT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
local total = redis.call('ZCARD', KEYS[2])
if total >= tonumber(ARGV[3]) then return -2 end
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return total + 1`;

type Kind = 'sessions' | 'jobs';

/**
 * Creates the Redis backend on a connected client (which it closes on `close`). `service` only
 * checks uploaded keys: the sessions it opens are dropped here once their keys are in Redis.
 */
export function redisJobs(redis: Redis, service: CkksPolyService, limits: PolyLimits, options: RedisJobOptions = {}): PolyJobBackend {
  const jobTimeoutMs = options.jobTimeoutMs ?? 3600_000;
  const attempts = options.attempts ?? 3;
  const pollIntervalMs = options.pollIntervalMs ?? 200;
  const queue = new Queue<PolyJobData>(POLY_QUEUE, { connection: redis, prefix: BULL_PREFIX });
  queue.on('error', () => undefined); // commands that fail report it to their callers
  const counts = { sessions: 0, jobs: 0 };
  const hashes = new Map<string, string>();

  /** How long a place lasts from now (reservations are refreshed as they become sessions or jobs). */
  const lifetime = (kind: Kind) => (kind === 'sessions' ? limits.sessionIdleMs : jobTimeoutMs + limits.resultTtlMs);
  const zkeys = (kind: Kind, ip: string) => [slotsKey(kind, ip), slotsKey(kind)];

  async function reserve(kind: Kind, ip: string): Promise<Slot | Refusal> {
    const member = `upload:${globalThis.crypto.randomUUID()}`;
    const now = Date.now();
    const [perClient, total] = kind === 'sessions' ? [limits.sessionsPerClient, limits.sessions] : [limits.jobsPerClient, limits.jobs];
    const held = Number(await redis.eval(ADMIT, 2, ...zkeys(kind, ip), now, perClient, total, member, now + UPLOAD_HOLD_MS, Math.max(UPLOAD_HOLD_MS, lifetime(kind))));
    if (held === -1) return kind === 'sessions' ? refusals.sessionsPerClient(limits) : refusals.jobsPerClient(limits);
    if (held === -2) return kind === 'sessions' ? refusals.sessions() : refusals.jobs();
    counts[kind] = held;
    return new Reservation(kind, ip, member);
  }

  class Reservation implements Slot {
    released = false;
    constructor(readonly kind: Kind, readonly ip: string, readonly member: string) {}
    release(): void {
      if (this.released) return;
      this.released = true;
      const [perIp, all] = zkeys(this.kind, this.ip);
      redis.multi().zrem(perIp!, this.member).zrem(all!, this.member).exec().catch(() => undefined);
    }
    /** Replaces the reservation by `id` in the same sorted sets, lasting `ms` from now. */
    become(id: string, ms: number) {
      const [perIp, all] = zkeys(this.kind, this.ip);
      const score = Date.now() + ms;
      return redis.multi().zrem(perIp!, this.member).zrem(all!, this.member).zadd(perIp!, score, id).zadd(all!, score, id).pexpire(perIp!, Math.max(UPLOAD_HOLD_MS, lifetime(this.kind)));
    }
  }
  const own = (slot: Slot): Reservation => {
    if (!(slot instanceof Reservation)) throw new TypeError('a slot from another backend');
    return slot;
  };

  async function refreshCounts(): Promise<void> {
    const now = Date.now();
    const [s, j] = await Promise.all([redis.zcount(slotsKey('sessions'), now, '+inf'), redis.zcount(slotsKey('jobs'), now, '+inf')]);
    counts.sessions = s;
    counts.jobs = j;
  }
  const refresher = setInterval(() => void refreshCounts().catch(() => undefined), 5_000);
  refresher.unref();

  /** Makes sure the model's bytes are in Redis (uploaded once per content hash; kept a day after use). */
  async function storeModel(modelId: string, source: () => ModelSource | Promise<ModelSource>): Promise<string> {
    let hash = hashes.get(modelId);
    let bytes: ModelSource | undefined;
    if (!hash) {
      bytes = await source();
      hash = sourceHash(bytes);
      hashes.set(modelId, hash);
    }
    if ((await redis.pexpire(modelKey(hash), MODEL_TTL_MS)) === 1) return hash;
    bytes ??= await source();
    const fields: Record<string, Buffer> = { onnx: Buffer.from(bytes.onnx) };
    if (bytes.calibration) fields['calibration'] = Buffer.from(bytes.calibration);
    await redis.multi().hset(modelKey(hash), fields).pexpire(modelKey(hash), MODEL_TTL_MS).exec();
    return hash;
  }

  /** Takes a finished job's reply (atomically: one poll gets it) and frees its place. */
  async function take(id: string): Promise<Uint8Array | undefined> {
    const out = await redis.multi().hgetallBuffer(jobResultKey(id)).del(jobResultKey(id)).exec();
    const stored = out?.[0]?.[1] as Record<string, Buffer> | undefined;
    if (!stored?.['reply']) return undefined;
    const ip = stored['ip']?.toString('utf8') ?? '';
    await redis.multi().zrem(slotsKey('jobs', ip), id).zrem(slotsKey('jobs'), id).exec();
    // A job that failed on bad input stays in BullMQ's failed set: its reply is out, it can go.
    await queue.remove(id).catch(() => undefined);
    return stored['reply'];
  }

  async function check(id: string): Promise<JobPoll> {
    const reply = await take(id);
    if (reply) return { state: 'done', reply };
    const job = await queue.getJob(id);
    // Finished (and removed by BullMQ) between the two reads: its reply is there now.
    if (!job) {
      const late = await take(id);
      return late ? { state: 'done', reply: late } : { state: 'unknown' };
    }
    const state = await job.getState();
    if (state === 'failed') {
      // Out of attempts (internal errors, or workers dying on it every time): no reply was stored.
      await redis.multi().zrem(slotsKey('jobs', job.data.ip), id).zrem(slotsKey('jobs'), id).del(jobInputKey(id), jobKeysKey(id)).exec();
      await job.remove().catch(() => undefined);
      return { state: 'done', reply: encodePolyMessage({ type: 'error', code: 'ERR_INTERNAL', message: 'the job failed on the workers; submit it again', blobs: [] }) };
    }
    if (state === 'completed') return { state: 'unknown' }; // its reply was taken by another poll
    if (state !== 'active') return { state: 'pending', status: 'queued' };
    return { state: 'pending', status: 'running', ...(typeof job.progress === 'number' ? { progress: job.progress } : {}) };
  }

  return {
    reserveSession: (ip) => reserve('sessions', ip),
    async addSession(slot, s) {
      const fields: Record<string, string | Buffer> = { ip: s.ip, model: s.modelId, publicKey: Buffer.from(s.keys.publicKey) };
      if (s.keys.relinKeys) fields['relinKeys'] = Buffer.from(s.keys.relinKeys);
      try {
        await own(slot).become(s.id, limits.sessionIdleMs).hset(sessionKey(s.id), fields).pexpire(sessionKey(s.id), limits.sessionIdleMs).exec();
      } finally {
        service.closeSession(s.id);
      }
    },
    async touchSession(id) {
      const [ip, model] = (await redis.hmget(sessionKey(id), 'ip', 'model')) as [string | null, string | null];
      if (ip === null || model === null) return undefined;
      const score = Date.now() + limits.sessionIdleMs;
      await redis.multi().pexpire(sessionKey(id), limits.sessionIdleMs).zadd(slotsKey('sessions', ip), 'XX', score, id).zadd(slotsKey('sessions'), 'XX', score, id).exec();
      return model;
    },
    reserveJob: (ip) => reserve('jobs', ip),
    async submit(slot, { ip, modelId, session, request, source }) {
      const id = globalThis.crypto.randomUUID();
      const hash = await storeModel(modelId, source);
      const stored = await redis
        .multi()
        .set(jobInputKey(id), Buffer.from(request.buffer, request.byteOffset, request.byteLength), 'PX', jobTimeoutMs)
        .copy(sessionKey(session), jobKeysKey(id))
        .pexpire(jobKeysKey(id), jobTimeoutMs)
        .exec();
      if (stored?.[1]?.[1] !== 1) {
        await redis.del(jobInputKey(id));
        throw new ProtocolError('ERR_UNKNOWN_SESSION', 'unknown or expired session for this model: send your keys again');
      }
      await own(slot).become(id, jobTimeoutMs + limits.resultTtlMs).exec();
      await queue.add('infer', { ip, modelId, source: hash, resultTtlMs: limits.resultTtlMs }, {
        jobId: id,
        attempts,
        backoff: { type: 'fixed', delay: 1_000 },
        removeOnComplete: true,
        // Failed jobs stay visible to operators for a while (their payloads are gone), bounded in number.
        removeOnFail: { age: Math.ceil(limits.resultTtlMs / 1000), count: 1_000 },
      });
      return id;
    },
    async poll(id, waitMs) {
      if (!JOB_ID.test(id)) return { state: 'unknown' };
      const deadline = Date.now() + waitMs;
      for (;;) {
        const found = await check(id);
        if (found.state !== 'pending' || Date.now() + pollIntervalMs > deadline) return found;
        await new Promise((r) => setTimeout(r, pollIntervalMs));
      }
    },
    sessions: () => counts.sessions,
    jobs: () => counts.jobs,
    forget(modelId) {
      // Sessions on the model lapse by themselves; jobs on it are refused at the door from now on.
      hashes.delete(modelId);
    },
    async close() {
      clearInterval(refresher);
      await queue.close().catch(() => undefined);
      await redis.quit().catch(() => undefined);
    },
  };
}
