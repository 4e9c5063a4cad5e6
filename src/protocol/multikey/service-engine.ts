/**
 * The training service's side of the two-server arithmetic: it runs the training program on its
 * own shares, forwards its local instructions to the crypto server with the next request, and
 * computes every product's cross term under the training key (see `cross.ts`).
 *
 * Timing: the service's exponentiations take time that depends on its own shares (uniform random
 * numbers); nothing in its timing depends on the crypto server's shares or on the data.
 *
 * @module
 */
import { FormatError } from '../../errors.js';
import type { PaillierCiphertext } from '../../schemes/paillier/ciphertext.js';
import type { PaillierPublicKey } from '../../schemes/paillier/keys.js';
import { plainFactor } from '../../schemes/paillier/linear.js';
import { b64ToBig, bigToB64 } from './codec.js';
import { wrapRaw, type PaillierCompute } from './compute.js';
import { CROSS_SLOT_BITS, crossSlots, packSlots, planMatmul, planMul, type CrossPlan } from './cross.js';
import type { TrainingEngine } from './engine.js';
import { FromCryptoSchema, MULTIKEY_VERSION, parseMessage, type FromCrypto, type ToCrypto } from './messages.js';
import { applyLocal, getTensor, interactiveShape, localProduct, type InteractiveInstr, type LocalInstr, type RingMatrix, type ShareStore } from './program.js';
import { randomBitsBig, reduce } from './ring.js';
import type { Channel } from './transport.js';

/** A message to the crypto server without its version and round number. */
export type CryptoRequestBody = ToCrypto extends infer M ? (M extends unknown ? Omit<M, 'v' | 'seq'> : never) : never;

/** The service's executor (implements the training loop's engine). */
export class ServiceEngine implements TrainingEngine {
  store: ShareStore = new Map();
  private pendingLocal: LocalInstr[] = [];
  private seq = 0;
  private readonly slots: number;

  constructor(
    private readonly channel: Channel,
    private readonly key: PaillierPublicKey,
    private readonly compute: PaillierCompute,
  ) {
    this.slots = crossSlots(key.bits);
  }

  run(instr: LocalInstr): void {
    applyLocal(this.store, instr, 'service');
    this.pendingLocal.push(instr);
  }

  /** Sends a request to the crypto server and checks the reply's type and round. */
  async request<T extends FromCrypto['type']>(msg: CryptoRequestBody, expect: T): Promise<Extract<FromCrypto, { type: T }>> {
    const seq = ++this.seq;
    const reply = parseMessage(FromCryptoSchema, await this.channel.request({ v: MULTIKEY_VERSION, seq, ...msg }), 'reply from the crypto server');
    if (reply.type !== expect || reply.seq !== seq) throw new FormatError(`crypto server answered '${reply.type}' for round ${reply.seq}, expected '${expect}' for ${seq}`);
    return reply as Extract<FromCrypto, { type: T }>;
  }

  /** Sends the queued local instructions. */
  async sync(): Promise<void> {
    if (this.pendingLocal.length === 0) return;
    await this.request({ type: 'sync', local: this.pendingLocal.splice(0) }, 'ack');
  }

