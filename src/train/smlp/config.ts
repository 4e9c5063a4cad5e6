/**
 * The Secure MLP's architecture and fixed-point arithmetic, shared by the encrypted run and its
 * plaintext twin.
 *
 * Network: 30 inputs → h ReLU units → 1 linear output, trained by mini-batch SGD on the squared
 * error against targets ±1 (benign +1, malignant −1); the predicted class is the output's sign.
 * Biases are folded in as an extra input column of 1s (the features) and an extra hidden unit of
 * constant 1 (the output layer).
 *
 * Fixed point with f fractional bits (scale 2^f): features, weights, activations, output and
 * error at 2^f; pre-activations and δ at 2^(2f); the first layer's gradient at 2^(3f). Every
 * rescaling is one truncation:
 *
 * | quantity | computed as | scale | rescaled by |
 * |---|---|---|---|
 * | Z1 = X·W1ᵀ | matrix product | 2^(2f) | ReLU round, 2^f → A1 at 2^f |
 * | z2 = [A1 1]·w2ᵀ | matrix product | 2^(2f) | truncation, 2^f → ŷ at 2^f |
 * | e = ŷ − t | subtraction | 2^f | — |
 * | δ1 = e·(relu′(Z1)⊙w2) | product | 2^(2f) | — |
 * | ∇W1 = δ1ᵀ·X | matrix product | 2^(3f) | truncation, 2^(2f + b + k) |
 * | ∇w2 = eᵀ·[A1 1] | matrix product | 2^(2f) | truncation, 2^(f + b + k) |
 *
 * where the batch holds up to 2^b samples and the learning rate is 2^−k (so W −= 2^−k·mean grad).
 *
 * @module
 */

/** Hyperparameters of a Secure MLP run. */
export interface SmlpConfig {
  /** Hidden ReLU units. */
  readonly hidden: number;
  /** Fractional bits f of the fixed-point numbers. */
  readonly fracBits: number;
  /** log2 of the batch size. */
  readonly batchLog2: number;
  /** Learning rate 2^−k. */
  readonly lrLog2: number;
  /** Seed of each epoch's data order (public: S1 picks the batches from it). */
  readonly seed: number;
  /**
   * A secret seed of the initial weights, known to the user only, for reproducible runs. Without
   * it (the default) the user draws them from the CSPRNG. Never derived from `seed`: S1 knows that
   * one, and with it the starting point.
   */
  readonly weightSeed?: number;
}

/**
 * Defaults: 30-2-1, f = 12, batches of 16, learning rate 2^−3. Two hidden units reach the
 * accuracy of four on this data (97.4% vs 94.8% after 3 epochs) at about 60% of the cost per epoch.
 */
export const DEFAULT_SMLP: SmlpConfig = { hidden: 2, fracBits: 12, batchLog2: 4, lrLog2: 3, seed: 1 };

/** Largest |weight| the fixed-point bounds assume: 2^WEIGHT_INT_BITS. */
export const WEIGHT_INT_BITS = 4;
/** Largest |feature| (features are clipped to ±15 after standardisation): below 2^4. */
export const FEATURE_INT_BITS = 4;

/** Value bounds in bits (|v| < 2^bits) of the stored features and of the weights. */
export function baseBits(c: SmlpConfig): { x: number; w: number; t: number } {
  return { x: c.fracBits + FEATURE_INT_BITS, w: c.fracBits + WEIGHT_INT_BITS, t: c.fracBits + 1 };
}

/** Integer fixed-point value of a real number: round(v·2^f). */
export function toFixed(v: number, fracBits: number): bigint {
  return BigInt(Math.round(v * 2 ** fracBits));
}

/** Seeded-order batches of an epoch: indices into the training set. */
export function epochBatches(count: number, batchSize: number, order: readonly number[]): number[][] {
  if (order.length !== count) throw new RangeError('epochBatches: the order must list every sample once');
  const out: number[][] = [];
  for (let i = 0; i < count; i += batchSize) out.push(order.slice(i, i + batchSize));
  return out;
}
