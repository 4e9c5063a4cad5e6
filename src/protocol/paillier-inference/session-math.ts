/**
 * The arithmetic both parties agree on: slot layouts, blinding factors and the integer exponents
 * that fold each value's scale into the next linear map.
 *
 * @module
 */
import { randomBits } from '../../math/random.js';
import { SlotLayout } from '../../schemes/paillier/packing.js';
import type { SparseLinearMap } from '../../tensor/sparse-linear.js';
import { BLIND_MIN_BITS, type CompiledPaillierModel } from './compile.js';

/** Widest slot layout the model needs: every integer of the protocol fits a slot. */
export function valueLayout(model: CompiledPaillierModel, modulusBits: number, slots?: number): SlotLayout {
  const options: { bound: bigint; guardBits: number; slots?: number } = { bound: 1n << BigInt(model.valueBits), guardBits: model.params.guardBits };
  if (slots !== undefined) options.slots = slots;
  return new SlotLayout(modulusBits, options);
}

/** Σ 2^(s·i) for i < k: a plaintext constant replicated into k slots. */
export function replicator(slotBits: number, k: number): bigint {
  let ones = 0n;
  for (let i = 0; i < k; i++) ones = (ones << BigInt(slotBits)) | 1n;
  return ones;
}

/** A fresh blinding factor in [2^16, 2^(17 + blindBits)), log-uniform in magnitude. */
export function blindingFactor(blindBits: number): bigint {
  const mantissa = (1n << BigInt(BLIND_MIN_BITS)) | randomBits(BLIND_MIN_BITS);
  const shift = blindBits > 0 ? Number(randomBits(8)) % (blindBits + 1) : 0;
  return mantissa << BigInt(shift);
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
