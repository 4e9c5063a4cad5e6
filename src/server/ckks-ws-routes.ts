/**
 * The interactive CKKS protocol over WebSocket: `GET /v1/ckks/ws`, the same steps as
 * `POST /v1/ckks/:modelId/:step` on one connection. A CKKS round is larger than a WebSocket frame
 * may be (about 80 MiB for the reference CNN), so each message travels as chunk frames
 * (`protocol/chunks.ts`): requests carry `{ id, step, model, total, offset }`, replies
 * `{ id, status, total, offset }` with the HTTP route's status and body (the protocol message,
 * or `{ error, message }` JSON for a refusal).
 *
 * Each assembled request goes through the HTTP route itself (`app.inject`, with the client's
 * address), so both transports share one set of checks, limits and metrics. A request's declared
 * size is checked against the CKKS body limit on its first frame, before the rest is accepted;
 * only the chunks received are held. Requests on a connection are answered one at a time, in order.
 * Malformed frames close the connection with 1008, an oversized message with 1009.
 *
 * @module
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { BlindmlError } from '../errors.js';
import { ChunkAssembly, decodeChunk, encodeChunks } from '../protocol/chunks.js';
import { CKKS_STEPS } from './ckks-routes.js';

/** Payload bytes per frame the service sends (well under any WebSocket frame limit). */
export const CKKS_WS_CHUNK_BYTES = 2 ** 20;

/** What the WebSocket front needs from the server around it. */
export interface CkksWsOptions {
  readonly log: FastifyBaseLogger;
  /** Largest CKKS message (the HTTP route's body limit). */
  readonly maxBodyBytes: number;
  /** Requests a connection may have waiting (assembled, not yet answered). Default 4. */
  readonly maxQueued?: number;
}

/** Registers `GET /v1/ckks/ws` (after @fastify/websocket). */
export function registerCkksWebSocket(app: FastifyInstance, options: CkksWsOptions): void {
  const maxQueued = options.maxQueued ?? 4;
  app.get('/v1/ckks/ws', { websocket: true }, (socket: WebSocket, req) => {
    const ip = req.ip;
    let assembly: ChunkAssembly | undefined;
    let queue: Promise<void> = Promise.resolve();
    let waiting = 0;

    const close = (code: number, reason: string) => {
      options.log.warn({ ip, reason }, 'CKKS WebSocket closed');
      socket.close(code, reason);
    };

    /** Runs one request through the HTTP route and sends the answer back in chunks. */
    async function answer(id: number, step: string, model: string, body: Uint8Array): Promise<void> {
      const res = await app.inject({
        method: 'POST',
        url: `/v1/ckks/${encodeURIComponent(model)}/${encodeURIComponent(step)}`,
        headers: { 'content-type': 'application/octet-stream' },
        payload: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        remoteAddress: ip,
      });
      const bytes = new Uint8Array(res.rawPayload.buffer, res.rawPayload.byteOffset, res.rawPayload.byteLength);
      for (const frame of encodeChunks({ id, status: res.statusCode }, bytes, CKKS_WS_CHUNK_BYTES)) {
        if (socket.readyState !== socket.OPEN) return;
        socket.send(frame, { binary: true });
      }
    }

    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (!isBinary) return close(1008, 'send binary chunk frames');
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      try {
        const { head, chunk } = decodeChunk(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        if (!assembly) {
          if (head.offset !== 0 || !head.step || !head.model) return close(1008, 'a message starts with offset 0, a step and a model');
          if (!(CKKS_STEPS as readonly string[]).includes(head.step)) return close(1008, `no CKKS step '${head.step}'`);
          if (head.total > options.maxBodyBytes) return close(1009, `a CKKS message is at most ${options.maxBodyBytes} bytes`);
          if (waiting >= maxQueued) return close(1008, `at most ${maxQueued} requests waiting per connection`);
          assembly = new ChunkAssembly(head);
        }
        const whole = assembly.add(head, chunk);
        if (!whole) return;
        const { id, step, model } = assembly.head;
        assembly = undefined;
        waiting++;
        queue = queue
          .then(() => answer(id, step!, model!, whole))
          .catch((err: unknown) => {
            options.log.error({ ip, reason: err instanceof Error ? err.message.slice(0, 200) : 'unknown' }, 'CKKS WebSocket request failed');
            socket.terminate();
          })
          .finally(() => void waiting--);
      } catch (err) {
        close(1008, err instanceof BlindmlError ? err.message.slice(0, 120) : 'malformed frame');
      }
    });
    socket.on('error', (err: Error) => options.log.warn({ ip, reason: err.message.slice(0, 100) }, 'CKKS WebSocket error'));
  });
}
