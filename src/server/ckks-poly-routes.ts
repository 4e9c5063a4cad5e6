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
 * - `GET /v1/ckks-poly/jobs/:jobId?wait=ms` — 202 `{ status: 'running' }` until done (waiting up
 *   to `wait` ms, at most 30 s, for it to finish), then the `result` message once; a failed job
 *   answers its typed 4xx error once. Unfetched results expire.
 *
 * Every request is checked before its body is read: the model must exist, `content-length` must be
 * given and at most what the step can need for this model's parameters (keys: one public key and
 * the relinearization keys; jobs: one seeded ciphertext per input value), and the address must be
 * under its limits (keys uploads, sessions, jobs). Errors are HTTP 4xx `{ error, message }`.
 *
 * @module
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BlindmlError } from '../errors.js';
import { ProtocolError } from '../protocol/ckks-poly/messages.js';
import { CkksPolyService, compilePolyNetwork, decodePolyMessage, encodePolyMessage, polyInfoOf, type CompiledPolyNetwork, type PolyInfo } from '../protocol/ckks-poly/index.js';
import { CkksPolyWorkerPool } from '../workers/ckks-poly-pool.js';
import { importUpload, RegistryError, type ModelRegistry } from './registry.js';
import type { ServiceMetrics } from './metrics.js';

/** Limits of the ckks-poly front; every one has a default fit for one small machine. */
export interface PolyLimits {
  /** Jobs running or holding an unfetched result, per client address. Default 2. */
  readonly jobsPerClient: number;
  /** Jobs running or holding results, all clients together (each holds up to ~155 MB while it runs). Default 4. */
  readonly jobs: number;
  /** Unfetched results are dropped after this long. Default 10 min. */
  readonly resultTtlMs: number;
  /** Sessions (uploaded keys) per client address. Default 4. */
  readonly sessionsPerClient: number;
  /** Sessions, all clients together. Default 32. */
  readonly sessions: number;
  /** Sessions without a job for this long are dropped. Default 10 min. */
  readonly sessionIdleMs: number;
  /** Largest request accepted whatever the model (the per-model bound is usually smaller). Default 512 MiB. */
  readonly maxBodyBytes: number;
}

/** What the front needs from the server around it. */
export interface PolyFrontOptions {
  readonly registry: ModelRegistry;
  readonly metrics: ServiceMetrics;
  readonly log: FastifyBaseLogger;
  /** Worker threads evaluating jobs side by side (0: the service's own thread, blocking it meanwhile: tests only). */
  readonly threads: number;
  readonly limits?: Partial<PolyLimits>;
  /** Refuses a key upload (shutting down, rate limit): an error to send back, or null to go on. */
  readonly admitOpen: (ip: string) => { status: number; code: string; message: string } | null;
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

const DEFAULTS: PolyLimits = {
  jobsPerClient: 2,
  jobs: 4,
  resultTtlMs: 600_000,
  sessionsPerClient: 4,
  sessions: 32,
  sessionIdleMs: 600_000,
  maxBodyBytes: 512 * 2 ** 20,
};

/** HTTP status of a protocol error code (anything unknown is the request's fault). */
const STATUS: Record<string, number> = { ERR_UNKNOWN_MODEL: 404, ERR_UNKNOWN_SESSION: 404, ERR_UNKNOWN_JOB: 404, ERR_INTERNAL: 500 };

interface Compiled {
  readonly net: CompiledPolyNetwork;
  readonly info: PolyInfo;
}

interface Job {
  readonly ip: string;
  readonly started: number;
  status: 'running' | 'done';
  /** The answer (a `result` or an `error` message) once done. */
  reply?: Uint8Array;
  readonly done: Promise<void>;
  expires?: ReturnType<typeof setTimeout>;
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
  const limits: PolyLimits = { ...DEFAULTS, ...options.limits };
  const { registry, metrics, log } = options;
  const pool = options.threads > 0 ? new CkksPolyWorkerPool({ threads: options.threads }) : undefined;
  // The service evicts its oldest session beyond `maxSessions`; the front refuses before that happens.
  const service = new CkksPolyService({ maxSessions: limits.sessions + 1, ...(pool ? { evaluator: pool } : {}) });
  const compiled = new Map<string, Promise<Compiled>>();
  const sessions = new Map<string, { ip: string; modelId: string; used: number }>();
  const jobs = new Map<string, Job>();

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

