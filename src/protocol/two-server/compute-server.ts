/**
 * The S1 side of the two-server protocols: helpers that blind encrypted values, ask the crypto
 * server S2 for what Paillier cannot do, and remove the blinding homomorphically.
 *
 * - Products (`mul`, `matMul`): S1 adds fresh masks, a' = a + r_a, b' = b + r_b; S2 decrypts and
 *   returns Enc(a'·b'); S1 removes the cross terms, Enc(ab) = Enc(a'b') − r_b·Enc(a) − r_a·Enc(b) −
 *   r_a·r_b, with one product of powers per output (Straus: the squarings are shared by every term
 *   of a matrix-product entry).
 * - Truncation (`trunc`): S2 returns Enc(⌊(v + r)/2^f⌋) and S1 subtracts ⌊r/2^f⌋. The result is
 *   ⌊v/2^f⌋ + c with a carry c ∈ {0, 1} that is 1 with probability (v mod 2^f)/2^f (r is uniform
 *   modulo 2^f): unbiased stochastic rounding, at most one unit in the last place off ⌊v/2^f⌋.
 * - ReLU and its derivative (`relu`): S1 sends α_i·z_i (α_i uniform in [2^(ρ−1), 2^ρ)) together
 *   with z_i + r_i and, optionally, masked values u_i + s_i to be multiplied by the derivative, all
 *   in a fresh random order; S2 returns Enc(b·⌊(z+r)/2^f⌋), Enc(b) and Enc(b·(u+s)) with
 *   b = [z > 0]; S1 restores the order and subtracts b·⌊r/2^f⌋ and b·s (one power of Enc(b) each).
 *   relu(z)/2^f carries the same ±1 rounding as `trunc` when z > 0 and is exactly 0 otherwise.
 * - Key switch (`switchKey`): S2 re-encrypts v + r under another public key, S1 subtracts r there.
 * - Stored operands (`store`): a matrix S1 uses many times (training features) is masked and
 *   decrypted by S2 once; products with its rows then cost no upload of it.
 *
 * Every helper is a {@link Step}; {@link ComputeServer.round} sends the steps it is given in one
 * request (one round trip). Masks come from `crypto.getRandomValues`.
 *
 * Timing: S1's work depends on the sizes and on its own random masks, not on the plaintexts.
 *
 * @module
 */
import { BlindmlError, KeyMismatchError, OverflowError } from '../../errors.js';
import { randomBelow, randomBits } from '../../math/random.js';
import type { PowRow } from '../../math/straus.js';
import { PaillierCiphertext } from '../../schemes/paillier/ciphertext.js';
import type { PaillierPublicKey } from '../../schemes/paillier/keys.js';
import { batchInvert, plainFactor } from '../../schemes/paillier/linear.js';
import type { TwoServerCompute } from './compute.js';
import { TwoServerProtocolError } from './errors.js';
import { decodeTwoServerMessage, encodeTwoServerMessage, keyId, TWO_SERVER_VERSION, type Op, type OperandSpec } from './messages.js';
import { BLIND_FACTOR_BITS, MAX_VALUE_BITS, maskBits, maskedSlotBits, SLOT_GUARD_BITS } from './params.js';
import { maskedLayout } from './slots.js';
import type { TwoServerTransport } from './transport.js';

/** Encrypted values (raw ciphertext integers under the session key) with a bound |v| < 2^bits. */
export interface EncValues {
  readonly cts: readonly bigint[];
  readonly bits: number;
}

/** An encrypted matrix, row-major. */
export interface EncMatrix extends EncValues {
  readonly rows: number;
  readonly cols: number;
}

/** A matrix S2 holds masked (see {@link ComputeServer.store}); S1 keeps its ciphertexts and masks. */
export interface StoredMatrix extends EncMatrix {
  readonly id: string;
  readonly masks: readonly bigint[];
}

