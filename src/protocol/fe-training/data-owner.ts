/**
 * The data owner: holds the samples and labels in the clear and hands the server only
 * ciphertexts, as CryptoNN does:
 * - each sample x (fixed point) as one vector, for the first layer's W·x;
 * - per batch, each feature column X[:, i] (one entry per sample of the batch), for the
 *   gradient Xᵀ·δ;
 * - each label as a one-hot vector.
 * Each batch is encrypted under fresh setups made by the key authority, so function keys issued
 * for one batch are useless on every other batch.
 *
 * @module
 */
import type { Ciphertext, MasterPublicKey } from '../../schemes/fe/index.js';
import type { FeCompute } from './compute.js';

/** The master public keys one batch is encrypted under. */
export interface BatchKeys {
  readonly rows: MasterPublicKey;
  readonly columns: MasterPublicKey;
  readonly labels: MasterPublicKey;
}

/** What the server receives for one batch. */
export interface EncryptedBatch {
  /** Real samples in the batch (the column vectors are padded with zeros to the column length). */
  readonly size: number;
  readonly rows: readonly Ciphertext[];
  readonly columns: readonly Ciphertext[];
  readonly labels: readonly Ciphertext[];
}

/** Plaintext samples in fixed point: `features` integers per sample. */
export interface FixedPointSamples {
  readonly count: number;
  readonly features: number;
  /** count × features integers. */
  readonly x: Int32Array;
  readonly labels: Uint8Array;
  readonly classes: number;
}

/** Time spent by the data owner, for the benchmark. */
export interface DataOwnerTimings {
  rowEncryptMs: number;
  rowSamples: number;
  columnEncryptMs: number;
  columnVectors: number;
}

/** The data owner of a training run. */
export class DataOwner {
  readonly timings: DataOwnerTimings = { rowEncryptMs: 0, rowSamples: 0, columnEncryptMs: 0, columnVectors: 0 };

  constructor(
    private readonly compute: FeCompute,
    private readonly samples: FixedPointSamples,
  ) {}

  /**
   * Encrypts the samples `indices` (at most the column length) under `keys`.
   *
   * @throws {RangeError} (rejects) if the batch is longer than the column length.
   */
  async encryptBatch(indices: readonly number[], keys: BatchKeys): Promise<EncryptedBatch> {
    const { features, x, labels, classes } = this.samples;
    const width = keys.columns.length;
    if (indices.length > width) throw new RangeError(`batch of ${indices.length} exceeds column length ${width}`);
    const rows = indices.map((n) => x.subarray(n * features, (n + 1) * features));
    let t = performance.now();
    const rowCts = await this.compute.encrypt(keys.rows, rows);
    this.timings.rowEncryptMs += performance.now() - t;
    this.timings.rowSamples += rows.length;
    const columns: Int32Array[] = [];
    for (let i = 0; i < features; i++) {
      const col = new Int32Array(width);
      indices.forEach((n, b) => {
        col[b] = x[n * features + i] ?? 0;
      });
      columns.push(col);
    }
    t = performance.now();
    const colCts = await this.compute.encrypt(keys.columns, columns);
    this.timings.columnEncryptMs += performance.now() - t;
    this.timings.columnVectors += columns.length;
    const oneHots = indices.map((n) => {
      const v = new Int32Array(classes);
      v[labels[n] ?? 0] = 1;
      return v;
    });
    const labelCts = await this.compute.encrypt(keys.labels, oneHots);
    return { size: indices.length, rows: rowCts, columns: colCts, labels: labelCts };
  }
}
