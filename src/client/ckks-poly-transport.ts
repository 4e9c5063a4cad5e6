/**
 * ckks-poly against a blindml service (fetch, so Node and browsers): the client's keys go up once,
 * then each batch of up to N/2 images is one job — uploaded in one request, polled by id until the
 * encrypted logits are ready, and decrypted here. The service never holds the secret key.
 *
 * ```ts
 * const client = await connectCkksPoly('http://127.0.0.1:8080', modelId);
 * const { labels, logits } = await client.predict(images, undefined, { concurrency: 2 });
 * client.dispose();
 * ```
 *
 * @module
 */
import { CkksPolyClient, decodePolyMessage, encodePolyMessage, type PolyTransport } from '../protocol/ckks-poly/index.js';
import { TransportError, parseRefusal, postBytes } from './http-transport.js';

/** How long one poll asks the service to wait for a job (it answers at once when the job is done). */
const POLL_WAIT_MS = 25_000;

/**
 * Carries ckks-poly messages to a service's batch endpoint: `info` and `keys` are single requests;
 * an `infer` message becomes a job, polled (long-polling) until its `result` is ready. A refusal
 * comes back as the protocol's `error` message, so {@link CkksPolyClient} throws its ProtocolError
 * with the service's code.
 */
export class HttpPolyTransport implements PolyTransport {
  private readonly base: string;
  private readonly origin: string;

  constructor(baseUrl: string, modelId: string) {
    this.origin = baseUrl.replace(/\/+$/, '');
    this.base = `${this.origin}/v1/ckks-poly/${encodeURIComponent(modelId)}`;
  }

  /** @throws TransportError when the service is unreachable or answers something else than the protocol. */
  async send(request: Uint8Array): Promise<Uint8Array> {
    const type = decodePolyMessage(request).type;
    const step = type === 'info' ? 'info' : type === 'keys' ? 'keys' : type === 'infer' ? 'jobs' : undefined;
    if (!step) throw new TransportError(`the client does not send ${type} messages`);
    const res = await postBytes(`${this.base}/${step}`, request);
    if (step !== 'jobs' || !res.ok) return this.answer(res);
    const { job } = (await res.json()) as { job: string };
    for (;;) {
      const poll = await fetchOrThrow(`${this.origin}/v1/ckks-poly/jobs/${encodeURIComponent(job)}?wait=${POLL_WAIT_MS}`);
      if (poll.status !== 202) return this.answer(poll);
      await poll.body?.cancel();
    }
  }

  /** A protocol message from a response: the body, or the refusal as an `error` message. */
  private async answer(res: Response): Promise<Uint8Array> {
    if (res.ok) return new Uint8Array(await res.arrayBuffer());
    const refusal = parseRefusal(await res.text().catch(() => ''));
    if (!refusal) throw new TransportError(`the service at ${res.url} answered HTTP ${res.status}`);
    return encodePolyMessage({ type: 'error', code: refusal.error.slice(0, 64), message: refusal.message.slice(0, 2000), blobs: [] });
  }
}

async function fetchOrThrow(url: string): Promise<Response> {
  try {
    return await fetch(url);
  } catch (err) {
    throw new TransportError(`cannot reach the service at ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * Connects to a model's ckks-poly endpoint: fetches its parameters, generates a CKKS key pair
 * (the secret key stays in the returned client) and uploads the public and relinearization keys.
 *
 * @throws ProtocolError when the service refuses (unknown model, a model that is not a polynomial
 *   network, limits); TransportError when it cannot be reached.
 */
export function connectCkksPoly(baseUrl: string, modelId: string): Promise<CkksPolyClient> {
  return CkksPolyClient.connect(new HttpPolyTransport(baseUrl, modelId), modelId);
}
