/**
 * The blindml service (Fastify): a model registry for model owners, encrypted inference sessions
 * for clients over WebSocket (`GET /v1/ws`, binary frames) or HTTP (`POST /v1/paillier`), metrics,
 * and the browser pages.
 *
 * Routes:
 * - `GET /healthz` — liveness: `{ status, models, sessions }` (503 while shutting down).
 * - `GET /readyz` — readiness: 200 once the stored models are loaded while the registry store
 *   answers; 503 with the reason otherwise (`readiness.ts`).
 * - `GET /metrics` — Prometheus text.
 * - `GET /v1/models`, `GET /v1/models/:id` — public model list (with the API key: full records;
 *   a wrong key is refused).
 * - `POST /v1/models` (API key, checked before the body is read: `auth.ts`) — ONNX bytes as
 *   `application/octet-stream` (`?name=`), or JSON `{ onnx, calibration?, name? }` with base64
 *   files; 201 when created, 200 when already there; 400 for a model the service cannot serve.
 * - `DELETE /v1/models/:id` (API key).
 * - `GET /v1/samples?limit=N` — committed Fashion-MNIST test images for the demo page.
 * - `GET /v1/ws` — WebSocket; each binary frame is one protocol message, answered in order.
 * - `POST /v1/paillier` — one protocol message each way.
 * - `POST /v1/ckks/:modelId/:step` — the interactive CKKS protocol, one binary message each way
 *   (`ckks-routes.ts`).
 * - `GET /v1/ckks/ws` — the same CKKS steps over one WebSocket, in chunk frames (`ckks-ws-routes.ts`).
 * - `POST /v1/ckks-poly/:modelId/:step`, `GET /v1/ckks-poly/jobs/:id` — ckks-poly batch jobs
 *   (`ckks-poly-routes.ts`).
 * - `GET /`, `GET /owner`, `GET /assets/*` — the browser pages (built by `npm run build`).
 *
 * Behind a balancer, requests carrying a `blindml-route` key get the typed, retryable answers of
 * `routing.ts` when this replica does not hold their session or is draining.
 *
 * The server holds public keys only, never logs message contents, and ends only the affected
 * session when a frame is malformed, oversized, out of order or under a foreign key.
 *
 * @module
 */
import { availableParallelism, hostname } from 'node:os';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import websocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import { BlindmlError } from '../errors.js';
import { FASHION_MNIST_CLASSES, loadFashionMnistSample } from '../data/fashion-mnist.js';
import { PaillierInferenceService } from '../protocol/paillier-inference/service.js';
import { PaillierWorkerPool } from '../workers/paillier-pool.js';
import { closeFrame, errorFrame, peekHeader, type FrameHead } from './frames.js';
import { registerCkksRoutes } from './ckks-routes.js';
import { registerCkksPolyRoutes, type PolyLimits } from './ckks-poly-routes.js';
import { connectRedis } from './jobs/redis-store.js';
import type { RedisJobOptions } from './jobs/redis-jobs.js';
import { registerCkksWebSocket } from './ckks-ws-routes.js';
import { createMetrics, type ServiceMetrics } from './metrics.js';
import { serviceBudget, type MemoryBudget } from './budget.js';
import { PaillierKeyAccounts } from './paillier-keys.js';
import { generateApiKey, hashApiKey, ModelRegistry, RegistryError, RegistryStoreError, type ModelRecord } from './registry.js';
import { registerReadiness } from './readiness.js';
import { OwnerAuth, type AuthBackoff } from './auth.js';
import { loggerOptions } from './logging.js';
import { capBody, paillierBodyLimit, websocketErrorHandler } from './limits.js';
import { registerWebSecurity } from './web-security.js';
import { registerRouting } from './routing.js';

