/**
 * The messages of the non-interactive CKKS protocol (version 1) and their wire format:
 *
 *     "BMCP" | u8 version | u32 header length | header (UTF-8 JSON, validated by zod) |
 *     u32 blob count | (u32 length | bytes) per blob
 *
 * The blobs are blindml CKKS envelopes (keys, ciphertexts), which carry their own parameter
 * fingerprint and key id. Every message is validated on arrival; anything else is a
 * {@link ProtocolError}.
 *
 * Flow: the client asks for `info` (parameters, input scale, slots), sends `keys` (public and
 * relinearization keys: never the secret key) and gets a session, then sends `infer` with one
 * ciphertext per input value (slots = images) and gets `result` with one ciphertext per logit.
 *
 * @module
 */
import { z } from 'zod';
import { ProtocolError } from '../paillier-inference/messages.js';

export { ProtocolError };

export const CKKS_POLY_PROTOCOL_VERSION = 1;
/** Largest message accepted by default (a batch of 784 seeded ciphertexts at N = 8192 is about 155 MB). */
export const MAX_CKKS_MESSAGE_BYTES = 1024 * 2 ** 20;
const MAGIC = [0x42, 0x4d, 0x43, 0x50]; // "BMCP"
const MAX_BLOBS = 1 << 20;

const id = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/);

/** What the client needs to encrypt for a model. Nothing here reveals weights. */
export const polyInfoSchema = z.object({
  params: z.object({
    polyModulusDegree: z.number().int().positive().max(65536),
    coeffModulusBits: z.array(z.number().int().min(20).max(60)).min(2).max(64),
    scaleBits: z.number().int().min(1).max(60),
  }),
  inputScale: z.number().positive().finite(),
  inputSize: z.number().int().positive().max(1 << 20),
  inputShape: z.array(z.number().int().positive()).max(8),
  outputSize: z.number().int().positive().max(1 << 16),
  outputActivation: z.enum(['softmax', 'logsoftmax', 'sigmoid']).nullable(),
  /** Multiplicative depth: the number of squares on the way (one rescale each). */
  depth: z.number().int().nonnegative().max(64),
});
export type PolyInfo = z.infer<typeof polyInfoSchema>;

const header = z.discriminatedUnion('type', [
  z.object({ type: z.literal('info'), model: id }),
  z.object({ type: z.literal('info-reply'), model: id, info: polyInfoSchema }),
  /** Blobs: public key, relinearization keys. */
  z.object({ type: z.literal('keys'), model: id }),
  z.object({ type: z.literal('session'), session: id }),
  /** Blobs: inputSize ciphertexts; `count` images in the first slots. */
  z.object({ type: z.literal('infer'), session: id, count: z.number().int().positive().max(1 << 16) }),
  /** Blobs: outputSize ciphertexts. */
  z.object({ type: z.literal('result'), session: id, count: z.number().int().positive().max(1 << 16) }),
  z.object({ type: z.literal('error'), code: z.string().max(64), message: z.string().max(2000) }),
]);
export type PolyHeader = z.infer<typeof header>;
export type PolyMessage = PolyHeader & { readonly blobs: readonly Uint8Array[] };

/** Serializes a message. */
export function encodePolyMessage(msg: PolyMessage): Uint8Array {
  const { blobs, ...head } = msg;
  const json = new TextEncoder().encode(JSON.stringify(head));
  const size = 9 + json.length + 4 + blobs.reduce((n, b) => n + 4 + b.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = CKKS_POLY_PROTOCOL_VERSION;
  view.setUint32(5, json.length);
  out.set(json, 9);
  let at = 9 + json.length;
  view.setUint32(at, blobs.length);
  at += 4;
  for (const b of blobs) {
    view.setUint32(at, b.length);
    out.set(b, at + 4);
    at += 4 + b.length;
  }
  return out;
}

/**
 * Parses and validates a message. Blobs are views into `bytes` (no copy).
 *
 * @throws ProtocolError (code ERR_BAD_MESSAGE) for anything malformed, truncated, oversized or of
 *   another protocol version.
 */
export function decodePolyMessage(bytes: Uint8Array, maxBytes = MAX_CKKS_MESSAGE_BYTES): PolyMessage {
  const bad = (why: string): never => {
    throw new ProtocolError('ERR_BAD_MESSAGE', `malformed ckks-poly message: ${why}`);
  };
  if (!(bytes instanceof Uint8Array)) bad('not bytes');
  if (bytes.length > maxBytes) bad(`${bytes.length} bytes exceeds the limit of ${maxBytes}`);
  if (bytes.length < 13 || MAGIC.some((b, i) => bytes[i] !== b)) bad('bad magic or too short');
  if (bytes[4] !== CKKS_POLY_PROTOCOL_VERSION) bad(`protocol version ${bytes[4]} (this blindml speaks ${CKKS_POLY_PROTOCOL_VERSION})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(5);
  if (9 + headerLength + 4 > bytes.length) bad('truncated header');
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(9, 9 + headerLength)));
  } catch {
    bad('header is not JSON');
  }
  const parsed = header.safeParse(raw);
  if (!parsed.success) bad(parsed.error.issues.map((i) => `${i.path.join('.') || 'header'}: ${i.message}`).slice(0, 3).join('; '));
  let at = 9 + headerLength;
  const count = view.getUint32(at);
  at += 4;
  if (count > MAX_BLOBS) bad(`${count} blobs`);
  const blobs: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.length) bad(`truncated at blob ${i} of ${count}`);
    const length = view.getUint32(at);
    if (at + 4 + length > bytes.length) bad(`truncated at blob ${i} of ${count}`);
    blobs.push(bytes.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  if (at !== bytes.length) bad(`${bytes.length - at} bytes after the last blob`);
  return { ...parsed.data!, blobs };
}

/**
 * Checks a decoded message has the expected type and number of blobs.
 *
 * @throws ProtocolError: the service's `error` message (its code and text), or ERR_BAD_MESSAGE.
 */
export function expectPolyMessage<T extends PolyHeader['type']>(msg: PolyMessage, type: T, blobs?: number): Extract<PolyHeader, { type: T }> & { blobs: readonly Uint8Array[] } {
  if (msg.type === 'error') throw new ProtocolError(msg.code, msg.message);
  if (msg.type !== type) throw new ProtocolError('ERR_BAD_MESSAGE', `expected a ${type} message, got ${msg.type}`);
  if (blobs !== undefined && msg.blobs.length !== blobs) {
    throw new ProtocolError('ERR_BAD_MESSAGE', `a ${type} message must carry ${blobs} objects, got ${msg.blobs.length}`);
  }
  return msg as Extract<PolyHeader, { type: T }> & { blobs: readonly Uint8Array[] };
}
