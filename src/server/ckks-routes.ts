/**
 * The interactive CKKS protocol over HTTP: `POST /v1/ckks/:modelId/:step` with one binary message
 * each way (`protocol/ckks-inference/wire.ts`), step ∈ describe | keys | open | round.
 *
 * A model registered for the Paillier protocol is compiled for CKKS on its first CKKS request
 * (from its stored ONNX and calibration files, on a compile thread) and kept. Between sessions the front does the
 * service's idle work: it prepares the next session (every per-session plaintext encoded, on the
 * product workers) and tops up the client's smudging ciphertexts, so a session's rounds only do the
 * input-dependent products. Errors come back as HTTP 4xx with `{ error, message }`; a bad round
 * ends that session only.
 *
 * @module
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { BlindmlError, FormatError, InvalidCiphertextError, KeyMismatchError } from '../errors.js';
import {
  CkksInferenceService, OutOfOrderError, UnknownKeysError, UnknownSessionError,
} from '../protocol/ckks-inference/index.js';
import { decodeCkksMessage, encodeCkksMessage } from '../protocol/ckks-inference/wire.js';
import { CkksProductPool } from '../workers/ckks-products-pool.js';
import type { ModelRegistry } from './registry.js';
import type { MemoryBudget } from './budget.js';
import { CkksAccounts, checkKeySizes } from './ckks-accounts.js';
import { CkksCompiler } from './ckks-compile.js';
import type { ServiceMetrics } from './metrics.js';
import { CKKS_SMALL_BODY_BYTES, capBody, ckksBodyLimit } from './limits.js';

/** The steps of the protocol, in the order a client takes them. */
export const CKKS_STEPS = ['describe', 'keys', 'open', 'round'] as const;
type Step = (typeof CKKS_STEPS)[number];

/** What the front needs from the server around it. */
export interface CkksFrontOptions {
  readonly registry: ModelRegistry;
  readonly metrics: ServiceMetrics;
  readonly log: FastifyBaseLogger;
  /** Worker threads for the products (0: the service's own thread). */
  readonly threads: number;
  /** Largest request body (a round of the reference CNN uploads about 80 MiB). */
  readonly maxBodyBytes: number;
  /** Sessions kept prepared per model between requests (0: none). */
  readonly preparedSessions: number;
  /** Refuses an `open` or a key upload (shutting down, rate limit): an error to send back, or null to go on. */
  readonly admitOpen: (ip: string) => { status: number; code: string; message: string } | null;
  /** The service's memory budget: keys, open and prepared sessions are entries of it. */
  readonly budget: MemoryBudget;
  /** Open CKKS sessions per client address, over every model. */
  readonly maxSessionsPerClient: number;
  /** How long a client's keys stay loaded unused. */
  readonly keysIdleMs: number;
}

/** The running front: its services and how to stop them. */
export interface CkksFront {
  /** Models compiled for CKKS so far. */
  services(): number;
  /** Open CKKS sessions, every model. */
  openSessions(): number;
  /** Models being compiled for CKKS now. */
  compiling(): number;
  /** Drops a model's CKKS service (the model was removed). */
  forget(modelId: string): void;
  close(): Promise<void>;
}

const STATUS: [new (...a: never[]) => Error, number][] = [
  [UnknownSessionError, 404],
  [UnknownKeysError, 404],
  [OutOfOrderError, 409],
  [KeyMismatchError, 400],
  [InvalidCiphertextError, 400],
  [FormatError, 400],
];

