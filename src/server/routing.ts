/**
 * Session routing behind a load balancer. An interactive session (and the keys it uses) lives on
 * one replica, so every request of it must reach that replica. Clients send a random routing key
 * in the `blindml-route` header on every request (the open and key upload included); the balancer
 * hashes it (HAProxy `balance hdr(blindml-route)`, nginx `hash $http_blindml_route consistent`),
 * so a whole session lands on one replica with no state in the balancer.
 *
 * This module checks the header, echoes it (with the replica's name), and turns the answers a
 * routed request gets when this replica does not hold its session into one typed, retryable
 * answer the SDK reopens on:
 * - HTTP 409 `{ error: 'ERR_SESSION_NOT_HERE', message, retryable: true }` instead of a 404 for an
 *   unknown session, CKKS keys or ckks-poly job, and instead of the Paillier protocol's
 *   `ERR_UNKNOWN_SESSION` error message;
 * - HTTP 503 `{ error: 'ERR_SHUTTING_DOWN', message, retryable: true }` with `retry-after` while
 *   the replica drains (for the Paillier protocol only when routed: older clients read the
 *   protocol's own error message).
 *
 * A replica cannot tell a session opened elsewhere from one that expired here; both answers are
 * the same and reopening is right for both. Requests without the header (older clients, a single
 * server) keep the answers they always had.
 *
 * @module
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { peekHeader } from './frames.js';

/** The request header a balancer routes on (and the response header echoing it). */
export const ROUTE_HEADER = 'blindml-route';
/** The response header naming the replica that answered a routed request. */
export const REPLICA_HEADER = 'blindml-replica';
/** The code of the retryable "this replica does not hold your session" answer. */
export const SESSION_NOT_HERE = 'ERR_SESSION_NOT_HERE';

/** What a routing key may be: 8–64 URL-safe characters (the SDK sends 22: 128 random bits). */
const ROUTE_KEY = /^[A-Za-z0-9_-]{8,64}$/;
/** Codes meaning "this replica holds no such session, keys or job". */
const NOT_HERE_CODES = new Set(['ERR_UNKNOWN_SESSION', 'ERR_UNKNOWN_KEYS', 'ERR_UNKNOWN_JOB']);
/** Seconds a client should wait before reopening elsewhere (the balancer's health check notices a drain meanwhile). */
const DRAIN_RETRY_AFTER_S = 2;

/** The request's routing key, or undefined when it sent none. */
function routeOf(req: FastifyRequest): string | undefined {
  const v = req.headers[ROUTE_HEADER];
  return typeof v === 'string' ? v : undefined;
}

/** The `{ error, message }` of a JSON refusal body, or undefined. */
function refusalOf(payload: unknown): { error: string; message: string } | undefined {
  if (typeof payload !== 'string' || !payload.startsWith('{"error"')) return undefined;
  try {
    const body = JSON.parse(payload) as { error?: unknown; message?: unknown };
    return typeof body.error === 'string' ? { error: body.error, message: typeof body.message === 'string' ? body.message : '' } : undefined;
  } catch {
    return undefined;
  }
}

function notHere(reply: FastifyReply, replica: string, detail: string): string {
  void reply.code(409).header('content-type', 'application/json; charset=utf-8');
  return JSON.stringify({ error: SESSION_NOT_HERE, message: `replica ${replica} does not hold this session (${detail}); reopen it`, retryable: true });
}

function shuttingDown(reply: FastifyReply, message: string): string {
  void reply.code(503).header('retry-after', String(DRAIN_RETRY_AFTER_S)).header('content-type', 'application/json; charset=utf-8');
  return JSON.stringify({ error: 'ERR_SHUTTING_DOWN', message, retryable: true });
}

/**
 * Installs the hooks on `app`: a malformed `blindml-route` header is refused (400) before
 * anything else is done; routed answers carry the key and the replica's name back.
 */
export function registerRouting(app: FastifyInstance, options: { replica: () => string }): void {
  app.addHook('onRequest', async (req, reply) => {
    const route = req.headers[ROUTE_HEADER];
    if (route === undefined) return;
    if (typeof route !== 'string' || !ROUTE_KEY.test(route)) {
      return reply.code(400).send({ error: 'ERR_BAD_ROUTE', message: `the ${ROUTE_HEADER} header must be 8 to 64 characters from A-Z a-z 0-9 _ -` });
    }
    void reply.header(ROUTE_HEADER, route).header(REPLICA_HEADER, options.replica());
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const routed = routeOf(req) !== undefined;
    const status = reply.statusCode;
    if (status === 404 || status === 503) {
      const refusal = refusalOf(payload);
      if (routed && status === 404 && refusal && NOT_HERE_CODES.has(refusal.error)) return notHere(reply, options.replica(), refusal.message);
      if (status === 503 && refusal?.error === 'ERR_SHUTTING_DOWN') return shuttingDown(reply, refusal.message);
      return payload;
    }
    // The Paillier protocol answers in its own error messages (HTTP 200); routed clients get the typed answers.
    if (routed && status === 200 && Buffer.isBuffer(payload) && req.routeOptions.url === '/v1/paillier') {
      const head = peekHeader(payload);
      if (head?.type === 'error' && head.code === 'ERR_UNKNOWN_SESSION') return notHere(reply, options.replica(), 'unknown or expired session');
      if (head?.type === 'error' && head.code === 'ERR_SHUTTING_DOWN') return shuttingDown(reply, 'the service is shutting down; retry later');
    }
    return payload;
  });
}
