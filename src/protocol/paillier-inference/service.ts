/**
 * The service side of interactive Paillier inference: holds compiled models, runs sessions as
 * state machines (open → input → activate/activated… → result), and never holds a secret key.
 *
 * `handle(bytes)` never throws: every failure becomes an `error` message and ends that session
 * only. Sessions idle longer than the timeout are dropped.
 *
 * @module
 */
import { BlindmlError, InvalidCiphertextError } from '../../errors.js';
import { base64UrlToBigInt } from '../../math/bigint.js';
import { gcd } from '../../math/modular.js';
import { randomBits } from '../../math/random.js';
import { MIN_SECURE_BITS, PaillierPublicKey } from '../../schemes/paillier/keys.js';
import { plainFactor } from '../../schemes/paillier/linear.js';
import { SlotLayout } from '../../schemes/paillier/packing.js';
import { localRowEvaluator, type RowEvaluator } from '../../tensor/paillier-sparse.js';
import type { CompiledPaillierModel } from './compile.js';
import { decodeMessage, encodeMessage, message, ProtocolError, type ActivationSpec, type Message, type MessageOf, type SessionInfo } from './messages.js';
import { lastReaders, MODEL_INPUT, sourceSize } from './plan.js';
import { blindingFactor, integerBias, integerExponents, joinScales, packedBlindingNoise, randomPermutation, replicator, valueLayout, type ScaledSource } from './session-math.js';

/** Options of {@link PaillierInferenceService}. */
export interface ServiceOptions {
  /** Drop sessions idle this long (default 5 minutes). */
  idleTimeoutMs?: number;
  /** Most concurrent sessions (default 64). */
  maxSessions?: number;
  /** Accept client keys below 2048 bits (tests only). */
  allowInsecureKeys?: boolean;
  /** Where linear maps run (default: this thread). */
  evaluator?: RowEvaluator;
  /** Largest message accepted, in bytes. */
  maxMessageBytes?: number;
}

interface PendingRound {
  /** units[k] = the original unit index sent k-th. */
  order: Int32Array;
  /** Blinding factor of each original unit (1 when values travel unblinded). */
  factors: Float64Array;
}

interface Session {
  readonly id: string;
  readonly model: CompiledPaillierModel;
  readonly key: PaillierPublicKey;
  readonly batch: number;
  readonly layout: SlotLayout;
  /** The plaintext 1 replicated into every sample's slot (set when the samples arrive). */
  ones: bigint;
  /** Samples in the session (set when they arrive). */
  samples: number;
  readonly width: number;
  stage: number;
  /** What the session waits for; 'busy' while a request is being computed (a second one is refused). */
  expecting: 'input' | 'activated' | 'busy';
  /**
   * Per source (index source + 1: the client's input, then each round's returned values in the
   * plan's unit order with their scales, blinding folded in), kept until the last stage that reads
   * it has run.
   */
  held: (ScaledSource<bigint> | null)[];
  pending: PendingRound | null;
  lastSeen: number;
}

export class PaillierInferenceService {
  private readonly models = new Map<string, CompiledPaillierModel>();
  private readonly sessions = new Map<string, Session>();
  private readonly idleTimeoutMs: number;
  private readonly maxSessions: number;
  private readonly evaluator: RowEvaluator;
  private readonly allowInsecureKeys: boolean;
  private readonly maxMessageBytes: number | undefined;
  /** Client keys seen recently, so a returning client's encryption table is built once. */
  private readonly keys = new Map<bigint, PaillierPublicKey>();

  constructor(options: ServiceOptions = {}) {
    this.idleTimeoutMs = options.idleTimeoutMs ?? 5 * 60_000;
    this.maxSessions = options.maxSessions ?? 64;
    this.evaluator = options.evaluator ?? localRowEvaluator;
    this.allowInsecureKeys = options.allowInsecureKeys ?? false;
    this.maxMessageBytes = options.maxMessageBytes;
  }

  /** Makes a compiled model available under `modelId`. */
  register(modelId: string, model: CompiledPaillierModel): void {
    this.models.set(modelId, model);
  }

  /**
   * Withdraws a model: new sessions for it are refused; sessions already open finish with it.
   *
   * @returns whether the model was registered.
   */
  unregister(modelId: string): boolean {
    return this.models.delete(modelId);
  }

  /** Whether a session is open (after dropping idle ones): lets a front track its clients' sessions. */
  hasSession(sessionId: string): boolean {
    this.dropIdle();
    return this.sessions.has(sessionId);
  }

