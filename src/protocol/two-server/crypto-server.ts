/**
 * S2, the crypto server of the two-server protocols: it holds the Paillier private key and helps
 * S1 with what Paillier cannot do, only ever on values S1 has blinded. It decrypts masked values
 * (v + r with a statistical mask r it never learns), multiplies, truncates and compares them in
 * the clear, and answers with fresh encryptions. For comparisons it sees α·z for a random α > 0
 * in shuffled order: the signs and rough magnitudes of values it cannot tie to positions.
 *
 * What S2 keeps between requests: the masked matrices S1 asked it to store (data S1 reuses every
 * epoch, such as the masked training features); nothing else.
 *
 * Timing: time depends on the number and size of the values, not on the plaintexts (up to
 * BigInt's size-dependent arithmetic on masked values, which are dominated by their masks).
 *
 * @module
 */
import { BlindmlError, KeyMismatchError } from '../../errors.js';
import { PaillierPublicKey, type PaillierPrivateKey } from '../../schemes/paillier/keys.js';
import { LocalTwoServerCompute, type TwoServerCompute } from './compute.js';
import { TwoServerProtocolError } from './errors.js';
import { decodeTwoServerMessage, encodeTwoServerMessage, keyId, TWO_SERVER_VERSION, type Op, type OperandSpec, type RequestMessage } from './messages.js';
import { maskedLayout } from './slots.js';
import type { TwoServerHandler } from './transport.js';

/** Options of {@link CryptoServer}. */
export interface CryptoServerOptions {
  /** Where decryption and encryption run (default: the calling thread). */
  compute?: TwoServerCompute;
  /** Accept key-switch targets below 2048 bits (tests only). */
  insecure?: boolean;
  /** Most values kept in stored matrices (default 10 million). */
  maxStoredValues?: number;
  /**
   * The only public keys key switches may target (the user's result keys). Without this list S2
   * re-encrypts for any key S1 names, which a dishonest S1 could use to read values with a key of
   * its own; deployments should always set it.
   */
  switchTargets?: readonly PaillierPublicKey[];
}

interface StoredMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: bigint[];
}

/** A plaintext matrix, row-major. */
interface Plain {
  readonly rows: number;
  readonly cols: number;
  readonly data: bigint[];
}

/** What one operation produces: plaintexts to encrypt under the server's key or a target key. */
interface OpOutput {
  readonly values: bigint[];
  readonly target: PaillierPublicKey | null;
}

function floorShift(v: bigint, shift: number): bigint {
  // BigInt's >> is an arithmetic shift: it rounds toward −∞, which is the floor we want.
  return v >> BigInt(shift);
}

export class CryptoServer implements TwoServerHandler {
  /** Identifier of the key this server holds (what requests must name). */
  readonly keyId: string;
  private readonly compute: TwoServerCompute;
  private readonly stored = new Map<string, StoredMatrix>();
  private readonly targets = new Map<string, PaillierPublicKey>();
  private storedValues = 0;

  constructor(
    private readonly privateKey: PaillierPrivateKey,
    private readonly options: CryptoServerOptions = {},
  ) {
    this.keyId = keyId(privateKey.publicKey.n);
    this.compute = options.compute ?? new LocalTwoServerCompute();
  }

  /** The public key S1 and the user encrypt under. */
  get publicKey(): PaillierPublicKey {
    return this.privateKey.publicKey;
  }

  /**
   * Answers one request. Never throws: a bad request gets an error message (its code and one
   * line), so S1 can report it.
   */
  async handle(bytes: Uint8Array): Promise<Uint8Array> {
    let seq: number | null = null;
    try {
      const msg = decodeTwoServerMessage(bytes);
      if (msg.type !== 'request') throw new TwoServerProtocolError('ERR_BAD_MESSAGE', `the crypto server expects requests, got '${msg.type}'`);
      seq = msg.seq;
      if (msg.key !== this.keyId) throw new KeyMismatchError('the request is for a Paillier key this crypto server does not hold');
      const outputs = await this.process(msg);
      const width = Math.max(...outputs.map((o) => byteWidth(o.target ?? this.publicKey)), byteWidth(this.publicKey));
      const cts = await this.encryptOutputs(outputs);
      return encodeTwoServerMessage({ v: TWO_SERVER_VERSION, type: 'response', seq: msg.seq, outputs: outputs.map((o) => o.values.length), ciphertexts: cts }, width);
    } catch (err) {
      const known = err instanceof BlindmlError;
      const code = known ? err.code : 'ERR_INTERNAL';
      const message = known ? err.message : 'internal error in the crypto server';
      return encodeTwoServerMessage({ v: TWO_SERVER_VERSION, type: 'error', seq, code, message: message.slice(0, 2000), ciphertexts: [] }, 1);
    }
  }

