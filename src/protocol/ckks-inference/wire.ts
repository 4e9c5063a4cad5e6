/**
 * The CKKS protocol's messages as bytes, for transports between processes (the HTTP front in
 * `server/`, `HttpCkksTransport` in `client/`):
 *
 *     "BMLC" | u32 header length | header (UTF-8 JSON) | u32 blob count | (u8 kind, u32 length, bytes)*
 *
 * The header is the message with every `Uint8Array` (ciphertexts, keys) and `Int32Array` (routing
 * tables) replaced by `{"$blob": i}`; blobs follow in order, kind 1 for bytes and 2 for
 * little-endian int32s. Decoding checks every length against the frame before reading and puts the
 * arrays back; the receiver then validates the message with its zod schema (`messages.ts`).
 *
 * @module
 */
import { FormatError } from '../../errors.js';

const MAGIC = [0x42, 0x4d, 0x4c, 0x43]; // "BMLC"
const BYTES = 1;
const INT32 = 2;
/** Headers stay small: the bulk travels in blobs. */
const MAX_HEADER_BYTES = 1 << 20;
const MAX_BLOBS = 1 << 20;

type Blob = Uint8Array | Int32Array;

/**
 * Encodes a message (plain JSON values, `Uint8Array`s and `Int32Array`s).
 *
 * @throws TypeError for values JSON cannot carry (functions, other typed arrays, cycles).
 */
export function encodeCkksMessage(message: unknown): Uint8Array {
  const blobs: Blob[] = [];
  const header = new TextEncoder().encode(
    JSON.stringify(message, (_key, value: unknown) => {
      if (value instanceof Uint8Array || value instanceof Int32Array) {
        blobs.push(value);
        return { $blob: blobs.length - 1 };
      }
      if (ArrayBuffer.isView(value)) throw new TypeError('only Uint8Array and Int32Array travel in CKKS messages');
      return value;
    }),
  );
  const size = 8 + header.length + 4 + blobs.reduce((a, b) => a + 5 + b.byteLength, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(4, header.length);
  out.set(header, 8);
  let at = 8 + header.length;
  view.setUint32(at, blobs.length);
  at += 4;
  for (const b of blobs) {
    view.setUint8(at, b instanceof Uint8Array ? BYTES : INT32);
    view.setUint32(at + 1, b.byteLength);
    at += 5;
    if (b instanceof Uint8Array) out.set(b, at);
    else for (let i = 0; i < b.length; i++) view.setInt32(at + 4 * i, b[i]!, true);
    at += b.byteLength;
  }
  return out;
}

/**
 * Decodes what {@link encodeCkksMessage} wrote. Blobs are copies (or views of `bytes` for byte
 * blobs when `copy` is false).
 *
 * @throws FormatError for anything else: bad magic, lengths past the frame, a malformed header,
 *   blob references out of range or used twice, a header nested deeper than 32 levels.
 */
export function decodeCkksMessage(bytes: Uint8Array, options: { copy?: boolean } = {}): unknown {
  const bad = (why: string): never => {
    throw new FormatError(`malformed CKKS frame: ${why}`);
  };
  if (bytes.length < 12 || MAGIC.some((m, i) => bytes[i] !== m)) bad('not a CKKS protocol frame');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(4);
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength + 4 > bytes.length) bad('header length past the frame');
  let at = 8 + headerLength;
  const count = view.getUint32(at);
  at += 4;
  if (count > MAX_BLOBS) bad('too many blobs');
  const blobs: Blob[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 5 > bytes.length) bad('blob header past the frame');
    const kind = view.getUint8(at);
    const length = view.getUint32(at + 1);
    at += 5;
    if (at + length > bytes.length) bad('blob past the frame');
    if (kind === BYTES) {
      const slice = bytes.subarray(at, at + length);
      blobs.push(options.copy === false ? slice : slice.slice());
    } else if (kind === INT32) {
      if (length % 4 !== 0) bad('an int32 blob whose length is not a multiple of 4');
      const ints = new Int32Array(length / 4);
      for (let k = 0; k < ints.length; k++) ints[k] = view.getInt32(at + 4 * k, true);
      blobs.push(ints);
    } else bad(`unknown blob kind ${kind}`);
    at += length;
  }
  if (at !== bytes.length) bad('trailing bytes');
  const used = new Uint8Array(count);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    bad('header is not UTF-8 JSON');
  }
  return revive(header, blobs, used, bad);
}

/** Deepest nesting a header may have (messages nest a few levels; deeper would exhaust the stack). */
const MAX_DEPTH = 32;

function revive(value: unknown, blobs: Blob[], used: Uint8Array, bad: (why: string) => never, depth = 0): unknown {
  if (depth > MAX_DEPTH) bad(`header nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) return value.map((v) => revive(v, blobs, used, bad, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 1 && entries[0]![0] === '$blob') {
    const i = entries[0]![1];
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= blobs.length) bad('blob reference out of range');
    if (used[i as number]) bad('blob referenced twice');
    used[i as number] = 1;
    return blobs[i as number];
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    if (k === '__proto__') bad('header key __proto__');
    out[k] = revive(v, blobs, used, bad, depth + 1);
  }
  return out;
}
