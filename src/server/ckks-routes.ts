/**
 * The interactive CKKS protocol over HTTP: `POST /v1/ckks/:modelId/:step` with one binary message
 * each way (`protocol/ckks-inference/wire.ts`), step ∈ describe | keys | open | round.
 *
 * A model registered for the Paillier protocol is compiled for CKKS on its first CKKS request
 * (from its stored ONNX and calibration files, on a compile thread) and kept. Everything SEAL does
 * runs on the session threads (`workers/ckks-session-pool.ts`), never on the event loop: loading
 * a client's keys, opening a session, the rounds, and the idle work between sessions (the next
 * session prepared, smudging ciphertexts for the client's keys made ahead of time); a large round's
 * products and a prepared session's encoding go on from there to the product threads. A client's
 * keys and sessions stay on the thread that loaded the keys; the event loop reads only each
 * request's header (the key id, the session id, the key sizes), routes the bytes, and keeps the
 * accounts (`ckks-accounts.ts`). Errors come back as HTTP 4xx with `{ error, message }`; a bad
 * round ends that session only; a session thread that dies ends its clients' sessions with 503
 * `ERR_THREAD_LOST` (their next requests get 404 and they start again).
 *
 * @module
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { BlindmlError } from '../errors.js';
import type { DescribeReply } from '../protocol/ckks-inference/messages.js';
import { decodeCkksMessage, encodeCkksMessage } from '../protocol/ckks-inference/wire.js';
import { CkksProductPool } from '../workers/ckks-products-pool.js';
import { CkksSessionPool } from '../workers/ckks-session-pool.js';
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
  /** Session threads the CKKS clients' keys and sessions live on (0 counts as 1), and product threads (0: none). */
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

/** HTTP status of each typed error a step can raise (any other BlindmlError is the request's fault: 400). */
const STATUS: Record<string, number> = {
  ERR_UNKNOWN_SESSION: 404,
  ERR_UNKNOWN_KEYS: 404,
  ERR_OUT_OF_ORDER: 409,
  ERR_THREAD_LOST: 503,
};

