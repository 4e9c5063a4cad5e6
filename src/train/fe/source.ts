/**
 * Where the first layer's products come from. The encrypted source asks the key authority for
 * function keys and decrypts the data owner's ciphertexts; the plaintext twin computes the same
 * integer products from the same fixed-point data and replays the same key-request policy, so
 * the two runs see identical numbers.
 *
 * @module
 */
import type { FixedPointSamples } from '../../protocol/fe-training/data-owner.js';
import type { KeyPolicyOptions } from '../../protocol/fe-training/policy.js';
import { PlainBatch } from './plain-batch.js';

/** Products for one request: `products[row·K + k]`, and which vectors were refused. */
export interface Products {
  readonly products: Float64Array;
  readonly refused: readonly boolean[];
}

/** The first-layer oracle of one training run. */
export interface FirstLayerSource {
  /** Starts a batch of the given sample indices (padded to `columnLength`). */
  beginBatch(indices: readonly number[]): Promise<void>;
  /** The batch's labels (the encrypted source decrypts them). */
  labels(): Promise<Uint8Array>;
  /** <x_b, y_k> for every sample b of the batch and every vector y_k (length = features). */
  rowProducts(vectors: readonly Int32Array[], bound: number): Promise<Products>;
  /** <X[:, i], y_k> for every feature i and every vector y_k (length = columnLength). */
  columnProducts(vectors: readonly Int32Array[], bound: number): Promise<Products>;
}

/** The plaintext twin: same integers, no encryption. */
export class PlainFirstLayer extends PlainBatch implements FirstLayerSource {
  constructor(
    samples: FixedPointSamples,
    readonly columnLength: number,
    policy: KeyPolicyOptions = {},
  ) {
    super(samples, policy);
  }

  private screen(setup: string, vectors: readonly Int32Array[]): boolean[] {
    return this.refused(`${setup}-${this.batch}`, vectors);
  }

  rowProducts(vectors: readonly Int32Array[], _bound: number): Promise<Products> {
    const refused = this.screen('rows', vectors);
    const { x, features } = this.samples;
    const K = vectors.length;
    const out = new Float64Array(this.indices.length * K);
    this.indices.forEach((n, b) => {
      const off = n * features;
      vectors.forEach((v, k) => {
        if (refused[k]) return;
        let s = 0;
        for (let i = 0; i < features; i++) s += (x[off + i] ?? 0) * (v[i] ?? 0);
        out[b * K + k] = s;
      });
    });
    return Promise.resolve({ products: out, refused });
  }

  columnProducts(vectors: readonly Int32Array[], _bound: number): Promise<Products> {
    const refused = this.screen('columns', vectors);
    const { x, features } = this.samples;
    const K = vectors.length;
    const out = new Float64Array(features * K);
    vectors.forEach((v, k) => {
      if (refused[k]) return;
      this.indices.forEach((n, b) => {
        const c = v[b] ?? 0;
        if (c === 0) return;
        const off = n * features;
        for (let i = 0; i < features; i++) out[i * K + k] = (out[i * K + k] ?? 0) + c * (x[off + i] ?? 0);
      });
    });
    return Promise.resolve({ products: out, refused });
  }
}
