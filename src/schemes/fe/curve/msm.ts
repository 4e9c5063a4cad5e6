/**
 * Linear combinations of many points with small signed integer coefficients — the core of
 * decryption, where a function key's vector (quantized weights or errors) is applied to the
 * ciphertext points. Pippenger's bucket method: each point is added once into the bucket of its
 * coefficient (per window of bits), and the buckets are summed with a running sum, 2 additions
 * per bucket. With |coefficient| ≤ 2^(c−1) a single window suffices and the cost is about
 * (nonzero coefficients) + 2·max|coefficient| additions.
 *
 * Timing: variable time in the coefficients (zero coefficients are skipped and the window count
 * follows the largest one). Coefficients are function-key vectors, which the party running this
 * (the server) chose and knows; nothing secret flows into the branches.
 *
 * @module
 */
import { EXT_BYTES, type Kernel, NIELS_BYTES } from './kernel.js';

/** Largest |coefficient| accepted (keeps bucket tables small). */
export const MAX_MSM_COEFFICIENT = 2 ** 24;

/** Window width (bits of magnitude per window) for coefficients up to `maxAbs` over `n` points. */
function windowBits(maxAbs: number, n: number): number {
  const bits = Math.max(1, Math.ceil(Math.log2(maxAbs + 1)));
  // One window when the buckets (2^bits) cost no more than the points themselves, else split.
  const cap = Math.max(4, Math.floor(Math.log2(Math.max(16, n))) + 1);
  return Math.min(bits, cap);
}

/**
 * Scratch space for {@link combine}, reused across calls on one kernel (allocate once, keep).
 */
export class MsmScratch {
  readonly buckets: number;
  readonly running: number;
  readonly cached: number;
  readonly window: number;
  constructor(
    private readonly kernel: Kernel,
    readonly maxBuckets: number,
  ) {
    this.buckets = kernel.alloc((maxBuckets + 1) * EXT_BYTES);
    this.running = kernel.alloc(EXT_BYTES);
    this.cached = kernel.alloc(EXT_BYTES);
    this.window = kernel.alloc(EXT_BYTES);
  }
}

/**
 * out (extended) = Σ_i coeffs[offset + i·stride]·P_i over `n` Niels points starting at `pointsAddr`.
 *
 * @throws {RangeError} if a coefficient is not an integer with |c| ≤ {@link MAX_MSM_COEFFICIENT}.
 */
export function combine(
  kernel: Kernel,
  scratch: MsmScratch,
  out: number,
  pointsAddr: number,
  n: number,
  coeffs: ArrayLike<number>,
  offset = 0,
  stride = 1,
): void {
  let maxAbs = 0;
  for (let i = 0; i < n; i++) {
    const c = coeffs[offset + i * stride] ?? 0;
    const a = c < 0 ? -c : c;
    if (!Number.isInteger(c) || a > MAX_MSM_COEFFICIENT) {
      throw new RangeError(`coefficient ${c} is not an integer in ±${MAX_MSM_COEFFICIENT}`);
    }
    if (a > maxAbs) maxAbs = a;
  }
  kernel.setIdentity(out);
  if (maxAbs === 0) return;
  const c = windowBits(maxAbs, n);
  // Signed digits of radix 2^c, magnitude ≤ 2^(c−1) except that with a single window the digit
  // is the coefficient itself (no recoding needed).
  const single = maxAbs < 1 << c && (maxAbs <= scratch.maxBuckets);
  if (single) {
    sumWindow(kernel, scratch, out, pointsAddr, n, maxAbs, (i) => coeffs[offset + i * stride] ?? 0);
    return;
  }
  const half = 1 << (c - 1);
  const full = 1 << c;
  const windows = Math.ceil((Math.ceil(Math.log2(maxAbs + 1)) + 1) / c);
  const digits = new Int32Array(n * windows);
  for (let i = 0; i < n; i++) {
    let v = coeffs[offset + i * stride] ?? 0;
    const neg = v < 0;
    if (neg) v = -v;
    let carry = 0;
    for (let w = 0; w < windows; w++) {
      let d = (v % full) + carry;
      v = Math.floor(v / full);
      carry = 0;
      if (d > half) {
        d -= full;
        carry = 1;
      }
      digits[i * windows + w] = neg ? -d : d;
    }
  }
  for (let w = windows - 1; w >= 0; w--) {
    if (w !== windows - 1) for (let k = 0; k < c; k++) kernel.dbl(out, out);
    sumWindow(kernel, scratch, scratch.window, pointsAddr, n, half, (i) => digits[i * windows + w] ?? 0);
    kernel.toCached(scratch.cached, scratch.window);
    kernel.add(out, out, scratch.cached);
  }
}

/** out = Σ digit(i)·P_i with |digit| ≤ maxDigit ≤ scratch.maxBuckets. */
function sumWindow(
  kernel: Kernel,
  scratch: MsmScratch,
  out: number,
  pointsAddr: number,
  n: number,
  maxDigit: number,
  digit: (i: number) => number,
): void {
  const used = new Uint8Array(maxDigit + 1);
  for (let i = 0; i < n; i++) {
    const d = digit(i);
    if (d === 0) continue;
    const a = d < 0 ? -d : d;
    const bucket = scratch.buckets + a * EXT_BYTES;
    if (used[a] === 0) {
      kernel.setIdentity(bucket);
      used[a] = 1;
    }
    if (d < 0) kernel.msub(bucket, bucket, pointsAddr + i * NIELS_BYTES);
    else kernel.madd(bucket, bucket, pointsAddr + i * NIELS_BYTES);
  }
  kernel.setIdentity(out);
  kernel.setIdentity(scratch.running);
  let started = false;
  for (let a = maxDigit; a >= 1; a--) {
    if (used[a] === 1) {
      kernel.toCached(scratch.cached, scratch.buckets + a * EXT_BYTES);
      kernel.add(scratch.running, scratch.running, scratch.cached);
      started = true;
    }
    if (started) {
      kernel.toCached(scratch.cached, scratch.running);
      kernel.add(out, out, scratch.cached);
    }
  }
}
