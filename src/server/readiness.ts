/**
 * `GET /readyz`: readiness, apart from liveness (`/healthz`). A balancer sends traffic to a
 * replica only while it answers 200:
 *
 * - the registry store answers a trivial query (`SELECT 1`) within a short timeout, and
 * - every model stored when the replica started is compiled (or skipped as unloadable).
 *
 * Otherwise 503 with `{ status: 'not-ready', reason }`, `reason` one of `shutting-down` (draining
 * after SIGTERM), `registry-unreachable` or `warming`. A model added later through another replica
 * does not make replicas unready while they compile it (all would drop out at once); requests for
 * it wait until it is loaded. The store's address and error stay in the log, never in the answer.
 *
 * @module
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { ModelRegistry } from './registry.js';

/** Options of {@link registerReadiness}. */
export interface ReadinessOptions {
  readonly registry: Pick<ModelRegistry, 'ping' | 'warmingSinceOpen' | 'list'>;
  /** True once the service drains (refuses new sessions before shutting down). */
  readonly draining: () => boolean;
  /** How long the store may take to answer, ms. Default 1000. */
  readonly timeoutMs?: number;
}

/** Adds `GET /readyz` to the app. */
export function registerReadiness(app: FastifyInstance, options: ReadinessOptions): void {
  const { registry } = options;
  const timeoutMs = options.timeoutMs ?? 1_000;
  const log: FastifyBaseLogger = app.log;
  let unreachable = false;
  app.get('/readyz', { logLevel: 'warn' }, async (_req, reply) => {
    const notReady = (reason: string, extra: Record<string, unknown> = {}) => reply.code(503).send({ status: 'not-ready', reason, ...extra });
    if (options.draining()) return notReady('shutting-down');
    try {
      await registry.ping(timeoutMs);
      if (unreachable) log.info('registry store reachable again');
      unreachable = false;
    } catch (err) {
      // Logged once per outage, not on every probe.
      if (!unreachable) log.warn({ reason: err instanceof Error ? err.message.slice(0, 300) : String(err) }, 'registry store unreachable');
      unreachable = true;
      return notReady('registry-unreachable');
    }
    const warming = registry.warmingSinceOpen;
    if (warming > 0) return notReady('warming', { warming });
    return reply.code(200).send({ status: 'ready', models: registry.list().length });
  });
}