  /** Open sessions (after dropping idle ones). */
  get sessionCount(): number {
    this.dropIdle();
    return this.sessions.size;
  }

  /** Ends every session (for shutdown). */
  closeAll(): void {
    this.sessions.clear();
  }

  /** Handles one request and returns the reply; never throws. */
  async handle(bytes: Uint8Array): Promise<Uint8Array> {
    this.dropIdle();
    let sessionId: string | undefined;
    try {
      const msg = decodeMessage(bytes, this.maxMessageBytes);
      sessionId = 'sessionId' in msg ? msg.sessionId : undefined;
      const reply = await this.dispatch(msg);
      // The session may be gone (ended by a concurrent bad request); the ciphertexts still fit their key's width.
      const width = ('sessionId' in reply ? this.sessions.get(reply.sessionId)?.width : undefined) ?? widthOf(reply.ciphertexts);
      if (reply.type === 'result' || reply.type === 'closed') this.sessions.delete(reply.sessionId);
      return encodeMessage(reply, width);
    } catch (err) {
      if (sessionId) this.sessions.delete(sessionId);
      const code = err instanceof BlindmlError ? err.code : 'ERR_INTERNAL';
      const text = err instanceof BlindmlError ? err.message : 'internal error';
      return encodeMessage(message<'error'>({ type: 'error', code, message: text }), 1);
    }
  }

  private async dispatch(msg: Message): Promise<Message> {
    switch (msg.type) {
      case 'open':
        return this.open(msg);
      case 'input':
        return this.input(msg);
      case 'activated':
        return this.activated(msg);
      case 'close':
        this.sessions.delete(msg.sessionId);
        return message<'closed'>({ type: 'closed', sessionId: msg.sessionId });
      default:
        throw new ProtocolError('ERR_UNEXPECTED_MESSAGE', `a service does not accept '${msg.type}' messages`);
    }
  }

  private open(msg: MessageOf<'open'>): Message {
    const model = this.models.get(msg.modelId);
    if (!model) throw new ProtocolError('ERR_UNKNOWN_MODEL', `no model with id ${msg.modelId}`);
    if (this.sessions.size >= this.maxSessions) throw new ProtocolError('ERR_TOO_MANY_SESSIONS', 'the service is at its session limit; retry later');
    const key = this.clientKey(base64UrlToBigInt(msg.n));
    const widest = valueLayout(model, key.bits);
    const batch = msg.mode === 'latency' ? 1 : Math.min(msg.batch ?? widest.slots, widest.slots);
    const layout = valueLayout(model, key.bits, batch);
    const id = sessionId();
    const session: Session = {
      id,
      model,
      key,
      batch,
      layout,
      ones: 1n,
      samples: 1,
      width: 2 * Math.ceil(key.bits / 8),
      stage: 0,
      expecting: 'input',
      held: [],
      pending: null,
      lastSeen: Date.now(),
    };
    this.sessions.set(id, session);
    const last = model.stages[model.stages.length - 1]!;
    const info: SessionInfo = {
      inputShape: [...model.plan.inputShape],
      inputScale: model.params.inputScale,
      batch,
      slotBits: layout.slotBits,
      guardBits: model.params.guardBits,
      rounds: model.plan.stages.length - 1,
      outputSize: model.plan.outputSize,
      outputScale: last.maps[last.maps.length - 1]!.q,
      outputActivation: model.plan.outputActivation,
    };
    return message<'opened'>({ type: 'opened', sessionId: id, info });
  }

  private clientKey(n: bigint): PaillierPublicKey {
    let key = this.keys.get(n);
    if (!key) {
      // A small DJN table (window 5: ~0.1 s to build, ~3 ms per value): a session obfuscates
      // tens to hundreds of ciphertexts, too few to repay the default 0.5 s table.
      key = new PaillierPublicKey(n, { insecure: this.allowInsecureKeys, djn: { windowBits: 5 } });
      if (key.bits < MIN_SECURE_BITS && !this.allowInsecureKeys) throw new ProtocolError('ERR_WEAK_KEY', 'client key below 2048 bits');
      if (this.keys.size >= 16) this.keys.delete(this.keys.keys().next().value!);
      this.keys.set(n, key);
    }
    return key;
  }

