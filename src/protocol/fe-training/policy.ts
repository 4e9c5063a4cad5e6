/**
 * The key authority's policy for function-key requests: which vectors it refuses even when the
 * request is well formed. Pure bookkeeping (no cryptography), so the plaintext twin of a training
 * run can replay the same decisions on the same vectors.
 *
 * Refused, per setup:
 * - vectors with fewer than `minSupport` nonzero entries (unit vectors reveal one coordinate of
 *   every sample: <x, e_i> = x_i);
 * - near-duplicates: a vector that differs from an earlier one (or from its negation) in fewer
 *   than `minDifferenceSupport` coordinates, because the difference of the two answers is the
 *   answer for a sparse vector (a differencing attack that rebuilds a unit vector);
 * - with `rankLimit: 'below-full'`, a vector that would make the issued vectors span the whole
 *   space: then every encrypted vector under that setup can be solved for exactly.
 *   The rank is tracked modulo the prime 33554393, a lower bound on the rank over the rationals
 *   that is equal to it except with probability about length/2^25 per vector.
 *
 * Why this is only a partial defence: the server still learns every inner product it asked for,
 * and far fewer than `length` generic products already leak a lot (published attacks reconstruct
 * inputs from many such products; see docs/security.md). Scaled copies (2·y plus a sparse vector)
 * and sparse differences spread over several earlier vectors are not detected.
 *
 * @module
 */

/** Configuration of {@link KeyRequestPolicy}. */
export interface KeyPolicyOptions {
  /** Refuse vectors with fewer nonzero entries than this. Default 8. */
  readonly minSupport?: number;
  /** Refuse vectors within this many differing coordinates of an earlier one. Default 8. */
  readonly minDifferenceSupport?: number;
  /** 'below-full' (default) refuses a vector that would complete the rank; 'off' does not track it. */
  readonly rankLimit?: 'below-full' | 'off';
}

/** A policy decision. */
export type PolicyDecision = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const RANK_PRIME = 33554393; // 2^25 − 39

function modMul(a: number, b: number): number {
  return (a * b) % RANK_PRIME;
}

function modInv(a: number): number {
  let [r0, r1] = [a, RANK_PRIME];
  let [s0, s1] = [1, 0];
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % RANK_PRIME) + RANK_PRIME) % RANK_PRIME;
}

/** Per-setup history: issued vectors, band index for near-duplicates, echelon basis for rank. */
class SetupHistory {
  readonly vectors: Int32Array[] = [];
  readonly bands = new Map<string, number[]>();
  readonly basis: { pivot: number; row: Float64Array }[] = [];
  constructor(readonly length: number) {}
}

/** Tracks issued vectors per setup and decides on new ones. */
export class KeyRequestPolicy {
  readonly minSupport: number;
  readonly minDifferenceSupport: number;
  readonly rankLimit: 'below-full' | 'off';
  private readonly setups = new Map<string, SetupHistory>();

  constructor(options: KeyPolicyOptions = {}) {
    this.minSupport = options.minSupport ?? 8;
    this.minDifferenceSupport = options.minDifferenceSupport ?? 8;
    this.rankLimit = options.rankLimit ?? 'below-full';
  }

  private history(setupId: string, length: number): SetupHistory {
    let h = this.setups.get(setupId);
    if (h === undefined) {
      h = new SetupHistory(length);
      this.setups.set(setupId, h);
    }
    return h;
  }

  /** Rank of the vectors issued so far under `setupId` (mod the tracking prime). */
  rank(setupId: string): number {
    return this.setups.get(setupId)?.basis.length ?? 0;
  }