/** A matrix operand of {@link ComputeServer.matMul}: encrypted, or rows of a stored matrix. */
export type Operand =
  | { readonly kind: 'enc'; readonly m: EncMatrix }
  | { readonly kind: 'stored'; readonly m: StoredMatrix; readonly rows: readonly number[]; readonly transpose?: boolean };

/** Results of {@link ComputeServer.relu}. */
export interface ReluResult {
  /** Enc(relu(z)/2^shift), rounded as `trunc` rounds. */
  readonly relu: EncValues;
  /** Enc([z > 0]). */
  readonly derivative: EncValues;
  /** Enc([z > 0]·u) for each extra input u. */
  readonly products: EncValues[];
}

/** One operation, prepared: what to send, and how to turn S2's answer into the result. */
export interface Step<T> {
  readonly op: Op;
  readonly inputs: readonly bigint[];
  readonly finish: (outputs: bigint[]) => Promise<T>;
}

type StepResults<T extends readonly Step<unknown>[]> = { -readonly [K in keyof T]: T[K] extends Step<infer R> ? R : never };

function checkBits(bits: number, what: string): void {
  if (!Number.isSafeInteger(bits) || bits < 1 || bits > MAX_VALUE_BITS) throw new RangeError(`${what}: value bound of ${bits} bits is out of range`);
}

