/**
 * Messages between S1 (the compute server) and S2 (the crypto server), version 1:
 *
 *     "B2SV" | u32 header length | header (UTF-8 JSON, validated by zod) | ciphertexts
 *
 * where the ciphertexts are `count` big-endian integers of `width` bytes each. A request carries a
 * list of operations (all the work of one protocol step, so one round trip); each operation takes
 * the next `inputs` ciphertexts of the request and produces the next `outputs` ciphertexts of the
 * response. Inputs are packed: every operation declares its slot width and S2 unpacks with it.
 *
 * Every message is validated on arrival; anything else is a {@link TwoServerProtocolError}.
 *
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { z } from 'zod';
import { bigIntToBytes } from '../../math/bigint.js';
import { decodeFrame, encodeFrame } from '../framing.js';
import { TwoServerProtocolError } from './errors.js';

export const TWO_SERVER_VERSION = 1;
/** Largest message accepted by default. */
export const MAX_TWO_SERVER_MESSAGE_BYTES = 512 * 2 ** 20;
const MAGIC = [0x42, 0x32, 0x53, 0x56]; // "B2SV"

const count = z.number().int().nonnegative().max(1e8);
const slotBits = z.number().int().min(8).max(4096);
const id = z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/);
const index = z.number().int().nonnegative().max(1e8);

/** A matrix operand: sent in this operation (packed, row-major), or rows of a stored matrix. */
export const operandSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sent'), rows: z.number().int().positive().max(1e6), cols: z.number().int().positive().max(1e6) }),
  z.object({ kind: z.literal('stored'), id, rows: z.array(index).min(1).max(1e6), transpose: z.boolean() }),
]);
export type OperandSpec = z.infer<typeof operandSchema>;

/**
 * The operations S2 performs. `values` is the number of masked values packed in the operation's
 * input ciphertexts, `slotBits` their slot width.
 */
export const opSchema = z.discriminatedUnion('op', [
  /** Decrypt and keep a masked matrix (rows × cols) under `id`. No output. */
  z.object({ op: z.literal('store'), id, rows: z.number().int().positive().max(1e6), cols: z.number().int().positive().max(1e6), values: count, slotBits }),
  /** Enc(L'·R') for masked operands L', R'. Output: L.rows × R.cols ciphertexts, row-major. */
  z.object({ op: z.literal('matmul'), left: operandSchema, right: operandSchema, values: count, slotBits }),
  /** Pairs (a', b') → Enc(a'·b'). Output: `values / 2` ciphertexts. */
  z.object({ op: z.literal('mul'), values: count, slotBits }),
  /** v' → Enc(⌊v' / 2^shift⌋). */
  z.object({ op: z.literal('trunc'), shift: z.number().int().nonnegative().max(1024), values: count, slotBits }),
  /**
   * Items (αz, z + r, u_1 + s_1, …, u_extra + s_extra) → Enc(b·⌊(z+r)/2^shift⌋), Enc(b),
   * Enc(b·(u_k + s_k)) where b = [αz > 0].
   */
  z.object({ op: z.literal('relu'), shift: z.number().int().nonnegative().max(1024), extra: z.number().int().nonnegative().max(8), values: count, slotBits }),
  /** v' → Enc_target(v') under the public key with modulus `targetN` (hex). */
  z.object({ op: z.literal('switch'), targetN: z.string().regex(/^[0-9a-f]{16,2048}$/), values: count, slotBits }),
  /** Forget a stored matrix. No output. */
  z.object({ op: z.literal('drop'), id, values: z.literal(0), slotBits }),
]);
export type Op = z.infer<typeof opSchema>;

const headerSchema = z.discriminatedUnion('type', [
  z.object({ v: z.literal(TWO_SERVER_VERSION), type: z.literal('request'), key: z.string().regex(/^[0-9a-f]{32}$/), seq: index, ops: z.array(opSchema).min(1).max(64), inputs: z.array(count).max(64) }),
  z.object({ v: z.literal(TWO_SERVER_VERSION), type: z.literal('response'), seq: index, outputs: z.array(count).max(64) }),
  z.object({ v: z.literal(TWO_SERVER_VERSION), type: z.literal('error'), seq: index.nullable(), code: z.string().max(100), message: z.string().max(2000) }),
]);
type Header = z.infer<typeof headerSchema>;

/** A decoded message: its validated header and its ciphertexts. */
export type TwoServerMessage = Header & { ciphertexts: bigint[] };
export type RequestMessage = Extract<TwoServerMessage, { type: 'request' }>;
export type ResponseMessage = Extract<TwoServerMessage, { type: 'response' }>;

/** Short identifier of a Paillier modulus: the first 16 bytes of SHA-256 of its big-endian bytes, hex. */
export function keyId(n: bigint): string {
  const digest = sha256(bigIntToBytes(n));
  return Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Serializes a message with ciphertexts of `width` bytes each.
 *
 * @throws RangeError if a ciphertext does not fit in `width` bytes.
 */
export function encodeTwoServerMessage(msg: TwoServerMessage, width: number): Uint8Array {
  const { ciphertexts, ...head } = msg;
  return encodeFrame(MAGIC, head, ciphertexts, width);
}

/**
 * Parses and validates a message.
 *
 * @throws TwoServerProtocolError (code ERR_BAD_MESSAGE) for anything malformed, truncated or
 *   oversized.
 */
export function decodeTwoServerMessage(bytes: Uint8Array, maxBytes = MAX_TWO_SERVER_MESSAGE_BYTES): TwoServerMessage {
  const bad = (why: string): never => {
    throw new TwoServerProtocolError('ERR_BAD_MESSAGE', `malformed two-server message: ${why}`);
  };
  const { header: raw, ciphertexts } = decodeFrame(bytes, MAGIC, maxBytes, bad);
  const n = ciphertexts.length;
  const parsed = headerSchema.safeParse(raw);
  if (!parsed.success) bad(parsed.error.issues.map((i) => `${i.path.join('.') || 'header'}: ${i.message}`).slice(0, 3).join('; '));
  const header = parsed.data!;
  if (header.type === 'request') {
    if (header.inputs.length !== header.ops.length) bad('one input count per operation expected');
    if (header.inputs.reduce((a, b) => a + b, 0) !== n) bad('input counts do not add up to the ciphertexts sent');
  } else if (header.type === 'response') {
    if (header.outputs.reduce((a, b) => a + b, 0) !== n) bad('output counts do not add up to the ciphertexts sent');
  }
  return { ...header, ciphertexts } as TwoServerMessage;
}
