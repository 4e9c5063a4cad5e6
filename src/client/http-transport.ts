/**
 * The client's HTTP transport (fetch, so it runs in Node and in browsers).
 *
 * @module
 */
import { BlindmlError } from '../errors.js';
import type { Transport } from '../protocol/paillier-inference/client.js';

/** The service could not be reached or answered with an HTTP error. */
export class TransportError extends BlindmlError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_TRANSPORT', message, options);
  }
}

/** Sends protocol messages to `${baseUrl}/v1/paillier`. */
export class HttpTransport implements Transport {
  private readonly endpoint: string;

  constructor(baseUrl: string) {
    this.endpoint = `${baseUrl.replace(/\/+$/, '')}/v1/paillier`;
  }

  /** @throws TransportError when the service is unreachable or answers with an HTTP error. */
  async send(request: Uint8Array): Promise<Uint8Array> {
    const res = await postBytes(this.endpoint, request);
    if (!res.ok) throw new TransportError(`the service at ${this.endpoint} answered HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
}

/**
 * POSTs bytes as application/octet-stream; the caller reads the response (ok or not).
 *
 * @throws TransportError when the service cannot be reached.
 */
export async function postBytes(url: string, body: Uint8Array): Promise<Response> {
  try {
    return await fetch(url, { method: 'POST', body: body as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
  } catch (err) {
    throw new TransportError(`cannot reach the service at ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** A service's `{ error, message }` refusal body, or undefined when the text is not one. */
export function parseRefusal(text: string): { error: string; message: string } | undefined {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown } | null;
    return typeof body?.error === 'string' && typeof body.message === 'string' ? { error: body.error, message: body.message } : undefined;
  } catch {
    return undefined;
  }
}