  // Requests admitted whose bodies are still arriving count against the limits too (else many
  // uploads started at once would all pass); each is released when its response ends.
  const uploading = { keys: new Map<string, number>(), jobs: new Map<string, number>() };
  const inFlight = (kind: 'keys' | 'jobs', ip?: string) => (ip === undefined ? [...uploading[kind].values()].reduce((a, b) => a + b, 0) : (uploading[kind].get(ip) ?? 0));
  function reserve(kind: 'keys' | 'jobs', req: FastifyRequest, reply: FastifyReply): void {
    uploading[kind].set(req.ip, inFlight(kind, req.ip) + 1);
    reply.raw.once('close', () => {
      const left = inFlight(kind, req.ip) - 1;
      if (left > 0) uploading[kind].set(req.ip, left);
      else uploading[kind].delete(req.ip);
    });
  }
  const count = <T extends { ip: string }>(table: Map<string, T>, kind: 'keys' | 'jobs', ip: string) => [...table.values()].filter((v) => v.ip === ip).length + inFlight(kind, ip);

  function expireSessions(): void {
    const now = Date.now();
    for (const [id, s] of sessions) {
      if (now - s.used < limits.sessionIdleMs) continue;
      sessions.delete(id);
      service.closeSession(id);
    }
  }
  const sweeper = setInterval(expireSessions, Math.min(limits.sessionIdleMs, 30_000));
  sweeper.unref();

  function fail(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
    metrics.framesRejected.inc({ reason: status === 413 ? 'oversized' : status === 400 ? 'malformed' : 'refused' });
    return reply.code(status).send({ error: code, message });
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
      expireSessions();
      const refused = options.admitOpen(req.ip);
      if (refused) return fail(reply, refused.status, refused.code, refused.message);
      if (count(sessions, 'keys', req.ip) >= limits.sessionsPerClient) return fail(reply, 429, 'ERR_TOO_MANY_SESSIONS', `at most ${limits.sessionsPerClient} ckks-poly sessions per client; reuse one`);
      if (sessions.size + inFlight('keys') >= limits.sessions) return fail(reply, 503, 'ERR_BUSY', 'the service holds as many ckks-poly sessions as it can; retry later');
      reserve('keys', req, reply);
    }
    if (step === 'jobs') {
      if (count(jobs, 'jobs', req.ip) >= limits.jobsPerClient) return fail(reply, 429, 'ERR_TOO_MANY_JOBS', `at most ${limits.jobsPerClient} ckks-poly jobs per client at once (running or waiting to be fetched)`);
      if (jobs.size + inFlight('jobs') >= limits.jobs) return fail(reply.header('retry-after', '5'), 503, 'ERR_BUSY', 'the service runs as many ckks-poly jobs as it can; retry later');
      reserve('jobs', req, reply);
    }
    return undefined;
  }