  private session(id: string, expecting: 'input' | 'activated'): Session {
    const s = this.sessions.get(id);
    if (!s) throw new ProtocolError('ERR_UNKNOWN_SESSION', 'unknown or expired session');
    if (s.expecting === 'busy') throw new ProtocolError('ERR_BUSY', 'the session is still computing the previous request');
    if (s.expecting !== expecting) throw new ProtocolError('ERR_OUT_OF_ORDER', `message out of order: the session expects '${s.expecting}'`);
    s.lastSeen = Date.now();
    return s;
  }

  private checkCiphertexts(s: Session, cts: readonly bigint[], expected: number): void {
    if (cts.length !== expected) throw new ProtocolError('ERR_BAD_MESSAGE', `expected ${expected} ciphertexts, got ${cts.length}`);
    // A unit mod n² is a c with gcd(c, n) = 1; the product of all of them mod n is a unit exactly
    // when each is, so one gcd checks the lot (a non-unit would fail a modular inversion later).
    let product = 1n;
    for (const c of cts) {
      if (c <= 0n || c >= s.key.nSquared) throw new InvalidCiphertextError('a ciphertext is outside Z*_{n²} for the session key');
      product = (product * c) % s.key.n;
    }
    if (gcd(product, s.key.n) !== 1n) throw new InvalidCiphertextError('a ciphertext is not invertible modulo n² (not in Z*_{n²})');
  }

  private async input(msg: MessageOf<'input'>): Promise<Message> {
    const s = this.session(msg.sessionId, 'input');
    if (msg.samples > s.batch) throw new ProtocolError('ERR_BAD_MESSAGE', `at most ${s.batch} samples per session`);
    this.checkCiphertexts(s, msg.ciphertexts, sourceSize(s.model.plan, MODEL_INPUT));
    s.held[0] = { values: msg.ciphertexts, scales: s.model.params.inputScale };
    s.ones = replicator(s.layout.slotBits, msg.samples);
    s.samples = msg.samples;
    s.expecting = 'busy';
    return this.runStage(s);
  }

  private async activated(msg: MessageOf<'activated'>): Promise<Message> {
    const s = this.session(msg.sessionId, 'activated');
    if (msg.round !== s.stage - 1) throw new ProtocolError('ERR_OUT_OF_ORDER', `expected round ${s.stage - 1}, got ${msg.round}`);
    const { order, factors } = s.pending!;
    const prev = s.model.stages[s.stage - 1]!;
    const group = s.model.plan.stages[s.stage - 1]!.activation!;
    this.checkCiphertexts(s, msg.ciphertexts, group.outputSize);
    const values = new Array<bigint>(group.outputSize);
    const q = prev.maps[prev.maps.length - 1]!.q;
    order.forEach((unit, k) => (values[unit] = msg.ciphertexts[k]!));
    // A blinded unit's integer is ≈ r·q/2^shift times its value: that is its scale, which the stages
    // reading this round fold into their exponents for its columns. Unblinded rounds share one scale.
    const scales = group.homogeneous ? Float64Array.from(factors, (r) => (r * q) / 2 ** prev.shift) : 2 ** s.model.params.precisionBits;
    s.held[s.stage] = { values, scales };
    s.pending = null;
    s.expecting = 'busy';
    return this.runStage(s);
  }