/** Registers the routes on `app`. */
export function registerCkksRoutes(app: FastifyInstance, options: CkksFrontOptions): CkksFront {
  const { registry, metrics, log } = options;
  // Large rounds' products and prepared sessions' encoding spread over every core, from whichever session thread.
  const products = options.threads > 0 ? new CkksProductPool({ threads: options.threads }) : undefined;
  const pool = new CkksSessionPool({
    threads: Math.max(1, options.threads),
    ...(products ? { products } : {}),
    onLost: (thread) => {
      log.warn({ thread }, 'a CKKS session thread stopped; its keys and sessions are gone');
      accounts.threadLost(thread);
    },
  });
  /** Each model's describe reply, once compiled and loaded on a session thread. */
  const services = new Map<string, Promise<DescribeReply>>();
  /** `modelId:thread` pairs doing idle work now, and models preparing sessions now. */
  const refilling = new Set<string>();
  const preparing = new Set<string>();
  const accounts = new CkksAccounts(options.budget, pool, { perClientSessions: options.maxSessionsPerClient, keysIdleMs: options.keysIdleMs });
  const compiler = new CkksCompiler();
  /** Models being compiled for CKKS now. */
  const compiling = new Set<string>();

  function serviceFor(modelId: string): Promise<DescribeReply> | undefined {
    const known = services.get(modelId);
    if (known) return known;
    if (!registry.get(modelId)) return undefined;
    compiling.add(modelId);
    const created = (async () => {
      // On the compile thread, then on a session thread: the event loop keeps answering everyone else.
      const compiled = await registry.storedFiles(modelId).then((files) => compiler.compile(files)).finally(() => compiling.delete(modelId));
      const described = await pool.addModel(modelId, compiled);
      await products?.prepare({ ...described.params, coeffModulusBits: [...described.params.coeffModulusBits] });
      log.info({ model: modelId, ring: described.params.polyModulusDegree }, 'model compiled for CKKS');
      return described;
    })();
    services.set(modelId, created);
    created.then((d) => refill(modelId, d, accounts.threadForKeys()), () => services.delete(modelId));
    return created;
  }

  /**
   * Idle work on a thread after a key upload or a session: smudging ciphertexts for that client's
   * keys, and the next prepared session.
   */
  function refill(modelId: string, described: DescribeReply, thread: number, keyId?: string): void {
    const key = `${modelId}:${thread}`;
    if (refilling.has(key)) return;
    refilling.add(key);
    void (async () => {
      try {
        // One smudging ciphertext per task (each a public-key encryption, tens of ms): a client's
        // request for this thread waits for one at most, not for dozens.
        for (let i = 0; keyId && i < described.outputCiphertexts; i++) await pool.precompute(thread, modelId, keyId);
        // One thread at a time prepares a model's sessions (the target counts all threads).
        if (!preparing.has(modelId)) {
          preparing.add(modelId);
          await accounts.prepare(modelId, thread, options.preparedSessions, () => services.get(modelId) !== undefined).finally(() => preparing.delete(modelId));
        }
      } catch (err) {
        // Keys evicted meanwhile, or the model removed: the next session just does the work online.
        log.debug({ model: modelId, reason: err instanceof Error ? err.message.slice(0, 100) : 'unknown' }, 'CKKS idle work skipped');
      } finally {
        refilling.delete(key);
      }
    })();
  }

  /** What this step for this model can need (the model compiled first), before any body is read. */
  async function bodyLimitOf(modelId: string, step: string): Promise<number> {
    const service = CKKS_STEPS.includes(step as Step) ? serviceFor(modelId) : undefined;
    const described = await service?.catch(() => undefined);
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
    const { modelId } = req.params;
    let sessionId: string | undefined;
    try {
      const body = Buffer.isBuffer(req.body) ? new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.byteLength) : undefined;
      if (name !== 'describe' && body === undefined) return fail(415, 'ERR_BAD_REQUEST', 'send application/octet-stream');
      const described = await service;
      metrics.bytesReceived.inc({ transport: 'http' }, body?.length ?? 0);
      // The header only (the bulk stays where it is): what the event loop routes and checks by.
      const request = name !== 'describe' && body ? (decodeCkksMessage(body, { copy: false }) as { keyId?: unknown; sessionId?: unknown } | null) : undefined;
      let out: Uint8Array;
      switch (name) {
        case 'describe':
          out = encodeCkksMessage(described);
          break;
        case 'keys': {
          const tooBig = checkKeySizes(described, request);
          if (tooBig) return fail(tooBig.status, tooBig.code, tooBig.message);
          const thread = accounts.threadForKeys();
          const loaded = await pool.keys(thread, modelId, body!);
          const held = accounts.keysLoaded(modelId, described, thread, loaded.keyId, req.ip);
          if (!('thread' in held)) return fail(held.status, held.code, held.message);
          if (held.thread === thread) refill(modelId, described, thread, loaded.keyId);
          out = loaded.body;
          break;
        }
        case 'open': {
          if (typeof request?.keyId !== 'string') return fail(400, 'ERR_FORMAT', 'open request: keyId must be a string');
          const admitted = accounts.admitOpen(modelId, request.keyId, req.ip);
          if (!('entry' in admitted)) return fail(admitted.status, admitted.code, admitted.message);
          const opened = await pool.open(admitted.thread, modelId, body!, admitted.prepared).catch((err: unknown) => {
            accounts.openFailed(admitted.entry);
            throw err;
          });
          accounts.opened(admitted.entry, opened.sessionId);
          metrics.sessionsOpened.inc({ transport: 'http' });
          out = opened.body;
          break;
        }
        case 'round': {
          if (typeof request?.sessionId !== 'string') return fail(400, 'ERR_FORMAT', 'round request: sessionId must be a string');
          sessionId = request.sessionId;
          const thread = accounts.sessionThread(modelId, sessionId);
          if (thread === undefined) return fail(404, 'ERR_UNKNOWN_SESSION', `no open CKKS session '${sessionId.slice(0, 64)}'`);
          accounts.touched(modelId, sessionId);
          const done = await pool.round(thread, modelId, body!).catch((err: unknown) => {
            // A failed round closes the session on its thread.
            accounts.ended(modelId, sessionId!);
            throw err;
          });
          metrics.rounds.inc();
          // Idle is the time the service waits for the client: the round's own time does not count.
          accounts.touched(modelId, sessionId);
          if (done.done) {
            accounts.ended(modelId, sessionId);
            metrics.sessionsEnded.inc({ outcome: 'completed' });
            refill(modelId, described, thread, done.keyId);
          }
          out = done.body;
          break;
        }
      }
      metrics.bytesSent.inc({ transport: 'http' }, out.length);
      metrics.messageSeconds.observe({ type: `ckks-${name}` }, (performance.now() - started) / 1000);
      return reply.header('content-type', 'application/octet-stream').header('x-blindml-service-ms', (performance.now() - started).toFixed(1)).send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
    } catch (err) {
      if (sessionId !== undefined) metrics.sessionsEnded.inc({ outcome: 'failed' });
      if (err instanceof BlindmlError) {
        // Typed errors are the request's fault (or the model's, for one CKKS cannot compile).
        log.warn({ code: err.code, step: name, ip: req.ip }, 'CKKS message refused');
        return fail(STATUS[err.code] ?? 400, err.code, err.message);
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
      services.delete(modelId);
      accounts.forget(modelId);
      pool.removeModel(modelId);
    },
    async close() {
      services.clear();
      await compiler.destroy();
      await pool.destroy();
      await products?.destroy();
    },
  };
}
