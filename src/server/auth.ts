/**
 * The owner API key, checked from the request headers alone (an `onRequest` hook: before any body
 * is read), with per-address backoff against guessing a weak key.
 *
 * - No key on an owner route: 401 `ERR_UNAUTHORIZED` ("an owner API key is required").
 * - A key that is not the owner's: 401 `ERR_API_KEY_REJECTED` ("the API key was not accepted"),
 *   counted against the client address.
 * - After `freeFailures` wrong keys, each further one locks that address out for twice as long as
 *   the last (from `baseDelayMs` up to `maxDelayMs`). While locked, every owner request from that
 *   address gets 429 with `Retry-After` whatever key it carries (checking the key then would tell
 *   a guesser when a guess is right). Other addresses are never affected: there is no global lock.
 * - The address is Fastify's `request.ip`: the socket's peer, or with `trustProxy` the client that
 *   the trusted proxies name in `X-Forwarded-For` (so a proxy in front does not make every client
 *   one address, and strangers behind it cannot lock out the owner).
 *
 * Keys are only read from `Authorization: Bearer <key>` or `X-API-Key`; never from the query string
 * (which ends up in logs).
 *
 * @module
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { apiKeyMatches } from './registry.js';

/** How wrong keys slow an address down. */
export interface AuthBackoff {
  /** Wrong keys an address may send before the first lock. Default 10. */
  readonly freeFailures: number;
  /** The first lock. Default 1 s; each further wrong key doubles it. */
  readonly baseDelayMs: number;
  /** The longest lock. Default 15 min. */
  readonly maxDelayMs: number;
  /** An address with no wrong key for this long starts afresh. Default 1 h. */
  readonly forgetAfterMs: number;
  /** Addresses remembered at most (oldest forgotten first). Default 10,000. */
  readonly maxAddresses: number;
}

export const DEFAULT_AUTH_BACKOFF: AuthBackoff = {
  freeFailures: 10,
  baseDelayMs: 1_000,
  maxDelayMs: 15 * 60_000,
  forgetAfterMs: 60 * 60_000,
  maxAddresses: 10_000,
};

interface Failures {
  count: number;
  last: number;
  lockedUntil: number;
}

/** The outcome of {@link OwnerAuth.check}. */
export type AuthOutcome =
  | { readonly kind: 'owner' }
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'refused'; readonly status: 401 | 429; readonly code: string; readonly message: string; readonly retryAfterS?: number };

/** The key a request offers in its headers, or undefined. */
export function offeredKey(req: Pick<FastifyRequest, 'headers'>): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^bearer /i.test(auth)) return auth.slice(7).trim();
  const header = req.headers['x-api-key'];
  return typeof header === 'string' ? header.trim() : undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by {@link OwnerAuth}'s hooks: the request carried the owner key. */
    blindmlOwner?: boolean;
  }
}

/** Checks owner keys and keeps the per-address backoff. */
export class OwnerAuth {
  private readonly failures = new Map<string, Failures>();
  private readonly backoff: AuthBackoff;

  /**
   * @param keyHash - the stored SHA-256 (hex) of the owner key.
   * @param onRefused - called for each refusal (metrics, logs); gets no key material.
   */
  constructor(
    private keyHash: string,
    backoff: Partial<AuthBackoff> = {},
    private readonly onRefused: (ip: string, code: string) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.backoff = { ...DEFAULT_AUTH_BACKOFF, ...backoff };
  }

  /**
   * Decides a request from its address and headers. A request without a key is `anonymous`
   * (the route decides whether that is enough), even from a locked address. Constant-time key comparison (SHA-256 of the
   * offered key against the stored hash); the lock is checked first, so a locked address learns
   * nothing about the key it sent.
   */
  check(ip: string, key: string | undefined): AuthOutcome {
    // No key, no guess: anonymous requests are never slowed down.
    if (key === undefined || key === '') return { kind: 'anonymous' };
    const now = this.now();
    const f = this.current(ip, now);
    if (f && f.lockedUntil > now) {
      const retryAfterS = Math.ceil((f.lockedUntil - now) / 1000);
      return { kind: 'refused', status: 429, code: 'ERR_RATE_LIMITED', message: `too many wrong API keys from this address; retry in ${retryAfterS} s`, retryAfterS };
    }
    if (apiKeyMatches(key, this.keyHash)) {
      this.failures.delete(ip);
      return { kind: 'owner' };
    }
    this.fail(ip, now, f);
    return { kind: 'refused', status: 401, code: 'ERR_API_KEY_REJECTED', message: 'the API key was not accepted' };
  }

  /** Checks against another stored hash from now on (another replica stored its key first). */
  useKeyHash(keyHash: string): void {
    this.keyHash = keyHash;
  }

  /** Addresses with wrong keys on record (for tests and metrics). */
  get trackedAddresses(): number {
    return this.failures.size;
  }

  private current(ip: string, now: number): Failures | undefined {
    const f = this.failures.get(ip);
    if (f && now - f.last > this.backoff.forgetAfterMs && f.lockedUntil <= now) {
      this.failures.delete(ip);
      return undefined;
    }
    return f;
  }

  private fail(ip: string, now: number, known: Failures | undefined): void {
    const f = known ?? { count: 0, last: now, lockedUntil: 0 };
    f.count++;
    f.last = now;
    const over = f.count - this.backoff.freeFailures;
    if (over > 0) f.lockedUntil = now + Math.min(this.backoff.maxDelayMs, this.backoff.baseDelayMs * 2 ** Math.min(over - 1, 40));
    // Re-insert so the map stays in order of last failure; forget the stalest beyond the cap.
    this.failures.delete(ip);
    this.failures.set(ip, f);
    while (this.failures.size > this.backoff.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
  }

  /**
   * An `onRequest` hook (runs before the body is read): `required` refuses requests without the
   * owner key; `optional` lets keyless requests through as anonymous but refuses wrong keys the
   * same way. Sets `request.blindmlOwner`.
   */
  hook(mode: 'required' | 'optional'): onRequestHookHandler {
    return (req, reply, done) => {
      const outcome = this.check(req.ip, offeredKey(req));
      if (outcome.kind === 'owner') {
        req.blindmlOwner = true;
        return done();
      }
      if (outcome.kind === 'anonymous' && mode === 'optional') return done();
      const refusal: AuthOutcome & { kind: 'refused' } =
        outcome.kind === 'refused'
          ? outcome
          : { kind: 'refused', status: 401, code: 'ERR_UNAUTHORIZED', message: 'an owner API key is required (Authorization: Bearer <key>, or X-API-Key)' };
      this.onRefused(req.ip, refusal.code);
      refuse(reply, refusal);
    };
  }
}

/** Sends a refusal and closes the connection, so an unread request body is not kept reading. */
function refuse(reply: FastifyReply, r: AuthOutcome & { kind: 'refused' }): void {
  if (r.retryAfterS !== undefined) void reply.header('retry-after', String(r.retryAfterS));
  if (r.status === 401) void reply.header('www-authenticate', 'Bearer');
  void reply.header('connection', 'close').code(r.status).send({ error: r.code, message: r.message });
}
