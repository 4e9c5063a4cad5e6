/**
 * Function-key requests from the server to the key authority: a versioned message, its canonical
 * bytes, and an HMAC-SHA256 tag under a per-server session key that the authority issues when the
 * server registers. A request altered in transit (a vector, the setup id, the sequence number) no
 * longer verifies and is refused whole; a replayed one has a stale sequence number.
 *
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { FormatError } from '../../errors.js';

/**
 * What a function key is for; each setup has one purpose. A 'patches' setup (images for a
 * convolutional first layer) answers two kinds of request: 'patches' (kernels, expanded by the
 * authority to every output position) and 'patch-gradients' (error maps, expanded to every
 * kernel offset).
 */
export type KeyPurpose = 'rows' | 'columns' | 'labels' | 'patches' | 'patch-gradients';

/** A function-key request. */
export interface KeyRequest {
  readonly version: 1;
  readonly serverId: string;
  /** Strictly increasing per server. */
  readonly seq: number;
  readonly setupId: string;
  readonly purpose: KeyPurpose;
  readonly vectors: readonly Int32Array[];
  /** Hex HMAC-SHA256 of {@link canonicalRequestBytes} under the server's session key. */
  readonly mac: string;
}

/** A server's credentials with the authority. */
export interface ServerSession {
  readonly serverId: string;
  readonly macKey: Uint8Array;
}

const PURPOSES: readonly KeyPurpose[] = ['rows', 'columns', 'labels', 'patches', 'patch-gradients'];

/** The bytes the MAC covers: every field but the MAC, length-prefixed. */
export function canonicalRequestBytes(r: Omit<KeyRequest, 'mac'>): Uint8Array {
  const enc = new TextEncoder();
  const head = enc.encode(`blindml-fe-keyreq|v${r.version}|${r.serverId}|${r.seq}|${r.setupId}|${r.purpose}|${r.vectors.length}|`);
  let total = head.length;
  for (const v of r.vectors) total += 4 + 4 * v.length;
  const out = new Uint8Array(total);
  out.set(head, 0);
  const view = new DataView(out.buffer);
  let at = head.length;
  for (const v of r.vectors) {
    view.setUint32(at, v.length, true);
    at += 4;
    for (let i = 0; i < v.length; i++, at += 4) view.setInt32(at, v[i] ?? 0, true);
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Builds and authenticates a request (the server side). */
export function signKeyRequest(
  session: ServerSession,
  seq: number,
  setupId: string,
  purpose: KeyPurpose,
  vectors: readonly Int32Array[],
): KeyRequest {
  const body = { version: 1 as const, serverId: session.serverId, seq, setupId, purpose, vectors };
  return { ...body, mac: hex(hmac(sha256, session.macKey, canonicalRequestBytes(body))) };
}

/** Constant-time comparison of two hex strings of equal length. */
function equalHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Checks a request's shape and MAC (the authority side).
 *
 * @throws {FormatError} if a field is missing or of the wrong type, or the MAC does not verify.
 */
export function verifyKeyRequest(request: unknown, session: ServerSession): KeyRequest {
  if (typeof request !== 'object' || request === null) throw new FormatError('key request must be an object');
  const r = request as Record<string, unknown>;
  if (r['version'] !== 1) throw new FormatError(`unsupported key request version ${String(r['version'])}`);
  if (r['serverId'] !== session.serverId) throw new FormatError('key request is from an unknown server');
  if (!Number.isSafeInteger(r['seq'])) throw new FormatError('key request seq must be an integer');
  if (typeof r['setupId'] !== 'string') throw new FormatError('key request setupId must be a string');
  if (!PURPOSES.includes(r['purpose'] as KeyPurpose)) throw new FormatError(`unknown key purpose ${String(r['purpose'])}`);
  const vectors = r['vectors'];
  if (!Array.isArray(vectors) || !vectors.every((v) => v instanceof Int32Array)) {
    throw new FormatError('key request vectors must be Int32Arrays');
  }
  if (typeof r['mac'] !== 'string') throw new FormatError('key request mac must be a string');
  const typed = request as KeyRequest;
  const expected = hex(hmac(sha256, session.macKey, canonicalRequestBytes(typed)));
  if (!equalHex(expected, typed.mac)) throw new FormatError('key request MAC does not verify (tampered or wrong session)');
  return typed;
}
