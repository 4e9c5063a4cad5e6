/**
 * Wire encoding for the multi-key protocol: bigints as unpadded base64url of their big-endian bytes
 * (ciphertexts are the bulk of the traffic; base64 is 2/3 the size of hex), messages as JSON.
 *
 * @module
 */
import { FormatError } from '../../errors.js';

/** A non-negative bigint as base64url. @throws RangeError for a negative value. */
export function bigToB64(v: bigint): string {
  if (v < 0n) throw new RangeError('bigToB64: negative value');
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bin = '';
  for (let i = 0; i < hex.length; i += 2) bin += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The bigint of a base64url string. @throws FormatError if it is not base64url. */
export function b64ToBig(s: string): bigint {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length === 0) throw new FormatError('expected a base64url integer');
  let bin: string;
  try {
    bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  } catch (err) {
    throw new FormatError('expected a base64url integer', { cause: err });
  }
  let hex = '';
  for (let i = 0; i < bin.length; i++) hex += bin.charCodeAt(i).toString(16).padStart(2, '0');
  return hex === '' ? 0n : BigInt(`0x${hex}`);
}

/** Bytes as base64url. */
export function bytesToB64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]!);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** base64url as bytes. @throws FormatError if it is not base64url. */
export function b64ToBytes(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new FormatError('expected base64url bytes');
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** JSON text of a message. */
export function encodeMessage(msg: unknown): string {
  return JSON.stringify(msg);
}

/** Parses JSON text. @throws FormatError if it is not JSON. */
export function decodeMessage(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new FormatError('message is not JSON', { cause: err });
  }
}
