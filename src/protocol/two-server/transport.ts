/**
 * How S1 reaches S2: one request in, one response out, as bytes. The in-process transport calls
 * the crypto server directly; a network transport would post the same bytes. {@link MeteredTransport}
 * counts bytes and rounds and turns silence into a {@link CryptoServerUnavailableError}.
 *
 * @module
 */
import { CryptoServerUnavailableError } from './errors.js';

/** A request/response channel to the crypto server. */
export interface TwoServerTransport {
  /** Sends one request and resolves with the response bytes. */
  call(request: Uint8Array): Promise<Uint8Array>;
}

/** Something that answers requests (the crypto server). */
export interface TwoServerHandler {
  handle(request: Uint8Array): Promise<Uint8Array>;
}

/** Calls an in-process handler (both servers in one process: tests, the CLI's simulation). */
export class InProcessTransport implements TwoServerTransport {
  constructor(private readonly handler: TwoServerHandler) {}

  call(request: Uint8Array): Promise<Uint8Array> {
    return this.handler.handle(request);
  }
}

/** Traffic counters. */
export interface TrafficCounts {
  /** Bytes S1 sent plus bytes S2 answered. */
  bytes: number;
  bytesSent: number;
  bytesReceived: number;
  /** Request/response round trips. */
  rounds: number;
}

/** Options of {@link MeteredTransport}. */
export interface MeteredTransportOptions {
  /** Longest wait for one response, in milliseconds (default 120 000). */
  timeoutMs?: number;
}

/**
 * Wraps a transport: counts bytes and rounds, and fails a call that gets no answer in time (or
 * whose connection breaks) with a {@link CryptoServerUnavailableError}. Errors the crypto server
 * reports in a response are not this class's business; they travel as error messages.
 */
export class MeteredTransport implements TwoServerTransport {
  readonly traffic: TrafficCounts = { bytes: 0, bytesSent: 0, bytesReceived: 0, rounds: 0 };
  private readonly timeoutMs: number;

  constructor(private readonly inner: TwoServerTransport, options: MeteredTransportOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 120_000;
    if (!(this.timeoutMs > 0)) throw new RangeError('MeteredTransport: timeoutMs must be positive');
  }

  /**
   * @throws CryptoServerUnavailableError on timeout or a transport failure.
   */
  async call(request: Uint8Array): Promise<Uint8Array> {
    this.traffic.bytesSent += request.length;
    this.traffic.bytes += request.length;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new CryptoServerUnavailableError(`the crypto server did not answer within ${(this.timeoutMs / 1000).toFixed(1)} s`)),
        this.timeoutMs,
      );
    });
    let response: Uint8Array;
    try {
      response = await Promise.race([this.inner.call(request), timeout]);
    } catch (err) {
      if (err instanceof CryptoServerUnavailableError) throw err;
      throw new CryptoServerUnavailableError(`lost the connection to the crypto server: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    this.traffic.bytesReceived += response.length;
    this.traffic.bytes += response.length;
    this.traffic.rounds += 1;
    return response;
  }

  /** A copy of the counters now. */
  snapshot(): TrafficCounts {
    return { ...this.traffic };
  }
}
