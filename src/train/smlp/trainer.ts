/**
 * The Secure MLP on S1: forward pass, exact ReLU, backward pass and SGD updates on Paillier
 * ciphertexts of the user's data and of the weights, with the crypto server's help through
 * {@link ComputeServer}. Seven rounds per batch (see `config.ts` for the scales):
 *
 * 1. Z1 = X_batch·W1ᵀ (X stored masked at S2 once for the whole run);
 * 2. A1 = relu(Z1)/2^f, with relu′(Z1)⊙w2 in the same round;
 * 3. z2 = [A1 1]·w2ᵀ;
 * 4. ŷ = z2/2^f, then e = ŷ − t on ciphertexts;
 * 5. δ1 = e·(relu′⊙w2) and ∇w2 = eᵀ·[A1 1];
 * 6. ∇W1 = δ1ᵀ·X_batch;
 * 7. both gradients rescaled by 2^(…+b+k), then W −= ΔW on ciphertexts.
 *
 * Neither server sees a feature, label, weight, activation or gradient in the clear.
 *
 * @module
 */
import { batchInvert } from '../../schemes/paillier/linear.js';
import type { PaillierCiphertext } from '../../schemes/paillier/ciphertext.js';
import type { PaillierPublicKey } from '../../schemes/paillier/keys.js';
import type { ComputeServer, EncMatrix, EncValues, StoredMatrix } from '../../protocol/two-server/compute-server.js';
import { baseBits, type SmlpConfig } from './config.js';

/** The encrypted weights S1 holds: W1 (hidden × cols) and w2 (1 × (hidden+1)). */
export interface EncWeights {
  readonly w1: EncMatrix;
  readonly w2: EncMatrix;
}

function transpose(m: EncMatrix): EncMatrix {
  const cts = new Array<bigint>(m.cts.length);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) cts[j * m.rows + i] = m.cts[i * m.cols + j]!;
  return { rows: m.cols, cols: m.rows, bits: m.bits, cts };
}

export class SecureMlpTrainer {
  private w: EncWeights;

  /**
   * @param s1 - S1's end of the two-server protocols.
   * @param one - an encryption of 2^f (the constant hidden unit), made by S1.
   */
  constructor(
    private readonly s1: ComputeServer,
    private readonly c: SmlpConfig,
    initial: EncWeights,
    private readonly one: bigint,
  ) {
    this.w = initial;
  }

  get weights(): EncWeights {
    return this.w;
  }

  private sub(a: EncValues, b: EncValues, bits: number): EncValues {
    const m = this.s1.publicKey.nSquared;
    const inv = batchInvert([...b.cts], m);
    return { bits, cts: a.cts.map((x, i) => (x * inv[i]!) % m) };
  }

  /** Forward pass to the output before rescaling: Enc(z2) at 2^(2f), one row per sample, and what backprop needs. */
  async forward(x: StoredMatrix, rows: readonly number[], withDerivative: boolean) {
    const h = this.c.hidden;
    const f = this.c.fracBits;
    const z1 = await this.s1.matMul({ kind: 'stored', m: x, rows }, { kind: 'enc', m: transpose(this.w.w1) });
    const w2rep: EncValues = { bits: this.w.w2.bits, cts: rows.flatMap(() => this.w.w2.cts.slice(0, h)) };
    const act = await this.s1.relu(z1, f, withDerivative ? [w2rep] : []);
    const a1cts: bigint[] = [];
    for (let b = 0; b < rows.length; b++) a1cts.push(...act.relu.cts.slice(b * h, (b + 1) * h), this.one);
    const a1: EncMatrix = { rows: rows.length, cols: h + 1, bits: Math.max(act.relu.bits, f + 1), cts: a1cts };
    const z2 = await this.s1.matMul({ kind: 'enc', m: a1 }, { kind: 'enc', m: transpose(this.w.w2) });
    return { z2, a1, gated: act.products[0] };
  }

  /**
   * Classifies new encrypted samples (rows of features at scale 2^f with a trailing 2^f, under S2's
   * key): S2 keeps them masked for the duration, S1 runs the forward pass, and the output scores
   * (at 2^(2f); positive means benign) come back under `userKey`, which only the user can decrypt.
   * Four rounds (store, two products and the ReLU round, key switch) plus one to forget them.
   *
   * @throws RangeError if the samples' width is not the model's.
   */
  async classify(samples: EncMatrix, userKey: PaillierPublicKey): Promise<PaillierCiphertext[]> {
    if (samples.cols !== this.w.w1.cols) throw new RangeError(`classify: samples have ${samples.cols} columns, the model ${this.w.w1.cols}`);
    const stored = await this.s1.store(samples);
    try {
      const { z2 } = await this.forward(stored, Array.from({ length: samples.rows }, (_, i) => i), false);
      return await this.s1.switchKey(z2, userKey);
    } finally {
      await this.s1.round(this.s1.dropStep(stored));
    }
  }

  /**
   * The weights (W1 row-major, then w2) re-encrypted under `userKey`: S2 switches them on masked
   * values, so neither server sees them and only the user can decrypt. One round.
   */
  async switchWeights(userKey: PaillierPublicKey): Promise<PaillierCiphertext[]> {
    return this.s1.switchKey({ bits: this.w.w1.bits, cts: [...this.w.w1.cts, ...this.w.w2.cts] }, userKey);
  }

  /** One SGD step on the batch `rows` of the stored training features, with targets Enc(±2^f). */
  async step(x: StoredMatrix, targets: readonly bigint[], rows: readonly number[]): Promise<void> {
    const c = this.c;
    const f = c.fracBits;
    const h = c.hidden;
    const B = rows.length;
    const { z2, a1, gated } = await this.forward(x, rows, true);
    const yHat = await this.s1.trunc(z2, f);
    const e = this.sub(yHat, { bits: baseBits(c).t, cts: rows.map((r) => targets[r]!) }, Math.max(yHat.bits, baseBits(c).t) + 1);
    const eRep: EncValues = { bits: e.bits, cts: e.cts.flatMap((ct) => new Array<bigint>(h).fill(ct)) };
    const [delta, gw2] = await this.s1.round(
      await this.s1.mulStep(eRep, gated!),
      await this.s1.matMulStep({ kind: 'enc', m: { rows: 1, cols: B, bits: e.bits, cts: [...e.cts] } }, { kind: 'enc', m: a1 }),
    );
    const deltaT = transpose({ rows: B, cols: h, bits: delta.bits, cts: [...delta.cts] });
    const gw1 = await this.s1.matMul({ kind: 'enc', m: deltaT }, { kind: 'stored', m: x, rows });
    const [u1, u2] = await this.s1.round(
      await this.s1.truncStep(gw1, 2 * f + c.batchLog2 + c.lrLog2),
      await this.s1.truncStep(gw2, f + c.batchLog2 + c.lrLog2),
    );
    const wb = baseBits(c).w;
    this.w = {
      w1: { ...this.w.w1, bits: wb, cts: this.sub(this.w.w1, u1, wb).cts },
      w2: { ...this.w.w2, bits: wb, cts: this.sub(this.w.w2, u2, wb).cts },
    };
  }
}
