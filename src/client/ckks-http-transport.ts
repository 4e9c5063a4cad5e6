/**
 * The client's HTTP transport for the interactive CKKS protocol (fetch, so it runs in Node and in
 * browsers): each step is `POST ${baseUrl}/v1/ckks/${modelId}/${step}` with one binary message
 * each way, all with this transport's routing key (`routing.ts`), so its keys and sessions stay on
 * one replica behind a balancer.
 *
 * @module
 */
import { decodeCkksMessage } from '../protocol/ckks-inference/wire.js';
import { CkksStepTransport, type CkksStep } from './ckks-steps.js';
import { httpFailure, postBytes } from './http-transport.js';
import { newRouteKey } from './routing.js';

/** Reaches a blindml server's CKKS endpoints for one model. */
export class HttpCkksTransport extends CkksStepTransport {
  private readonly base: string;
  private route = newRouteKey();
  /** Bytes sent and received so far, bodies only. */
  readonly traffic = { sent: 0, received: 0 };

  constructor(baseUrl: string, modelId: string) {
    super();
    this.base = `${baseUrl.replace(/\/+$/, '')}/v1/ckks/${encodeURIComponent(modelId)}`;
  }

  /**
   * @throws TransportError when the service is unreachable or answers with an HTTP error that is
   *   not a protocol refusal; ServiceError (the service's code and message) when it refuses,
   *   RetryableServiceError when the replica does not hold the keys or session or is shutting down.
   */
  protected async send(step: CkksStep, body: Uint8Array): Promise<unknown> {
    const url = `${this.base}/${step}`;
    const res = await postBytes(url, body, this.route);
    this.traffic.sent += body.length;
    if (!res.ok) throw await httpFailure(res, url);
    const bytes = new Uint8Array(await res.arrayBuffer());
    this.traffic.received += bytes.length;
    return decodeCkksMessage(bytes, { copy: false });
  }

  protected override reroute(): Promise<void> {
    this.route = newRouteKey();
    return Promise.resolve();
  }
}
