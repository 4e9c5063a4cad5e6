/**
 * What the plaintext twins of the encrypted first layers share: the current batch, its labels, and
 * the same key-request policy the authority applies, so the twin refuses exactly what the
 * encrypted run is refused.
 *
 * @module
 */
import type { FixedPointSamples } from '../../protocol/fe-training/data-owner.js';
import { KeyRequestPolicy, type KeyPolicyOptions } from '../../protocol/fe-training/policy.js';

export abstract class PlainBatch {
  protected indices: readonly number[] = [];
  protected batch = 0;
  private readonly policy: KeyRequestPolicy;

  constructor(
    protected readonly samples: FixedPointSamples,
    policy: KeyPolicyOptions = {},
  ) {
    this.policy = new KeyRequestPolicy(policy);
  }

  beginBatch(indices: readonly number[]): Promise<void> {
    this.indices = indices;
    this.batch++;
    return Promise.resolve();
  }

  labels(): Promise<Uint8Array> {
    return Promise.resolve(Uint8Array.from(this.indices, (n) => this.samples.labels[n] ?? 0));
  }

  /** For each vector, whether the policy refuses it under the request history `history`. */
  protected refused(history: string, vectors: readonly Int32Array[]): boolean[] {
    return vectors.map((v) => !this.policy.consider(history, v).ok);
  }
}
