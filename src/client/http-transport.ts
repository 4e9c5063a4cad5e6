/**
 * The client's HTTP transport (fetch, so it runs in Node and in browsers).
 *
 * @module
 */
import { BlindmlError } from '../errors.js';
import type { ServiceError, Transport } from '../protocol/paillier-inference/client.js';
import { ROUTE_HEADER, newRouteKey, refusalError } from './routing.js';

/** The service could not be reached or answered with an HTTP error. */
export class TransportError extends BlindmlError {
  /**
   * Whether opening the session again elsewhere may succeed: the service could not be reached, a
   * connection dropped, or a balancer answered 502–504 (see `routing.ts`).
   */
  readonly retryable: boolean;

  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super('ERR_TRANSPORT', message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options?.retryable ?? false;
  }
}

/**
 * Sends protocol messages to `${baseUrl}/v1/paillier`, each with this transport's routing key
 * (so a balancer keeps its sessions on one replica); {@link failover} picks a new key.
 */
export class HttpTransport implements Transport {
  private readonly endpoint: string;
  private route = newRouteKey();

  constructor(baseUrl: string) {
    this.endpoint = `${baseUrl.replace(/\/+$/, '')}/v1/paillier`;
  }

  /**
   * @throws TransportError when the service is unreachable or answers with an HTTP error;
   *   RetryableServiceError when the replica does not hold the session or is shutting down.
   */
  async send(request: Uint8Array): Promise<Uint8Array> {
    const res = await postBytes(this.endpoint, request, this.route);
    if (!res.ok) throw await httpFailure(res, this.endpoint);
    return new Uint8Array(await res.arrayBuffer());
  }

  /** A new routing key: the next session lands on whichever replica the balancer picks for it. */
  failover(): Promise<void> {
    this.route = newRouteKey();
    return Promise.resolve();
  }
}

/**
 * POSTs bytes as application/octet-stream (with a routing key when given); the caller reads the
 * response (ok or not).
 *
 * @throws TransportError (retryable) when the service cannot be reached.
 */
export async function postBytes(url: string, body: Uint8Array, route?: string): Promise<Response> {
  try {
    return await fetch(url, { method: 'POST', body: body as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream', ...(route ? { [ROUTE_HEADER]: route } : {}) } });
  } catch (err) {
    throw new TransportError(`cannot reach the service at ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, retryable: true });
  }
}

/**
 * The error for a response that is not ok: the service's refusal (retryable ones as
 * RetryableServiceError), else a TransportError, retryable for 502–504 (a balancer with no
 * replica to answer, or one that died mid-request).
 */
export async function httpFailure(res: Response, url: string): Promise<ServiceError | TransportError> {
  const refusal = parseRefusal(await res.text().catch(() => ''));
  if (refusal) return refusalError(refusal, res.headers.get('retry-after'));
  return new TransportError(`the service at ${url} answered HTTP ${res.status}`, { retryable: res.status >= 502 && res.status <= 504 });
}

/** A service's `{ error, message, retryable? }` refusal body, or undefined when the text is not one. */
export function parseRefusal(text: string): { error: string; message: string; retryable?: boolean } | undefined {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown; retryable?: unknown } | null;
    if (typeof body?.error !== 'string' || typeof body.message !== 'string') return undefined;
    return { error: body.error, message: body.message, ...(body.retryable === true ? { retryable: true } : {}) };
  } catch {
    return undefined;
  }
}