/** Options of {@link startServer}. Every limit has a default fit for one small machine. */
export interface ServerOptions {
  /**
   * The registry: a SQLite file (model files go to `<db>.models/`), or a PostgreSQL URL
   * (`postgres://user@host:5432/db`) shared by replicas. Default `./blindml.db`.
   */
  db?: string;
  /**
   * The owner's API key; otherwise the stored one, or a new one (returned once in
   * `generatedApiKey`). Its hash is stored only once the server listens.
   */
  apiKey?: string;
  host?: string;
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** Fastify's logger (pino): false, true, or pino options. Default false. */
  logger?: FastifyServerOptions['logger'];
  /**
   * Worker threads for the encrypted linear layers (0: evaluate on the main thread). Default: all cores.
   * Interactive CKKS keys and sessions always live on worker threads (this many, at least one).
   */
  workers?: number;
  /** Sessions idle this long are dropped. Default 60 s. */
  idleTimeoutMs?: number;
  /** Open sessions, all clients together. Default 64. */
  maxSessions?: number;
  /** Open sessions per client address. Default 8. */
  maxSessionsPerClient?: number;
  /** Sessions a client address may open per minute (token bucket, burst of the same size). Default 120. */
  opensPerMinute?: number;
  /** Largest protocol frame (WebSocket message or HTTP body). Default 32 MiB. */
  maxFrameBytes?: number;
  /** Largest model upload. Default 256 MiB. */
  maxModelBytes?: number;
  /** Accept client keys below 2048 bits (tests only). */
  allowInsecureKeys?: boolean;
  /** Directory of the built browser pages. Default `dist/public` of this package. */
  publicDir?: string;
  /** How long a shutdown waits for running sessions before aborting them. Default 10 s. */
  shutdownGraceMs?: number;
  /**
   * Largest CKKS request body (`POST /v1/ckks/...`; a reference-CNN round is about 80 MiB). Each step
   * is further capped by what it can carry for the model it names. Default 256 MiB.
   */
  maxCkksBodyBytes?: number;
  /** CKKS sessions kept prepared per model between requests (each about 350 MiB for the reference CNN). Default 1. */
  ckksPreparedSessions?: number;
  /**
   * Memory the whole service should stay within, MiB (see `serviceBudget`: per-client structures
   * get what is left after what the process holds at start, less a reserve for models). Default 3072.
   */
  maxMemoryMb?: number;
  /** Client Paillier modulus sizes accepted, bits. Default 2048–4096 (from 256 with `allowInsecureKeys`). */
  keyBits?: { min?: number; max?: number };
  /**
   * Which proxies in front may name the client address in `X-Forwarded-For` (a hop count, or
   * addresses/subnets such as `loopback` or `10.0.0.0/8`); per-address limits then use the real
   * client. Default: none (the socket's peer address).
   */
  trustProxy?: number | string | string[];
  /** How wrong owner keys slow an address down (defaults in `auth.ts`). */
  authBackoff?: Partial<AuthBackoff>;
  /** HTTPS (and WSS): PEM certificate chain and private key. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * Browser origins (e.g. `https://app.example.com`) allowed to call the API cross-origin (CORS)
   * and to open WebSockets. Pages served by the service itself are always allowed. Default none.
   */
  allowedOrigins?: readonly string[];
  /** Limits of the ckks-poly batch endpoint (`ckks-poly-routes.ts`). */
  ckksPoly?: Partial<PolyLimits>;
  /**
   * This replica's name behind a balancer: the `replica` label of every metric (no label without
   * it: Prometheus' own `instance` label tells scrape targets apart) and the `blindml-replica`
   * header of routed answers (`routing.ts`; default `<hostname>:<port>`).
   */
  replicaName?: string;
  /**
   * Redis URL (`redis://host:port`): ckks-poly sessions and batch jobs go to Redis and are run by
   * `blindml worker` processes (BullMQ) instead of in this process (`jobs/redis-jobs.ts`).
   */
  redis?: string;
  /** Timing of jobs in Redis (ignored without `redis`). */
  redisJobs?: RedisJobOptions;
}

