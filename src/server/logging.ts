/**
 * What the service's request logs may show: the method, the path, and only the query parameters
 * the routes define (`name`, `limit`). Any other query value (an API key pasted into a URL, a
 * token) is written as `[redacted]`, and headers are never logged.
 *
 * @module
 */
import type { FastifyRequest, FastifyServerOptions } from 'fastify';

/** Query parameters the routes read; their values are harmless to log. */
const LOGGED_QUERY = new Set(['name', 'limit']);

/** The URL with every query value outside {@link LOGGED_QUERY} replaced by `[redacted]`. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const name = eq < 0 ? p : p.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // a malformed escape: treat it as an unknown name
      }
      return LOGGED_QUERY.has(decoded) || eq < 0 ? p : `${name}=[redacted]`;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** The fields Fastify logs for a request, with the URL redacted. */
function serializeRequest(req: FastifyRequest): Record<string, unknown> {
  return { method: req.method, url: redactUrl(req.url), remoteAddress: req.ip };
}

/**
 * Fastify logger options with the redacting request serializer, from what
 * `ServerOptions.logger` allows (false, true or pino options).
 */
export function loggerOptions(logger: FastifyServerOptions['logger'] | undefined): FastifyServerOptions['logger'] {
  if (!logger) return false;
  const base = logger === true ? {} : logger;
  return { ...base, serializers: { ...(base.serializers ?? {}), req: serializeRequest as (req: unknown) => Record<string, unknown> } };
}