  /**
   * Decides on `vector` for `setupId` and, if accepted, records it. The minimum support is capped
   * at the vector length (a length-10 setup cannot require 16 nonzeros).
   */
  consider(setupId: string, vector: Int32Array): PolicyDecision {
    const h = this.history(setupId, vector.length);
    const l = vector.length;
    let support = 0;
    for (let i = 0; i < l; i++) if (vector[i] !== 0) support++;
    const minSupport = Math.min(this.minSupport, Math.max(1, l - 1));
    if (support < minSupport) {
      return { ok: false, reason: `vector has ${support} nonzero entries (< ${minSupport}): too close to a unit vector` };
    }
    const k = Math.min(this.minDifferenceSupport, Math.max(1, l >> 1)) - 1; // refuse 1..k differences
    if (k >= 1) {
      const dup = this.nearDuplicate(h, vector, k);
      if (dup !== undefined) {
        return { ok: false, reason: `vector differs from earlier request #${dup} in at most ${k} coordinates (near-duplicate)` };
      }
    }
    let reduced: { pivot: number; row: Float64Array } | undefined;
    if (this.rankLimit === 'below-full') {
      reduced = reduce(h, vector);
      if (reduced !== undefined && h.basis.length + 1 >= l) {
        return { ok: false, reason: `the issued vectors would span all ${l} dimensions (every input could be solved for)` };
      }
    }
    this.record(h, vector, k);
    if (reduced !== undefined) h.basis.push(reduced);
    return { ok: true };
  }

  private bandKeys(vector: Int32Array, k: number, sign: 1 | -1): string[] {
    const l = vector.length;
    const bands = k + 1;
    const keys: string[] = [];
    for (let b = 0; b < bands; b++) {
      const from = Math.floor((b * l) / bands);
      const to = Math.floor(((b + 1) * l) / bands);
      let hash = 0x811c9dc5;
      for (let i = from; i < to; i++) {
        hash = Math.imul(hash ^ ((sign * (vector[i] ?? 0)) | 0), 0x01000193);
      }
      keys.push(`${b}:${hash >>> 0}`);
    }
    return keys;
  }

  private nearDuplicate(h: SetupHistory, vector: Int32Array, k: number): number | undefined {
    for (const sign of [1, -1] as const) {
      for (const key of this.bandKeys(vector, k, sign)) {
        for (const idx of h.bands.get(key) ?? []) {
          const other = h.vectors[idx];
          if (other === undefined) continue;
          let diff = 0;
          for (let i = 0; i < vector.length && diff <= k; i++) if ((vector[i] ?? 0) !== sign * (other[i] ?? 0)) diff++;
          if (diff >= 1 && diff <= k) return idx;
        }
      }
    }
    return undefined;
  }

  private record(h: SetupHistory, vector: Int32Array, k: number): void {
    const idx = h.vectors.length;
    h.vectors.push(vector.slice());
    for (const key of this.bandKeys(vector, Math.max(k, 0), 1)) {
      const list = h.bands.get(key);
      if (list === undefined) h.bands.set(key, [idx]);
      else list.push(idx);
    }
  }
}

/** Reduces `vector` against the echelon basis; returns the new basis row or undefined if dependent. */
function reduce(h: SetupHistory, vector: Int32Array): { pivot: number; row: Float64Array } | undefined {
  const l = vector.length;
  const row = new Float64Array(l);
  for (let i = 0; i < l; i++) row[i] = (((vector[i] ?? 0) % RANK_PRIME) + RANK_PRIME) % RANK_PRIME;
  for (const b of h.basis) {
    const f = row[b.pivot] ?? 0;
    if (f === 0) continue;
    for (let i = 0; i < l; i++) {
      const bi = b.row[i] ?? 0;
      if (bi !== 0) row[i] = ((row[i] ?? 0) - modMul(f, bi) + RANK_PRIME) % RANK_PRIME;
    }
  }
  let pivot = -1;
  for (let i = 0; i < l; i++) if (row[i] !== 0) { pivot = i; break; }
  if (pivot < 0) return undefined;
  const inv = modInv(row[pivot] ?? 1);
  for (let i = 0; i < l; i++) if (row[i] !== 0) row[i] = modMul(row[i] ?? 0, inv);
  // Later rows are reduced against earlier ones, so one pass in insertion order suffices.
  return { pivot, row };
}