/** Registers the routes on `app`. */
export function registerCkksRoutes(app: FastifyInstance, options: CkksFrontOptions): CkksFront {
  const { registry, metrics, log } = options;
  const pool = options.threads > 0 ? new CkksProductPool({ threads: options.threads }) : undefined;
  const services = new Map<string, Promise<CkksInferenceService>>();
  const refilling = new Set<string>();
  const accounts = new CkksAccounts(options.budget, { perClientSessions: options.maxSessionsPerClient, keysIdleMs: options.keysIdleMs });
  const compiler = new CkksCompiler();
  /** Models being compiled for CKKS now. */
  const compiling = new Set<string>();

  function serviceFor(modelId: string): Promise<CkksInferenceService> | undefined {
    const known = services.get(modelId);
    if (known) return known;
    if (!registry.get(modelId)) return undefined;
    compiling.add(modelId);
    const created = (async () => {
      // On the compile thread: the event loop keeps answering everyone else meanwhile.
      const compiled = await registry.storedFiles(modelId).then((files) => compiler.compile(files)).finally(() => compiling.delete(modelId));
      await pool?.prepare(compiled.params.ckks);
      const service = await CkksInferenceService.create(compiled, pool ? { evaluator: pool } : {});
      log.info({ model: modelId, ring: compiled.params.ckks.polyModulusDegree }, 'model compiled for CKKS');
      return service;
    })();
    services.set(modelId, created);
    created.then((s) => refill(modelId, s), () => services.delete(modelId));
    return created;
  }

  /** Idle work after a session: the next prepared session, and smudging ciphertexts for that client's keys. */
  function refill(modelId: string, service: CkksInferenceService, keyId?: string): void {
    if (refilling.has(modelId)) return;
    refilling.add(modelId);
    void (async () => {
      try {
        // One smudging ciphertext per turn of the event loop (each is a public-key encryption,
        // tens of ms): a large model needs dozens, which must not hold up other clients' requests.
        for (let i = 0; keyId && i < service.describe().outputCiphertexts; i++) {
          service.precompute(keyId, 1);
          await new Promise((r) => setImmediate(r));
        }
        await accounts.prepare(modelId, service, options.preparedSessions, () => services.get(modelId) !== undefined);
      } catch (err) {
        // Keys evicted meanwhile, or the service closed: the next session just does the work online.
        log.debug({ model: modelId, reason: err instanceof Error ? err.message.slice(0, 100) : 'unknown' }, 'CKKS idle work skipped');
      } finally {
        refilling.delete(modelId);
      }
    })();
  }

  async function step(service: CkksInferenceService, name: Step, request: unknown): Promise<unknown> {
    switch (name) {
      case 'describe':
        return service.describe();
      case 'keys':
        return service.registerKeys(request);
      case 'open':
        return service.open(request);
      case 'round':
        return service.round(request);
    }
  }

  /** What this step for this model can need (the model compiled first), before any body is read. */
  async function bodyLimitOf(modelId: string, step: string): Promise<number> {
    const service = CKKS_STEPS.includes(step as Step) ? serviceFor(modelId) : undefined;
    const described = await service?.then((s) => s.describe(), () => undefined);
    return described ? ckksBodyLimit(step, described, options.maxBodyBytes) : CKKS_SMALL_BODY_BYTES;
  }

  app.post<{ Params: { modelId: string; step: string } }>('/v1/ckks/:modelId/:step', {
    bodyLimit: options.maxBodyBytes,
    logLevel: 'warn',
    preParsing: async (req, reply, payload) => capBody(req, reply, payload, await bodyLimitOf(req.params.modelId, req.params.step)),
  }, async (req, reply) => {
    const fail = (status: number, code: string, message: string) => {
      metrics.framesRejected.inc({ reason: status === 400 ? 'malformed' : 'refused' });
      return reply.code(status).send({ error: code, message });
    };
    const name = req.params.step as Step;
    if (!CKKS_STEPS.includes(name)) return fail(404, 'ERR_NOT_FOUND', `no CKKS step '${req.params.step}'; use ${CKKS_STEPS.join(', ')}`);
    // A stored model still compiling after start: wait for it (the event loop does not).
    await registry.whenWarm(req.params.modelId);
    const service = serviceFor(req.params.modelId);
    if (!service) return fail(404, 'ERR_UNKNOWN_MODEL', `no model with id ${req.params.modelId}`);
    if (name === 'open' || name === 'keys') {
      const refused = options.admitOpen(req.ip);
      if (refused) return fail(refused.status, refused.code, refused.message);
    }
    const started = performance.now();
    try {
      const body = Buffer.isBuffer(req.body) ? new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength) : undefined;
      const request = name === 'describe' ? undefined : body ? decodeCkksMessage(body) : undefined;
      if (name !== 'describe' && request === undefined) return fail(415, 'ERR_BAD_REQUEST', 'send application/octet-stream');
      const s = await service;
      metrics.bytesReceived.inc({ transport: 'http' }, body?.length ?? 0);
      const { modelId } = req.params;
      const sessionId = (request as { sessionId?: unknown } | undefined)?.sessionId;
      if (name === 'keys') {
        const tooBig = checkKeySizes(s.describe(), request);
        if (tooBig) return fail(tooBig.status, tooBig.code, tooBig.message);
      }
      let admitted: { entry: string } | undefined;
      if (name === 'open') {
        const a = accounts.admitOpen(modelId, s, req.ip);
        if (!('entry' in a)) return fail(a.status, a.code, a.message);
        admitted = a;
      }
      if (name === 'round' && typeof sessionId === 'string') accounts.touched(modelId, sessionId);
      // The session's key id, read before its last round closes it (for the idle work after).
      const sessionKey = name === 'round' ? s.sessionKeyId(request) : undefined;
      let out: unknown;
      try {
        out = await step(s, name, request);
      } catch (err) {
        if (admitted) accounts.openFailed(admitted.entry);
        if (name === 'round' && typeof sessionId === 'string') accounts.ended(modelId, sessionId);
        throw err;
      }
      if (admitted) {
        accounts.opened(admitted.entry, (out as { sessionId: string }).sessionId, (request as { keyId: string }).keyId);
        metrics.sessionsOpened.inc({ transport: 'http' });
      }
      if (name === 'round') {
        metrics.rounds.inc();
        const done = (out as { next?: unknown }).next === undefined;
        if (done) {
          accounts.ended(modelId, sessionId as string);
          metrics.sessionsEnded.inc({ outcome: 'completed' });
          refill(modelId, s, sessionKey);
        }
      }
      if (name === 'keys') {
        const { keyId } = out as { keyId: string };
        const refused = accounts.keysLoaded(modelId, s, keyId, req.ip);
        if (refused) return fail(refused.status, refused.code, refused.message);
        refill(modelId, s, keyId);
      }
      const bytes = encodeCkksMessage(out);
      metrics.bytesSent.inc({ transport: 'http' }, bytes.length);
      metrics.messageSeconds.observe({ type: `ckks-${name}` }, (performance.now() - started) / 1000);
      return reply.header('content-type', 'application/octet-stream').header('x-blindml-service-ms', (performance.now() - started).toFixed(1)).send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (err) {
      if (name === 'round') metrics.sessionsEnded.inc({ outcome: 'failed' });
      if (err instanceof BlindmlError) {
        // Typed errors are the request's fault (or the model's, for one CKKS cannot compile).
        log.warn({ code: err.code, step: name, ip: req.ip }, 'CKKS message refused');
        return fail(STATUS.find(([E]) => err instanceof E)?.[1] ?? 400, err.code, err.message);
      }
      log.error({ step: name, reason: err instanceof Error ? err.message.slice(0, 200) : 'unknown' }, 'CKKS step failed');
      return reply.code(500).send({ error: 'ERR_INTERNAL', message: 'internal error' });
    }
  });

  return {
    services: () => services.size,
    openSessions: () => accounts.openSessions,
    compiling: () => compiling.size,
    forget(modelId) {
      const s = services.get(modelId);
      services.delete(modelId);
      accounts.forget(modelId);
      void s?.then((service) => service.dispose(), () => undefined);
    },
    async close() {
      const all = [...services.values()];
      services.clear();
      for (const s of await Promise.allSettled(all)) if (s.status === 'fulfilled') s.value.dispose();
      await compiler.destroy();
      await pool?.destroy();
    },
  };
}
