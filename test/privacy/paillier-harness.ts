/**
 * What the parties of interactive Paillier inference see, recorded for the privacy tests:
 *
 * - {@link RecordingEvaluator}: the service's own internals (every linear map's output, the
 *   values and blinding factors it packs, the re-randomizers it draws), through the service's
 *   `evaluator` hook — the ground truth an attack is scored against;
 * - {@link PublishedSchemeEvaluator}: a deliberately weakened service built from the real one,
 *   which sends the stage outputs in their own order behind one public factor (the published
 *   scheme, up to that constant) — an attack must succeed against it, so a test that uses it
 *   demonstrably can fail;
 * - {@link clientView}: an honest-but-curious client's transport, which decrypts and unpacks every
 *   round it is sent.
 */
import { PaillierInferenceService, decodeMessage, type CompiledPaillierModel } from '../../src/protocol/paillier-inference/index.js';
import type { PaillierKeyPair, PaillierPrivateKey, PaillierPublicKey } from '../../src/schemes/paillier/index.js';
import { SlotLayout } from '../../src/schemes/paillier/packing.js';
import { localRowEvaluator, type IntegerRows, type RowEvaluator } from '../../src/tensor/paillier-sparse.js';

/** One pack call of the service: the ciphertexts in the order sent, their factors, the packed result. */
export interface PackRecord {
  readonly values: readonly bigint[];
  readonly factors: readonly bigint[] | null;
  readonly out: readonly bigint[];
  /** The linear map output the values were taken from (unit order). */
  readonly stageOutputs: readonly bigint[];
}

/** Wraps the service's evaluator and keeps what it computed. */
export class RecordingEvaluator implements RowEvaluator {
  readonly evaluated: bigint[][] = [];
  readonly packs: PackRecord[] = [];
  readonly noises: bigint[][] = [];

  async evaluate(key: PaillierPublicKey, values: readonly bigint[], rows: IntegerRows, rowCount: number): Promise<bigint[]> {
    const out = await localRowEvaluator.evaluate(key, values, rows, rowCount);
    this.evaluated.push(out);
    return out;
  }

  async pack(key: PaillierPublicKey, values: readonly bigint[], factors: readonly bigint[] | null, slotBits: number, perCiphertext: number): Promise<bigint[]> {
    const out = await localRowEvaluator.pack(key, values, factors, slotBits, perCiphertext);
    this.packs.push({ values, factors, out, stageOutputs: this.evaluated.at(-1)! });
    return out;
  }

  async noise(key: PaillierPublicKey, count: number): Promise<bigint[]> {
    const out = await localRowEvaluator.noise(key, count);
    this.noises.push(out);
    return out;
  }

  /** Every ciphertext the service computed deterministically (before any re-randomization). */
  deterministic(): bigint[] {
    return [...this.evaluated.flat(), ...this.packs.flatMap((p) => p.out)];
  }

  /** Per pack call: for each value sent, the index of the stage output it is (the service's permutation). */
  permutations(): number[][] {
    return this.packs.map((p) => {
      const where = new Map(p.stageOutputs.map((c, i) => [c, i]));
      return p.values.map((c) => where.get(c)!);
    });
  }
}

/**
 * The published scheme's service, up to one public constant: every blinded round carries the
 * stage outputs in their own order, each multiplied by the same public R = 2^(M+1+blindBits)
 * (or, with `freshFactors`, by the factors the real service drew, still in unit order). The
 * service's additive noise stays (|e| < R/2, so ReLU still comes out right). Only the client's
 * view matters here: later rounds are not meant to compute the right prediction.
 */
export class PublishedSchemeEvaluator extends RecordingEvaluator {
  constructor(
    private readonly publicFactor: bigint,
    private readonly freshFactors = false,
  ) {
    super();
  }

