/**
 * The arithmetic both parties agree on: slot layouts, blinding factors and the integer exponents
 * that fold each value's scale into the next linear map.
 *
 * @module
 */
import { randomBelow, randomBits, randomBytes } from '../../math/random.js';
import { SlotLayout } from '../../schemes/paillier/packing.js';
import type { SparseLinearMap } from '../../tensor/sparse-linear.js';
import type { CompiledPaillierModel } from './compile.js';

/**
 * Widest slot layout the model needs: every integer of the protocol fits a slot. Sized from the
 * exact largest bound (sign and guard bits added by the layout), not from its bit count, which
 * would count the sign twice and round up twice.
 */
export function valueLayout(model: CompiledPaillierModel, modulusBits: number, slots?: number): SlotLayout {
  const options: { bound: bigint; guardBits: number; slots?: number } = { bound: BigInt(model.valueBound), guardBits: model.params.guardBits };
  if (slots !== undefined) options.slots = slots;
  return new SlotLayout(modulusBits, options);
}

/** Σ 2^(s·i) for i < k: a plaintext constant replicated into k slots. */
export function replicator(slotBits: number, k: number): bigint {
  let ones = 0n;
  for (let i = 0; i < k; i++) ones = (ones << BigInt(slotBits)) | 1n;
  return ones;
}

/**
 * A fresh blinding factor m·2^s with m uniform in [2^mantissaBits, 2^(mantissaBits+1)) and s uniform
 * in {0, …, blindBits}: below 2^(mantissaBits + 1 + blindBits).
 */
export function blindingFactor(blindBits: number, mantissaBits: number): bigint {
  const mantissa = (1n << BigInt(mantissaBits)) | randomBits(mantissaBits);
  // Rejection sampling: a byte reduced modulo blindBits + 1 would favour small shifts whenever
  // 256 is not a multiple of blindBits + 1 (e.g. 37/256 against 36/256 for blindBits = 6).
  const shift = blindBits > 0 ? Number(randomBelow(BigInt(blindBits + 1))) : 0;
  return mantissa << BigInt(shift);
}

/**
 * Additive noise for values blinded by r: `count` integers uniform in [−h, h] with
 * h = ⌊(r − 1)/2⌋. r·v + e keeps the sign of every nonzero integer v and the order of any two
 * distinct integers blinded by the same r (|e − e'| < r), while r stops being a divisor of what the
 * client sees: without the noise the client would recover r as a gcd (of a window's cells, or of
 * the K samples of a batch, which share r) or by trying the few divisors of r·v in r's range, and
 * with r every blinded value exactly.
 *
 * @throws RangeError if r is not in [1, 2^31).
 */
export function blindingNoise(r: bigint, count: number): number[] {
  if (r < 1n || r >= 1n << 31n) throw new RangeError('blindingNoise: r must be in [1, 2^31)');
  const h = Number((r - 1n) >> 1n);
  const words = randomBytes(8 * count);
  const view = new DataView(words.buffer, words.byteOffset, words.byteLength);
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    // 53 random bits reduced modulo 2h + 1 < 2^31: bias below 2^-22 (one value in 4 million).
    const x = (view.getUint32(8 * i) & 0x1fffff) * 2 ** 32 + view.getUint32(8 * i + 4);
    out[i] = (x % (2 * h + 1)) - h;
  }
  return out;
}

/**
 * The noise of `values` blinded by `factors`, as plaintexts to add to the ciphertexts that carry
 * them: ciphertext t holds values [t·perCiphertext, (t+1)·perCiphertext), value p of it in slots
 * p·samples … p·samples + samples − 1 of `slotBits` bits (batch mode: one value per ciphertext in
 * `samples` slots; latency mode: one sample, many values). Empty slots get no noise.
 */
export function packedBlindingNoise(factors: readonly bigint[], slotBits: number, perCiphertext: number, samples: number): bigint[] {
  const out: bigint[] = [];
  const s = BigInt(slotBits);
  for (let start = 0; start < factors.length; start += perCiphertext) {
    let packed = 0n;
    const end = Math.min(factors.length, start + perCiphertext);
    for (let i = end - 1; i >= start; i--) {
      const e = blindingNoise(factors[i]!, samples);
      for (let k = samples - 1; k >= 0; k--) packed = (packed << s) + BigInt(e[k]!);
    }
    out.push(packed);
  }
  return out;
}

/** A uniformly random permutation of 0..n-1 (Fisher–Yates; 53-bit draws reduced mod i+1, bias below 2^-29). */
export function randomPermutation(n: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Number(randomBits(53) % BigInt(i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/**
 * Integer exponents e_t = round(q·w_t / σ_col) for a map whose inputs have scales σ (one per
 * column, or one for all).
 */
export function integerExponents(map: SparseLinearMap, q: number, sigma: Float64Array | number): Float64Array {
  const e = new Float64Array(map.weights.length);
  if (typeof sigma === 'number') {
    const f = q / sigma;
    for (let t = 0; t < e.length; t++) e[t] = Math.round(map.weights[t]! * f);
  } else {
    for (let t = 0; t < e.length; t++) e[t] = Math.round((map.weights[t]! * q) / sigma[map.indices[t]!]!);
  }
  return e;
}

/** Row biases round(b·q), replicated into every slot. */
export function integerBias(map: SparseLinearMap, q: number, ones: bigint): bigint[] {
  return Array.from(map.bias, (b) => BigInt(Math.round(b * q)) * ones);
}

/** The values one source of a stage holds and the scale of each (one number when they share one). */
export interface ScaledSource<T> {
  readonly values: ArrayLike<T>;
  readonly scales: Float64Array | number;
}

/**
 * A stage's input scales: its sources' scales concatenated in order, one number when every source
 * has the same single scale (a chain's input, or rounds returned at a public scale).
 */
export function joinScales<T>(parts: readonly ScaledSource<T>[]): Float64Array | number {
  const first = parts[0]!.scales;
  if (typeof first === 'number' && parts.every((p) => p.scales === first)) return first;
  const out = new Float64Array(parts.reduce((a, p) => a + p.values.length, 0));
  let at = 0;
  for (const p of parts) {
    if (typeof p.scales === 'number') out.fill(p.scales, at, at + p.values.length);
    else out.set(p.scales, at);
    at += p.values.length;
  }
  return out;
}