/** A running service. */
export interface BlindmlServer {
  readonly app: FastifyInstance;
  /** Base URL, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly registry: ModelRegistry;
  readonly service: PaillierInferenceService;
  readonly metrics: ServiceMetrics;
  /** The memory budget every per-client structure is held in. */
  readonly budget: MemoryBudget;
  /** Set when no key was given or stored (nor stored by another replica meanwhile): the new owner key, to be shown once. */
  readonly generatedApiKey: string | undefined;
  /** Models in the database that could not be loaded (missing file, import error); filled while they warm. */
  readonly skippedModels: readonly { id: string; reason: string }[];
  /** Settles when every stored model is compiled (the server listens before: they are warming meanwhile). */
  readonly ready: Promise<void>;
  /** Open sessions per transport, as the front tracks them. */
  trackedSessions(): number;
  /**
   * Graceful shutdown: refuses new sessions, waits up to `graceMs` for running ones to finish,
   * aborts the rest (WebSocket close 1001), then closes the server, the workers and the database.
   * A later call with a shorter grace brings the deadline forward (`serve`'s second signal aborts
   * at once); every call settles with the first.
   */
  close(graceMs?: number): Promise<void>;
}

const SETTING_KEY_HASH = 'api_key_sha256';

interface Tracked {
  ip: string;
  transport: 'ws' | 'http';
  started: number;
  conn: Connection | undefined;
}

interface Connection {
  socket: WebSocket;
  ip: string;
  sessions: Set<string>;
  queue: Promise<void>;
  pending: number;
}

/** Where `npm run build` puts the browser pages. */
function defaultPublicDir(): string {
  return fileURLToPath(new URL('../../dist/public/', import.meta.url));
}

/**
 * Opens the registry, compiles its models and starts listening.
 *
 * @throws if the database cannot be opened or the port cannot be bound.
 */
