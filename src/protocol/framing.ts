/**
 * The binary frame the Paillier protocols share: 4 magic bytes, a big-endian u32 header length,
 * a UTF-8 JSON header (which carries `ct: { count, width }`), then `count` ciphertexts of `width`
 * bytes each, big-endian. Each protocol validates its own header schema on top.
 *
 * @module
 */
import { z } from 'zod';
import { bigIntToBytes, bytesToBigInt } from '../math/bigint.js';

const descriptor = z.object({ count: z.number().int().nonnegative().max(1e8), width: z.number().int().positive().max(4096) });

/**
 * Writes a frame. With `describeEmpty` false a frame without ciphertexts carries no `ct` field.
 *
 * @throws RangeError if a ciphertext does not fit in `width` bytes.
 */
export function encodeFrame(magic: readonly number[], head: object, ciphertexts: readonly bigint[], width: number, describeEmpty = true): Uint8Array {
  const ct = ciphertexts.length > 0 || describeEmpty ? { count: ciphertexts.length, width } : undefined;
  const json = new TextEncoder().encode(JSON.stringify({ ...head, ct }));
  const out = new Uint8Array(8 + json.length + ciphertexts.length * width);
  out.set(magic, 0);
  new DataView(out.buffer).setUint32(4, json.length);
  out.set(json, 8);
  let offset = 8 + json.length;
  for (const c of ciphertexts) {
    out.set(bigIntToBytes(c, width), offset);
    offset += width;
  }
  return out;
}

/**
 * Reads a frame: checks magic, size limit, header JSON, the ciphertext descriptor and the exact
 * length, and returns the parsed (unvalidated) header with the ciphertexts.
 *
 * @param bad - throws the protocol's own error with the reason; called for every problem.
 * @param ciphertextsOptional - a frame may omit `ct` (no ciphertexts).
 */
export function decodeFrame(
  bytes: Uint8Array,
  magic: readonly number[],
  maxBytes: number,
  bad: (why: string) => never,
  ciphertextsOptional = false,
): { header: unknown; ciphertexts: bigint[] } {
  if (!(bytes instanceof Uint8Array)) bad('not bytes');
  if (bytes.length > maxBytes) bad(`${bytes.length} bytes exceeds the limit of ${maxBytes}`);
  if (bytes.length < 8 || magic.some((b, i) => bytes[i] !== b)) bad('bad magic or too short');
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  if (8 + headerLength > bytes.length) bad('truncated header');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    bad('header is not JSON');
  }
  const ct = (ciphertextsOptional ? descriptor.optional() : descriptor).safeParse((header as { ct?: unknown } | null)?.ct);
  if (!ct.success) bad('bad ciphertext descriptor');
  const { count: n = 0, width = 1 } = ct.data ?? {};
  const body = 8 + headerLength;
  if (bytes.length !== body + n * width) bad(`expected ${n} ciphertexts of ${width} bytes, got ${bytes.length - body} bytes`);
  const ciphertexts = new Array<bigint>(n);
  for (let i = 0; i < n; i++) ciphertexts[i] = bytesToBigInt(bytes.subarray(body + i * width, body + (i + 1) * width));
  return { header, ciphertexts };
}
