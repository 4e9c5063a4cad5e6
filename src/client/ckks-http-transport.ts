/**
 * The client's HTTP transport for the interactive CKKS protocol (fetch, so it runs in Node and in
 * browsers): each step is `POST ${baseUrl}/v1/ckks/${modelId}/${step}` with one binary message
 * each way.
 *
 * @module
 */
import { decodeCkksMessage } from '../protocol/ckks-inference/wire.js';
import { ServiceError } from '../protocol/paillier-inference/client.js';
import { CkksStepTransport, type CkksStep } from './ckks-steps.js';
import { TransportError, parseRefusal, postBytes } from './http-transport.js';

/** Reaches a blindml server's CKKS endpoints for one model. */
export class HttpCkksTransport extends CkksStepTransport {
  private readonly base: string;
  /** Bytes sent and received so far, bodies only. */
  readonly traffic = { sent: 0, received: 0 };

  constructor(baseUrl: string, modelId: string) {
    super();
    this.base = `${baseUrl.replace(/\/+$/, '')}/v1/ckks/${encodeURIComponent(modelId)}`;
  }

  /**
   * @throws TransportError when the service is unreachable or answers with an HTTP error that is
   *   not a protocol refusal; ServiceError (the service's code and message) when it refuses.
   */
  protected async send(step: CkksStep, body: Uint8Array): Promise<unknown> {
    const url = `${this.base}/${step}`;
    const res = await postBytes(url, body);
    this.traffic.sent += body.length;
    if (!res.ok) {
      const refusal = parseRefusal(await res.text().catch(() => ''));
      if (refusal) throw new ServiceError(refusal.error, refusal.message);
      throw new TransportError(`the service at ${url} answered HTTP ${res.status}`);
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    this.traffic.received += bytes.length;
    return decodeCkksMessage(bytes, { copy: false });
  }
}