  /** The request's bytes, checked to be a `type` message for this model (and its session). */
  function parse(req: FastifyRequest<{ Params: { modelId: string } }>, type: 'keys' | 'infer', info: PolyInfo): Uint8Array {
    const body = Buffer.isBuffer(req.body) ? new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength) : undefined;
    if (!body) throw new ProtocolError('ERR_BAD_REQUEST', 'send application/octet-stream');
    const msg = decodePolyMessage(body);
    if (msg.type !== type) throw new ProtocolError('ERR_BAD_MESSAGE', `this step takes a ${type} message, not ${msg.type}`);
    if ('model' in msg && msg.model !== req.params.modelId) throw new ProtocolError('ERR_BAD_MESSAGE', 'the message names another model than the URL');
    if (msg.type === 'infer') {
      const session = sessions.get(msg.session);
      if (!session || session.modelId !== req.params.modelId) throw new ProtocolError('ERR_UNKNOWN_SESSION', 'unknown or expired session for this model: send your keys again');
      if (msg.blobs.length !== info.inputSize) throw new ProtocolError('ERR_BAD_MESSAGE', `an infer message carries ${info.inputSize} ciphertexts, got ${msg.blobs.length}`);
      if (msg.count > info.params.polyModulusDegree / 2) throw new ProtocolError('ERR_BAD_MESSAGE', `at most ${info.params.polyModulusDegree / 2} images per job`);
      session.used = Date.now();
    }
    return body;
  }

  /** Runs the service on a message; an `error` reply becomes a typed error. */
  async function run(bytes: Uint8Array): Promise<Uint8Array> {
    const out = await service.handle(bytes);
    const head = decodePolyMessage(out);
    if (head.type === 'error') throw new ProtocolError(head.code, head.message);
    return out;
  }

  function startJob(ip: string, bytes: Uint8Array): string {
    const id = globalThis.crypto.randomUUID();
    const job: Job = {
      ip,
      started: performance.now(),
      status: 'running',
      done: service.handle(bytes).then(
        (out) => void (job.reply = out),
        () => void (job.reply = encodePolyMessage({ type: 'error', code: 'ERR_INTERNAL', message: 'internal error', blobs: [] })),
      ).finally(() => {
        job.status = 'done';
        metrics.messageSeconds.observe({ type: 'ckks-poly-job' }, (performance.now() - job.started) / 1000);
        job.expires = setTimeout(() => jobs.delete(id), limits.resultTtlMs);
        job.expires.unref();
      }),
    };
    jobs.set(id, job);
    return id;
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
          const out = await run(parse(req, 'keys', info));
          const session = decodePolyMessage(out);
          if (session.type === 'session') sessions.set(session.session, { ip: req.ip, modelId: req.params.modelId, used: Date.now() });
          metrics.sessionsOpened.inc({ transport: 'http' });
          return send(reply, out);
        }
        const job = startJob(req.ip, parse(req, 'infer', info));
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
    const job = jobs.get(req.params.jobId);
    if (!job) return fail(reply, 404, 'ERR_UNKNOWN_JOB', 'no such job: it was fetched already, expired, or never existed');
    const wait = Math.max(0, Math.min(MAX_POLL_WAIT_MS, Number.parseInt(req.query.wait ?? '0', 10) || 0));
    if (job.status === 'running' && wait > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([job.done, new Promise((r) => (timer = setTimeout(r, wait)))]);
      clearTimeout(timer);
    }
    if (job.status === 'running' || !job.reply) return reply.code(202).send({ job: req.params.jobId, status: 'running' });
    // The result goes out once: the service keeps nothing after.
    jobs.delete(req.params.jobId);
    clearTimeout(job.expires);
    const head = decodePolyMessage(job.reply);
    if (head.type === 'error') return fail(reply, STATUS[head.code] ?? 400, head.code, head.message);
    return send(reply, job.reply);
  });

  return {
    sessions: () => sessions.size,
    jobs: () => jobs.size,
    forget(modelId) {
      compiled.delete(modelId);
      for (const [id, s] of sessions) if (s.modelId === modelId) sessions.delete(id);
      service.unregister(modelId);
    },
    async close() {
      clearInterval(sweeper);
      await Promise.allSettled([...jobs.values()].map((j) => j.done));
      for (const j of jobs.values()) clearTimeout(j.expires);
      jobs.clear();
      await service.dispose();
      await pool?.destroy();
    },
  };
}
