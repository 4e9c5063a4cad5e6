/**
 * blindml's envelope around SEAL's serialization: SEAL checks that an object fits the parameters,
 * but not which key made it, so a ciphertext under another client's key would load and decrypt
 * to noise. The envelope carries the parameter fingerprint and the key id, and both are checked
 * before SEAL sees the bytes.
 *
 * Layout: `BMCK` | version u8 (1) | kind u8 | fingerprint length u8 | fingerprint (ASCII) |
 * key id (16 bytes) | SEAL bytes.
 *
 * @module
 */
import { FormatError, KeyMismatchError } from '../../errors.js';

/** What an envelope holds. */
export const EnvelopeKind = { ciphertext: 1, publicKey: 2, relinKeys: 3, galoisKeys: 4 } as const;
/** One of {@link EnvelopeKind}'s values. */
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind];

const MAGIC = [0x42, 0x4d, 0x43, 0x4b];
const VERSION = 1;
/** Length of a key id in bytes. */
export const KEY_ID_BYTES = 16;

/** An opened envelope. */
export interface Envelope {
  readonly kind: EnvelopeKind;
  readonly fingerprint: string;
  readonly keyId: string;
  readonly body: Uint8Array;
}

/** Hex form of a key id. */
export function keyIdHex(id: Uint8Array): string {
  return Array.from(id, (b) => b.toString(16).padStart(2, '0')).join('');
}

function keyIdBytes(hex: string): Uint8Array {
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new RangeError('a key id is 32 hex digits');
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** Wraps SEAL bytes. */
export function sealEnvelope(kind: EnvelopeKind, fingerprint: string, keyId: string, body: Uint8Array): Uint8Array {
  const fp = new TextEncoder().encode(fingerprint);
  if (fp.length > 255) throw new RangeError('fingerprint too long');
  const out = new Uint8Array(4 + 3 + fp.length + KEY_ID_BYTES + body.length);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  out[5] = kind;
  out[6] = fp.length;
  out.set(fp, 7);
  out.set(keyIdBytes(keyId), 7 + fp.length);
  out.set(body, 7 + fp.length + KEY_ID_BYTES);
  return out;
}

/**
 * Opens an envelope and checks it is the expected kind, for the expected parameters and key.
 *
 * @throws FormatError when the bytes are not an envelope of this version and kind, or are cut short.
 * @throws KeyMismatchError when the parameters or the key id differ from the expected ones.
 */
export function openEnvelope(bytes: Uint8Array, expect: { kind: EnvelopeKind; fingerprint: string; keyId?: string }): Envelope {
  if (!(bytes instanceof Uint8Array) || bytes.length < 7 + KEY_ID_BYTES) throw new FormatError('CKKS object: too short to be a blindml envelope');
  if (MAGIC.some((m, i) => bytes[i] !== m)) throw new FormatError('CKKS object: not a blindml CKKS envelope (bad magic)');
  if (bytes[4] !== VERSION) throw new FormatError(`CKKS object: envelope version ${bytes[4]} (this blindml reads ${VERSION})`);
  if (bytes[5] !== expect.kind) throw new FormatError(`CKKS object: kind ${bytes[5]}, expected ${expect.kind}`);
  const fpLength = bytes[6] ?? 0;
  const bodyStart = 7 + fpLength + KEY_ID_BYTES;
  if (bytes.length <= bodyStart) throw new FormatError('CKKS object: truncated envelope');
  const fingerprint = new TextDecoder().decode(bytes.subarray(7, 7 + fpLength));
  if (fingerprint !== expect.fingerprint) throw new KeyMismatchError(`CKKS object made for parameters ${fingerprint}, expected ${expect.fingerprint}`);
  const keyId = keyIdHex(bytes.subarray(7 + fpLength, bodyStart));
  if (expect.keyId !== undefined && keyId !== expect.keyId) throw new KeyMismatchError('CKKS object made under another key');
  return { kind: expect.kind, fingerprint, keyId, body: bytes.subarray(bodyStart) };
}

/**
 * Checks SEAL's own 16-byte serialization header (magic 0xA15E, total size) before SEAL parses
 * the bytes: a truncated object makes SEAL's WebAssembly build abort instead of throwing.
 *
 * @throws FormatError when the header is missing, foreign, or its size disagrees with the bytes.
 */
export function checkSealHeader(body: Uint8Array, what: string): void {
  if (body.length < 16) throw new FormatError(`CKKS ${what}: truncated (no SEAL header)`);
  if (body[0] !== 0x5e || body[1] !== 0xa1) throw new FormatError(`CKKS ${what}: not a SEAL object (bad magic)`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const size = view.getBigUint64(8, true);
  if (size !== BigInt(body.length)) throw new FormatError(`CKKS ${what}: ${body.length} bytes, the SEAL header says ${size} (truncated or padded)`);
}