export async function startServer(options: ServerOptions = {}): Promise<BlindmlServer> {
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const maxFrame = options.maxFrameBytes ?? 32 * 2 ** 20;
  const perClient = options.maxSessionsPerClient ?? 8;
  const opensPerMinute = options.opensPerMinute ?? 120;
  const graceDefault = options.shutdownGraceMs ?? 10_000;

  // Checked before the database is touched.
  const budget = serviceBudget(options.maxMemoryMb ?? 3072, idleTimeoutMs);
  const insecure = options.allowInsecureKeys ?? false;
  const bounds = { minBits: options.keyBits?.min ?? (insecure ? 256 : 2048), maxBits: options.keyBits?.max ?? 4096 };
  if (!(bounds.minBits >= 1 && bounds.minBits <= bounds.maxBits)) throw new RangeError(`client key bounds ${bounds.minBits}–${bounds.maxBits} bits are empty`);

  // Before the database too: a Redis that does not answer leaves nothing behind.
  const redis = options.redis ? await connectRedis(options.redis) : undefined;
  // Stored models compile on the compile thread after the server listens (see `ready`).
  const { registry, skipped } = await ModelRegistry.open(options.db ?? './blindml.db');
  // A new key's hash is stored only once the server listens (and the caller can show the key).
  const storedKeyHash = await registry.setting(SETTING_KEY_HASH).catch(async (err: unknown) => {
    await registry.close();
    throw err;
  });
  let generatedApiKey = options.apiKey || storedKeyHash ? undefined : generateApiKey();
  const keyHash = options.apiKey ? hashApiKey(options.apiKey) : generatedApiKey ? hashApiKey(generatedApiKey) : storedKeyHash!;

  const threads = options.workers ?? availableParallelism();
  const pool = threads > 0 ? new PaillierWorkerPool({ threads, keyCache: { maxKeys: 8, idleMs: idleTimeoutMs } }) : undefined;
  const paillierKeys = new PaillierKeyAccounts(budget, {
    bounds,
    threads,
    ...(pool ? { workers: pool } : {}),
  });
  const service = new PaillierInferenceService({
    idleTimeoutMs,
    maxSessions: options.maxSessions ?? 64,
    allowInsecureKeys: options.allowInsecureKeys ?? false,
    maxMessageBytes: maxFrame,
    ...(pool ? { evaluator: pool } : {}),
  });

  const tracked = new Map<string, Tracked>();
  const byIp = new Map<string, Set<string>>();
  const buckets = new Map<string, { tokens: number; at: number }>();
  const connections = new Set<Connection>();
  let draining = false;

  /** Open sessions of every scheme, and the memory budget (for /healthz and /metrics). */
  // ckks-poly sessions hold keys between jobs; its jobs are counted apart (they run or hold results).
  const serviceLoad = () => ({
    sessions: tracked.size + ckks.openSessions() + poly.sessions(),
    sessionsByScheme: { paillier: tracked.size, ckks: ckks.openSessions(), 'ckks-poly': poly.sessions() },
    jobs: { 'ckks-poly': poly.jobs() },
    warming: { paillier: registry.warming, ckks: ckks.compiling() },
    memory: { budgetBytes: budget.maxBytes, heldBytes: budget.bytes(), rssBytes: process.memoryUsage.rss() },
  });
  const metrics = createMetrics({ sessions: () => serviceLoad().sessionsByScheme, models: () => registry.list().length, budget });
  // Named once the port is known (`<hostname>:<port>` by default).
  let replica = options.replicaName ?? hostname();
  const app = Fastify({
    logger: loggerOptions(options.logger),
    bodyLimit: 1024 * 1024,
    // A hop count trusts that many proxies nearest the server (what proxy-addr does with a number).
    trustProxy: typeof options.trustProxy === 'number' ? ((_addr: string, hop: number) => hop < (options.trustProxy as number)) : options.trustProxy ?? false,
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
  }) as unknown as FastifyInstance;
  const log = app.log;
  await registerWebSecurity(app, { allowedOrigins: options.allowedOrigins ?? [], tls: options.tls !== undefined });
  registerRouting(app, { replica: () => replica });

  function endSession(id: string, outcome: 'completed' | 'failed' | 'aborted' | 'expired'): void {
    const t = tracked.get(id);
    if (!t) return;
    tracked.delete(id);
    const set = byIp.get(t.ip);
    set?.delete(id);
    if (set && set.size === 0) byIp.delete(t.ip);
    t.conn?.sessions.delete(id);
    paillierKeys.ended(id);
    metrics.sessionsEnded.inc({ outcome });
    const seconds = (performance.now() - t.started) / 1000;
    if (outcome === 'completed') metrics.sessionSeconds.observe(seconds);
    log.info({ session: id.slice(0, 8), outcome, transport: t.transport, seconds: Number(seconds.toFixed(3)) }, 'session ended');
  }

  /** Drops tracking of sessions the service no longer holds (finished elsewhere or idle). */
  function prune(ip?: string): void {
    const ids = ip ? [...(byIp.get(ip) ?? [])] : [...tracked.keys()];
    for (const id of ids) if (!service.hasSession(id)) endSession(id, 'expired');
  }
  const sweeper = setInterval(() => prune(), Math.max(250, Math.min(idleTimeoutMs / 2, 5_000)));
  sweeper.unref();

  /** Token bucket per address: `perMinute` tokens, refilled continuously. */
  function takeToken(ip: string, table = buckets, perMinute = opensPerMinute): boolean {
    const now = Date.now();
    const b = table.get(ip) ?? { tokens: perMinute, at: now };
    b.tokens = Math.min(perMinute, b.tokens + ((now - b.at) / 60_000) * perMinute);
    b.at = now;
    table.set(ip, b);
    if (table.size > 10_000) table.delete(table.keys().next().value!);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  function refuse(reason: 'rate_limited' | 'session_limit' | 'shutting_down' | 'key_size' | 'memory', code: string, text: string): Uint8Array {
    metrics.framesRejected.inc({ reason });
    return errorFrame(code, text);
  }

  /** One protocol message in, one out. Never throws. */
  async function exchange(bytes: Uint8Array, ip: string, transport: 'ws' | 'http', conn?: Connection): Promise<Uint8Array> {
    metrics.bytesReceived.inc({ transport }, bytes.length);
    const head: FrameHead | null = peekHeader(bytes);
    let reply: Uint8Array;
    let key: ReturnType<PaillierKeyAccounts['admit']>;
    // A model still compiling after start: the open waits for it (the event loop does not).
    if (head?.type === 'open' && head.modelId !== undefined) await registry.whenWarm(head.modelId);
    if (head?.type === 'open' && draining) {
      reply = refuse('shutting_down', 'ERR_SHUTTING_DOWN', 'the service is shutting down; retry later');
    } else if (head?.type === 'open' && (prune(ip), (byIp.get(ip)?.size ?? 0) >= perClient)) {
      reply = refuse('session_limit', 'ERR_TOO_MANY_SESSIONS', `at most ${perClient} open sessions per client`);
    } else if (head?.type === 'open' && !takeToken(ip)) {
      reply = refuse('rate_limited', 'ERR_RATE_LIMITED', `at most ${opensPerMinute} sessions per minute per client`);
    } else if (head?.type === 'open' && (key = paillierKeys.admit(bytes, ip)) && 'refusal' in key) {
      // Before the service builds anything from the key: its size, then room for its tables.
      reply = refuse(key.refusal.code === 'ERR_KEY_SIZE' ? 'key_size' : 'memory', key.refusal.code, key.refusal.message);
    } else {
      const started = performance.now();
      reply = await service.handle(bytes);
      metrics.messageSeconds.observe({ type: head?.type ?? 'malformed' }, (performance.now() - started) / 1000);
      const out = peekHeader(reply);
      if (out?.type === 'opened' && out.sessionId) {
        tracked.set(out.sessionId, { ip, transport, started: performance.now(), conn });
        if (!byIp.has(ip)) byIp.set(ip, new Set());
        byIp.get(ip)!.add(out.sessionId);
        conn?.sessions.add(out.sessionId);
        if (key && 'entry' in key) paillierKeys.opened(key.entry, out.sessionId);
        metrics.sessionsOpened.inc({ transport });
        log.info({ session: out.sessionId.slice(0, 8), model: head?.modelId, ip, transport }, 'session opened');
      } else if (out?.type === 'activate' || out?.type === 'result') {
        if (head?.type === 'activated') metrics.rounds.inc();
        if (head?.sessionId) paillierKeys.touched(head.sessionId);
        if (out.type === 'result' && out.sessionId) endSession(out.sessionId, 'completed');
      } else if (out?.type === 'closed' && out.sessionId) {
        endSession(out.sessionId, 'aborted');
      } else if (out?.type === 'error') {
        metrics.framesRejected.inc({ reason: out.code === 'ERR_BAD_MESSAGE' || !head ? 'malformed' : 'refused' });
        log.warn({ code: out.code, type: head?.type ?? 'malformed', bytes: bytes.length, ip, transport }, 'message refused');
        if (head?.sessionId) endSession(head.sessionId, 'failed');
        else if (conn && head?.type !== 'open') for (const id of [...conn.sessions]) closeSession(id, 'failed');
      }
    }
    metrics.bytesSent.inc({ transport }, reply.length);
    return reply;
  }

  function closeSession(id: string, outcome: 'failed' | 'aborted'): void {
    void service.handle(closeFrame(id));
    endSession(id, outcome);
  }

  // Owner routes check the key from the headers before any body is read (auth.ts).
  const auth = new OwnerAuth(keyHash, options.authBackoff, (ip, code) => log.warn({ ip, code }, 'owner request refused'));
  const ownerOnly = { onRequest: auth.hook('required') };
  const ownerOptional = { onRequest: auth.hook('optional') };
  const publicRecord = (m: ModelRecord) => ({ id: m.id, name: m.name, inputShape: m.inputShape, outputSize: m.outputSize, rounds: m.rounds, ...(m.classNames ? { classNames: m.classNames } : {}), ...(m.standardization ? { standardization: m.standardization } : {}) });

  // --- content types -------------------------------------------------------------------------
  const maxCkksBody = options.maxCkksBodyBytes ?? 256 * 2 ** 20;
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: Math.max(maxFrame, maxCkksBody, options.maxModelBytes ?? 256 * 2 ** 20) }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 413) metrics.framesRejected.inc({ reason: 'oversized' });
    if (status >= 500) req.log.error({ code: err.code }, 'request failed');
    void reply.code(status).send({ error: err.code ?? 'ERR_INTERNAL', message: status >= 500 ? 'internal error' : err.message });
  });

  // --- health and metrics -------------------------------------------------------------------
  app.get('/healthz', { logLevel: 'warn' }, async (_req, reply) => {
    const body = { status: draining ? 'shutting-down' : 'ok', models: registry.list().length, ...serviceLoad() };
    return reply.code(draining ? 503 : 200).send(body);
  });
  registerReadiness(app, { registry, draining: () => draining });
  app.get('/metrics', { logLevel: 'warn' }, async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  // --- model registry -----------------------------------------------------------------------
  app.get('/v1/models', ownerOptional, async (req) => ({ models: registry.list().map((m) => (req.blindmlOwner ? m : publicRecord(m))) }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', ownerOptional, async (req, reply) => {
    const m = registry.get(req.params.id);
    if (!m) return reply.code(404).send({ error: 'ERR_UNKNOWN_MODEL', message: `no model with id ${req.params.id}` });
    return req.blindmlOwner ? m.record : publicRecord(m.record);
  });
  app.post<{ Querystring: { name?: string } }>(
    '/v1/models',
    { bodyLimit: options.maxModelBytes ?? 256 * 2 ** 20, ...ownerOnly },
    async (req, reply) => {
      let onnx: Uint8Array;
      let calibration: Uint8Array | undefined;
      let name = req.query.name;
      if (Buffer.isBuffer(req.body)) {
        onnx = new Uint8Array(req.body);
      } else {
        const body = req.body as { onnx?: unknown; calibration?: unknown; name?: unknown } | null;
        if (!body || typeof body.onnx !== 'string') return reply.code(400).send({ error: 'ERR_BAD_REQUEST', message: 'send ONNX bytes (application/octet-stream) or JSON { onnx: base64, calibration?: base64, name? }' });
        onnx = Buffer.from(body.onnx, 'base64');
        if (typeof body.calibration === 'string') calibration = Buffer.from(body.calibration, 'base64');
        if (typeof body.name === 'string') name = body.name;
      }
      try {
        const { model, created } = await registry.add(onnx, { ...(name ? { name } : {}), ...(calibration ? { calibration } : {}) });
        if (model.compiled) service.register(model.record.id, model.compiled);
        req.log.info({ model: model.record.id, created, bytes: onnx.length }, 'model registered');
        return reply.code(created ? 201 : 200).send({ model: model.record, created });
      } catch (err) {
        // The store failing is the service's trouble (503 from the error handler), not the upload's.
        if ((err instanceof RegistryError || err instanceof BlindmlError) && !(err instanceof RegistryStoreError)) {
          return reply.code(err instanceof RegistryError ? err.status : 400).send({ error: err.code, message: err.message });
        }
        throw err;
      }
    },
  );
  app.delete<{ Params: { id: string } }>('/v1/models/:id', ownerOnly, async (req, reply) => {
    if (!(await registry.remove(req.params.id))) return reply.code(404).send({ error: 'ERR_UNKNOWN_MODEL', message: `no model with id ${req.params.id}` });
    service.unregister(req.params.id);
    ckks.forget(req.params.id);
    poly.forget(req.params.id);
    req.log.info({ model: req.params.id }, 'model removed');
    return reply.code(204).send();
  });

  // --- demo data ------------------------------------------------------------------------------
  let samples: { shape: readonly number[]; classes: readonly string[]; labels: number[]; images: string[] } | undefined;
  app.get<{ Querystring: { limit?: string } }>('/v1/samples', async (req) => {
    if (!samples) {
      const s = loadFashionMnistSample({ limit: 100 });
      const size = s.shape.reduce((a, b) => a * b, 1);
      samples = {
        shape: s.shape,
        classes: FASHION_MNIST_CLASSES,
        labels: Array.from(s.labels),
        images: Array.from({ length: s.count }, (_, k) => Buffer.from(Uint8Array.from(s.images.subarray(k * size, (k + 1) * size), (v) => Math.round(v * 255))).toString('base64')),
      };
    }
    const limit = Math.max(1, Math.min(100, Number.parseInt(req.query.limit ?? '24', 10) || 24));
    return { ...samples, labels: samples.labels.slice(0, limit), images: samples.images.slice(0, limit) };
  });

  // --- inference over HTTP --------------------------------------------------------------------
  // Capped, before reading, by the largest message a client of the registered models can send.
  // While stored models are still compiling their plans are unknown: the configured cap holds.
  const paillierCap = (): number =>
    registry.warming > 0 ? maxFrame : paillierBodyLimit(registry.list().flatMap((m) => registry.get(m.id)?.compiled ?? []), maxFrame, bounds.maxBits);
  app.post('/v1/paillier', { bodyLimit: maxFrame, logLevel: 'warn', preParsing: async (req, reply, payload) => capBody(req, reply, payload, paillierCap()) }, async (req, reply) => {
    if (!Buffer.isBuffer(req.body)) return reply.code(415).send({ error: 'ERR_BAD_REQUEST', message: 'send application/octet-stream' });
    const started = performance.now();
    const out = await exchange(new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength), req.ip, 'http');
    return reply
      .header('content-type', 'application/octet-stream')
      .header('x-blindml-service-ms', (performance.now() - started).toFixed(1))
      .send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  });

  // --- interactive CKKS over HTTP ---------------------------------------------------------------
  const ckks = registerCkksRoutes(app, {
    registry,
    metrics,
    log,
    threads,
    maxBodyBytes: maxCkksBody,
    preparedSessions: options.ckksPreparedSessions ?? 1,
    budget,
    maxSessionsPerClient: perClient,
    // Keys outlive sessions (a client returns with the same keys); the budget evicts them under pressure.
    keysIdleMs: Math.max(idleTimeoutMs, 15 * 60_000),
    admitOpen: ckksAdmit,
  });
  function ckksAdmit(ip: string): { status: number; code: string; message: string } | null {
    if (draining) return { status: 503, code: 'ERR_SHUTTING_DOWN', message: 'the service is shutting down; retry later' };
    if (!takeToken(ip)) return { status: 429, code: 'ERR_RATE_LIMITED', message: `at most ${opensPerMinute} sessions per minute per client` };
    return null;
  }

  // --- ckks-poly batch jobs ----------------------------------------------------------------------
  const poly = registerCkksPolyRoutes(app, {
    registry,
    metrics,
    log,
    threads,
    ...(options.ckksPoly ? { limits: options.ckksPoly } : {}),
    ...(redis ? { redis: { client: redis, ...(options.redisJobs ? { options: options.redisJobs } : {}) } } : {}),
    admitOpen: ckksAdmit,
  });

  // --- inference over WebSocket ---------------------------------------------------------------
  await app.register(websocket, { options: { maxPayload: maxFrame, perMessageDeflate: false }, errorHandler: websocketErrorHandler });
  app.get('/v1/ws', { websocket: true }, (socket, req) => {
    const conn: Connection = { socket, ip: req.ip, sessions: new Set(), queue: Promise.resolve(), pending: 0 };
    connections.add(conn);
    metrics.wsConnections.inc();
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (conn.pending >= 64) {
        metrics.framesRejected.inc({ reason: 'malformed' });
        socket.close(1008, 'too many frames in flight');
        return;
      }
      conn.pending++;
      conn.queue = conn.queue.then(async () => {
        const out = isBinary ? await exchange(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), conn.ip, 'ws', conn) : (metrics.framesRejected.inc({ reason: 'malformed' }), errorFrame('ERR_BAD_MESSAGE', 'send binary frames'));
        conn.pending--;
        if (socket.readyState === socket.OPEN) socket.send(out, { binary: true });
      }).catch((err: unknown) => {
        // exchange() does not throw; if sending fails, end this connection only.
        log.error({ ip: conn.ip, reason: err instanceof Error ? err.message.slice(0, 100) : 'unknown' }, 'websocket frame failed');
        socket.terminate();
      });
    });
    socket.on('error', (err: Error) => {
      if (/max payload/i.test(err.message)) metrics.framesRejected.inc({ reason: 'oversized' });
      log.warn({ ip: conn.ip, reason: err.message.slice(0, 100) }, 'websocket error');
    });
    socket.on('close', () => {
      connections.delete(conn);
      metrics.wsConnections.dec();
      // Let a frame being processed finish, then drop whatever this client left open.
      void conn.queue.then(() => {
        for (const id of [...conn.sessions]) closeSession(id, 'aborted');
      });
    });
  });

  // --- interactive CKKS over WebSocket (each request runs through the HTTP route) ---------------
  registerCkksWebSocket(app, { log, maxBodyBytes: maxCkksBody });

  // --- browser pages ----------------------------------------------------------------------------
  const publicDir = options.publicDir ?? defaultPublicDir();
  const assets = new Map<string, { type: string; body: Buffer }>();
  if (existsSync(publicDir)) {
    for (const f of readdirSync(publicDir)) {
      if (!/^[\w.-]+\.(js|css|html|map)$/.test(f)) continue;
      const type = f.endsWith('.js') ? 'text/javascript' : f.endsWith('.css') ? 'text/css' : f.endsWith('.html') ? 'text/html; charset=utf-8' : 'application/json';
      assets.set(f, { type, body: readFileSync(join(publicDir, f)) });
    }
  }
  const page = (file: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    const a = assets.get(file);
    if (!a) return reply.code(404).type('text/plain').send('the browser pages are not built: run npm run build');
    return reply.type(a.type).header('cache-control', 'no-cache').send(a.body);
  };
  app.get('/', page('index.html'));
  app.get('/owner', page('owner.html'));
  app.get<{ Params: { file: string } }>('/assets/:file', async (req, reply) => page(req.params.file)(req, reply));

  try {
    await app.listen({ port: options.port ?? 8080, host: options.host ?? '127.0.0.1' });
    if (options.apiKey) {
      if (storedKeyHash !== keyHash) await registry.setSetting(SETTING_KEY_HASH, keyHash);
    } else if (generatedApiKey) {
      // Replicas sharing a registry: the first to start stores its key; the others use that one.
      const stored = await registry.claimSetting(SETTING_KEY_HASH, keyHash);
      if (stored !== keyHash) {
        auth.useKeyHash(stored);
        generatedApiKey = undefined;
      }
    }
  } catch (err) {
    // Nothing stays behind: no key stored, no threads left running.
    clearInterval(sweeper);
    await app.close();
    await ckks.close();
    await poly.close();
    await pool?.destroy();
    await registry.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port ?? 8080;
  const host = options.host ?? '127.0.0.1';
  const url = `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  replica = options.replicaName ?? `${hostname()}:${port}`;
  if (options.replicaName) metrics.registry.setDefaultLabels({ replica });

  const ready = registry.warm({
    loaded: (m) => {
      if (m.compiled) service.register(m.record.id, m.compiled);
      log.info({ model: m.record.id }, 'model loaded');
    },
    failed: (id, reason) => log.warn({ model: id, reason: reason.slice(0, 200) }, 'model not loaded'),
    // Through another replica sharing the registry.
    removed: (id) => {
      service.unregister(id);
      ckks.forget(id);
      poly.forget(id);
      log.info({ model: id }, 'model removed');
    },
  });

  let closing: Promise<void> | undefined;
  /** When the drain gives up on running sessions; a later, shorter `close()` (a second signal) brings it forward. */
  let drainUntil = Infinity;
  async function close(graceMs: number): Promise<void> {
    draining = true;
    drainUntil = Date.now() + graceMs;
    while (Date.now() < drainUntil) {
      prune();
      // Running sessions of every scheme, and in-process ckks-poly jobs until their results are
      // fetched (jobs in Redis outlive this replica: any replica answers their polls).
      if (tracked.size + ckks.openSessions() + (redis ? 0 : poly.jobs()) === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const aborted = tracked.size;
    for (const id of [...tracked.keys()]) closeSession(id, 'aborted');
    for (const c of connections) c.socket.close(1001, 'server shutting down');
    if (aborted) log.warn({ aborted }, 'sessions aborted at shutdown');
    clearInterval(sweeper);
    service.closeAll();
    budget.clear();
    await app.close();
    await ckks.close();
    await poly.close();
    await pool?.destroy();
    await registry.close();
  }

  return {
    app,
    url,
    registry,
    service,
    metrics,
    budget,
    generatedApiKey,
    skippedModels: skipped,
    ready,
    trackedSessions: () => tracked.size,
    close: (graceMs = graceDefault) => {
      drainUntil = Math.min(drainUntil, Date.now() + graceMs);
      return (closing ??= close(graceMs));
    },
  };
}
