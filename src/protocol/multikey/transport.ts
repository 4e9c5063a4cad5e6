/**
 * A request/response channel between two parties that counts what crosses it: bytes (UTF-8 JSON,
 * both directions) and rounds (request–response pairs). {@link LocalChannel} connects to an
 * in-process handler through the same encoding a network would use, so the counts are the wire
 * counts, and reports a peer that stops answering as {@link PeerUnavailableError}.
 *
 * @module
 */
import { BlindmlError } from '../../errors.js';
import { decodeMessage, encodeMessage } from './codec.js';

/** The peer did not answer (closed, crashed, or timed out). */
export class PeerUnavailableError extends BlindmlError {
  constructor(message: string) {
    super('ERR_PEER_UNAVAILABLE', message);
  }
}

/** The peer answered with an error. */
export class PeerError extends BlindmlError {
  constructor(message: string) {
    super('ERR_PEER', message);
  }
}

/** Traffic counters. */
export interface TrafficCounter {
  bytes: number;
  rounds: number;
}

/** One side of a request/response channel. */
export interface Channel {
  /** Sends a request and waits for the reply. @throws PeerUnavailableError, PeerError. */
  request(msg: unknown): Promise<unknown>;
}

/** Options of {@link LocalChannel}. */
export interface LocalChannelOptions {
  /** Name of the peer in error messages. */
  readonly peer: string;
  /** Where to count (may be shared by several channels). */
  readonly counter: TrafficCounter;
  /** Milliseconds to wait for a reply; default: no limit. */
  readonly timeoutMs?: number;
  /** Test hook: the peer stops answering after this many requests. */
  readonly failAfter?: number;
}

/** A channel to an in-process handler, through JSON text. */
export class LocalChannel implements Channel {
  private sent = 0;

  constructor(
    private readonly handler: (msg: unknown) => Promise<unknown>,
    private readonly options: LocalChannelOptions,
  ) {}

  async request(msg: unknown): Promise<unknown> {
    const { peer, counter, timeoutMs, failAfter } = this.options;
    if (failAfter !== undefined && this.sent >= failAfter) throw new PeerUnavailableError(`${peer} stopped answering`);
    this.sent++;
    const text = encodeMessage(msg);
    counter.bytes += new TextEncoder().encode(text).length;
    counter.rounds++;
    const reply = this.handler(decodeMessage(text));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout =
      timeoutMs === undefined
        ? undefined
        : new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new PeerUnavailableError(`${peer} did not answer within ${timeoutMs} ms`)), timeoutMs);
          });
    try {
      const answer = await (timeout ? Promise.race([reply, timeout]) : reply);
      const back = encodeMessage(answer);
      counter.bytes += new TextEncoder().encode(back).length;
      const parsed = decodeMessage(back) as { type?: unknown; message?: unknown };
      if (parsed && parsed.type === 'error') throw new PeerError(`${peer}: ${String(parsed.message)}`);
      return parsed;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
}
