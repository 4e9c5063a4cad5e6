/**
 * ckks-poly through the service: a batch endpoint for polynomial networks. One request carries up
 * to a full ciphertext batch (N/2 images, 4,096 at N = 8192); the service evaluates the whole
 * network on it in one go and keeps the encrypted logits until the client fetches them. Only the
 * client can decrypt them.
 *
 * Routes (bodies are ckks-poly protocol messages, `protocol/ckks-poly/messages.ts`):
 * - `POST /v1/ckks-poly/:modelId/info` — the model's public parameters (`info-reply`).
 * - `POST /v1/ckks-poly/:modelId/keys` — the client's public and relinearization keys → `session`.
 * - `POST /v1/ckks-poly/:modelId/jobs` — an `infer` message → 202 `{ job, status, poll }`.
 * - `GET /v1/ckks-poly/jobs/:jobId?wait=ms` — 202 `{ status: 'queued' | 'running', progress? }`
 *   until done (waiting up to `wait` ms, at most 30 s, for it to finish), then the `result` message
 *   once; a failed job answers its typed 4xx error once. Unfetched results expire.
 *
 * Sessions and jobs live in this process by default; with Redis (`serve --redis`) they live in
 * Redis and `blindml worker` processes run the jobs (`jobs/redis-jobs.ts`), so any replica answers
 * any step and any poll.
 *
 * Every request is checked before its body is read: the model must exist, `content-length` must be
 * given and at most what the step can need for this model's parameters (keys: one public key and
 * the relinearization keys; jobs: one seeded ciphertext per input value), and the address must be
 * under its limits (keys uploads, sessions, jobs). Errors are HTTP 4xx `{ error, message }`.
 *
 * @module
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { BlindmlError } from '../errors.js';
import { ProtocolError } from '../protocol/ckks-poly/messages.js';
import { CkksPolyService, compilePolyNetwork, decodePolyMessage, encodePolyMessage, expectPolyMessage, polyInfoOf, type CompiledPolyNetwork, type PolyInfo } from '../protocol/ckks-poly/index.js';
import { CkksPolyWorkerPool } from '../workers/ckks-poly-pool.js';
import { importUpload, RegistryError, type ModelRegistry } from './registry.js';
import type { ServiceMetrics } from './metrics.js';
import { inProcessJobs } from './jobs/in-process.js';
import { redisJobs, type RedisJobOptions } from './jobs/redis-jobs.js';
import { DEFAULT_POLY_LIMITS, isRefusal, type ModelSource, type PolyJobBackend, type PolyLimits, type Refusal, type Slot } from './jobs/types.js';

export type { PolyLimits };

/** What the front needs from the server around it. */
export interface PolyFrontOptions {
  readonly registry: ModelRegistry;
  readonly metrics: ServiceMetrics;
  readonly log: FastifyBaseLogger;
  /** Worker threads evaluating jobs side by side (0: the service's own thread, blocking it meanwhile: tests only). Unused with `redis`. */
  readonly threads: number;
  readonly limits?: Partial<PolyLimits>;
  /** Refuses a key upload (shutting down, rate limit): an error to send back, or null to go on. */
  readonly admitOpen: (ip: string) => { status: number; code: string; message: string } | null;
  /**
   * Sessions and jobs in Redis, run by `blindml worker` processes (BullMQ), instead of in this
   * process. The front closes the connection on `close`.
   */
  readonly redis?: { readonly client: Redis; readonly options?: RedisJobOptions };
}

/** The running front. */
export interface PolyFront {
  /** Sessions holding keys. */
  sessions(): number;
  /** Jobs running or holding results. */
  jobs(): number;
  /** Drops a removed model, its sessions and its compilation. */
  forget(modelId: string): void;
  close(): Promise<void>;
}

export const POLY_STEPS = ['info', 'keys', 'jobs'] as const;
type Step = (typeof POLY_STEPS)[number];

/** The longest a poll waits for a job (`?wait=`). */
export const MAX_POLL_WAIT_MS = 30_000;

