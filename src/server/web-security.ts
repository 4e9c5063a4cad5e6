/**
 * Browser-facing policy of the service: security headers (@fastify/helmet), an explicit CORS list
 * (@fastify/cors), and the same list for WebSocket `Origin`s.
 *
 * - Headers: a Content-Security-Policy that lets the bundled pages run their own scripts, module
 *   workers and WebAssembly (the CKKS client, whose bindings also need eval) and talk only to this
 *   service; no inline scripts, no framing; HSTS only when the service itself speaks TLS.
 * - CORS: off unless origins are listed; then only those origins, with the headers the SDK sends.
 * - WebSocket: a handshake with an `Origin` header (browsers always send one) must come from this
 *   service's own pages or a listed origin, else 403 — a page elsewhere cannot drive a visitor's
 *   browser into sessions. Clients outside browsers send no `Origin` and are not affected.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import cors from '@fastify/cors';

/** What {@link registerWebSecurity} needs. */
export interface WebSecurityOptions {
  /** Origins allowed cross-origin (`scheme://host[:port]`). */
  readonly allowedOrigins: readonly string[];
  /** The service itself speaks TLS (enables HSTS and upgrade-insecure-requests). */
  readonly tls: boolean;
}

/** `scheme://host[:port]` as browsers write it in `Origin`, or undefined for anything else. */
export function normalizeOrigin(origin: string): string | undefined {
  try {
    const u = new URL(origin);
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.pathname !== '/' || u.search || u.hash || u.username) return undefined;
    return u.origin;
  } catch {
    return undefined;
  }
}

/**
 * Whether a WebSocket handshake may proceed: no `Origin` (not a browser), the service's own
 * origin (same host, as the request names it), or a listed one.
 */
export function websocketOriginAllowed(req: Pick<FastifyRequest, 'headers'>, allowed: ReadonlySet<string>, tls: boolean): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const normalized = normalizeOrigin(origin);
  if (!normalized) return false;
  if (allowed.has(normalized)) return true;
  const host = req.headers.host;
  return host !== undefined && normalized === `${tls ? 'https' : 'http'}://${host.toLowerCase()}`;
}

/** The WebSocket origin of this service as the request names it, or 'self' for an odd Host. */
function socketOrigin(host: string | undefined, tls: boolean): string {
  return host && /^[\w.\-[\]:]+$/.test(host) ? `${tls ? 'wss' : 'ws'}://${host}` : "'self'";
}

/**
 * Registers helmet, CORS and the WebSocket origin check on `app` (before the routes).
 *
 * @throws TypeError if a listed origin is not `scheme://host[:port]`.
 */
export async function registerWebSecurity(app: FastifyInstance, options: WebSecurityOptions): Promise<void> {
  const allowed = new Set(
    options.allowedOrigins.map((o) => {
      const n = normalizeOrigin(o);
      if (!n) throw new TypeError(`not an origin (scheme://host[:port]): ${o}`);
      return n;
    }),
  );
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        // WebAssembly for the CKKS client; node-seal's embind bindings build their wrappers with
        // `new Function`, so eval too (scripts still only from this service, none inline).
        'script-src': ["'self'", "'wasm-unsafe-eval'", "'unsafe-eval'"],
        'worker-src': ["'self'"],
        // 'self' covers ws(s): in current browsers; the explicit origin covers older ones.
        'connect-src': ["'self'", (req: IncomingMessage) => socketOrigin(req.headers.host, options.tls)],
        'img-src': ["'self'", 'data:', 'blob:'],
        'upgrade-insecure-requests': options.tls ? [] : null,
      },
    },
    hsts: options.tls,
    crossOriginEmbedderPolicy: false,
  });
  await app.register(cors, {
    origin: allowed.size ? [...allowed] : false,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['authorization', 'x-api-key', 'content-type', 'blindml-route'],
    exposedHeaders: ['x-blindml-service-ms', 'retry-after', 'blindml-route', 'blindml-replica'],
    maxAge: 600,
  });
  // preValidation: after @fastify/websocket's own onRequest hook has marked the request, so its
  // onResponse hook closes the socket of a refused handshake.
  app.addHook('preValidation', (req, reply, done) => {
    if (req.headers.upgrade?.toLowerCase() !== 'websocket' || websocketOriginAllowed(req, allowed, options.tls)) return done();
    req.log.warn({ ip: req.ip }, 'websocket from a foreign origin refused');
    void reply.code(403).send({ error: 'ERR_ORIGIN', message: 'this origin may not open WebSockets to the service (serve --allow-origin)' });
  });
}
