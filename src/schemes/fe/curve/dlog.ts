/**
 * Bounded discrete logarithms in ristretto255 by baby-step giant-step: given R = v·g with
 * |v| ≤ bound, find v. The baby-step table holds the points k·g for 0 ≤ k ≤ m (m sized from the
 * bound, capped by memory); a lookup answers ±k at once (a point and its negation share their y
 * coordinate), and values beyond ±m take giant steps of (2m+1)·g.
 *
 * Points are compared through a canonical key: the affine coordinates of 4·R. Multiplying by 4
 * removes the 4-torsion component that distinguishes the Edwards representatives of one
 * ristretto255 element, so equal group elements always give equal keys; the y coordinate is
 * compared in full (all limbs), so a match is exact — there are no false positives and a value
 * outside the bound is reported as an error, never returned.
 *
 * Timing: variable time; it reveals (roughly) the magnitude of the result. The result is what the
 * decrypting party is entitled to learn anyway.
 *
 * @module
 */
import { InnerProductOutOfBoundError } from '../errors.js';
import { AFFINE_BYTES, EXT_BYTES, type Kernel } from './kernel.js';
import { GENERATOR, writeExtended } from './group.js';

/** Default cap on the baby-step table: 2^20 entries (about 45 MB). */
export const DEFAULT_MAX_TABLE = 1 << 20;

/** Bounded discrete-log solver for one kernel. */
export class DlogSolver {
  /** The table covers |v| ≤ m without giant steps. */
  readonly m: number;
  private readonly yLimbs: Int32Array;
  private readonly xParity: Uint8Array;
  private readonly slots: Int32Array;
  private readonly shift: number;
  private readonly giant: number;
  private readonly giantCached: number;

  /**
   * Builds the table for results up to `bound` in magnitude (m = min(bound, maxTable)).
   * Cost: about m point additions and m/4096 inversions.
   */
  constructor(
    private readonly kernel: Kernel,
    bound: number,
    maxTable: number = DEFAULT_MAX_TABLE,
  ) {
    if (!Number.isSafeInteger(bound) || bound < 0) throw new RangeError(`bound must be a non-negative safe integer, got ${bound}`);
    this.m = Math.max(1, Math.min(bound, maxTable));
    const entries = this.m + 1;
    this.yLimbs = new Int32Array(entries * 10);
    this.xParity = new Uint8Array(entries);
    let bits = 1;
    while (1 << bits < 2 * entries) bits++;
    this.slots = new Int32Array(1 << bits);
    this.shift = 32 - bits;

    const k = kernel;
    this.giant = k.alloc(EXT_BYTES);
    this.giantCached = k.alloc(EXT_BYTES);
    const base4 = k.alloc(EXT_BYTES);
    const base4Cached = k.alloc(EXT_BYTES);
    writeExtended(k, base4, GENERATOR);
    k.dbl(base4, base4);
    k.dbl(base4, base4);
    k.toCached(base4Cached, base4);

    const mark = k.mark();
    const chunk = 4096;
    const ext = k.alloc(chunk * EXT_BYTES);
    const aff = k.alloc(chunk * AFFINE_BYTES);
    const cur = k.alloc(EXT_BYTES);
    k.setIdentity(cur);
    for (let start = 0; start < entries; start += chunk) {
      const n = Math.min(chunk, entries - start);
      for (let i = 0; i < n; i++) {
        k.copy(ext + i * EXT_BYTES, cur, EXT_BYTES);
        k.add(cur, cur, base4Cached);
      }
      k.toAffineBatch(aff, ext, n);
      for (let i = 0; i < n; i++) this.insert(start + i, aff + i * AFFINE_BYTES);
    }
    // giant step (2m+1)·4g = 2·(m+1)·4g − 4g; cur is now (m+1)·4g.
    k.dbl(this.giant, cur);
    k.sub(this.giant, this.giant, base4Cached);
    k.toCached(this.giantCached, this.giant);
    k.release(mark);
  }

  private hash(v: Int32Array, base: number): number {
    const h = Math.imul((v[base] ?? 0) ^ Math.imul(v[base + 1] ?? 0, 0x85ebca6b), 0x9e3779b1);
    return (h ^ (v[base + 2] ?? 0)) >>> this.shift;
  }

