/**
 * The client's WebSocket transport: one connection, binary frames, one protocol message per frame,
 * replies in order. Runs in browsers (and Web Workers) with the built-in WebSocket, and in Node
 * with the `ws` package (Node 20 has no global WebSocket).
 *
 * @module
 */
import type { Transport } from '../protocol/paillier-inference/client.js';
import { TransportError } from './http-transport.js';

/** The subset of the WebSocket API the transport uses (browser WebSocket and `ws` both fit). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string | { toString(): string } }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** A WebSocket constructor (globalThis.WebSocket or `ws`'s default export). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** `http(s)://host/...` → `ws(s)://host/v1/ws`. */
export function webSocketUrl(baseUrl: string): string {
  const u = new URL(baseUrl);
  u.protocol = u.protocol === 'https:' ? 'wss:' : u.protocol === 'http:' ? 'ws:' : u.protocol;
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/ws`;
  return u.toString();
}

/** The global WebSocket, or the `ws` package in Node 20. */
export async function defaultWebSocket(): Promise<WebSocketConstructor> {
  const g = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (g) return g;
  // Node 20: the `ws` package (a dependency of blindml). Kept out of browser bundles.
  const mod = (await import(/* webpackIgnore: true */ 'ws')) as unknown as { default: WebSocketConstructor };
  return mod.default;
}

/**
 * Sends protocol messages over one WebSocket; messages are answered in the order sent. A session
 * lives on the connection's replica; {@link failover} opens a new connection.
 */
export class WebSocketTransport implements Transport {
  private readonly waiting: { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }[] = [];
  private closedError: TransportError | undefined;

  private constructor(
    private socket: WebSocketLike,
    private readonly Ctor: WebSocketConstructor,
    private readonly url: string,
  ) {
    this.attach(socket);
  }

  /** Routes the socket's events to this transport. */
  private attach(socket: WebSocketLike): void {
    socket.onmessage = (ev) => {
      const next = this.waiting.shift();
      if (!next) return;
      const data = ev.data;
      if (data instanceof ArrayBuffer) next.resolve(new Uint8Array(data));
      else if (ArrayBuffer.isView(data)) next.resolve(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      else next.reject(new TransportError('the service sent a text frame'));
    };
    socket.onclose = (ev) => {
      // A connection that drops (a replica stopped or killed) ends its sessions: reopening elsewhere may work.
      this.closedError = new TransportError(`the connection closed (${ev.code}${String(ev.reason) ? `: ${String(ev.reason)}` : ''})`, { retryable: true });
      for (const w of this.waiting.splice(0)) w.reject(this.closedError);
    };
    socket.onerror = () => undefined;
  }

  /**
   * Opens a connection to `${baseUrl}/v1/ws`.
   *
   * @throws TransportError if the connection cannot be opened.
   */
  static async connect(baseUrl: string, options: { WebSocket?: WebSocketConstructor } = {}): Promise<WebSocketTransport> {
    const Ctor = options.WebSocket ?? (await defaultWebSocket());
    const url = webSocketUrl(baseUrl);
    return new WebSocketTransport(await openWebSocket(Ctor, url), Ctor, url);
  }

  /**
   * Drops this connection (and whatever session it carried) and opens a new one, which the
   * balancer may send to another replica.
   *
   * @throws TransportError (retryable) if the new connection cannot be opened.
   */
  async failover(): Promise<void> {
    const old = this.socket;
    // The old socket's late events must not reach the new connection's state.
    old.onmessage = null;
    old.onclose = null;
    old.close(1000, 'failover');
    for (const w of this.waiting.splice(0)) w.reject(new TransportError('the connection was replaced', { retryable: true }));
    this.closedError = new TransportError('the connection is being replaced', { retryable: true });
    this.socket = await openWebSocket(this.Ctor, this.url);
    this.closedError = undefined;
    this.attach(this.socket);
  }

  /** @throws TransportError once the connection is closed. */
  send(request: Uint8Array): Promise<Uint8Array> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      try {
        this.socket.send(request);
      } catch (err) {
        this.waiting.pop();
        reject(new TransportError(`cannot send: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      }
    });
  }

  /** Closes the connection (the service drops any session left open on it). */
  close(): void {
    if (!this.closedError) this.socket.close(1000, 'done');
  }
}

/**
 * Opens a binary WebSocket and resolves once it is open (the caller then installs its own handlers).
 *
 * @throws TransportError if the connection fails or closes before it opens.
 */
export async function openWebSocket(Ctor: WebSocketConstructor, url: string): Promise<WebSocketLike> {
  const socket = new Ctor(url);
  socket.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new TransportError(`cannot open a WebSocket to ${url}`, { retryable: true }));
    socket.onclose = (ev) => reject(new TransportError(`cannot open a WebSocket to ${url} (${ev.code})`, { retryable: true }));
  });
  return socket;
}