function randomPermutation(n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Number(randomBelow(BigInt(i + 1)));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

let idCounter = 0;

/** The compute server S1's end of the two-server protocols. */
export class ComputeServer {
  private seq = 0;
  private readonly keyIdentifier: string;

  /**
   * @param publicKey - S2's public key: every ciphertext handled here is under it.
   * @param transport - the channel to S2 (wrap it in a `MeteredTransport` to count traffic).
   * @param compute - where S1's bulk arithmetic runs.
   */
  constructor(
    readonly publicKey: PaillierPublicKey,
    private readonly transport: TwoServerTransport,
    private readonly compute: TwoServerCompute,
  ) {
    this.keyIdentifier = keyId(publicKey.n);
  }

  /**
   * Raw ciphertext integers of `cts` after checking they are under the session key and in range.
   *
   * @throws KeyMismatchError for a ciphertext under another key; InvalidCiphertextError if out of range.
   */
  accept(cts: readonly PaillierCiphertext[]): bigint[] {
    return cts.map((c) => {
      if (!(c instanceof PaillierCiphertext)) throw new TypeError('expected Paillier ciphertexts');
      if (!c.publicKey.equals(this.publicKey)) throw new KeyMismatchError('a ciphertext is under an unknown Paillier key (not the crypto server\'s)');
      return this.publicKey.ciphertext(c.value).value;
    });
  }

  /**
   * Runs the steps in one request to S2 (one round trip) and returns their results in order.
   *
   * @throws CryptoServerUnavailableError (from the transport); TwoServerProtocolError,
   *   KeyMismatchError or OverflowError when S2 refuses the request.
   */
  async round<T extends readonly Step<unknown>[]>(...steps: T): Promise<StepResults<T>> {
    const seq = ++this.seq;
    const nSqBytes = Math.ceil(this.publicKey.nSquared.toString(2).length / 8);
    const request = encodeTwoServerMessage(
      { v: TWO_SERVER_VERSION, type: 'request', key: this.keyIdentifier, seq, ops: steps.map((s) => s.op), inputs: steps.map((s) => s.inputs.length), ciphertexts: steps.flatMap((s) => [...s.inputs]) },
      nSqBytes,
    );
    const response = decodeTwoServerMessage(await this.transport.call(request));
    if (response.type === 'error') throw remoteError(response.code, response.message);
    if (response.type !== 'response' || response.seq !== seq) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', 'the crypto server answered out of order');
    if (response.outputs.length !== steps.length) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', 'the crypto server answered a different number of operations');
    const results: unknown[] = [];
    let at = 0;
    for (let i = 0; i < steps.length; i++) {
      const count = response.outputs[i]!;
      results.push(await steps[i]!.finish(response.ciphertexts.slice(at, at + count)));
      at += count;
    }
    return results as StepResults<T>;
  }

  // ---- steps -------------------------------------------------------------------------------

  /**
   * Step: S2 keeps M + R (R fresh masks) under a new id, for later {@link matMul} operands.
   */
  async storeStep(m: EncMatrix, id = `m${++idCounter}`): Promise<Step<StoredMatrix>> {
    checkBits(m.bits, 'store');
    const masks = m.cts.map(() => randomBits(maskBits(m.bits)));
    const slotBits = maskedSlotBits(m.bits);
    const inputs = await this.maskAndPack(m.cts, masks, slotBits);
    const op: Op = { op: 'store', id, rows: m.rows, cols: m.cols, values: m.cts.length, slotBits };
    return { op, inputs, finish: async (out) => {
      expectCount(out, 0, 'store');
      return { ...m, id, masks };
    } };
  }

  /** Step: S2 forgets a stored matrix. */
  dropStep(m: StoredMatrix): Step<void> {
    return { op: { op: 'drop', id: m.id, values: 0, slotBits: 8 }, inputs: [], finish: async () => {} };
  }

  /**
   * Step: Enc(L·R). Result bound: bits(L) + bits(R) + ⌈log2 k⌉.
   *
   * @throws RangeError if the inner dimensions differ.
   */
  async matMulStep(left: Operand, right: Operand): Promise<Step<EncMatrix>> {
    const l = this.resolve(left);
    const r = this.resolve(right);
    if (l.cols !== r.rows) throw new RangeError(`matMul: ${l.rows}×${l.cols} times ${r.rows}×${r.cols}`);
    const k = l.cols;
    const sentCts: bigint[] = [];
    const sentMasks: bigint[] = [];
    let slotBits = 8;
    for (const o of [l, r]) {
      if (o.spec.kind === 'sent') {
        sentCts.push(...o.cts);
        sentMasks.push(...o.masks);
        slotBits = Math.max(slotBits, maskedSlotBits(o.bits));
      }
    }
    const inputs = await this.maskAndPack(sentCts, sentMasks, slotBits);
    const op: Op = { op: 'matmul', left: l.spec, right: r.spec, values: sentCts.length, slotBits };
    const bits = l.bits + r.bits + Math.ceil(Math.log2(k + 1));
    return { op, inputs, finish: async (out) => {
      expectCount(out, l.rows * r.cols, 'matmul');
      // Cross terms: Σ_t L_it·R'mask_tj + Lmask_it·R_tj + Lmask_it·Rmask_tj.
      const bases = [...l.cts, ...r.cts];
      const rows: PowRow[] = [];
      const constants: bigint[] = [];
      for (let i = 0; i < l.rows; i++) {
        for (let j = 0; j < r.cols; j++) {
          const index: number[] = [];
          const exps: bigint[] = [];
          let c = 0n;
          for (let t = 0; t < k; t++) {
            const lm = l.masks[i * k + t]!;
            const rm = r.masks[t * r.cols + j]!;
            index.push(i * k + t, l.cts.length + t * r.cols + j);
            exps.push(rm, lm);
            c += lm * rm;
          }
          rows.push({ index, exps });
          constants.push(c);
        }
      }
      const cross = await this.compute.powProducts(bases, rows, this.publicKey.nSquared);
      return { rows: l.rows, cols: r.cols, bits, cts: this.subtract(out, cross, constants) };
    } };
  }

  /** Step: Enc(a_i·b_i) elementwise. Result bound: bits(a) + bits(b). @throws RangeError on length mismatch. */
  async mulStep(a: EncValues, b: EncValues): Promise<Step<EncValues>> {
    if (a.cts.length !== b.cts.length) throw new RangeError(`mul: ${a.cts.length} and ${b.cts.length} values`);
    checkBits(a.bits, 'mul');
    checkBits(b.bits, 'mul');
    const count = a.cts.length;
    const ra = a.cts.map(() => randomBits(maskBits(a.bits)));
    const rb = b.cts.map(() => randomBits(maskBits(b.bits)));
    const cts: bigint[] = [];
    const masks: bigint[] = [];
    for (let i = 0; i < count; i++) cts.push(a.cts[i]!, b.cts[i]!), masks.push(ra[i]!, rb[i]!);
    const slotBits = maskedSlotBits(Math.max(a.bits, b.bits));
    const inputs = await this.maskAndPack(cts, masks, slotBits);
    return { op: { op: 'mul', values: 2 * count, slotBits }, inputs, finish: async (out) => {
      expectCount(out, count, 'mul');
      const rows: PowRow[] = ra.map((_, i) => ({ index: [2 * i, 2 * i + 1], exps: [rb[i]!, ra[i]!] }));
      const cross = await this.compute.powProducts(cts, rows, this.publicKey.nSquared);
      return { bits: a.bits + b.bits, cts: this.subtract(out, cross, ra.map((r, i) => r * rb[i]!)) };
    } };
  }

  /** Step: Enc(v/2^shift) with stochastic rounding (see the module notes). */
  async truncStep(v: EncValues, shift: number): Promise<Step<EncValues>> {
    checkBits(v.bits, 'trunc');
    const masks = v.cts.map(() => randomBits(maskBits(v.bits)));
    const slotBits = maskedSlotBits(v.bits);
    const inputs = await this.maskAndPack(v.cts, masks, slotBits);
    const s = BigInt(shift);
    return { op: { op: 'trunc', shift, values: v.cts.length, slotBits }, inputs, finish: async (out) => {
      expectCount(out, v.cts.length, 'trunc');
      const { nSquared } = this.publicKey;
      return { bits: Math.max(1, v.bits - shift + 1), cts: out.map((c, i) => (c * plainFactor(-(masks[i]! >> s), this.publicKey)) % nSquared) };
    } };
  }

  /**
   * Step: ReLU of z with its derivative, and the derivative times each of `extras` (same length
   * as z), all in one round. See the module notes for the blinding.
   *
   * @throws RangeError if an extra's length differs from z's.
   */
  async reluStep(z: EncValues, shift: number, extras: readonly EncValues[] = []): Promise<Step<ReluResult>> {
    checkBits(z.bits, 'relu');
    const count = z.cts.length;
    for (const u of extras) {
      if (u.cts.length !== count) throw new RangeError('relu: extras must have as many values as z');
      checkBits(u.bits, 'relu');
    }
    const { nSquared } = this.publicKey;
    const alphas = z.cts.map(() => randomBits(BLIND_FACTOR_BITS - 1) | (1n << BigInt(BLIND_FACTOR_BITS - 1)));
    const blinded = await this.compute.powProducts([...z.cts], alphas.map((a, i) => ({ index: [i], exps: [a] })), nSquared);
    const r = z.cts.map(() => randomBits(maskBits(z.bits)));
    const s = extras.map((u) => u.cts.map(() => randomBits(maskBits(u.bits))));
    const perm = randomPermutation(count);
    const cts: bigint[] = [];
    const masks: bigint[] = [];
    for (const i of perm) {
      cts.push(blinded[i]!, z.cts[i]!);
      masks.push(0n, r[i]!);
      extras.forEach((u, k) => {
        cts.push(u.cts[i]!);
        masks.push(s[k]![i]!);
      });
    }
    const slotBits = Math.max(z.bits + BLIND_FACTOR_BITS + 2 + SLOT_GUARD_BITS, maskedSlotBits(z.bits), ...extras.map((u) => maskedSlotBits(u.bits)));
    const inputs = await this.maskAndPack(cts, masks, slotBits);
    const size = 2 + extras.length;
    const sh = BigInt(shift);
    return { op: { op: 'relu', shift, extra: extras.length, values: size * count, slotBits }, inputs, finish: async (out) => {
      expectCount(out, size * count, 'relu');
      // Position p of the answer is value perm[p]: collect Enc(b) and the corrections per value.
      const bt = new Array<bigint>(count);
      const bCts = new Array<bigint>(count);
      const bu = extras.map(() => new Array<bigint>(count));
      perm.forEach((i, p) => {
        bt[i] = out[p * size]!;
        bCts[i] = out[p * size + 1]!;
        extras.forEach((_, k) => (bu[k]![i] = out[p * size + 2 + k]!));
      });
      const rows: PowRow[] = [];
      for (let i = 0; i < count; i++) rows.push({ index: [i], exps: [r[i]! >> sh] });
      extras.forEach((_, k) => {
        for (let i = 0; i < count; i++) rows.push({ index: [i], exps: [s[k]![i]!] });
      });
      const corr = await this.compute.powProducts(bCts, rows, nSquared);
      const fixed = this.subtract([...bt, ...bu.flat()], corr, corr.map(() => 0n));
      return {
        relu: { bits: Math.max(1, z.bits - shift + 1), cts: fixed.slice(0, count) },
        derivative: { bits: 1, cts: bCts },
        products: extras.map((u, k) => ({ bits: u.bits, cts: fixed.slice((k + 1) * count, (k + 2) * count) })),
      };
    } };
  }

  /**
   * Step: the same values under `target` (for example the user's own key), via S2 on masked values.
   * The results are re-randomized with the target key's noise.
   */
  async switchKeyStep(v: EncValues, target: PaillierPublicKey): Promise<Step<PaillierCiphertext[]>> {
    checkBits(v.bits, 'switchKey');
    if (maskBits(v.bits) + 2 >= target.bits - 2) throw new RangeError('switchKey: the target key is too small for these values');
    const masks = v.cts.map(() => randomBits(maskBits(v.bits)));
    const slotBits = maskedSlotBits(v.bits);
    const inputs = await this.maskAndPack(v.cts, masks, slotBits);
    return { op: { op: 'switch', targetN: target.n.toString(16), values: v.cts.length, slotBits }, inputs, finish: async (out) => {
      expectCount(out, v.cts.length, 'switch');
      return out.map((c, i) => {
        const ct = target.ciphertext(c);
        return new PaillierCiphertext(target, (ct.value * plainFactor(-masks[i]!, target)) % target.nSquared, false).obfuscate();
      });
    } };
  }

  // ---- one-step conveniences ----------------------------------------------------------------

  /** {@link storeStep} in its own round. */
  async store(m: EncMatrix, id?: string): Promise<StoredMatrix> {
    const [r] = await this.round(await this.storeStep(m, id));
    return r;
  }

  /** {@link matMulStep} in its own round. */
  async matMul(left: Operand, right: Operand): Promise<EncMatrix> {
    const [r] = await this.round(await this.matMulStep(left, right));
    return r;
  }

  /** {@link mulStep} in its own round. */
  async mul(a: EncValues, b: EncValues): Promise<EncValues> {
    const [r] = await this.round(await this.mulStep(a, b));
    return r;
  }

  /** {@link truncStep} in its own round. */
  async trunc(v: EncValues, shift: number): Promise<EncValues> {
    const [r] = await this.round(await this.truncStep(v, shift));
    return r;
  }

  /** {@link reluStep} in its own round. */
  async relu(z: EncValues, shift: number, extras: readonly EncValues[] = []): Promise<ReluResult> {
    const [r] = await this.round(await this.reluStep(z, shift, extras));
    return r;
  }

  /** {@link switchKeyStep} in its own round. */
  async switchKey(v: EncValues, target: PaillierPublicKey): Promise<PaillierCiphertext[]> {
    const [r] = await this.round(await this.switchKeyStep(v, target));
    return r;
  }

  // ---- internals ---------------------------------------------------------------------------

  /** The operand as S2 will see it, with S1's ciphertexts and masks laid out the same way. */
  private resolve(o: Operand): { spec: OperandSpec; rows: number; cols: number; bits: number; cts: bigint[]; masks: bigint[] } {
    checkBits(o.m.bits, 'matMul');
    if (o.kind === 'enc') {
      const { rows, cols } = o.m;
      if (o.m.cts.length !== rows * cols) throw new RangeError(`matMul: a ${rows}×${cols} operand with ${o.m.cts.length} values`);
      const masks = o.m.cts.map(() => randomBits(maskBits(o.m.bits)));
      return { spec: { kind: 'sent', rows, cols }, rows, cols, bits: o.m.bits, cts: [...o.m.cts], masks };
    }
    const s = o.m;
    const cts: bigint[] = [];
    const masks: bigint[] = [];
    for (const r of o.rows) {
      if (!Number.isSafeInteger(r) || r < 0 || r >= s.rows) throw new RangeError(`matMul: stored matrix has no row ${r}`);
      for (let c = 0; c < s.cols; c++) {
        cts.push(s.cts[r * s.cols + c]!);
        masks.push(s.masks[r * s.cols + c]!);
      }
    }
    const spec: OperandSpec = { kind: 'stored', id: s.id, rows: [...o.rows], transpose: o.transpose ?? false };
    if (!o.transpose) return { spec, rows: o.rows.length, cols: s.cols, bits: s.bits, cts, masks };
    const tc: bigint[] = [];
    const tm: bigint[] = [];
    for (let c = 0; c < s.cols; c++) {
      for (let r = 0; r < o.rows.length; r++) {
        tc.push(cts[r * s.cols + c]!);
        tm.push(masks[r * s.cols + c]!);
      }
    }
    return { spec, rows: s.cols, cols: o.rows.length, bits: s.bits, cts: tc, masks: tm };
  }

  /** Packs Enc(v_i) into slots of `slotBits` bits, adds the packed masks and re-randomizes: Enc(v_i + r_i) per slot. */
  private async maskAndPack(cts: readonly bigint[], masks: readonly bigint[], slotBits: number): Promise<bigint[]> {
    if (cts.length === 0) return [];
    const layout = maskedLayout(this.publicKey.bits, slotBits);
    const packed = await this.compute.pack(cts, slotBits, layout.slots, this.publicKey.nSquared);
    const { nSquared } = this.publicKey;
    const s = BigInt(slotBits);
    return packed.map((c, g) => {
      let m = 0n;
      const end = Math.min(cts.length, (g + 1) * layout.slots);
      for (let i = end - 1; i >= g * layout.slots; i--) m = (m << s) + masks[i]!;
      // Fresh noise: S2 made the randomness of the ciphertexts it returned earlier, so a packed
      // product of them would let it link values across rounds and test guesses of S1's masks.
      return (((c * plainFactor(m, this.publicKey)) % nSquared) * this.publicKey.noiseSource.next()) % nSquared;
    });
  }

  /** out_i · (cross_i · g^(constant_i))^(−1) mod n², with one modular inversion for all. */
  private subtract(out: readonly bigint[], cross: readonly bigint[], constants: readonly bigint[]): bigint[] {
    const { nSquared } = this.publicKey;
    const full = cross.map((c, i) => (constants[i] === 0n ? c : (c * plainFactor(constants[i]!, this.publicKey)) % nSquared));
    const inv = batchInvert(full, nSquared);
    return out.map((c, i) => {
      const checked = this.publicKey.ciphertext(c).value;
      return (checked * inv[i]!) % nSquared;
    });
  }
}

function expectCount(out: readonly bigint[], expected: number, what: string): void {
  if (out.length !== expected) throw new TwoServerProtocolError('ERR_BAD_MESSAGE', `${what}: expected ${expected} ciphertexts from the crypto server, got ${out.length}`);
}

function remoteError(code: string, message: string): BlindmlError {
  if (code === 'ERR_KEY_MISMATCH') return new KeyMismatchError(`crypto server: ${message}`);
  if (code === 'ERR_OVERFLOW') return new OverflowError(`crypto server: ${message}`);
  return new TwoServerProtocolError(code, `crypto server: ${message}`);
}

