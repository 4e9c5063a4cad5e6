/**
 * Fixed-base scalar multiplication: a table of the multiples m·2^(w·i)·P (m = 0..2^(w−1)) for one
 * point P, so that k·P costs one mixed addition per signed radix-2^w digit of k and no doublings.
 * Encrypting many samples under one master public key multiplies the same points g and h_i by a
 * fresh scalar each time: this is where encryption time goes.
 *
 * @module
 */
import { EXT_BYTES, type Kernel, NIELS_BYTES } from './kernel.js';

/** Number of bits of the scalars used (ℓ < 2^253). */
const SCALAR_BITS = 253;

/** Signed radix-2^w digits of a scalar 0 ≤ k < 2^253, least significant first, each in [−2^(w−1), 2^(w−1)]. */
export function recodeSigned(scalar: bigint, w: number): Int16Array {
  const windows = Math.ceil(SCALAR_BITS / w) + 1;
  const digits = new Int16Array(windows);
  const hex = scalar.toString(16).padStart(64, '0');
  // 32-bit words, least significant first.
  const words = new Uint32Array(9);
  for (let i = 0; i < 8; i++) words[i] = Number.parseInt(hex.slice(64 - 8 * (i + 1), 64 - 8 * i), 16);
  const half = 1 << (w - 1);
  const mask = (1 << w) - 1;
  let carry = 0;
  for (let i = 0; i < windows; i++) {
    const bit = i * w;
    const word = bit >>> 5;
    const off = bit & 31;
    let raw = (words[word] ?? 0) >>> off;
    if (off + w > 32) raw |= (words[word + 1] ?? 0) << (32 - off);
    let d = (raw & mask) + carry;
    carry = 0;
    if (d > half) {
      d -= 1 << w;
      carry = 1;
    }
    digits[i] = d;
  }
  return digits;
}

/** A fixed-base table in kernel memory (Niels form). Owned by the caller's allocator region. */
export class FixedBaseTable {
  readonly windows: number;
  readonly half: number;
  /** Address of the first entry. */
  readonly addr: number;

  /**
   * Builds the table for the extended point at `pointAddr`.
   * Cost: about 253 doublings + windows·2^(w−1) additions and one batched inversion.
   */
  constructor(
    private readonly kernel: Kernel,
    pointAddr: number,
    readonly w: number,
  ) {
    this.windows = Math.ceil(SCALAR_BITS / w) + 1;
    this.half = 1 << (w - 1);
    const perWindow = this.half + 1;
    this.addr = kernel.alloc(this.windows * perWindow * NIELS_BYTES);
    const m = kernel.mark();
    const count = this.windows * this.half;
    const ext = kernel.alloc(count * EXT_BYTES);
    const aff = kernel.alloc(count * 80);
    const base = kernel.alloc(EXT_BYTES);
    const baseCached = kernel.alloc(EXT_BYTES);
    kernel.copy(base, pointAddr, EXT_BYTES);
    for (let i = 0; i < this.windows; i++) {
      kernel.toCached(baseCached, base);
      const first = ext + i * this.half * EXT_BYTES;
      kernel.copy(first, base, EXT_BYTES);
      for (let j = 1; j < this.half; j++) {
        kernel.add(first + j * EXT_BYTES, first + (j - 1) * EXT_BYTES, baseCached);
      }
      if (i + 1 < this.windows) for (let k = 0; k < w; k++) kernel.dbl(base, base);
    }
    kernel.toAffineBatch(aff, ext, count);
    const v = kernel.i32;
    for (let i = 0; i < this.windows; i++) {
      const row = this.addr + i * perWindow * NIELS_BYTES;
      // entry 0: the identity (y+x, y−x, 2dxy) = (1, 1, 0)
      const id = row >> 2;
      v.fill(0, id, id + 30);
      v[id] = 1;
      v[id + 10] = 1;
      for (let j = 0; j < this.half; j++) {
        kernel.affineToNiels(row + (j + 1) * NIELS_BYTES, aff + (i * this.half + j) * 80);
      }
    }
    kernel.release(m);
  }

  /**
   * out (extended) = k·P for the digits of k from {@link recodeSigned} with this table's w.
   * Timing: the same number of mixed additions for every scalar (zero digits add the identity);
   * which table entries are read depends on the scalar.
   */
  mulDigits(out: number, digits: Int16Array): void {
    const k = this.kernel;
    k.setIdentity(out);
    const stride = (this.half + 1) * NIELS_BYTES;
    for (let i = 0; i < this.windows; i++) {
      const d = digits[i] ?? 0;
      const entry = this.addr + i * stride + (d < 0 ? -d : d) * NIELS_BYTES;
      if (d < 0) k.msub(out, out, entry);
      else k.madd(out, out, entry);
    }
  }

  /** Like {@link mulDigits} but adds k·P into the extended accumulator `acc`. */
  addMulDigits(acc: number, digits: Int16Array): void {
    const k = this.kernel;
    const stride = (this.half + 1) * NIELS_BYTES;
    for (let i = 0; i < this.windows; i++) {
      const d = digits[i] ?? 0;
      if (d === 0) continue;
      const entry = this.addr + i * stride + (d < 0 ? -d : d) * NIELS_BYTES;
      if (d < 0) k.msub(acc, acc, entry);
      else k.madd(acc, acc, entry);
    }
  }

  /** k·P for a bigint scalar 0 ≤ k < 2^253. */
  mul(out: number, scalar: bigint): void {
    this.mulDigits(out, recodeSigned(scalar, this.w));
  }
}

/**
 * Niels multiples 0·P, 1·P, ..., max·P of one point, for adding m·P with |m| ≤ max in one mixed
 * addition (used for g^{x_i} with small x_i).
 */
export class SmallMultiplesTable {
  readonly addr: number;

  constructor(
    private readonly kernel: Kernel,
    pointAddr: number,
    readonly max: number,
  ) {
    this.addr = kernel.alloc((max + 1) * NIELS_BYTES);
    const m = kernel.mark();
    const ext = kernel.alloc(Math.max(1, max) * EXT_BYTES);
    const aff = kernel.alloc(Math.max(1, max) * 80);
    const cached = kernel.alloc(EXT_BYTES);
    kernel.toCached(cached, pointAddr);
    if (max > 0) kernel.copy(ext, pointAddr, EXT_BYTES);
    for (let j = 1; j < max; j++) kernel.add(ext + j * EXT_BYTES, ext + (j - 1) * EXT_BYTES, cached);
    kernel.toAffineBatch(aff, ext, max);
    const v = kernel.i32;
    const id = this.addr >> 2;
    v.fill(0, id, id + 30);
    v[id] = 1;
    v[id + 10] = 1;
    for (let j = 0; j < max; j++) kernel.affineToNiels(this.addr + (j + 1) * NIELS_BYTES, aff + j * 80);
    kernel.release(m);
  }

  /**
   * acc += m·P for |m| ≤ max. One mixed addition whatever m is (m = 0 adds the identity).
   *
   * @throws {RangeError} if |m| > max.
   */
  addMultiple(acc: number, m: number): void {
    const a = m < 0 ? -m : m;
    if (a > this.max) throw new RangeError(`multiple ${m} is outside ±${this.max}`);
    const entry = this.addr + a * NIELS_BYTES;
    if (m < 0) this.kernel.msub(acc, acc, entry);
    else this.kernel.madd(acc, acc, entry);
  }
}