  /** Evaluates the current stage's linear maps, then asks for the activation or returns the result. */
  private async runStage(s: Session): Promise<Message> {
    const stage = s.model.plan.stages[s.stage]!;
    const scales = s.model.stages[s.stage]!;
    const read = stage.sources.map((k) => s.held[k + 1]!);
    let values = read.flatMap((h) => Array.from(h.values));
    let sigma = joinScales(read);
    const readers = lastReaders(s.model.plan.stages);
    for (const k of stage.sources) if (readers[k + 1] === s.stage) s.held[k + 1] = null;
    for (let m = 0; m < stage.linears.length; m++) {
      const map = stage.linears[m]!;
      const { q } = scales.maps[m]!;
      const rows = { offsets: map.offsets, indices: map.indices, exponents: integerExponents(map, q, sigma), bias: integerBias(map, q, s.ones) };
      values = await this.evaluator.evaluate(s.key, values, rows, map.rows);
      sigma = q;
    }
    s.lastSeen = Date.now();
    if (!stage.activation) {
      const packed = await this.packForTransport(s, values, null, scales.maps[scales.maps.length - 1]!.outputBound);
      return message<'result'>({ type: 'result', sessionId: s.id, outputs: values.length, valuesPerCiphertext: packed.perCiphertext, slotBits: packed.slotBits, ciphertexts: packed.ciphertexts });
    }
    const group = stage.activation;
    const units = group.windows ?? null;
    const unitCount = group.outputSize;
    const order = randomPermutation(unitCount);
    const factors = new Float64Array(unitCount).fill(1);
    const sent: bigint[] = [];
    const sentFactors: bigint[] = [];
    const unitSizes: number[] = [];
    for (let k = 0; k < unitCount; k++) {
      const unit = order[k]!;
      // Cells of a window go out in a fresh random order too, hiding which position holds the max.
      const cells = units ? shuffled(units[unit]!) : [unit];
      unitSizes.push(cells.length);
      const r = group.homogeneous ? blindingFactor(s.model.params.blindBits, s.model.params.blindMantissaBits) : 1n;
      factors[unit] = Number(r);
      for (const c of cells) {
        sent.push(values[c]!);
        sentFactors.push(r);
      }
    }
    s.pending = { order, factors };
    s.stage++;
    s.expecting = 'activated';
    const packed = await this.packForTransport(s, sent, group.homogeneous ? sentFactors : null, scales.sentBound);
    const spec: ActivationSpec = {
      fns: [...group.fns],
      unitSizes: unitSizes.every((u) => u === 1) ? null : unitSizes,
      units: unitCount,
      scale: group.homogeneous ? null : scales.maps[scales.maps.length - 1]!.q,
      shift: group.homogeneous ? scales.shift : 0,
      returnScale: group.homogeneous ? null : 2 ** s.model.params.precisionBits,
      slotBits: packed.slotBits,
      valuesPerCiphertext: packed.perCiphertext,
      values: sent.length,
    };
    return message<'activate'>({ type: 'activate', sessionId: s.id, round: s.stage - 1, spec, ciphertexts: packed.ciphertexts });
  }

  /**
   * Latency mode: many values per ciphertext (Horner packing), fewer decryptions and bytes for the
   * client. Batch mode: ciphertexts already hold one value per sample. Blinded values (`factors`
   * given) get the additive blinding noise of each slot; every ciphertext is re-randomized before
   * it leaves.
   */
  private async packForTransport(
    s: Session,
    values: bigint[],
    factors: bigint[] | null,
    bound: number,
  ): Promise<{ ciphertexts: bigint[]; perCiphertext: number; slotBits: number }> {
    let slotBits = s.layout.slotBits;
    let perCiphertext = 1;
    let packed: bigint[];
    if (s.batch > 1) {
      packed = factors ? await this.evaluator.pack(s.key, values, factors, slotBits, 1) : values;
    } else {
      const layout = new SlotLayout(s.key.bits, { bound: BigInt(Math.ceil(bound)) + 1n, guardBits: s.model.params.guardBits });
      slotBits = layout.slotBits;
      perCiphertext = layout.slots;
      packed = await this.evaluator.pack(s.key, values, factors, slotBits, perCiphertext);
    }
    if (factors) {
      const noise = packedBlindingNoise(factors, slotBits, perCiphertext, s.batch > 1 ? s.samples : 1);
      packed = packed.map((c, i) => (noise[i] === 0n ? c : (c * plainFactor(noise[i]!, s.key)) % s.key.nSquared));
    }
    return { ciphertexts: await this.obfuscate(s, packed), perCiphertext, slotBits };
  }

  /** Re-randomizes ciphertexts before they leave (noise computed by the evaluator, e.g. on workers). */
  private async obfuscate(s: Session, cts: readonly bigint[]): Promise<bigint[]> {
    const noise = await this.evaluator.noise(s.key, cts.length);
    return cts.map((c, i) => (c * noise[i]!) % s.key.nSquared);
  }

  private dropIdle(): void {
    const now = Date.now();
    for (const [id, s] of this.sessions) {
      if (s.expecting !== 'busy' && now - s.lastSeen > this.idleTimeoutMs) this.sessions.delete(id);
    }
  }
}

/** Bytes of the widest ciphertext (at least 1). */
function widthOf(cts: readonly bigint[]): number {
  let most = 1;
  for (const c of cts) most = Math.max(most, Math.ceil(c.toString(16).length / 2));
  return most;
}

function shuffled(cells: Int32Array): Int32Array {
  const order = randomPermutation(cells.length);
  return order.map((i) => cells[i]!);
}

function sessionId(): string {
  return randomBits(128).toString(16).padStart(32, '0');
}
