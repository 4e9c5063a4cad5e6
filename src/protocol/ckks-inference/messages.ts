/**
 * Messages of the interactive CKKS protocol (version 1), validated with zod on receipt. Ciphertexts
 * and keys travel as blindml CKKS envelopes (`Uint8Array`), routing tables as `Int32Array`s.
 *
 * @module
 */
import { z } from 'zod';
import { FormatError } from '../../errors.js';
import { elementwiseSchema } from '../paillier-inference/messages.js';

export const PROTOCOL_VERSION = 1;

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const ints = z.custom<Int32Array>((v) => v instanceof Int32Array, 'expected an Int32Array');

/** What the client needs to know before making keys (public facts about the compiled model). */
export const DescribeReply = z.object({
  version: z.literal(PROTOCOL_VERSION),
  params: z.object({ polyModulusDegree: z.number().int(), coeffModulusBits: z.array(z.number().int()), scaleBits: z.number().int() }),
  inputScaleBits: z.number().int(),
  inputSize: z.number().int().positive(),
  outputSize: z.number().int().positive(),
  stages: z.number().int().positive(),
  galoisSteps: z.array(z.number().int()),
  /** Ciphertexts the client encrypts and the service returns per inference (for precomputation). */
  inputCiphertexts: z.number().int().nonnegative(),
  outputCiphertexts: z.number().int().nonnegative(),
  /**
   * The activation round after each stage but the last (public architecture), so a client needs
   * only the service's address and a model id.
   */
  activations: z
    .array(z.object({ fns: z.array(elementwiseSchema).max(16), pool: z.enum(['max', 'avg']).nullable() }))
    .optional(),
  /**
   * What each stage reads (public architecture): −1 for the model input, k for round k's values;
   * the client uploads their concatenation, routed. Absent: a chain ([−1], [0], [1], …).
   */
  sources: z.array(z.array(z.number().int().min(-1)).min(1).max(4096)).optional(),
});
export type DescribeReply = z.infer<typeof DescribeReply>;

/**
 * Routing of one stage's inputs: per group, per input ciphertext, the client's source index per
 * slot. A group without `outputs` comes back as one ciphertext holding its `size` outputs in slots
 * 0..size−1 (positions in group order); with `outputs`, as one ciphertext per entry, whose slot t
 * holds stage position outputs[m][t] (−1: none).
 */
export const Routing = z.object({
  groups: z.array(z.object({ size: z.number().int().positive(), sources: z.array(ints).min(1), outputs: z.array(ints).min(1).optional() })).min(1),
  windowSizes: ints.nullable(),
});
export type Routing = z.infer<typeof Routing>;

/**
 * The client's public and Galois keys, uploaded once and cached by the service under their key id
 * (`galoisKeys` empty when the model needs no rotation).
 */
export const KeysRequest = z.object({
  version: z.literal(PROTOCOL_VERSION),
  publicKey: bytes,
  galoisKeys: bytes,
});
export type KeysRequest = z.infer<typeof KeysRequest>;

export const KeysReply = z.object({ version: z.literal(PROTOCOL_VERSION), keyId: z.string().regex(/^[0-9a-f]{32}$/) });
export type KeysReply = z.infer<typeof KeysReply>;

export const OpenRequest = z.object({ version: z.literal(PROTOCOL_VERSION), keyId: z.string().regex(/^[0-9a-f]{32}$/) });
export type OpenRequest = z.infer<typeof OpenRequest>;

export const OpenReply = z.object({ version: z.literal(PROTOCOL_VERSION), sessionId: z.string().min(8), routing: Routing });
export type OpenReply = z.infer<typeof OpenReply>;

export const RoundRequest = z.object({
  version: z.literal(PROTOCOL_VERSION),
  sessionId: z.string(),
  stage: z.number().int().nonnegative(),
  inputs: z.array(z.array(bytes).min(1)).min(1),
});
export type RoundRequest = z.infer<typeof RoundRequest>;

export const RoundReply = z.object({
  version: z.literal(PROTOCOL_VERSION),
  stage: z.number().int().nonnegative(),
  outputs: z.array(bytes).min(1),
  /** The next stage's routing; absent after the last stage. */
  next: Routing.optional(),
  /** Window sizes of this stage's max-pool round (position order), or null. */
  windowSizes: ints.nullable(),
});
export type RoundReply = z.infer<typeof RoundReply>;

/**
 * Validates a message.
 *
 * @throws FormatError naming the first problem.
 */
export function parseMessage<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new FormatError(`malformed CKKS ${what}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** Bytes a message occupies on the wire (ciphertexts, keys and routing tables). */
export function messageBytes(value: unknown): number {
  if (value instanceof Uint8Array || value instanceof Int32Array) return value.byteLength;
  if (Array.isArray(value)) return value.reduce((a: number, v) => a + messageBytes(v), 0);
  if (value && typeof value === 'object') return Object.values(value).reduce((a: number, v) => a + messageBytes(v), 0);
  return 8;
}