  private async process(msg: RequestMessage): Promise<OpOutput[]> {
    const plaintexts = await this.compute.decrypt(this.privateKey, msg.ciphertexts);
    const outputs: OpOutput[] = [];
    let offset = 0;
    for (let i = 0; i < msg.ops.length; i++) {
      const op = msg.ops[i]!;
      const inputs = msg.inputs[i]!;
      const values = this.unpack(op, plaintexts.slice(offset, offset + inputs));
      offset += inputs;
      outputs.push(this.run(op, values));
    }
    return outputs;
  }

  private unpack(op: Op, plaintexts: bigint[]): bigint[] {
    if (op.values === 0) {
      if (plaintexts.length !== 0) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', `operation '${op.op}' takes no ciphertexts`);
      return [];
    }
    const { n, bits } = this.publicKey;
    let layout;
    try {
      layout = maskedLayout(bits, op.slotBits);
    } catch {
      throw new TwoServerProtocolError('ERR_BAD_MESSAGE', `slots of ${op.slotBits} bits do not fit this key`);
    }
    const expected = Math.ceil(op.values / layout.slots);
    if (plaintexts.length !== expected) {
      throw new TwoServerProtocolError('ERR_BAD_MESSAGE', `operation '${op.op}': ${op.values} values need ${expected} ciphertexts, got ${plaintexts.length}`);
    }
    const out: bigint[] = [];
    for (let c = 0; c < plaintexts.length; c++) {
      const inThis = Math.min(layout.slots, op.values - c * layout.slots);
      out.push(...layout.unpack(plaintexts[c]!, n, inThis));
    }
    return out;
  }

  private run(op: Op, v: bigint[]): OpOutput {
    const own = (values: bigint[]): OpOutput => ({ values, target: null });
    switch (op.op) {
      case 'store':
        return own(this.store(op.id, op.rows, op.cols, v));
      case 'drop': {
        const m = this.stored.get(op.id);
        if (m) this.storedValues -= m.data.length;
        this.stored.delete(op.id);
        return own([]);
      }
      case 'matmul':
        return own(this.matmul(op.left, op.right, v));
      case 'mul': {
        if (v.length % 2 !== 0) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', 'mul takes pairs of values');
        const out: bigint[] = [];
        for (let i = 0; i < v.length; i += 2) out.push(v[i]! * v[i + 1]!);
        return own(out);
      }
      case 'trunc':
        return own(v.map((x) => floorShift(x, op.shift)));
      case 'relu':
        return own(relu(v, op.shift, op.extra));
      case 'switch':
        return { values: v, target: this.target(op.targetN) };
    }
  }

  private store(id: string, rows: number, cols: number, v: bigint[]): bigint[] {
    if (v.length !== rows * cols) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', `store '${id}': ${rows}×${cols} values expected, got ${v.length}`);
    const limit = this.options.maxStoredValues ?? 10_000_000;
    const previous = this.stored.get(id)?.data.length ?? 0;
    if (this.storedValues - previous + v.length > limit) throw new TwoServerProtocolError('ERR_STORE_FULL', `the crypto server keeps at most ${limit} stored values`);
    this.storedValues += v.length - previous;
    this.stored.set(id, { rows, cols, data: v });
    return [];
  }

