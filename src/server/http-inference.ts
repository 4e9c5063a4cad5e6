/**
 * A minimal HTTP front for a {@link PaillierInferenceService}: `POST /v1/paillier` carries one
 * protocol message each way (application/octet-stream), `GET /healthz` answers "ok". Oversized
 * bodies are refused with 413 without being buffered; a client that disconnects mid-request only
 * loses its own session (the service drops it when idle).
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PaillierInferenceService } from '../protocol/paillier-inference/service.js';
import { MAX_MESSAGE_BYTES } from '../protocol/paillier-inference/messages.js';

/** Path of the protocol endpoint. */
export const INFERENCE_PATH = '/v1/paillier';

export interface HttpInferenceServer {
  readonly server: Server;
  /** Base URL, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  close(): Promise<void>;
}

/** Starts listening (port 0 picks a free port). */
export async function startHttpInferenceServer(
  service: PaillierInferenceService,
  options: { port?: number; host?: string; maxBodyBytes?: number } = {},
): Promise<HttpInferenceServer> {
  const maxBody = options.maxBodyBytes ?? MAX_MESSAGE_BYTES;
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    if (req.method !== 'POST' || req.url !== INFERENCE_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    readBody(req, maxBody)
      .then(async (body) => {
        if (!body) {
          res.writeHead(413, { 'content-type': 'text/plain' }).end('message too large');
          return;
        }
        const started = performance.now();
        const reply = await service.handle(body);
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'x-blindml-service-ms': (performance.now() - started).toFixed(1),
        });
        res.end(reply);
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(400).end();
        else res.destroy();
      });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        service.closeAll();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The whole body, or null if it exceeded `limit` bytes. An oversized body is read to its end and
 * discarded (so the 413 reliably reaches a client that is still sending), unless it runs past
 * 16 × limit, when the connection is cut.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > 16 * limit) req.destroy();
    });
    req.on('end', () => resolve(size > limit ? null : new Uint8Array(Buffer.concat(chunks))));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('request aborted'));
    });
  });
}
