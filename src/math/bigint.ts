/**
 * Conversions between bigints, bytes and text, without Node's Buffer (browser-safe).
 *
 * @module
 */

/** Number of bits in |x| (0 for 0). */
export function bitLength(x: bigint): number {
  if (x < 0n) x = -x;
  if (x === 0n) return 0;
  return x.toString(2).length;
}

/** Absolute value. */
export function abs(x: bigint): bigint {
  return x < 0n ? -x : x;
}

/** Big-endian unsigned bytes to bigint. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return BigInt('0x' + hex);
}

/**
 * Non-negative bigint to big-endian bytes; `length` left-pads with zeros.
 *
 * @throws RangeError for a negative value or one that does not fit in `length` bytes.
 */
export function bigIntToBytes(x: bigint, length?: number): Uint8Array {
  if (x < 0n) throw new RangeError('bigIntToBytes: value must be non-negative');
  let hex = x.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  if (x === 0n) hex = '';
  const size = length ?? hex.length / 2;
  if (hex.length / 2 > size) throw new RangeError(`bigIntToBytes: value does not fit in ${size} bytes`);
  const out = new Uint8Array(size);
  const pad = size - hex.length / 2;
  for (let i = 0; i < hex.length / 2; i++) out[pad + i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Bytes to unpadded base64url. */
export function bytesToBase64Url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64URL[v >> 18]! + B64URL[(v >> 12) & 63]! + B64URL[(v >> 6) & 63]! + B64URL[v & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const v = bytes[i]! << 16;
    out += B64URL[v >> 18]! + B64URL[(v >> 12) & 63]!;
  } else if (rest === 2) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64URL[v >> 18]! + B64URL[(v >> 12) & 63]! + B64URL[(v >> 6) & 63]!;
  }
  return out;
}

/**
 * Base64url (padding and standard-alphabet `+/` tolerated, as python's urlsafe decoder does
 * after python-paillier pads it) to bytes.
 *
 * @throws RangeError on a character outside the alphabet or an impossible length.
 */
export function base64UrlToBytes(text: string): Uint8Array {
  const clean = text.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  if (clean.length % 4 === 1) throw new RangeError('base64url: impossible length');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let pos = 0;
  for (const ch of clean) {
    const v = B64URL.indexOf(ch);
    if (v < 0) throw new RangeError(`base64url: invalid character ${JSON.stringify(ch)}`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[pos++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** python-paillier's `int_to_base64`: big-endian bytes, unpadded base64url. */
export function bigIntToBase64Url(x: bigint): string {
  return bytesToBase64Url(bigIntToBytes(x));
}

/** python-paillier's `base64_to_int`. @throws RangeError on malformed text. */
export function base64UrlToBigInt(text: string): bigint {
  return bytesToBigInt(base64UrlToBytes(text));
}