  private operand(spec: OperandSpec, sent: bigint[], offset: number): { m: Plain; used: number } {
    if (spec.kind === 'sent') {
      const size = spec.rows * spec.cols;
      if (offset + size > sent.length) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', 'matmul: fewer values than the operands need');
      return { m: { rows: spec.rows, cols: spec.cols, data: sent.slice(offset, offset + size) }, used: size };
    }
    const s = this.stored.get(spec.id);
    if (!s) throw new TwoServerProtocolError('ERR_UNKNOWN_MATRIX', `no stored matrix '${spec.id}' on the crypto server`);
    const data: bigint[] = [];
    for (const r of spec.rows) {
      if (r >= s.rows) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', `row ${r} of stored matrix '${spec.id}' does not exist`);
      for (let c = 0; c < s.cols; c++) data.push(s.data[r * s.cols + c]!);
    }
    const m = { rows: spec.rows.length, cols: s.cols, data };
    return { m: spec.transpose ? transpose(m) : m, used: 0 };
  }

  private matmul(left: OperandSpec, right: OperandSpec, v: bigint[]): bigint[] {
    const l = this.operand(left, v, 0);
    const r = this.operand(right, v, l.used);
    if (l.used + r.used !== v.length) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', 'matmul: more values than the operands need');
    const a = l.m;
    const b = r.m;
    if (a.cols !== b.rows) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', `matmul: ${a.rows}×${a.cols} times ${b.rows}×${b.cols}`);
    const out = new Array<bigint>(a.rows * b.cols);
    for (let i = 0; i < a.rows; i++) {
      for (let j = 0; j < b.cols; j++) {
        let s = 0n;
        for (let k = 0; k < a.cols; k++) s += a.data[i * a.cols + k]! * b.data[k * b.cols + j]!;
        out[i * b.cols + j] = s;
      }
    }
    return out;
  }

  private target(hexN: string): PaillierPublicKey {
    let key = this.targets.get(hexN);
    const allowed = this.options.switchTargets;
    if (allowed && !allowed.some((k) => k.n.toString(16) === hexN)) {
      throw new KeyMismatchError('the key switch targets a public key the crypto server was not told to serve');
    }
    if (!key) {
      key = new PaillierPublicKey(BigInt(`0x${hexN}`), { insecure: this.options.insecure ?? false });
      this.targets.set(hexN, key);
    }
    return key;
  }

  private async encryptOutputs(outputs: OpOutput[]): Promise<bigint[]> {
    const check = (key: PaillierPublicKey, values: bigint[]): void => {
      const half = key.n >> 1n;
      for (const x of values) {
        if (x >= half || -x >= half) throw new TwoServerProtocolError('ERR_OVERFLOW', 'a result does not fit the plaintext space');
      }
    };
    const own = outputs.filter((o) => o.target === null).flatMap((o) => o.values);
    check(this.publicKey, own);
    const ownCts = await this.compute.encrypt(this.publicKey, own);
    const result: bigint[] = [];
    let at = 0;
    for (const o of outputs) {
      if (o.target === null) {
        result.push(...ownCts.slice(at, at + o.values.length));
        at += o.values.length;
      } else {
        check(o.target, o.values);
        result.push(...(await this.compute.encrypt(o.target, o.values)));
      }
    }
    return result;
  }
}

function transpose(m: Plain): Plain {
  const data = new Array<bigint>(m.rows * m.cols);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) data[j * m.rows + i] = m.data[i * m.cols + j]!;
  return { rows: m.cols, cols: m.rows, data };
}

/** Items (αz, z + r, extras…) → (b·⌊(z+r)/2^shift⌋, b, b·extras…), b = [αz > 0]. */
function relu(v: bigint[], shift: number, extra: number): bigint[] {
  const size = 2 + extra;
  if (v.length % size !== 0) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', `relu takes items of ${size} values`);
  const out: bigint[] = [];
  for (let i = 0; i < v.length; i += size) {
    const positive = v[i]! > 0n;
    out.push(positive ? floorShift(v[i + 1]!, shift) : 0n, positive ? 1n : 0n);
    for (let k = 0; k < extra; k++) out.push(positive ? v[i + 2 + k]! : 0n);
  }
  return out;
}

function byteWidth(key: PaillierPublicKey): number {
  return Math.ceil(key.nSquared.toString(2).length / 8);
}
