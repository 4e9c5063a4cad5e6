/**
 * Byte and JSON forms of the objects that travel: master public keys, ciphertexts and function
 * keys. Layout (little-endian):
 *
 * | bytes | field |
 * |---|---|
 * | 4 | magic `BMFE` |
 * | 1 | format version (1) |
 * | 1 | kind: 1 mpk, 2 ciphertext, 3 function key |
 * | 16 | setup id |
 * | 4 | vector length l |
 * | ... | mpk: l × 32-byte ristretto255 encodings; ciphertext: (l+1) × 32; key: l × int32 then the 32-byte scalar |
 *
 * Decoding checks everything it can: sizes, canonical point encodings, scalar range, coefficient
 * range. It cannot detect a ciphertext replaced by another valid one: FE ciphertexts are malleable
 * and carry no authentication (authenticate the transport if that matters).
 *
 * @module
 */
import { FormatError } from '../../errors.js';
import { decodeIntoAffineWords, encodeAffineWords, GROUP_ORDER, POINT_ENCODED_BYTES } from './curve/group.js';
import { MAX_KEY_COEFFICIENT, MAX_LENGTH } from './engine.js';
import { AFFINE_WORDS } from './curve/group.js';
import type { Ciphertext, FunctionKey, MasterPublicKey } from './keys.js';

const MAGIC = [0x42, 0x4d, 0x46, 0x45];
const VERSION = 1;
const HEADER = 4 + 1 + 1 + 16 + 4;
const KIND = { mpk: 1, ciphertext: 2, key: 3 } as const;
type Kind = keyof typeof KIND;

function header(kind: Kind, setupId: string, length: number, payload: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(HEADER + payload);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes[4] = VERSION;
  bytes[5] = KIND[kind];
  for (let i = 0; i < 16; i++) bytes[6 + i] = Number.parseInt(setupId.slice(2 * i, 2 * i + 2), 16);
  view.setUint32(22, length, true);
  return { bytes, view };
}

