/**
 * Versioned, validated messages of the multi-key protocol (zod schemas; every message carries
 * `v: 1`). Service ↔ crypto server: `open` (local instructions to replay, then interactive
 * products whose operands the crypto server encrypts under the training key), `cross` (the
 * service's masked cross terms), `import` (data shares), `checkpoint`, `reveal`. Service ↔
 * provider: `switch` (masked ciphertexts under the provider's key) and `switched` (the same values
 * under the training key). Ciphertexts travel as base64url integers, CKKS ciphertexts as
 * base64url envelopes.
 *
 * @module
 */
import { z } from 'zod';
import { FormatError } from '../../errors.js';

/** Protocol version every message carries. */
export const MULTIKEY_VERSION = 1;

const id = z.string().min(1).max(64);
const int = z.string().regex(/^-?[0-9]{1,40}$/);
const b64 = z.string().regex(/^[A-Za-z0-9_-]+$/);
const v = z.literal(MULTIKEY_VERSION);

/** A local instruction the crypto server replays on its shares (see `program.ts`). */
export const LocalInstrSchema = z.union([
  z.object({ op: z.enum(['add', 'sub', 'addCol']), out: id, a: id, b: id }).strict(),
  z.object({ op: z.enum(['transpose', 'sumCols']), out: id, a: id }).strict(),
  z.object({ op: z.enum(['scale', 'addConst']), out: id, a: id, k: int }).strict(),
  z.object({ op: z.literal('trunc'), out: id, a: id, bits: z.number().int().min(0).max(62) }).strict(),
  z.object({ op: z.literal('gather'), out: id, rows: z.array(z.object({ a: id, r: z.number().int().min(0) }).strict()).min(1), c0: z.number().int().min(0), c1: z.number().int().min(1) }).strict(),
  z.object({ op: z.literal('free'), ids: z.array(id) }).strict(),
]);

/** A product both servers compute together. */
export const InteractiveInstrSchema = z.object({ op: z.enum(['matmul', 'mul']), out: id, a: id, b: id }).strict();

const shape = { rows: z.number().int().min(1).max(100_000), cols: z.number().int().min(1).max(100_000) };

/** Service → crypto server. */
export const ToCryptoSchema = z.discriminatedUnion('type', [
  z.object({ v, type: z.literal('open'), seq: z.number().int(), local: z.array(LocalInstrSchema), ops: z.array(InteractiveInstrSchema).min(1) }).strict(),
  z.object({ v, type: z.literal('cross'), seq: z.number().int(), open: z.number().int(), results: z.array(z.array(b64)) }).strict(),
  z.object({ v, type: z.literal('sync'), seq: z.number().int(), local: z.array(LocalInstrSchema) }).strict(),
  z.object({
    v,
    type: z.literal('import'),
    seq: z.number().int(),
    /** Signed slots of this many bits hold each tensor's masked values, row-major. */
    slotBits: z.number().int().min(8).max(4096),
    tensors: z.array(z.object({ id, ...shape, ciphertexts: z.array(b64).min(1) }).strict()).min(1),
  }).strict(),
  z.object({ v, type: z.literal('zeros'), seq: z.number().int(), tensors: z.array(z.object({ id, ...shape }).strict()) }).strict(),
  z.object({ v, type: z.literal('checkpoint'), seq: z.number().int(), epoch: z.number().int().min(0) }).strict(),
  z.object({ v, type: z.literal('restore'), seq: z.number().int(), epoch: z.number().int().min(0) }).strict(),
  z.object({ v, type: z.literal('reveal'), seq: z.number().int(), ids: z.array(id) }).strict(),
]);
export type ToCrypto = z.infer<typeof ToCryptoSchema>;

/** Crypto server → service. */
export const FromCryptoSchema = z.discriminatedUnion('type', [
  z.object({ v, type: z.literal('opened'), seq: z.number().int(), cts: z.array(z.array(b64)) }).strict(),
  z.object({ v, type: z.literal('ack'), seq: z.number().int() }).strict(),
  z.object({ v, type: z.literal('shares'), seq: z.number().int(), tensors: z.array(z.object({ id, ...shape, data: z.array(int) }).strict()) }).strict(),
]);
export type FromCrypto = z.infer<typeof FromCryptoSchema>;

/** A provider's one-time upload of its encrypted records. */
export const UploadSchema = z.object({
  v,
  type: z.literal('upload'),
  providerId: z.string().min(1).max(64),
  scheme: z.enum(['paillier', 'ckks']),
  keyId: z.string().min(1).max(128),
  /** Values per record (features + target). */
  width: z.number().int().min(1).max(10_000),
  records: z.number().int().min(1).max(1_000_000),
  /** Paillier: signed slots of this many bits per plaintext. CKKS: ignored (one value per slot). */
  slotBits: z.number().int().min(8).max(4096),
  ciphertexts: z.array(b64).min(1),
}).strict();
export type Upload = z.infer<typeof UploadSchema>;

/** Service → provider (or its key holder): masked values under the provider's key. */
export const SwitchRequestSchema = z.object({ v, type: z.literal('switch'), providerId: z.string(), ciphertexts: z.array(b64).min(1) }).strict();
export type SwitchRequest = z.infer<typeof SwitchRequestSchema>;

/** Provider → service: the masked values re-encrypted under the training key (packed). */
export const SwitchReplySchema = z.object({ v, type: z.literal('switched'), ciphertexts: z.array(b64).min(1) }).strict();
export type SwitchReply = z.infer<typeof SwitchReplySchema>;

/**
 * Parses `msg` with `schema`.
 *
 * @throws FormatError naming `what` and the first problem.
 */
export function parseMessage<T>(schema: z.ZodType<T>, msg: unknown, what: string): T {
  const r = schema.safeParse(msg);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new FormatError(`malformed ${what}: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
  }
  return r.data;
}