/** HTTP status of a protocol error code (anything unknown is the request's fault). */
const STATUS: Record<string, number> = { ERR_UNKNOWN_MODEL: 404, ERR_UNKNOWN_SESSION: 404, ERR_UNKNOWN_JOB: 404, ERR_BUSY: 503, ERR_INTERNAL: 500 };

interface Compiled {
  readonly net: CompiledPolyNetwork;
  readonly info: PolyInfo;
}

/**
 * Upper bounds of legitimate bodies for a model's parameters. A SEAL object is never larger
 * uncompressed than 8 bytes per coefficient per prime, plus headers.
 */
export function polyBodyCaps(info: PolyInfo): { keys: number; jobs: number } {
  const n = info.params.polyModulusDegree;
  const primes = info.params.coeffModulusBits.length;
  const polyBytes = (k: number) => k * n * 8;
  // Public key: 2 polynomials over every prime; relinearization keys: one such pair per data prime.
  const keys = 2 * polyBytes(primes) * primes + 64 * 1024;
  // Seeded input ciphertexts: one polynomial over the data primes each, plus its envelope and seed.
  const jobs = info.inputSize * (polyBytes(primes - 1) + 1024) + 64 * 1024;
  return { keys, jobs };
}

/** Registers the routes on `app`. */
export function registerCkksPolyRoutes(app: FastifyInstance, options: PolyFrontOptions): PolyFront {
  const limits: PolyLimits = { ...DEFAULT_POLY_LIMITS, ...options.limits };
  const { registry, metrics, log } = options;
  // With Redis the workers evaluate: this process only checks uploaded keys.
  const pool = options.threads > 0 && !options.redis ? new CkksPolyWorkerPool({ threads: options.threads }) : undefined;
  // The service evicts its oldest session beyond `maxSessions`; the front refuses before that happens.
  const service = new CkksPolyService({ maxSessions: limits.sessions + 1, ...(pool ? { evaluator: pool } : {}) });
  const jobs: PolyJobBackend = options.redis
    ? redisJobs(options.redis.client, service, limits, options.redis.options)
    : inProcessJobs(service, limits, (seconds) => metrics.messageSeconds.observe({ type: 'ckks-poly-job' }, seconds));
  const compiled = new Map<string, Promise<Compiled>>();

  /** The model's compiled network (compiled on its first ckks-poly request), or undefined. */
  function compiledFor(modelId: string): Promise<Compiled> | undefined {
    const known = compiled.get(modelId);
    if (known) return known;
    if (!registry.get(modelId)) return undefined;
    const made = registry.storedFiles(modelId).then((files) => {
      const source = importUpload(files);
      const net = compilePolyNetwork(source.model, source.calibration);
      service.register(modelId, net, source.model.inputShape);
      log.info({ model: modelId, ring: net.params.polyModulusDegree }, 'model compiled for ckks-poly');
      return { net, info: polyInfoOf(net, source.model.inputShape) };
    });
    compiled.set(modelId, made);
    // A compile failure stays (it would fail again); a store out of reach is tried again next time.
    made.catch((err: unknown) => void (err instanceof RegistryError && err.status === 503 && compiled.delete(modelId)));
    return made;
  }

  /** A model's stored bytes (for workers that compile it themselves). */
  async function storedSource(modelId: string): Promise<ModelSource> {
    try {
      return await registry.storedFiles(modelId);
    } catch (err) {
      if (err instanceof RegistryError && err.status === 404) throw new ProtocolError('ERR_UNKNOWN_MODEL', `no model with id ${modelId}`);
      throw err;
    }
  }

  function fail(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
    metrics.framesRejected.inc({ reason: status === 413 ? 'oversized' : status === 400 ? 'malformed' : 'refused' });
    return reply.code(status).send({ error: code, message });
  }
  const refuse = (reply: FastifyReply, r: Refusal) => fail(r.retryAfter ? reply.header('retry-after', String(r.retryAfter)) : reply, r.status, r.code, r.message);

  // The place an admitted request holds (and releases when its response ends, whatever happened).
  const slots = new WeakMap<FastifyRequest, Slot>();
  async function hold(kind: 'keys' | 'jobs', req: FastifyRequest, reply: FastifyReply): Promise<Refusal | undefined> {
    const got = kind === 'keys' ? await jobs.reserveSession(req.ip) : await jobs.reserveJob(req.ip);
    if (isRefusal(got)) return got;
    slots.set(req, got);
    reply.raw.once('close', () => got.release());
    // A connection that closed while the place was being taken (a Redis round trip) fired 'close' already.
    if (req.raw.socket?.destroyed) got.release();
    return undefined;
  }

  /** Everything checked before a body is read: the model, the size, the address's limits. */
  async function admit(req: FastifyRequest<{ Params: { modelId: string; step: string } }>, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const step = req.params.step as Step;
    if (!POLY_STEPS.includes(step)) return fail(reply, 404, 'ERR_NOT_FOUND', `no ckks-poly step '${req.params.step}'; use ${POLY_STEPS.join(', ')}`);
    const model = compiledFor(req.params.modelId);
    if (!model) return fail(reply, 404, 'ERR_UNKNOWN_MODEL', `no model with id ${req.params.modelId}`);
    let info: PolyInfo;
    try {
      info = (await model).info;
    } catch (err) {
      return fail(reply, 400, 'ERR_UNSUPPORTED_MODEL', `ckks-poly cannot run this model: ${err instanceof Error ? err.message.slice(0, 300) : String(err)}`);
    }
    const caps = polyBodyCaps(info);
    const cap = step === 'info' ? 4096 : step === 'keys' ? caps.keys : caps.jobs;
    const length = Number(req.headers['content-length'] ?? Number.NaN);
    if (step !== 'info' && !Number.isSafeInteger(length)) return fail(reply, 411, 'ERR_LENGTH_REQUIRED', 'send a content-length header');
    if (length > Math.min(cap, limits.maxBodyBytes)) return fail(reply, 413, 'ERR_TOO_LARGE', `${length} bytes; a ${step} request for this model is at most ${Math.min(cap, limits.maxBodyBytes)}`);
    if (step === 'keys') {
      const refused = options.admitOpen(req.ip);
      if (refused) return fail(reply, refused.status, refused.code, refused.message);
    }
    if (step !== 'info') {
      const refused = await hold(step, req, reply);
      if (refused) return refuse(reply, refused);
    }
    return undefined;
  }

  /** The request's bytes, checked to be a `type` message for this model (and its session). */
  async function parse(req: FastifyRequest<{ Params: { modelId: string } }>, type: 'keys' | 'infer', info: PolyInfo): Promise<Uint8Array> {
    const body = Buffer.isBuffer(req.body) ? new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength) : undefined;
    if (!body) throw new ProtocolError('ERR_BAD_REQUEST', 'send application/octet-stream');
    const msg = decodePolyMessage(body);
    if (msg.type !== type) throw new ProtocolError('ERR_BAD_MESSAGE', `this step takes a ${type} message, not ${msg.type}`);
    if ('model' in msg && msg.model !== req.params.modelId) throw new ProtocolError('ERR_BAD_MESSAGE', 'the message names another model than the URL');
    if (msg.type === 'infer') {
      if ((await jobs.touchSession(msg.session)) !== req.params.modelId) throw new ProtocolError('ERR_UNKNOWN_SESSION', 'unknown or expired session for this model: send your keys again');
      if (msg.blobs.length !== info.inputSize) throw new ProtocolError('ERR_BAD_MESSAGE', `an infer message carries ${info.inputSize} ciphertexts, got ${msg.blobs.length}`);
      if (msg.count > info.params.polyModulusDegree / 2) throw new ProtocolError('ERR_BAD_MESSAGE', `at most ${info.params.polyModulusDegree / 2} images per job`);
    }
    return body;
  }

  /** Checks uploaded keys by loading them, and records the session they open. */
  async function openSession(req: FastifyRequest<{ Params: { modelId: string } }>, info: PolyInfo): Promise<Uint8Array> {
    const bytes = await parse(req, 'keys', info);
    const out = await service.handle(bytes);
    const head = decodePolyMessage(out);
    if (head.type === 'error') throw new ProtocolError(head.code, head.message);
    if (head.type === 'session') {
      const [publicKey, relinKeys] = decodePolyMessage(bytes).blobs;
      await jobs.addSession(slots.get(req)!, { id: head.session, ip: req.ip, modelId: req.params.modelId, keys: { publicKey: publicKey!, ...(relinKeys ? { relinKeys } : {}) } });
    }
    return out;
  }

  const send = (reply: FastifyReply, bytes: Uint8Array) => {
    metrics.bytesSent.inc({ transport: 'http' }, bytes.length);
    return reply.header('content-type', 'application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  };

  app.post<{ Params: { modelId: string; step: string } }>(
    '/v1/ckks-poly/:modelId/:step',
    { bodyLimit: limits.maxBodyBytes, logLevel: 'warn', onRequest: admit },
    async (req, reply) => {
      const step = req.params.step as Step;
      try {
        const { info } = await compiledFor(req.params.modelId)!;
        metrics.bytesReceived.inc({ transport: 'http' }, Buffer.isBuffer(req.body) ? req.body.length : 0);
        if (step === 'info') return send(reply, encodePolyMessage({ type: 'info-reply', model: req.params.modelId, info, blobs: [] }));
        if (step === 'keys') {
          const out = await openSession(req, info);
          metrics.sessionsOpened.inc({ transport: 'http' });
          return send(reply, out);
        }
        const request = await parse(req, 'infer', info);
        const { session } = expectPolyMessage(decodePolyMessage(request), 'infer');
        const job = await jobs.submit(slots.get(req)!, { ip: req.ip, modelId: req.params.modelId, session, request, source: () => storedSource(req.params.modelId) });
        return reply.code(202).send({ job, status: 'running', poll: `/v1/ckks-poly/jobs/${job}` });
      } catch (err) {
        if (err instanceof BlindmlError) {
          log.warn({ code: err.code, step, ip: req.ip }, 'ckks-poly request refused');
          return fail(reply, STATUS[err.code] ?? 400, err.code, err.message);
        }
        log.error({ step, reason: err instanceof Error ? err.message.slice(0, 200) : 'unknown' }, 'ckks-poly step failed');
        return reply.code(500).send({ error: 'ERR_INTERNAL', message: 'internal error' });
      }
    },
  );

  app.get<{ Params: { jobId: string }; Querystring: { wait?: string } }>('/v1/ckks-poly/jobs/:jobId', { logLevel: 'warn' }, async (req, reply) => {
    const wait = Math.max(0, Math.min(MAX_POLL_WAIT_MS, Number.parseInt(req.query.wait ?? '0', 10) || 0));
    const found = await jobs.poll(req.params.jobId, wait);
    if (found.state === 'unknown') return fail(reply, 404, 'ERR_UNKNOWN_JOB', 'no such job: it was fetched already, expired, or never existed');
    if (found.state === 'pending') {
      return reply.code(202).send({ job: req.params.jobId, status: found.status, ...(found.progress === undefined ? {} : { progress: found.progress }) });
    }
    const head = decodePolyMessage(found.reply);
    if (head.type === 'error') return fail(reply, STATUS[head.code] ?? 400, head.code, head.message);
    return send(reply, found.reply);
  });

  return {
    sessions: () => jobs.sessions(),
    jobs: () => jobs.jobs(),
    forget(modelId) {
      compiled.delete(modelId);
      jobs.forget(modelId);
      service.unregister(modelId);
    },
    async close() {
      await jobs.close();
      await service.dispose();
      await pool?.destroy();
    },
  };
}
