/**
 * The four steps of the interactive CKKS protocol as named binary messages: what every CKKS
 * transport sends, whatever carries it (HTTP POSTs, chunked WebSocket frames).
 *
 * @module
 */
import type { CkksTransport } from '../protocol/ckks-inference/client.js';
import type { KeysRequest, OpenRequest, RoundRequest } from '../protocol/ckks-inference/messages.js';
import { encodeCkksMessage } from '../protocol/ckks-inference/wire.js';

/** A step's name on the wire (the last path segment of its HTTP route). */
export type CkksStep = 'describe' | 'keys' | 'open' | 'round';

/** A CKKS transport defined by how it sends one step's bytes and decodes the reply. */
export abstract class CkksStepTransport implements CkksTransport {
  describe(): Promise<unknown> {
    return this.send('describe', new Uint8Array(0));
  }

  registerKeys(request: KeysRequest): Promise<unknown> {
    return this.send('keys', encodeCkksMessage(request));
  }

  open(request: OpenRequest): Promise<unknown> {
    return this.send('open', encodeCkksMessage(request));
  }

  round(request: RoundRequest): Promise<unknown> {
    return this.send('round', encodeCkksMessage(request));
  }

  /** Sends one step's message and resolves with the decoded reply. */
  protected abstract send(step: CkksStep, body: Uint8Array): Promise<unknown>;
}
