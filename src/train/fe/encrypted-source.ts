/**
 * The server's side of CryptoNN training: per batch it has the key authority make fresh setups,
 * receives the data owner's ciphertexts, asks for function keys (label decoding, weight rows,
 * error vectors) and decrypts exactly the inner products it asked for.
 *
 * @module
 */
import { DataOwner, type EncryptedBatch, type FixedPointSamples } from '../../protocol/fe-training/data-owner.js';
import { KeyAuthority, type KeyAnswer } from '../../protocol/fe-training/authority.js';
import { signKeyRequest, type KeyPurpose, type ServerSession } from '../../protocol/fe-training/messages.js';
import type { KeyPolicyOptions } from '../../protocol/fe-training/policy.js';
import type { FeCompute } from '../../protocol/fe-training/compute.js';
import type { Ciphertext, FeEngine, FunctionKey, SetupId } from '../../schemes/fe/index.js';
import type { FirstLayerSource, Products } from './source.js';

/** Time and counts of the encrypted run, for the benchmark. */
export interface EncryptedTimings {
  setupMs: number;
  keyMs: number;
  rowDecryptMs: number;
  rowProducts: number;
  columnDecryptMs: number;
  columnProducts: number;
  labelMs: number;
  refusedVectors: number;
  dlogMs: number;
  dlogCount: number;
}

/** All parties of one run, in process. */
export class EncryptedFirstLayer implements FirstLayerSource {
  readonly authority: KeyAuthority;
  readonly owner: DataOwner;
  readonly timings: EncryptedTimings = {
    setupMs: 0,
    keyMs: 0,
    rowDecryptMs: 0,
    rowProducts: 0,
    columnDecryptMs: 0,
    columnProducts: 0,
    labelMs: 0,
    refusedVectors: 0,
    dlogMs: 0,
    dlogCount: 0,
  };
  private readonly session: ServerSession;
  private seq = 0;
  private batch: EncryptedBatch | undefined;
  private setups: { rows: SetupId; columns: SetupId; labels: SetupId } | undefined;

  constructor(
    engine: FeEngine,
    private readonly compute: FeCompute,
    private readonly samples: FixedPointSamples,
    readonly columnLength: number,
    policy: KeyPolicyOptions = {},
    private readonly maxWeight = 127,
    private readonly maxDelta = 127,
  ) {
    this.authority = new KeyAuthority(engine, policy);
    this.owner = new DataOwner(compute, samples);
    this.session = this.authority.registerServer('server');
  }

  async beginBatch(indices: readonly number[]): Promise<void> {
    let t = performance.now();
    const keys = {
      rows: this.authority.setup(this.samples.features, 'rows', this.maxWeight),
      columns: this.authority.setup(this.columnLength, 'columns', this.maxDelta),
      labels: this.authority.setup(this.samples.classes, 'labels', this.samples.classes - 1),
    };
    this.timings.setupMs += performance.now() - t;
    this.setups = { rows: keys.rows.setupId, columns: keys.columns.setupId, labels: keys.labels.setupId };
    this.batch = await this.owner.encryptBatch(indices, keys);
  }

  private async decrypt(cts: readonly Ciphertext[], keys: readonly FunctionKey[], bound: number): Promise<Float64Array> {
    const r = await this.compute.decryptMany(cts, keys, bound);
    this.timings.dlogMs += r.dlogMs;
    this.timings.dlogCount += r.dlogCount;
    return r.values;
  }

  private current(): { batch: EncryptedBatch; setups: { rows: SetupId; columns: SetupId; labels: SetupId } } {
    if (this.batch === undefined || this.setups === undefined) throw new Error('no batch started');
    return { batch: this.batch, setups: this.setups };
  }

  private request(setupId: SetupId, purpose: KeyPurpose, vectors: readonly Int32Array[]): KeyAnswer[] {
    const t = performance.now();
    const req = signKeyRequest(this.session, this.seq++, setupId, purpose, vectors);
    const answers = this.authority.handle(req);
    this.timings.keyMs += performance.now() - t;
    return answers;
  }

  private split(answers: KeyAnswer[]): { keys: FunctionKey[]; slots: number[]; refused: boolean[] } {
    const keys: FunctionKey[] = [];
    const slots: number[] = [];
    const refused = answers.map((a, i) => {
      if ('key' in a) {
        keys.push(a.key);
        slots.push(i);
        return false;
      }
      this.timings.refusedVectors++;
      return true;
    });
    return { keys, slots, refused };
  }

  async labels(): Promise<Uint8Array> {
    const { batch, setups } = this.current();
    const t = performance.now();
    const classes = this.samples.classes;
    // One key for (0, 1, ..., C−1): <one-hot, y> is the class index. This reveals the labels to
    // the server, exactly as CryptoNN's ŷ − y does (the server knows ŷ).
    const [answer] = this.request(setups.labels, 'labels', [Int32Array.from({ length: classes }, (_, i) => i)]);
    if (answer === undefined || !('key' in answer)) throw new Error('the key authority refused the label key');
    const values = await this.decrypt(batch.labels, [answer.key], classes - 1);
    this.timings.labelMs += performance.now() - t;
    return Uint8Array.from(values);
  }

  async rowProducts(vectors: readonly Int32Array[], bound: number): Promise<Products> {
    const { batch, setups } = this.current();
    const { keys, slots, refused } = this.split(this.request(setups.rows, 'rows', vectors));
    const K = vectors.length;
    const out = new Float64Array(batch.size * K);
    const t = performance.now();
    const values = await this.decrypt(batch.rows, keys, bound);
    this.timings.rowDecryptMs += performance.now() - t;
    this.timings.rowProducts += values.length;
    for (let b = 0; b < batch.size; b++) {
      slots.forEach((k, j) => {
        out[b * K + k] = values[b * keys.length + j] ?? 0;
      });
    }
    return { products: out, refused };
  }

  async columnProducts(vectors: readonly Int32Array[], bound: number): Promise<Products> {
    const { batch, setups } = this.current();
    const { keys, slots, refused } = this.split(this.request(setups.columns, 'columns', vectors));
    const K = vectors.length;
    const features = batch.columns.length;
    const out = new Float64Array(features * K);
    const t = performance.now();
    const values = await this.decrypt(batch.columns, keys, bound);
    this.timings.columnDecryptMs += performance.now() - t;
    this.timings.columnProducts += values.length;
    for (let i = 0; i < features; i++) {
      slots.forEach((k, j) => {
        out[i * K + k] = values[i * keys.length + j] ?? 0;
      });
    }
    return { products: out, refused };
  }
}
