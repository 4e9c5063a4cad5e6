/**
 * The ristretto255 group as the functional-encryption scheme uses it: the group order, uniformly
 * random scalars from `globalThis.crypto.getRandomValues`, and conversions between noble-curves
 * points (used for encoding, decoding and as the reference in tests) and the kernel's limb arrays.
 *
 * Security level: ristretto255 has prime order ℓ ≈ 2^252; the best known attack on discrete
 * logarithms (and so on DDH) is Pollard's rho at about √(πℓ/4) ≈ 2^126 group operations, so the
 * scheme offers about 126-bit security (RFC 9496 rates the group at the 128-bit level).
 *
 * @module
 */
import { ristretto255 } from '@noble/curves/ed25519.js';
import { FormatError } from '../../../errors.js';
import { AFFINE_BYTES, type Kernel, limbsOf, valueOf } from './kernel.js';

/** A ristretto255 group element as noble-curves represents it. */
export type RistrettoPoint = InstanceType<typeof ristretto255.Point>;

/** The prime order ℓ = 2^252 + 27742317777372353535851937790883648493 of ristretto255. */
export const GROUP_ORDER: bigint = ristretto255.Point.Fn.ORDER;

/** Bytes of one encoded group element. */
export const POINT_ENCODED_BYTES = 32;

/** The generator g used by the scheme (the ristretto255 base point). */
export const GENERATOR: RistrettoPoint = ristretto255.Point.BASE;

/** Reduces any bigint into [0, ℓ). */
export function modOrder(v: bigint): bigint {
  const r = v % GROUP_ORDER;
  return r < 0n ? r + GROUP_ORDER : r;
}

/**
 * A uniformly random scalar in [1, ℓ): 64 random bytes reduced mod ℓ (bias below 2^-250).
 * Randomness comes only from `globalThis.crypto.getRandomValues`.
 */
export function randomScalar(): bigint {
  for (;;) {
    const bytes = new Uint8Array(64);
    globalThis.crypto.getRandomValues(bytes);
    let v = 0n;
    for (const b of bytes) v = (v << 8n) | BigInt(b);
    const s = v % GROUP_ORDER;
    if (s !== 0n) return s;
  }
}

/** Affine points packed as 20 Int32 limbs each (x then y), the in-memory form of vectors of points. */
export const AFFINE_WORDS = AFFINE_BYTES / 4;

/** Writes a noble point's affine coordinates (of its internal representative) into `out`. */
export function affineWordsOf(point: RistrettoPoint, out: Int32Array, index: number): void {
  const { x, y } = point.toAffine();
  out.set(limbsOf(x), index * AFFINE_WORDS);
  out.set(limbsOf(y), index * AFFINE_WORDS + 10);
}

/** The noble point whose internal representative has the affine coordinates stored at `index`. */
export function pointFromAffineWords(words: Int32Array, index: number): RistrettoPoint {
  const base = index * AFFINE_WORDS;
  const x = valueOf(words.subarray(base, base + 10));
  const y = valueOf(words.subarray(base + 10, base + 20));
  return ristretto255.Point.fromAffine({ x, y });
}

/** Canonical 32-byte ristretto255 encoding of the point stored at `index`. */
export function encodeAffineWords(words: Int32Array, index: number): Uint8Array {
  return pointFromAffineWords(words, index).toBytes();
}

/**
 * Decodes a 32-byte ristretto255 encoding into `out` at `index`.
 *
 * @throws {FormatError} if the bytes are not a canonical encoding of a group element.
 */
export function decodeIntoAffineWords(bytes: Uint8Array, out: Int32Array, index: number, label: string): void {
  let point: RistrettoPoint;
  try {
    point = ristretto255.Point.fromBytes(bytes);
  } catch (cause) {
    throw new FormatError(`${label} is not a valid ristretto255 encoding`, { cause });
  }
  affineWordsOf(point, out, index);
}

/** Writes a noble point into kernel memory in extended form. */
export function writeExtended(kernel: Kernel, addr: number, point: RistrettoPoint): void {
  const { x, y } = point.toAffine();
  kernel.writeFe(addr, x);
  kernel.writeFe(addr + 40, y);
  kernel.writeFe(addr + 80, 1n);
  kernel.writeFe(addr + 120, x * y);
}

/** Reads an extended point from kernel memory as a noble point. */
export function readExtended(kernel: Kernel, addr: number): RistrettoPoint {
  const X = kernel.readFe(addr);
  const Y = kernel.readFe(addr + 40);
  const Z = kernel.readFe(addr + 80);
  const zi = invertField(Z);
  return ristretto255.Point.fromAffine({ x: fieldMod(X * zi), y: fieldMod(Y * zi) });
}

const FIELD_P = (1n << 255n) - 19n;
function fieldMod(v: bigint): bigint {
  const r = v % FIELD_P;
  return r < 0n ? r + FIELD_P : r;
}
function invertField(v: bigint): bigint {
  let result = 1n;
  let base = fieldMod(v);
  let e = FIELD_P - 2n;
  while (e > 0n) {
    if (e & 1n) result = (result * base) % FIELD_P;
    base = (base * base) % FIELD_P;
    e >>= 1n;
  }
  return result;
}

/** Loads affine points (20 words each) into kernel memory at `addr` in Niels form (120 bytes each). */
export function loadNiels(kernel: Kernel, addr: number, words: Int32Array, count: number): void {
  const m = kernel.mark();
  const tmp = kernel.alloc(AFFINE_BYTES);
  const base = tmp >> 2;
  for (let i = 0; i < count; i++) {
    kernel.i32.set(words.subarray(i * AFFINE_WORDS, (i + 1) * AFFINE_WORDS), base);
    kernel.affineToNiels(addr + 120 * i, tmp);
  }
  kernel.release(m);
}
