/**
 * The crypto server: holds the training key's private half and its own shares of every training
 * value, replays the service's local instructions on its shares, encrypts its operand shares under
 * the training key for each product, and decrypts the service's masked cross terms. It never sees
 * a record, weight, activation or gradient: every value it decrypts is its own share plus a
 * uniform 64-bit mask, or a cross term plus a mask 40 bits wider (see docs/security.md).
 *
 * @module
 */
import { FormatError, ShapeError } from '../../errors.js';
import type { PaillierPrivateKey } from '../../schemes/paillier/keys.js';
import { SlotLayout } from '../../schemes/paillier/packing.js';
import { b64ToBig, bigToB64 } from './codec.js';
import type { PaillierCompute } from './compute.js';
import { CROSS_SLOT_BITS, crossSlots, packSlots, planMatmul, planMul, unpackSlots } from './cross.js';
import { MULTIKEY_VERSION, ToCryptoSchema, parseMessage, type FromCrypto, type ToCrypto } from './messages.js';
import { applyLocal, getTensor, interactiveShape, localProduct, type InteractiveInstr, type LocalInstr, type RingMatrix, type ShareStore } from './program.js';
import { reduce } from './ring.js';
import { serializeStore, deserializeStore } from './state.js';

/** Where a party keeps its per-epoch checkpoints (a directory on disk in the CLI). */
export interface CheckpointStore {
  /** Writes `state` for `party` at `epoch`, atomically. */
  save(party: string, epoch: number, state: string): Promise<void>;
  /** The state saved for `party` at `epoch`, if any. */
  load(party: string, epoch: number): Promise<string | undefined>;
}

/** Options of {@link CryptoServer}. */
export interface CryptoServerOptions {
  readonly compute: PaillierCompute;
  readonly checkpoints?: CheckpointStore;
  /** Tensors the server will reveal its shares of (the trained model); default W1, b1, W2, b2. */
  readonly revealable?: readonly string[];
}

/** Guard bits of the signed slots data shares arrive in. */
export const IMPORT_GUARD_BITS = 6;

/** The crypto server's side of training. */
export class CryptoServer {
  readonly store: ShareStore = new Map();
  private pending: { seq: number; ops: readonly InteractiveInstr[] } | undefined;
  private readonly slots: number;

  constructor(
    private readonly key: PaillierPrivateKey,
    private readonly options: CryptoServerOptions,
  ) {
    this.slots = crossSlots(key.publicKey.bits);
    if (this.slots < 1) throw new RangeError('the training key is too small for the cross-term layout');
  }

  /** Answers one message; errors become `{ type: 'error' }` replies with one readable line. */
  async handle(raw: unknown): Promise<FromCrypto | { v: 1; type: 'error'; message: string }> {
    try {
      return await this.dispatch(parseMessage(ToCryptoSchema, raw, 'message to the crypto server'));
    } catch (err) {
      this.pending = undefined;
      return { v: MULTIKEY_VERSION, type: 'error', message: err instanceof Error ? err.message : String(err) };
    }
  }

  private async dispatch(msg: ToCrypto): Promise<FromCrypto> {
    const ack = { v: MULTIKEY_VERSION, type: 'ack', seq: msg.seq } as const;
    switch (msg.type) {
      case 'open':
        this.replay(msg.local);
        return { v: MULTIKEY_VERSION, type: 'opened', seq: msg.seq, cts: await this.open(msg.seq, msg.ops) };
      case 'cross':
        await this.cross(msg.open, msg.results);
        return ack;
      case 'sync':
        this.replay(msg.local);
        return ack;
      case 'import':
        await this.importShares(msg);
        return ack;
      case 'zeros':
        for (const t of msg.tensors) this.store.set(t.id, { rows: t.rows, cols: t.cols, data: new Array<bigint>(t.rows * t.cols).fill(0n) });
        return ack;
      case 'checkpoint':
        if (!this.options.checkpoints) throw new FormatError('the crypto server keeps no checkpoints');
        await this.options.checkpoints.save('crypto-server', msg.epoch, serializeStore(this.store, msg.epoch));
        return ack;
      case 'restore': {
        const text = await this.options.checkpoints?.load('crypto-server', msg.epoch);
        if (text === undefined) throw new FormatError(`the crypto server has no checkpoint for epoch ${msg.epoch}`);
        this.store.clear();
        for (const [k, t] of deserializeStore(text, msg.epoch)) this.store.set(k, t);
        return ack;
      }
      case 'reveal': {
        const allowed = this.options.revealable ?? ['W1', 'b1', 'W2', 'b2'];
        const tensors = msg.ids.map((tid) => {
          if (!allowed.includes(tid)) throw new FormatError(`the crypto server does not reveal '${tid}'`);
          const t = getTensor(this.store, tid);
          return { id: tid, rows: t.rows, cols: t.cols, data: t.data.map(String) };
        });
        return { v: MULTIKEY_VERSION, type: 'shares', seq: msg.seq, tensors };
      }
    }
  }

