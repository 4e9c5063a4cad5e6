/**
 * The messages of the interactive Paillier inference protocol (version 1) and their wire format:
 *
 *     "BMLM" | u32 header length | header (UTF-8 JSON, validated by zod) | ciphertexts
 *
 * where the ciphertexts are `count` big-endian integers of `width` bytes each, as the header says.
 * Every message is validated on arrival; anything else is a {@link ProtocolError}.
 *
 * @module
 */
import { z } from 'zod';
import { BlindmlError } from '../../errors.js';
import { decodeFrame, encodeFrame } from '../framing.js';

export const PROTOCOL_VERSION = 1;
/** Largest message accepted by default (frames beyond it are refused before parsing). */
export const MAX_MESSAGE_BYTES = 256 * 2 ** 20;
const MAGIC = [0x42, 0x4d, 0x4c, 0x4d]; // "BMLM"

/** A protocol-level failure: wrong order, unknown session, malformed message. */
export class ProtocolError extends BlindmlError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** An elementwise activation on the wire (see `Elementwise` in plan.ts). */
export const elementwiseSchema = z.union([
  z.enum(['relu', 'sigmoid', 'tanh', 'gelu', 'silu', 'hardswish']),
  z.object({ leakyrelu: z.number() }).strict(),
  z.object({ clip: z.tuple([z.number().nullable(), z.number().nullable()]).readonly() }).strict(),
]);

const base64url = z.string().regex(/^[A-Za-z0-9_-]+$/).max(4096);
const count = z.number().int().nonnegative().max(1e8);

/** What the client must know about a session. Nothing here reveals weights. */
export const sessionInfoSchema = z.object({
  inputShape: z.array(z.number().int().positive()).max(8),
  inputScale: z.number().positive(),
  /** Samples per ciphertext (1 in latency mode). */
  batch: z.number().int().positive(),
  slotBits: z.number().int().positive().max(4096),
  /** Guard bits inside slotBits. */
  guardBits: z.number().int().nonnegative().max(64),
  rounds: count,
  outputSize: z.number().int().positive(),
  outputScale: z.number().positive(),
  outputActivation: z.enum(['softmax', 'logsoftmax', 'sigmoid', 'tanh']).nullable(),
});
export type SessionInfo = z.infer<typeof sessionInfoSchema>;

/** Which function the client applies in one round, on units given in (permuted) order. */
export const activationSpecSchema = z.object({
  fns: z.array(elementwiseSchema).max(16),
  /** Values per unit (a max-pool window), if not all 1. */
  unitSizes: z.array(z.number().int().positive().max(1024)).max(1e7).nullable(),
  units: count,
  /** Values travel at this public scale (non-homogeneous functions only). */
  scale: z.number().positive().nullable(),
  /** Right shift applied to each returned value (homogeneous functions). */
  shift: z.number().int().nonnegative().max(4096),
  /** Non-homogeneous functions: return round(f(x)·returnScale). */
  returnScale: z.number().positive().nullable(),
  /** Bits per slot of the packed ciphertexts sent (latency mode). */
  slotBits: z.number().int().positive().max(4096),
  /** Values per ciphertext as sent (latency mode packs many). */
  valuesPerCiphertext: z.number().int().positive(),
  /** Total values sent. */
  values: count,
});
export type ActivationSpec = z.infer<typeof activationSpecSchema>;

const header = z.discriminatedUnion('type', [
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('open'), modelId: z.string().min(1).max(200), n: base64url, mode: z.enum(['latency', 'batch']), batch: z.number().int().positive().max(4096).optional() }),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('opened'), sessionId: z.string().min(8).max(100), info: sessionInfoSchema }),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('input'), sessionId: z.string().min(8).max(100), samples: z.number().int().positive() }),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('activate'), sessionId: z.string().min(8).max(100), round: count, spec: activationSpecSchema }),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('activated'), sessionId: z.string().min(8).max(100), round: count }),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('result'), sessionId: z.string().min(8).max(100), outputs: count, valuesPerCiphertext: z.number().int().positive(), slotBits: z.number().int().positive().max(4096) }),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('close'), sessionId: z.string().min(8).max(100) }),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('closed'), sessionId: z.string().min(8).max(100) }),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('error'), code: z.string().max(100), message: z.string().max(2000) }),
]);
type Header = z.infer<typeof header>;

/** A message: its validated header and the ciphertexts it carries. */
export type Message = Header & { ciphertexts: bigint[] };
export type MessageOf<T extends Message['type']> = Extract<Header, { type: T }> & { ciphertexts: bigint[] };

/** Builds a message of the given type (version filled in). */
export function message<T extends Message['type']>(
  body: Omit<Extract<Header, { type: T }>, 'v'> & { ciphertexts?: bigint[] },
): MessageOf<T> {
  return { v: PROTOCOL_VERSION, ciphertexts: [], ...body } as unknown as MessageOf<T>;
}

/**
 * Serializes a message; ciphertexts are written `width` bytes each.
 *
 * @throws RangeError if a ciphertext does not fit in `width` bytes.
 */
export function encodeMessage(msg: Message, width: number): Uint8Array {
  const { ciphertexts, ...head } = msg;
  return encodeFrame(MAGIC, head, ciphertexts, width, false);
}

/**
 * Parses and validates a message.
 *
 * @throws ProtocolError (code ERR_BAD_MESSAGE) for anything malformed, truncated or oversized.
 */
export function decodeMessage(bytes: Uint8Array, maxBytes = MAX_MESSAGE_BYTES): Message {
  const bad = (why: string): never => {
    throw new ProtocolError('ERR_BAD_MESSAGE', `malformed protocol message: ${why}`);
  };
  const { header: raw, ciphertexts } = decodeFrame(bytes, MAGIC, maxBytes, bad, true);
  const parsed = header.safeParse(raw);
  if (!parsed.success) bad(parsed.error.issues.map((i) => `${i.path.join('.') || 'header'}: ${i.message}`).slice(0, 3).join('; '));
  return { ...parsed.data!, ciphertexts } as Message;
}