  async interact(ops: readonly InteractiveInstr[]): Promise<void> {
    for (const op of ops) interactiveShape(getTensor(this.store, op.a), getTensor(this.store, op.b), op.op);
    const opened = await this.request({ type: 'open', local: this.pendingLocal.splice(0), ops: [...ops] }, 'opened');
    if (opened.cts.length !== ops.length) throw new FormatError(`crypto server opened ${opened.cts.length} products, expected ${ops.length}`);
    const crossed = await Promise.all(ops.map((op, i) => this.crossTerms(op, opened.cts[i]!.map((s) => this.key.ciphertext(b64ToBig(s))))));
    const noise = await this.compute.noise(this.key, crossed.reduce((s, c) => s + c.finals.length, 0));
    let at = 0;
    const { nSquared } = this.key;
    const results = crossed.map(({ finals, plan, out }) =>
      finals.map((ct, f) => {
        const positions = plan.finals[f]!;
        const rho = positions.map(() => randomBitsBig(plan.rhoBits));
        positions.forEach((p, j) => {
          out.data[p] = reduce(out.data[p]! - rho[j]!);
        });
        // Mask, then re-randomize: the crypto server knows the randomness of its own
        // ciphertexts and could otherwise test guesses of the service's exponents.
        const masked = (((ct * plainFactor(packSlots(rho), this.key)) % nSquared) * noise[at++]!) % nSquared;
        return bigToB64(masked);
      }),
    );
    await this.request({ type: 'cross', open: opened.seq, results }, 'ack');
    ops.forEach((op, i) => this.store.set(op.out, crossed[i]!.out));
  }

  /** The packed, unmasked cross term ciphertexts of one product, and the service's local product. */
  private async crossTerms(op: InteractiveInstr, cts: PaillierCiphertext[]): Promise<{ finals: bigint[]; plan: CrossPlan; out: RingMatrix }> {
    const a = getTensor(this.store, op.a);
    const b = getTensor(this.store, op.b);
    const out = localProduct(a, b, op.op);
    if (op.op === 'mul') {
      const n = a.data.length;
      const plan = planMul(n, this.slots);
      const square = op.a === op.b;
      if (cts.length !== (square ? n : 2 * n)) throw new FormatError(`crypto server sent ${cts.length} ciphertexts for a ${n}-element product`);
      const values = cts.map((c) => c.value);
      if (square) {
        const finals = await this.compute.pack(this.key, values, a.data.map((v) => 2n * v), CROSS_SLOT_BITS, this.slots);
        return { finals, plan, out };
      }
      const [p1, p2] = await Promise.all([
        this.compute.pack(this.key, values.slice(0, n), b.data, CROSS_SLOT_BITS, this.slots),
        this.compute.pack(this.key, values.slice(n), a.data, CROSS_SLOT_BITS, this.slots),
      ]);
      return { finals: p1.map((v, i) => (v * p2[i]!) % this.key.nSquared), plan, out };
    }
    const m = a.rows;
    const k = a.cols;
    const n = b.cols;
    const plan = planMatmul(m, k, n, this.slots);
    const expected = (plan.rowChunks.length + plan.colChunks.length) * k;
    if (cts.length !== expected) throw new FormatError(`crypto server sent ${cts.length} ciphertexts for a ${m}×${k}·${k}×${n} product, expected ${expected}`);
    // Term A2·B1: rows n of weights B1[·][c]; term A1·B2: rows m of weights A1[r][·].
    const bT = new Array<bigint>(n * k);
    for (let c = 0; c < n; c++) for (let l = 0; l < k; l++) bT[c * k + l] = b.data[l * n + c]!;
    const parts = await Promise.all([
      ...plan.rowChunks.map((_, ri) => this.compute.matVec(cts.slice(ri * k, ri * k + k), bT, n)),
      ...plan.colChunks.map((_, ci) => {
        const from = (plan.rowChunks.length + ci) * k;
        return this.compute.matVec(cts.slice(from, from + k), a.data, m);
      }),
    ]);
    const items = parts.flat().map((c) => c.value);
    const finals: bigint[] = [];
    for (const run of plan.runs) {
      const values = items.slice(run.from, run.to);
      if (run.perCiphertext === 1) finals.push(...values);
      else finals.push(...(await this.compute.pack(this.key, values, null, CROSS_SLOT_BITS * run.used, run.perCiphertext)));
    }
    return { finals, plan, out };
  }

  /** Wraps raw values under the training key (for callers holding ciphertext integers). */
  wrap(values: readonly bigint[]): PaillierCiphertext[] {
    return wrapRaw(this.key, values);
  }
}