  private replay(local: readonly LocalInstr[]): void {
    for (const instr of local) applyLocal(this.store, instr, 'crypto');
  }

  private async open(seq: number, ops: readonly InteractiveInstr[]): Promise<string[][]> {
    const plaintexts: bigint[][] = ops.map((op) => {
      const a = getTensor(this.store, op.a);
      const b = getTensor(this.store, op.b);
      interactiveShape(a, b, op.op);
      if (op.op === 'mul') return op.a === op.b ? [...a.data] : [...a.data, ...b.data];
      const plan = planMatmul(a.rows, a.cols, b.cols, this.slots);
      const out: bigint[] = [];
      for (const rc of plan.rowChunks) {
        for (let l = 0; l < a.cols; l++) out.push(packSlots(Array.from({ length: rc.len }, (_, j) => a.data[(rc.start + j) * a.cols + l]!)));
      }
      for (const cc of plan.colChunks) {
        for (let l = 0; l < b.rows; l++) out.push(packSlots(Array.from({ length: cc.len }, (_, j) => b.data[l * b.cols + cc.start + j]!)));
      }
      return out;
    });
    const cts = await this.options.compute.encryptMany(this.key.publicKey, plaintexts.flat());
    this.pending = { seq, ops };
    let at = 0;
    return plaintexts.map((p) => cts.slice(at, (at += p.length)).map((c) => bigToB64(c.value)));
  }

  private async cross(seq: number, results: readonly string[][]): Promise<void> {
    const pending = this.pending;
    this.pending = undefined;
    if (!pending || pending.seq !== seq) throw new FormatError(`cross terms for round ${seq} arrived without a matching open`);
    if (results.length !== pending.ops.length) throw new FormatError(`expected cross terms for ${pending.ops.length} products, got ${results.length}`);
    const plans = pending.ops.map((op) => {
      const a = getTensor(this.store, op.a);
      const b = getTensor(this.store, op.b);
      return op.op === 'matmul' ? planMatmul(a.rows, a.cols, b.cols, this.slots) : planMul(a.data.length, this.slots);
    });
    const pk = this.key.publicKey;
    const cts = results.flatMap((list, i) => {
      if (list.length !== plans[i]!.finals.length) throw new FormatError(`product ${i}: expected ${plans[i]!.finals.length} ciphertexts, got ${list.length}`);
      return list.map((s) => pk.ciphertext(b64ToBig(s)));
    });
    const plains = await this.options.compute.decryptMany(this.key, cts);
    let at = 0;
    const outputs: [string, RingMatrix][] = pending.ops.map((op, i) => {
      const out = localProduct(getTensor(this.store, op.a), getTensor(this.store, op.b), op.op);
      for (const positions of plans[i]!.finals) {
        const values = unpackSlots(plains[at++]!, positions.length);
        positions.forEach((p, j) => {
          out.data[p] = reduce(out.data[p]! + values[j]!);
        });
      }
      return [op.out, out];
    });
    for (const [tid, m] of outputs) this.store.set(tid, m);
  }

  private async importShares(msg: Extract<ToCrypto, { type: 'import' }>): Promise<void> {
    const pk = this.key.publicKey;
    const layout = SlotLayout.fromSlotBits(pk.bits, msg.slotBits, IMPORT_GUARD_BITS);
    for (const t of msg.tensors) {
      const total = t.rows * t.cols;
      if (t.ciphertexts.length !== Math.ceil(total / layout.slots)) {
        throw new ShapeError(`import '${t.id}': ${total} values need ${Math.ceil(total / layout.slots)} ciphertexts, got ${t.ciphertexts.length}`);
      }
    }
    const all = msg.tensors.flatMap((t) => t.ciphertexts.map((s) => pk.ciphertext(b64ToBig(s))));
    const plains = await this.options.compute.decryptMany(this.key, all);
    let at = 0;
    for (const t of msg.tensors) {
      const total = t.rows * t.cols;
      const data: bigint[] = [];
      for (let i = 0; i < t.ciphertexts.length; i++) data.push(...layout.unpack(plains[at++]!, pk.n, Math.min(layout.slots, total - i * layout.slots)).map(reduce));
      this.store.set(t.id, { rows: t.rows, cols: t.cols, data });
    }
  }

}

/** Bits of a cross-term slot (re-exported for the service side). */
export { CROSS_SLOT_BITS };
