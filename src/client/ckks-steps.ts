/**
 * The four steps of the interactive CKKS protocol as named binary messages: what every CKKS
 * transport sends, whatever carries it (HTTP POSTs, chunked WebSocket frames).
 *
 * @module
 */
import { FormatError } from '../errors.js';
import type { CkksTransport } from '../protocol/ckks-inference/client.js';
import type { KeysRequest, OpenRequest, RoundRequest } from '../protocol/ckks-inference/messages.js';
import { encodeCkksMessage } from '../protocol/ckks-inference/wire.js';

/** A step's name on the wire (the last path segment of its HTTP route). */
export type CkksStep = 'describe' | 'keys' | 'open' | 'round';

/**
 * A CKKS transport defined by how it sends one step's bytes and decodes the reply. It keeps the
 * public keys it uploaded, so that {@link failover} can upload them to another replica.
 */
export abstract class CkksStepTransport implements CkksTransport {
  private keys: { bytes: Uint8Array; keyId: unknown } | undefined;

  describe(): Promise<unknown> {
    return this.send('describe', new Uint8Array(0));
  }

  async registerKeys(request: KeysRequest): Promise<unknown> {
    const bytes = encodeCkksMessage(request);
    const reply = await this.send('keys', bytes);
    this.keys = { bytes, keyId: (reply as { keyId?: unknown } | null)?.keyId };
    return reply;
  }

  open(request: OpenRequest): Promise<unknown> {
    return this.send('open', encodeCkksMessage(request));
  }

  round(request: RoundRequest): Promise<unknown> {
    return this.send('round', encodeCkksMessage(request));
  }

  /**
   * Moves to another replica (a new routing key or connection) and uploads the same public keys
   * there; the client's next session opens on it.
   *
   * @throws whatever sending throws; FormatError if the replica files the keys under another id.
   */
  async failover(): Promise<void> {
    await this.reroute();
    if (!this.keys) return;
    const reply = await this.send('keys', this.keys.bytes);
    if ((reply as { keyId?: unknown } | null)?.keyId !== this.keys.keyId) throw new FormatError('the service registered the keys under another id');
  }

  /** Sends one step's message and resolves with the decoded reply. */
  protected abstract send(step: CkksStep, body: Uint8Array): Promise<unknown>;

  /**
   * Makes the next requests reach a replica anew (a new routing key, a new connection). By
   * default nothing: a transport with one fixed destination only uploads its keys again.
   */
  protected reroute(): Promise<void> {
    return Promise.resolve();
  }
}