  override async pack(key: PaillierPublicKey, values: readonly bigint[], factors: readonly bigint[] | null, slotBits: number, perCiphertext: number): Promise<bigint[]> {
    if (!factors) return super.pack(key, values, factors, slotBits, perCiphertext);
    const outputs = this.evaluated.at(-1)!;
    const unitOf = new Map(outputs.map((c, i) => [c, i]));
    const perUnit = new Array<bigint>(outputs.length);
    values.forEach((c, k) => (perUnit[unitOf.get(c)!] = factors[k]!));
    const used = this.freshFactors ? perUnit : outputs.map(() => this.publicFactor);
    return super.pack(key, outputs, used, slotBits, perCiphertext);
  }
}

/** A service for `model` whose evaluator is `evaluator`. */
export function serviceWith(model: CompiledPaillierModel, evaluator: RowEvaluator, id = 'm'): PaillierInferenceService {
  const service = new PaillierInferenceService({ allowInsecureKeys: true, evaluator });
  service.register(id, model);
  return service;
}

/** One session as the client saw it: per activation round, value i of sample k; the final outputs likewise. */
export interface SessionView {
  readonly rounds: { values: bigint[][]; scale: number | null; ciphertexts: bigint[] }[];
  result: { values: bigint[][]; ciphertexts: bigint[] } | null;
}

/**
 * A transport to `service` that, like an honest-but-curious client, decrypts and unpacks every
 * message it receives and records it in `sessions`.
 */
export function clientView(service: PaillierInferenceService, keys: PaillierKeyPair): { transport: { send(b: Uint8Array): Promise<Uint8Array> }; sessions: SessionView[] } {
  const sessions: SessionView[] = [];
  const { publicKey, privateKey } = keys;
  let guardBits = 0;
  let batch = 1;
  let batchSlotBits = 0;
  let samples = 1;
  const unpack = (cts: readonly bigint[], count: number, perCiphertext: number, slotBits: number): bigint[][] => {
    const out: bigint[][] = [];
    for (const c of cts) {
      const m = privateKey.decrypt(publicKey.ciphertext(c));
      if (perCiphertext === 1) out.push(SlotLayout.fromSlotBits(publicKey.bits, batchSlotBits, guardBits, batch).unpack(m, publicKey.n, samples));
      else for (const v of SlotLayout.fromSlotBits(publicKey.bits, slotBits, guardBits, perCiphertext).unpack(m, publicKey.n, Math.min(perCiphertext, count - out.length))) out.push([v]);
    }
    return out;
  };
  const transport = {
    async send(bytes: Uint8Array): Promise<Uint8Array> {
      const request = decodeMessage(bytes);
      if (request.type === 'input') samples = request.samples;
      const reply = await service.handle(bytes);
      const msg = decodeMessage(reply);
      if (msg.type === 'opened') {
        ({ guardBits, batch, slotBits: batchSlotBits } = msg.info);
        sessions.push({ rounds: [], result: null });
      } else if (msg.type === 'activate') {
        sessions.at(-1)!.rounds.push({ values: unpack(msg.ciphertexts, msg.spec.values, msg.spec.valuesPerCiphertext, msg.spec.slotBits), scale: msg.spec.scale, ciphertexts: msg.ciphertexts });
      } else if (msg.type === 'result') {
        // A weakened service computes later rounds wrongly: its result may not even unpack.
        let values: bigint[][] = [];
        try {
          values = unpack(msg.ciphertexts, msg.outputs, msg.valuesPerCiphertext, msg.slotBits);
        } catch {
          values = [];
        }
        sessions.at(-1)!.result = { values, ciphertexts: msg.ciphertexts };
      }
      return reply;
    },
  };
  return { transport, sessions };
}

/** The signed plaintext of a raw ciphertext. */
export function decryptSigned(keys: PaillierKeyPair, c: bigint): bigint {
  return keys.privateKey.decryptSigned(keys.publicKey.ciphertext(c));
}

/**
 * The n-th-residue part of a ciphertext, c·g^(−m) mod n² for its plaintext m: what
 * re-randomization changes and a homomorphic operation on known ciphertexts does not.
 */
export function randomnessOf(privateKey: PaillierPrivateKey, c: bigint): bigint {
  const { n, nSquared } = privateKey.publicKey;
  const m = privateKey.decryptRaw(c);
  return (c * ((1n - m * n) % nSquared + nSquared)) % nSquared;
}