  private insert(index: number, affAddr: number): void {
    const k = this.kernel;
    k.fe_freeze(affAddr);
    k.fe_freeze(affAddr + 40);
    const v = k.i32;
    const yBase = (affAddr + 40) >> 2;
    this.yLimbs.set(v.subarray(yBase, yBase + 10), index * 10);
    this.xParity[index] = (v[affAddr >> 2] ?? 0) & 1;
    const mask = this.slots.length - 1;
    let s = this.hash(v, yBase) & mask;
    while (this.slots[s] !== 0) s = (s + 1) & mask;
    this.slots[s] = index + 1;
  }

  /** Looks up a frozen affine point; returns the signed k or undefined. */
  private lookup(affAddr: number): number | undefined {
    const v = this.kernel.i32;
    const yBase = (affAddr + 40) >> 2;
    const mask = this.slots.length - 1;
    let s = this.hash(v, yBase) & mask;
    for (;;) {
      const e = this.slots[s] ?? 0;
      if (e === 0) return undefined;
      const idx = e - 1;
      let same = true;
      for (let j = 0; j < 10; j++) {
        if (this.yLimbs[idx * 10 + j] !== v[yBase + j]) {
          same = false;
          break;
        }
      }
      if (same) {
        if (idx === 0) return 0;
        const parity = (v[affAddr >> 2] ?? 0) & 1;
        return parity === this.xParity[idx] ? idx : -idx;
      }
      s = (s + 1) & mask;
    }
  }

  /**
   * Solves `count` points (extended, stride 160 bytes, at `addr`) whose discrete logarithms lie in
   * ±bound; writes the results to `out[outOffset + i]`. The points are overwritten.
   *
   * @throws {InnerProductOutOfBoundError} if some point's logarithm is outside ±bound.
   */
  solveBatch(addr: number, count: number, bound: number, out: Float64Array | number[], outOffset = 0): void {
    const k = this.kernel;
    const mark = k.mark();
    const aff = k.alloc(count * AFFINE_BYTES);
    for (let i = 0; i < count; i++) {
      const p = addr + i * EXT_BYTES;
      k.dbl(p, p);
      k.dbl(p, p);
    }
    k.toAffineBatch(aff, addr, count);
    for (let i = 0; i < count; i++) {
      const a = aff + i * AFFINE_BYTES;
      k.fe_freeze(a);
      k.fe_freeze(a + 40);
      let v = this.lookup(a);
      if (v === undefined) v = this.giantSteps(addr + i * EXT_BYTES, bound);
      if (v === undefined || Math.abs(v) > bound) {
        k.release(mark);
        throw new InnerProductOutOfBoundError(bound);
      }
      out[outOffset + i] = v;
    }
    k.release(mark);
  }

  /** Giant steps for one point Q4 = 4R (extended) beyond the table. */
  private giantSteps(q4: number, bound: number): number | undefined {
    const k = this.kernel;
    const step = 2 * this.m + 1;
    const maxJ = Math.ceil(Math.max(0, bound - this.m) / step);
    if (maxJ === 0) return undefined;
    const mark = k.mark();
    const up = k.alloc(EXT_BYTES);
    const down = k.alloc(EXT_BYTES);
    const aff = k.alloc(AFFINE_BYTES);
    k.copy(up, q4, EXT_BYTES);
    k.copy(down, q4, EXT_BYTES);
    let found: number | undefined;
    for (let j = 1; j <= maxJ && found === undefined; j++) {
      // up = Q4 − j·giant = (v − j·step)·4g ; down = Q4 + j·giant
      k.sub(up, up, this.giantCached);
      k.add(down, down, this.giantCached);
      k.toAffineBatch(aff, up, 1);
      k.fe_freeze(aff);
      k.fe_freeze(aff + 40);
      let r = this.lookup(aff);
      if (r !== undefined) found = j * step + r;
      else {
        k.toAffineBatch(aff, down, 1);
        k.fe_freeze(aff);
        k.fe_freeze(aff + 40);
        r = this.lookup(aff);
        if (r !== undefined) found = -j * step + r;
      }
    }
    k.release(mark);
    return found;
  }
}
