/**
 * Fixed-point quantization for CryptoNN training, chosen so every inner product the server
 * decrypts stays inside the discrete-log bound.
 *
 * - Inputs: x ∈ [0, 1] → round(100·x) ∈ [0, 100] (two decimal digits, as CryptoNN).
 * - First-layer weights: w → round(100·w), clipped to ±maxWeight (two decimal digits).
 * - Errors δ (one vector per hidden unit and batch): scaled per vector so that its largest entry
 *   becomes ±maxDelta, then rounded. CryptoNN used two decimal digits for δ as well, which rounds
 *   most of them to zero; a per-vector scale keeps log2(2·maxDelta+1) bits of each.
 *
 * Bounds: a row product is at most xMax·Σ|w_q| ≤ 100·784·maxWeight, a column product at most
 * xMax·Σ|δ_q| ≤ 100·B·maxDelta; the server computes the exact bound of each request from its own
 * vectors and declares it to decryption, which errs rather than return a value outside it.
 *
 * @module
 */

/** Quantization parameters. */
export interface QuantConfig {
  /** Scale of inputs (100 = two decimal digits). */
  readonly xScale: number;
  /** Scale of first-layer weights (100 = two decimal digits). */
  readonly wScale: number;
  /** Clip of quantized weights. */
  readonly maxWeight: number;
  /** Largest quantized |δ| per vector. */
  readonly maxDelta: number;
}

/** CryptoNN's two decimal digits for x and W; 5-bit-plus-sign errors. */
export const DEFAULT_QUANT: QuantConfig = { xScale: 100, wScale: 100, maxWeight: 127, maxDelta: 31 };

/** Quantizes pixel values in [0, 1] (count × features) to integers. */
export function quantizeInputs(values: Float32Array, q: QuantConfig): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.round((values[i] ?? 0) * q.xScale);
  return out;
}

/** Quantizes one weight row. */
export function quantizeWeights(w: Float64Array, from: number, length: number, q: QuantConfig): Int32Array {
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const v = Math.round((w[from + i] ?? 0) * q.wScale);
    out[i] = Math.max(-q.maxWeight, Math.min(q.maxWeight, v));
  }
  return out;
}

/** Quantizes an error vector with its own scale; returns the scale (0 for an all-zero vector). */
export function quantizeDelta(delta: Float64Array, q: QuantConfig): { vector: Int32Array; scale: number } {
  let max = 0;
  for (const d of delta) max = Math.max(max, Math.abs(d));
  const vector = new Int32Array(delta.length);
  if (max === 0) return { vector, scale: 0 };
  const scale = q.maxDelta / max;
  for (let i = 0; i < delta.length; i++) vector[i] = Math.round((delta[i] ?? 0) * scale);
  return { vector, scale };
}

/** The exact bound of <x, y> over all x with entries in [0, xMax]. */
export function productBound(vectors: readonly Int32Array[], xMax: number): number {
  let bound = 0;
  for (const v of vectors) {
    let s = 0;
    for (const c of v) s += Math.abs(c);
    bound = Math.max(bound, s * xMax);
  }
  return bound;
}