function parseHeader(bytes: Uint8Array, kind: Kind, payloadFor: (length: number) => number) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('expected a Uint8Array');
  if (bytes.length < HEADER) throw new FormatError(`truncated FE ${kind}: ${bytes.length} bytes`);
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) throw new FormatError('not a blindml FE object (bad magic)');
  if (bytes[4] !== VERSION) throw new FormatError(`unsupported FE format version ${bytes[4]}`);
  if (bytes[5] !== KIND[kind]) throw new FormatError(`expected an FE ${kind}, got kind ${bytes[5]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(22, true);
  if (length < 1 || length > MAX_LENGTH) throw new FormatError(`FE ${kind} has invalid length ${length}`);
  const expected = HEADER + payloadFor(length);
  if (bytes.length !== expected) {
    throw new FormatError(`FE ${kind} has ${bytes.length} bytes, expected ${expected} (truncated or padded)`);
  }
  const setupId = Array.from(bytes.subarray(6, 22), (b) => b.toString(16).padStart(2, '0')).join('');
  return { view, length, setupId };
}

function assertSetupId(id: string): void {
  if (!/^[0-9a-f]{32}$/.test(id)) throw new FormatError(`invalid setup id ${JSON.stringify(id)}`);
}

/** Encodes a master public key. */
export function encodeMasterPublicKey(mpk: MasterPublicKey): Uint8Array {
  assertSetupId(mpk.setupId);
  const { bytes } = header('mpk', mpk.setupId, mpk.length, mpk.length * POINT_ENCODED_BYTES);
  for (let i = 0; i < mpk.length; i++) bytes.set(encodeAffineWords(mpk.h, i), HEADER + i * POINT_ENCODED_BYTES);
  return bytes;
}

/**
 * Decodes a master public key.
 *
 * @throws {FormatError} if the bytes are truncated, padded, of another kind, or hold an invalid point.
 */
export function decodeMasterPublicKey(bytes: Uint8Array): MasterPublicKey {
  const { length, setupId } = parseHeader(bytes, 'mpk', (l) => l * POINT_ENCODED_BYTES);
  const h = new Int32Array(length * AFFINE_WORDS);
  for (let i = 0; i < length; i++) {
    const at = HEADER + i * POINT_ENCODED_BYTES;
    decodeIntoAffineWords(bytes.subarray(at, at + POINT_ENCODED_BYTES), h, i, `mpk point ${i}`);
  }
  return { kind: 'fe-master-public-key', setupId, length, h };
}

/** Encodes a ciphertext. */
export function encodeCiphertext(ct: Ciphertext): Uint8Array {
  assertSetupId(ct.setupId);
  const { bytes } = header('ciphertext', ct.setupId, ct.length, (ct.length + 1) * POINT_ENCODED_BYTES);
  for (let i = 0; i <= ct.length; i++) bytes.set(encodeAffineWords(ct.points, i), HEADER + i * POINT_ENCODED_BYTES);
  return bytes;
}

/**
 * Decodes a ciphertext.
 *
 * @throws {FormatError} if the bytes are truncated, padded, of another kind, or hold an invalid point.
 */
export function decodeCiphertext(bytes: Uint8Array): Ciphertext {
  const { length, setupId } = parseHeader(bytes, 'ciphertext', (l) => (l + 1) * POINT_ENCODED_BYTES);
  const points = new Int32Array((length + 1) * AFFINE_WORDS);
  for (let i = 0; i <= length; i++) {
    const at = HEADER + i * POINT_ENCODED_BYTES;
    decodeIntoAffineWords(bytes.subarray(at, at + POINT_ENCODED_BYTES), points, i, `ciphertext point ${i}`);
  }
  return { kind: 'fe-ciphertext', setupId, length, points };
}

/** Encodes a function key (its vector and scalar). */
export function encodeFunctionKey(key: FunctionKey): Uint8Array {
  assertSetupId(key.setupId);
  const l = key.y.length;
  const { bytes, view } = header('key', key.setupId, l, 4 * l + 32);
  for (let i = 0; i < l; i++) view.setInt32(HEADER + 4 * i, key.y[i] ?? 0, true);
  let sk = key.sk;
  for (let i = 0; i < 32; i++) {
    bytes[HEADER + 4 * l + i] = Number(sk & 0xffn);
    sk >>= 8n;
  }
  return bytes;
}

/**
 * Decodes a function key.
 *
 * @throws {FormatError} if the bytes are truncated, padded, of another kind, a coefficient is out
 * of range or the scalar is not below the group order.
 */
export function decodeFunctionKey(bytes: Uint8Array): FunctionKey {
  const { view, length, setupId } = parseHeader(bytes, 'key', (l) => 4 * l + 32);
  const y = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const c = view.getInt32(HEADER + 4 * i, true);
    if (Math.abs(c) > MAX_KEY_COEFFICIENT) throw new FormatError(`function key coefficient ${i} = ${c} is out of range`);
    y[i] = c;
  }
  let sk = 0n;
  for (let i = 31; i >= 0; i--) sk = (sk << 8n) | BigInt(bytes[HEADER + 4 * length + i] ?? 0);
  if (sk >= GROUP_ORDER) throw new FormatError('function key scalar is not below the group order');
  return { kind: 'fe-function-key', setupId, y, sk };
}

/** JSON form of any of the three objects: the bytes in base64 with a label. */
export interface FeJson {
  readonly format: 'blindml-fe';
  readonly version: 1;
  readonly kind: 'mpk' | 'ciphertext' | 'key';
  readonly data: string;
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  let raw: string;
  try {
    raw = atob(text);
  } catch (cause) {
    throw new FormatError('invalid base64 in FE JSON', { cause });
  }
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

/** Wraps encoded bytes as JSON. */
export function toFeJson(kind: FeJson['kind'], bytes: Uint8Array): FeJson {
  return { format: 'blindml-fe', version: 1, kind, data: toBase64(bytes) };
}

/**
 * Unwraps JSON made by {@link toFeJson} into bytes of the expected kind.
 *
 * @throws {FormatError} if the value is not such an object.
 */
export function fromFeJson(value: unknown, kind: FeJson['kind']): Uint8Array {
  if (typeof value !== 'object' || value === null) throw new FormatError('FE JSON must be an object');
  const v = value as Record<string, unknown>;
  if (v['format'] !== 'blindml-fe' || v['version'] !== 1) throw new FormatError('not a blindml-fe JSON object (format/version)');
  if (v['kind'] !== kind) throw new FormatError(`expected FE JSON of kind ${kind}, got ${String(v['kind'])}`);
  if (typeof v['data'] !== 'string') throw new FormatError('FE JSON data must be a base64 string');
  return fromBase64(v['data']);
}
