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
import { CkksPolyClient, decodePolyMessage, encodePolyMessage, type PolyMessage, type PolyTransport } from '../protocol/ckks-poly/index.js';
import { TransportError, httpFailure, postBytes } from './http-transport.js';
import { ROUTE_HEADER, RetryableServiceError, newRouteKey, refusalError, withFailover } from './routing.js';

/** How long one poll asks the service to wait for a job (it answers at once when the job is done). */
const POLL_WAIT_MS = 25_000;

/**
 * Carries ckks-poly messages to a service's batch endpoint: `info` and `keys` are single requests;
 * an `infer` message becomes a job, polled (long-polling) until its `result` is ready. A refusal
 * comes back as the protocol's `error` message, so {@link CkksPolyClient} throws its ProtocolError
 * with the service's code.
 *
 * Every request carries this transport's routing key (`routing.ts`), so its keys and jobs stay on
 * one replica behind a balancer. When that replica is gone, a request moves once: a new routing
 * key, the same public keys uploaded again (the service's new session id replaces the old one in
 * the jobs sent after), and the request sent again; a second failure is a SessionLostError.
 */
export class HttpPolyTransport implements PolyTransport {
  private readonly base: string;
  private readonly origin: string;
  private route = newRouteKey();
  /** The keys request sent, and the session ids: the one the client knows, the one the replica holds now. */
  private keys: { request: Uint8Array; known: string; current: string } | undefined;
  /** Failovers so far, and the one in progress (requests failing together move once, together). */
  private moves = 0;
  private moving: Promise<void> | undefined;

  constructor(baseUrl: string, modelId: string) {
    this.origin = baseUrl.replace(/\/+$/, '');
    this.base = `${this.origin}/v1/ckks-poly/${encodeURIComponent(modelId)}`;
  }

  /**
   * @throws TransportError when the service is unreachable or answers something else than the
   *   protocol; SessionLostError when a request failed on two replicas.
   */
  async send(request: Uint8Array): Promise<Uint8Array> {
    const msg = decodePolyMessage(request);
    if (msg.type !== 'info' && msg.type !== 'keys' && msg.type !== 'infer') throw new TransportError(`the client does not send ${msg.type} messages`);
    const seen = this.moves;
    return withFailover(() => this.attempt(msg, request), () => this.failover(seen));
  }

  /** One try of a request on the current replica; retryable refusals throw, others come back as `error` messages. */
  private async attempt(msg: PolyMessage, request: Uint8Array): Promise<Uint8Array> {
    if (msg.type !== 'infer') {
      const reply = await this.answer(await postBytes(`${this.base}/${msg.type}`, request, this.route));
      if (msg.type === 'keys') {
        const session = decodePolyMessage(reply);
        if (session.type === 'session') this.keys = { request, known: session.session, current: session.session };
      }
      return reply;
    }
    const res = await postBytes(`${this.base}/jobs`, this.onCurrentSession(msg, request), this.route);
    if (!res.ok) return this.answer(res);
    const { job } = (await res.json()) as { job: string };
    for (;;) {
      const poll = await this.get(`${this.origin}/v1/ckks-poly/jobs/${encodeURIComponent(job)}?wait=${POLL_WAIT_MS}`);
      if (poll.status !== 202) return this.answer(poll);
      await poll.body?.cancel();
    }
  }

  /** The infer message under the session the current replica holds (re-encoded only after a failover). */
  private onCurrentSession(msg: PolyMessage, request: Uint8Array): Uint8Array {
    if (msg.type !== 'infer' || !this.keys || msg.session !== this.keys.known || this.keys.current === this.keys.known) return request;
    return encodePolyMessage({ ...msg, session: this.keys.current });
  }

  /** A new routing key and, once keys were sent, the same keys uploaded to the replica it reaches. */
  private failover(seen: number): Promise<void> {
    if (this.moves !== seen) return this.moving ?? Promise.resolve();
    this.moves++;
    this.moving = (async () => {
      this.route = newRouteKey();
      if (!this.keys) return;
      const reply = decodePolyMessage(await this.answer(await postBytes(`${this.base}/keys`, this.keys.request, this.route)));
      if (reply.type !== 'session') throw refusalError({ error: reply.type === 'error' ? reply.code : 'ERR_BAD_MESSAGE', message: reply.type === 'error' ? reply.message : `expected a session, got ${reply.type}` }, null);
      this.keys.current = reply.session;
    })();
    return this.moving;
  }

  private async get(url: string): Promise<Response> {
    try {
      return await fetch(url, { headers: { [ROUTE_HEADER]: this.route } });
    } catch (err) {
      throw new TransportError(`cannot reach the service at ${url}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, retryable: true });
    }
  }

  /**
   * A protocol message from a response: the body, or the refusal as an `error` message.
   *
   * @throws RetryableServiceError or a retryable TransportError when another replica may answer.
   */
  private async answer(res: Response): Promise<Uint8Array> {
    if (res.ok) return new Uint8Array(await res.arrayBuffer());
    const failure = await httpFailure(res, res.url);
    if (failure instanceof TransportError || failure instanceof RetryableServiceError) throw failure;
    return encodePolyMessage({ type: 'error', code: failure.code.slice(0, 64), message: failure.message.slice(0, 2000), blobs: [] });
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
