/**
 * Sessions behind a load balancer. A client's interactive sessions and the keys they use live on
 * one replica of the service. Every HTTP request of a connection carries the connection's random
 * routing key in the `blindml-route` header, so a balancer hashing that header (HAProxy
 * `balance hdr(blindml-route)`, nginx `hash $http_blindml_route consistent`) sends them all to one
 * replica without keeping any state. WebSocket connections need no key: they stay on the replica
 * they reached.
 *
 * When that replica is gone (killed, drained, or the balancer moved the key), the next request
 * fails with a retryable answer. The SDK then fails over once: a fresh routing key (or a new
 * WebSocket), the keys uploaded again where needed, and the whole session (or job) run again from
 * its open. A second failure is a {@link SessionLostError}.
 *
 * Running a session again shows the service nothing new: it is a fresh session on a fresh
 * encryption of the same input, as any client may open at any time.
 *
 * @module
 */
import { BlindmlError } from '../errors.js';
import { bytesToBase64Url } from '../math/bigint.js';
import { ServiceError } from '../protocol/paillier-inference/client.js';

/** The request header a balancer routes on. */
export const ROUTE_HEADER = 'blindml-route';

/** Codes of the service's answers that mean "open the session again, elsewhere". */
const RETRYABLE_CODES = new Set(['ERR_SESSION_NOT_HERE', 'ERR_SHUTTING_DOWN']);

/** The longest wait a `retry-after` may impose before the one failover. */
const MAX_RETRY_AFTER_MS = 10_000;

/** A new routing key: 128 random bits, base64url (22 characters). */
export function newRouteKey(): string {
  return bytesToBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * The service refused a request in a way that reopening the session elsewhere can fix: the replica
 * does not hold the session (`ERR_SESSION_NOT_HERE`) or is shutting down (`ERR_SHUTTING_DOWN`).
 */
export class RetryableServiceError extends ServiceError {
  constructor(
    code: string,
    message: string,
    /** How long the service asked the client to wait (`retry-after`), ms. */
    readonly retryAfterMs = 0,
  ) {
    super(code, message);
  }
}

/** A session failed over once and failed again; `cause` is the second failure. */
export class SessionLostError extends BlindmlError {
  constructor(cause: unknown) {
    super('ERR_SESSION_LOST', `the session failed on two replicas: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * Whether reopening the session on another replica may succeed: a retryable refusal, a service or
 * balancer that could not be reached or answered 502–504, or a connection that dropped.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof RetryableServiceError) return true;
  if (err instanceof BlindmlError && RETRYABLE_CODES.has(err.code)) return true;
  return err instanceof BlindmlError && 'retryable' in err && err.retryable === true;
}

/** `retry-after` seconds (a header value) as ms, bounded; 0 when absent or malformed. */
export function retryAfterMs(value: string | null): number {
  const s = Number(value ?? '');
  return Number.isFinite(s) && s > 0 ? Math.min(MAX_RETRY_AFTER_MS, s * 1000) : 0;
}

/** The error to throw for a refusal body: retryable ones as {@link RetryableServiceError}. */
export function refusalError(refusal: { error: string; message: string; retryable?: boolean }, retryAfter: string | null): ServiceError {
  if (refusal.retryable === true || RETRYABLE_CODES.has(refusal.error)) return new RetryableServiceError(refusal.error, refusal.message, retryAfterMs(retryAfter));
  return new ServiceError(refusal.error, refusal.message);
}

/**
 * Runs `attempt`; if it fails retryably, waits what the service asked (`retry-after`, at most
 * 10 s; 1 s for a draining service that named no delay), calls `failover` and runs `attempt` once
 * more.
 *
 * @throws whatever a non-retryable failure threw; SessionLostError when the second attempt, or
 *   the move itself, fails retryably too.
 */
export async function withFailover<T>(attempt: () => Promise<T>, failover: () => Promise<void>): Promise<T> {
  try {
    return await attempt();
  } catch (err) {
    if (!isRetryable(err)) throw err;
    const wait = err instanceof RetryableServiceError ? err.retryAfterMs : err instanceof BlindmlError && err.code === 'ERR_SHUTTING_DOWN' ? 1000 : 0;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    try {
      await failover();
      return await attempt();
    } catch (again) {
      throw isRetryable(again) ? new SessionLostError(again) : again;
    }
  }
}
