/**
 * How the cross terms of a product of shared values travel. For shares a = a1 + a2, b = b1 + b2
 * (service: a1, b1; crypto server: a2, b2), a·b = a1·b1 + a2·b2 + (a2·b1 + a1·b2): the first two
 * terms are local, the cross term is computed by the service under the training key from the
 * crypto server's encrypted shares, raised to the service's own shares, masked with a fresh ρ and
 * re-randomized before it goes back. The crypto server decrypts a2·b1 + a1·b2 + ρ; the service
 * keeps −ρ.
 *
 * Everything is packed: the crypto server's 64-bit shares go {@link CROSS_SLOT_BITS} bits apart, so
 * one exponentiation by a scalar share multiplies a whole row or column, and the results are
 * packed (Horner) before decryption. This module fixes the layouts both sides derive from the
 * shapes alone.
 *
 * @module
 */
import { FormatError } from '../../errors.js';

/** Bits between packed values: a 128-bit product, the sum of up to 2^9 of them, ρ's 40 extra bits. */
export const CROSS_SLOT_BITS = 180;
/** Statistical hiding of the masks ρ: the crypto server's view is within 2^-40 of uniform. */
export const STAT_BITS = 40;
const SLOT_MASK = (1n << BigInt(CROSS_SLOT_BITS)) - 1n;

/** Values per packed plaintext for a modulus of `modulusBits` bits. */
export function crossSlots(modulusBits: number): number {
  return Math.floor((modulusBits - 2) / CROSS_SLOT_BITS);
}

/** Bits of ρ for a sum of `terms` products of two 64-bit values (plus one more such sum). */
export function rhoBits(terms: number): number {
  return 129 + Math.ceil(Math.log2(Math.max(terms, 1))) + STAT_BITS;
}

/** A contiguous range of indices. */
export interface Chunk {
  readonly start: number;
  readonly len: number;
}

/** [0, count) in chunks of at most `size`. */
export function chunks(count: number, size: number): Chunk[] {
  const out: Chunk[] = [];
  for (let s = 0; s < count; s += size) out.push({ start: s, len: Math.min(size, count - s) });
  return out;
}

/** A run of results with the same number of used slots, packed `perCiphertext` at a time. */
export interface PackRun {
  readonly used: number;
  readonly perCiphertext: number;
  readonly from: number;
  readonly to: number;
}

/** Where every slot of every ciphertext the crypto server decrypts goes. */
export interface CrossPlan {
  /** Output positions (row-major flat indices) per result before packing, slot by slot. */
  readonly items: number[][];
  readonly runs: PackRun[];
  /** Output positions per packed ciphertext, slot by slot. */
  readonly finals: number[][];
  readonly rhoBits: number;
}

function finish(items: number[][], slots: number, rho: number): CrossPlan {
  const runs: PackRun[] = [];
  for (let i = 0; i < items.length; ) {
    const used = items[i]!.length;
    let j = i;
    while (j < items.length && items[j]!.length === used) j++;
    runs.push({ used, perCiphertext: Math.max(1, Math.floor(slots / used)), from: i, to: j });
    i = j;
  }
  const finals: number[][] = [];
  for (const run of runs) {
    for (let s = run.from; s < run.to; s += run.perCiphertext) {
      finals.push(items.slice(s, Math.min(run.to, s + run.perCiphertext)).flat());
    }
  }
  return { items, runs, finals, rhoBits: rho };
}

/**
 * Layout of a product (m×k)·(k×n). The crypto server sends, for each chunk of rows, column l of
 * its share of A packed over the rows (k ciphertexts per chunk), then for each chunk of columns,
 * row l of its share of B packed over the columns. Term A2·B1: for each row chunk and column c,
 * one multi-exponentiation over the k ciphertexts with B1[·][c]. Term A1·B2: for each column
 * chunk and row r, one over A1[r][·].
 */
export function planMatmul(m: number, k: number, n: number, slots: number): CrossPlan & { rowChunks: Chunk[]; colChunks: Chunk[] } {
  const rowChunks = chunks(m, slots);
  const colChunks = chunks(n, slots);
  const items: number[][] = [];
  for (const rc of rowChunks) for (let c = 0; c < n; c++) items.push(Array.from({ length: rc.len }, (_, j) => (rc.start + j) * n + c));
  for (const cc of colChunks) for (let r = 0; r < m; r++) items.push(Array.from({ length: cc.len }, (_, j) => r * n + cc.start + j));
  return { ...finish(items, slots, rhoBits(k)), rowChunks, colChunks };
}

/** Layout of an element-wise product of `count` values: one ciphertext per value, packed `slots` at a time. */
export function planMul(count: number, slots: number): CrossPlan {
  return finish(Array.from({ length: count }, (_, i) => [i]), slots, rhoBits(2));
}

/** Σ values[j]·2^(CROSS_SLOT_BITS·j) for non-negative values below 2^CROSS_SLOT_BITS. */
export function packSlots(values: readonly bigint[]): bigint {
  let acc = 0n;
  for (let j = values.length - 1; j >= 0; j--) acc = (acc << BigInt(CROSS_SLOT_BITS)) | values[j]!;
  return acc;
}

/**
 * The `count` slots of a packed plaintext.
 *
 * @throws FormatError if bits remain above the last slot (a malformed or foreign ciphertext).
 */
export function unpackSlots(plain: bigint, count: number): bigint[] {
  const out = new Array<bigint>(count);
  let rest = plain;
  for (let j = 0; j < count; j++) {
    out[j] = rest & SLOT_MASK;
    rest >>= BigInt(CROSS_SLOT_BITS);
  }
  if (rest !== 0n) throw new FormatError('cross-term ciphertext holds more than its slots (wrong layout or key)');
  return out;
}
