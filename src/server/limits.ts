/**
 * Request-body caps decided before a body is read: a `preParsing` hook refuses a declared
 * `Content-Length` above the cap at once (413, connection closed) and cuts a chunked body off at
 * the cap, so an anonymous client cannot make the service buffer more than the step it calls can
 * legitimately need.
 *
 * The CKKS caps follow from the compiled model's public description: SEAL's uncompressed sizes
 * (8 bytes per coefficient, N coefficients per polynomial per modulus) for the keys a client
 * uploads and for the ciphertexts a round can carry, plus a margin for envelopes and the header.
 *
 * @module
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyReply, FastifyRequest, RequestPayload } from 'fastify';
import type { DescribeReply } from '../protocol/ckks-inference/messages.js';

/** An error Fastify answers with 413 (the code Fastify itself uses for oversized bodies). */
export class BodyTooLargeError extends Error {
  readonly statusCode = 413;
  readonly code = 'FST_ERR_CTP_BODY_TOO_LARGE';
  constructor(readonly limit: number) {
    super(`the request body exceeds ${limit} bytes, the most this request can need`);
  }
}

/** Room for envelopes, blob headers and the JSON header of a CKKS message. */
const CKKS_SLACK_BYTES = 64 * 1024;

/** Largest body of a CKKS step that carries no ciphertexts or keys (`describe`, `open`). */
export const CKKS_SMALL_BODY_BYTES = 4 * 1024;

/**
 * The largest body a CKKS step can legitimately carry for a model with this description, at most
 * `configured` (the operator's `--max-ckks-mb`).
 *
 * - `keys`: a public key (2 polynomials over all L moduli) and one Galois key per rotation step
 *   ((L − 1) key-switching pairs over L moduli each).
 * - `round`: at most every input ciphertext of every stage (2 polynomials over the L − 1 data
 *   moduli each).
 */
export function ckksBodyLimit(step: string, describe: DescribeReply, configured: number): number {
  if (step !== 'keys' && step !== 'round') return CKKS_SMALL_BODY_BYTES;
  const n = describe.params.polyModulusDegree;
  const moduli = describe.params.coeffModulusBits.length;
  const poly = (count: number) => count * n * 8;
  const need =
    step === 'keys'
      ? 2 * poly(moduli) + describe.galoisSteps.length * (moduli - 1) * 2 * poly(moduli)
      : Math.max(1, describe.inputCiphertexts) * 2 * poly(Math.max(1, moduli - 1));
  return Math.min(configured, Math.ceil(need * 1.0625) + CKKS_SLACK_BYTES);
}

/**
 * The widest client modulus the Paillier `open` message's schema admits (4,096 base64url
 * characters), for callers that do not bound key sizes themselves.
 */
const MAX_SCHEMA_MODULUS_BITS = 4096 * 6;
/** Room for a Paillier message's JSON header (the `open` message, with its modulus, is the largest). */
const PAILLIER_HEADER_BYTES = 64 * 1024;

/**
 * The largest Paillier message a client can legitimately send to a service holding these models,
 * at most `configured` (`--max-frame-mb`): a header and, per ciphertext the client sends in one
 * message (a model's inputs, or one activation round's results), the widest ciphertext a client
 * key the service accepts can make (`maxKeyBits`, `--max-key-bits`).
 */
export function paillierBodyLimit(
  models: Iterable<{ readonly plan: { readonly stages: readonly { readonly linears: readonly { readonly cols: number }[]; readonly activation: { readonly outputSize: number } | null }[] } }>,
  configured: number,
  maxKeyBits = MAX_SCHEMA_MODULUS_BITS,
): number {
  let most = 0;
  for (const m of models) {
    for (const stage of m.plan.stages) most = Math.max(most, stage.linears[0]?.cols ?? 0, stage.activation?.outputSize ?? 0);
  }
  return Math.min(configured, PAILLIER_HEADER_BYTES + most * 2 * Math.ceil(maxKeyBits / 8));
}

/** Counts bytes through and fails with {@link BodyTooLargeError} past `limit`. */
class Capped extends Transform {
  private seen = 0;
  /** What Fastify compares with Content-Length. */
  receivedEncodedLength = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    this.receivedEncodedLength = this.seen;
    if (this.seen > this.limit) return done(new BodyTooLargeError(this.limit));
    done(null, chunk);
  }
}

/**
 * Applies `limit` bytes to a request body: throws at once when `Content-Length` says more, else
 * returns the payload wrapped so that reading past the limit fails. Either way the reply closes
 * the connection, so the rest of an oversized body is not read.
 *
 * @throws BodyTooLargeError (413)
 */
export function capBody(req: FastifyRequest, reply: FastifyReply, payload: RequestPayload, limit: number): RequestPayload {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) {
    void reply.header('connection', 'close');
    throw new BodyTooLargeError(limit);
  }
  const capped = new Capped(limit);
  capped.on('error', () => void reply.header('connection', 'close'));
  payload.on('error', (err) => capped.destroy(err));
  return payload.pipe(capped) as unknown as RequestPayload;
}

/** How long a WebSocket closed for a protocol error waits for the client's close reply. */
const WS_CLOSE_GRACE_MS = 2_000;

/**
 * @fastify/websocket's `errorHandler`: for an error the `ws` library already answered with a
 * close frame (an oversized frame: 1009; a malformed one: 1002/1007), let that close frame reach
 * the client and end the connection a moment later — terminating at once (the default) resets a
 * connection that is still uploading, and the client sees 1006 instead of the documented code.
 * Other errors (a broken socket) end the connection at once. (The route's own `error` listener
 * logs and counts them.)
 */
export function websocketErrorHandler(error: Error, socket: { terminate(): void; readyState: number; CLOSED: number }): void {
  const closing = /^WS_ERR_/.test((error as { code?: string }).code ?? '');
  if (!closing) return socket.terminate();
  setTimeout(() => {
    if (socket.readyState !== socket.CLOSED) socket.terminate();
  }, WS_CLOSE_GRACE_MS).unref();
}
