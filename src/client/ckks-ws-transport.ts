/**
 * The client's WebSocket transport for the interactive CKKS protocol: one connection to
 * `${baseUrl}/v1/ckks/ws` for a whole prediction (or many), each message cut into chunk frames
 * (`protocol/chunks.ts`), since a CKKS round can be larger than a WebSocket frame may be. Runs in
 * browsers (and Web Workers) with the built-in WebSocket, and in Node with the `ws` package.
 *
 * @module
 */
import { decodeCkksMessage } from '../protocol/ckks-inference/wire.js';
import { ChunkAssembly, decodeChunk, encodeChunks } from '../protocol/chunks.js';
import { CkksStepTransport, type CkksStep } from './ckks-steps.js';
import { TransportError, parseRefusal } from './http-transport.js';
import { refusalError } from './routing.js';
import { defaultWebSocket, openWebSocket, webSocketUrl, type WebSocketConstructor, type WebSocketLike } from './websocket-transport.js';

/** Payload bytes per frame sent by default (1 MiB: under the frame limit a service is likely to set). */
const CHUNK_BYTES = 2 ** 20;

/** Reaches a blindml server's CKKS steps for one model over one WebSocket. Call {@link close} when done. */
export class WebSocketCkksTransport extends CkksStepTransport {
  /** Bytes sent and received so far, messages only. */
  readonly traffic = { sent: 0, received: 0 };
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: { status: number; body: Uint8Array }) => void; reject: (e: Error) => void }>();
  private assembly: ChunkAssembly | undefined;
  private closedError: TransportError | undefined;

  private constructor(
    private socket: WebSocketLike,
    private readonly modelId: string,
    private readonly chunkBytes: number,
    private readonly connectSocket: () => Promise<WebSocketLike>,
  ) {
    super();
    this.attach(socket);
  }

  /** Routes the socket's events to this transport. */
  private attach(socket: WebSocketLike): void {
    socket.onmessage = (ev) => this.receive(ev.data);
    // A connection that drops (a replica stopped or killed) ends its session: reopening elsewhere may work.
    socket.onclose = (ev) => this.fail(new TransportError(`the connection closed (${ev.code}${String(ev.reason) ? `: ${String(ev.reason)}` : ''})`, { retryable: true }));
    socket.onerror = () => undefined;
  }

  /**
   * Opens a connection to `${baseUrl}/v1/ckks/ws` for `modelId`. `chunkBytes` (default 1 MiB)
   * must stay under the service's frame limit.
   *
   * @throws TransportError if the connection cannot be opened; RangeError for a chunk size below 1 KiB.
   */
  static async connect(baseUrl: string, modelId: string, options: { WebSocket?: WebSocketConstructor; chunkBytes?: number } = {}): Promise<WebSocketCkksTransport> {
    const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1024) throw new RangeError(`chunkBytes must be an integer of at least 1024, got ${chunkBytes}`);
    const Ctor = options.WebSocket ?? (await defaultWebSocket());
    const url = webSocketUrl(baseUrl).replace(/\/v1\/ws$/, '/v1/ckks/ws');
    const connectSocket = () => openWebSocket(Ctor, url);
    return new WebSocketCkksTransport(await connectSocket(), modelId, chunkBytes, connectSocket);
  }

  /** A new connection (the balancer may send it to another replica); the old one and its session are dropped. */
  protected override async reroute(): Promise<void> {
    const old = this.socket;
    old.onmessage = null;
    old.onclose = null;
    old.close(1000, 'failover');
    this.fail(new TransportError('the connection was replaced', { retryable: true }));
    this.socket = await this.connectSocket();
    this.assembly = undefined;
    this.closedError = undefined;
    this.attach(this.socket);
  }

  /** Closes the connection. */
  close(): void {
    if (!this.closedError) this.socket.close(1000, 'done');
  }

  /**
   * @throws ServiceError (the service's code and message) when it refuses; TransportError when the
   *   connection fails or the service answers something else than the protocol.
   */
  protected async send(step: CkksStep, body: Uint8Array): Promise<unknown> {
    if (this.closedError) throw this.closedError;
    const id = this.nextId++;
    const reply = new Promise<{ status: number; body: Uint8Array }>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    try {
      for (const frame of encodeChunks({ id, step, model: this.modelId }, body, this.chunkBytes)) this.socket.send(frame);
    } catch (err) {
      this.waiting.delete(id);
      throw new TransportError(`cannot send: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.traffic.sent += body.length;
    const { status, body: bytes } = await reply;
    this.traffic.received += bytes.length;
    if (status >= 400) {
      const refusal = parseRefusal(new TextDecoder().decode(bytes));
      if (refusal) throw refusalError(refusal, null);
      throw new TransportError(`the service answered status ${status} to ${step}`);
    }
    return decodeCkksMessage(bytes, { copy: false });
  }

  private receive(data: unknown): void {
    try {
      if (!(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) throw new TransportError('the service sent a text frame');
      const frame = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const { head, chunk } = decodeChunk(frame);
      this.assembly ??= new ChunkAssembly(head);
      const whole = this.assembly.add(head, chunk);
      if (!whole) return;
      this.assembly = undefined;
      const pending = this.waiting.get(head.id);
      this.waiting.delete(head.id);
      pending?.resolve({ status: head.status ?? 500, body: whole });
    } catch (err) {
      this.fail(err instanceof TransportError ? err : new TransportError(`malformed reply: ${err instanceof Error ? err.message : String(err)}`));
      this.socket.close(1002, 'malformed reply');
    }
  }

  private fail(err: TransportError): void {
    this.closedError ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
