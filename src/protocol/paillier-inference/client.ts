/**
 * The client side of interactive Paillier inference: holds the key pair, encrypts inputs,
 * evaluates the activation rounds on blinded values, and decrypts the outputs. It learns the
 * prediction and what docs/security.md lists per round, not the model's weights.
 *
 * @module
 */
import { BlindmlError } from '../../errors.js';
import { bigIntToBase64Url } from '../../math/bigint.js';
import { generateKeyPair, type PaillierKeyPair } from '../../schemes/paillier/keys.js';
import { DjnNoise, NoisePool } from '../../schemes/paillier/noise.js';
import { SlotLayout } from '../../schemes/paillier/packing.js';
import { decodeMessage, encodeMessage, message, ProtocolError, type ActivationSpec, type Message, type MessageOf, type SessionInfo } from './messages.js';
import { applyFns } from './plan.js';

/** Carries encoded messages to a service and brings back its replies. */
export interface Transport {
  send(request: Uint8Array): Promise<Uint8Array>;
}

/**
 * Prime factors of the keys inference clients generate: three, since decrypting the service's
 * replies is most of a client's work and a three-prime key decrypts about 2× faster (see
 * `PaillierPrivateKey`; docs/security.md states the assumption).
 */
export const INFERENCE_KEY_PRIMES = 3;

/** Options of {@link PaillierInferenceClient}. */
export interface ClientOptions {
  /** An existing key pair; otherwise one is generated (2048 bits unless `keyBits`). */
  keys?: PaillierKeyPair;
  keyBits?: number;
  /**
   * Prime factors of a generated key (default {@link INFERENCE_KEY_PRIMES}). The key never leaves
   * the client, so it needs no python-paillier form, and three primes halve decryption time.
   */
  keyPrimes?: 2 | 3;
  /** Allow a key below 2048 bits (tests only; the service must allow it too). */
  insecure?: boolean;
  /** 'latency' (one sample per session) or 'batch' (many samples per ciphertext). */
  mode?: 'latency' | 'batch';
  /** Samples per ciphertext wanted in batch mode (the service may grant fewer). */
  batch?: number;
  /** Reports progress: rounds done of rounds total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Decrypts many ciphertext integers to plaintexts in [0, n) (for example on worker threads);
   * by default on this thread.
   */
  decryptMany?: (ciphertexts: readonly bigint[]) => Promise<bigint[]>;
}

/** What one session produced. */
export interface Prediction {
  /** Output values per sample (logits before any final activation). */
  logits: Float64Array[];
  /** Arg-max class per sample. */
  labels: number[];
  /** Rounds per session, traffic and time; `batch` is the samples per ciphertext the service granted. */
  stats: { rounds: number; bytesSent: number; bytesReceived: number; clientMs: number; totalMs: number; batch: number };
}

/** The service answered with an error message. */
export class ServiceError extends BlindmlError {}

export class PaillierInferenceClient {
  readonly keys: PaillierKeyPair;
  private readonly mode: 'latency' | 'batch';
  private readonly batch: number | undefined;
  private readonly onProgress: ((done: number, total: number) => void) | undefined;
  private readonly decryptMany: (ciphertexts: readonly bigint[]) => Promise<bigint[]>;

  constructor(
    private readonly transport: Transport,
    options: ClientOptions = {},
  ) {
    this.keys = options.keys ?? generateKeyPair({ bits: options.keyBits ?? 2048, primes: options.keyPrimes ?? INFERENCE_KEY_PRIMES, insecure: options.insecure ?? false });
    this.mode = options.mode ?? 'latency';
    this.batch = options.batch;
    this.onProgress = options.onProgress;
    this.decryptMany =
      options.decryptMany ??
      ((cts) => Promise.resolve(cts.map((c) => this.keys.privateKey.decrypt(this.keys.publicKey.ciphertext(c)))));
  }

  private pool: NoisePool | undefined;

  /**
   * Prepares encryption randomness ahead of time, so encrypting during a session costs two
   * multiplications per value. `fill` may compute the values elsewhere (for example on worker
   * threads holding the same public key); by default they are computed here.
   */
  async precompute(count: number, fill?: (count: number) => Promise<bigint[]>): Promise<void> {
    const { publicKey } = this.keys;
    if (!this.pool) {
      this.pool = new NoisePool(new DjnNoise(publicKey.n, publicKey.nSquared));
      publicKey.useNoise(this.pool);
    }
    if (fill) this.pool.add(await fill(count));
    else this.pool.fill(count);
  }

  /** Encryption randomness still prepared. */
  get precomputed(): number {
    return this.pool?.size ?? 0;
  }

  /**
   * Predicts every sample stored one after another in `inputs` (values as the model expects
   * them: pixels in [0, 1] for the Fashion-MNIST models), one session per sample in latency mode
   * and one per batch the service grants in batch mode.
   *
   * @throws ServiceError if the service reports an error; ProtocolError for an unexpected reply;
   *   RangeError if `inputs` is not a whole number of samples; OverflowError if a value left its
   *   slot (never a silently wrong prediction).
   */
  async predict(modelId: string, inputs: Float32Array | Float64Array): Promise<Prediction> {
    const started = performance.now();
    const total: Prediction = { logits: [], labels: [], stats: { rounds: 0, bytesSent: 0, bytesReceived: 0, clientMs: 0, totalMs: 0, batch: 1 } };
    let offset = 0;
    do {
      const part = await this.session(modelId, inputs, offset);
      total.logits.push(...part.logits);
      total.labels.push(...part.labels);
      total.stats.rounds = part.stats.rounds;
      total.stats.bytesSent += part.stats.bytesSent;
      total.stats.bytesReceived += part.stats.bytesReceived;
      total.stats.clientMs += part.stats.clientMs;
      total.stats.batch = part.stats.batch;
      offset += part.consumed;
    } while (offset < inputs.length);
    total.stats.totalMs = performance.now() - started;
    return total;
  }

  /** One session on as many samples from `offset` on as the service grants. */
  private async session(modelId: string, inputs: Float32Array | Float64Array, offset: number): Promise<Prediction & { consumed: number }> {
    const stats = { rounds: 0, bytesSent: 0, bytesReceived: 0, clientMs: 0, totalMs: 0, batch: 1 };
    const width = 2 * Math.ceil(this.keys.publicKey.bits / 8);
    const call = async (msg: Message): Promise<Message> => {
      const bytes = encodeMessage(msg, width);
      stats.bytesSent += bytes.length;
      const reply = await this.transport.send(bytes);
      stats.bytesReceived += reply.length;
      const decoded = decodeMessage(reply);
      if (decoded.type === 'error') throw new ServiceError(decoded.code, `service: ${decoded.message}`);
      return decoded;
    };
    const timed = async <T>(fn: () => T | Promise<T>): Promise<T> => {
      const t = performance.now();
      try {
        return await fn();
      } finally {
        stats.clientMs += performance.now() - t;
      }
    };

    const open: Message = message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(this.keys.publicKey.n), mode: this.mode, ...(this.batch ? { batch: this.batch } : {}) });
    const opened = await call(open);
    if (opened.type !== 'opened') throw new ProtocolError('ERR_OUT_OF_ORDER', `expected 'opened', got '${opened.type}'`);
    const { sessionId, info } = opened;
    stats.batch = info.batch;
    const inputSize = info.inputShape.reduce((a, b) => a * b, 1);
    if (inputs.length === 0 || inputs.length % inputSize !== 0) {
      await call(message<'close'>({ type: 'close', sessionId })).catch(() => undefined);
      throw new RangeError(`the model takes samples of ${inputSize} values; got ${inputs.length} values`);
    }
    try {
      return await this.runSession(sessionId, info, inputs, offset, inputSize, stats, call, timed);
    } catch (err) {
      // Free the service's session at once instead of leaving it to the idle timeout.
      if (!(err instanceof ServiceError)) await call(message<'close'>({ type: 'close', sessionId })).catch(() => undefined);
      throw err;
    }
  }

  private async runSession(
    sessionId: string,
    info: SessionInfo,
    inputs: Float32Array | Float64Array,
    offset: number,
    inputSize: number,
    stats: Prediction['stats'],
    call: (msg: Message) => Promise<Message>,
    timed: <T>(fn: () => T | Promise<T>) => Promise<T>,
  ): Promise<Prediction & { consumed: number }> {
    const samples = Math.min(info.batch, (inputs.length - offset) / inputSize);
    const mine = inputs.subarray(offset, offset + samples * inputSize);
    const layout = SlotLayout.fromSlotBits(this.keys.publicKey.bits, info.slotBits, info.guardBits, info.batch);
    const ciphertexts = await timed(() => this.encryptInputs(mine, inputSize, samples, info, layout));
    let reply = await call(message<'input'>({ type: 'input', sessionId, samples, ciphertexts }));
    while (reply.type === 'activate') {
      const { round, spec } = reply;
      const received = reply.ciphertexts;
      const out = await timed(() => this.activate(spec, received, samples, layout, info));
      stats.rounds++;
      this.onProgress?.(stats.rounds, info.rounds);
      reply = await call(message<'activated'>({ type: 'activated', sessionId, round, ciphertexts: out }));
    }
    if (reply.type !== 'result') throw new ProtocolError('ERR_OUT_OF_ORDER', `expected 'result', got '${reply.type}'`);
    const result = reply;
    const logits = await timed(() => this.decryptOutputs(result, samples, info, layout));
    return { logits, labels: logits.map(argmax), stats, consumed: samples * inputSize };
  }

  private encryptInputs(inputs: Float32Array | Float64Array, inputSize: number, samples: number, info: SessionInfo, layout: SlotLayout): bigint[] {
    const { publicKey } = this.keys;
    const out: bigint[] = [];
    for (let j = 0; j < inputSize; j++) {
      const column: bigint[] = [];
      for (let k = 0; k < samples; k++) column.push(quantize(inputs[k * inputSize + j]!, info.inputScale));
      out.push(publicKey.encryptRaw(info.batch > 1 ? layout.pack(column) : column[0]!));
    }
    return out;
  }

  /** Decrypts the round's values, applies the function per unit and per sample, re-encrypts. */
  private async activate(spec: ActivationSpec, received: readonly bigint[], samples: number, layout: SlotLayout, info: SessionInfo): Promise<bigint[]> {
    const values = await this.decryptValues(received, spec.values, spec.valuesPerCiphertext, spec.slotBits, samples, layout, info.guardBits);
    const { publicKey } = this.keys;
    const sizes = spec.unitSizes;
    const out: bigint[] = [];
    let cursor = 0;
    for (let u = 0; u < spec.units; u++) {
      const size = sizes ? sizes[u]! : 1;
      const perSample: bigint[] = [];
      for (let k = 0; k < samples; k++) {
        let m = values[cursor]![k]!;
        for (let c = 1; c < size; c++) if (values[cursor + c]![k]! > m) m = values[cursor + c]![k]!;
        perSample.push(applyRound(spec, m));
      }
      cursor += size;
      out.push(publicKey.encryptRaw(info.batch > 1 ? layout.pack(perSample) : perSample[0]!));
    }
    return out;
  }

  /** values[i][k] = value i of sample k. */
  private async decryptValues(
    cts: readonly bigint[],
    count: number,
    perCiphertext: number,
    slotBits: number,
    samples: number,
    layout: SlotLayout,
    guardBits: number,
  ): Promise<bigint[][]> {
    const { publicKey } = this.keys;
    const plaintexts = await this.decryptMany(cts);
    const out: bigint[][] = [];
    if (perCiphertext === 1) {
      for (const m of plaintexts) out.push(layout.unpack(m, publicKey.n, samples));
    } else {
      const transport = SlotLayout.fromSlotBits(publicKey.bits, slotBits, guardBits, perCiphertext);
      for (const m of plaintexts) {
        const left = count - out.length;
        for (const v of transport.unpack(m, publicKey.n, Math.min(left, perCiphertext))) out.push([v]);
      }
    }
    if (out.length !== count) throw new ProtocolError('ERR_BAD_MESSAGE', `expected ${count} values, got ${out.length}`);
    return out;
  }

  private async decryptOutputs(result: MessageOf<'result'>, samples: number, info: SessionInfo, layout: SlotLayout): Promise<Float64Array[]> {
    const values = await this.decryptValues(result.ciphertexts, result.outputs, result.valuesPerCiphertext, result.slotBits, samples, layout, info.guardBits);
    return Array.from({ length: samples }, (_, k) => Float64Array.from(values, (v) => Number(v[k]!) / info.outputScale));
  }
}

function quantize(x: number, scale: number): bigint {
  if (!Number.isFinite(x)) throw new RangeError('inputs must be finite numbers');
  return BigInt(Math.round(x * scale));
}

function applyRound(spec: ActivationSpec, v: bigint): bigint {
  if (spec.scale === null || spec.returnScale === null) {
    // Homogeneous: f(r·x) = r·f(x), applied to the blinded integer, then the agreed shift, rounding
    // to nearest (a floor would bias every value by −1/2, and the next layer sums hundreds of them).
    // ReLU alone is exact on the integers; LeakyReLU's slope goes through a double (2^-53 relative).
    if (spec.fns.every((fn) => fn === 'relu')) {
      if (v <= 0n) return 0n;
      return spec.shift === 0 ? v : (v + (1n << BigInt(spec.shift - 1))) >> BigInt(spec.shift);
    }
    return BigInt(Math.round(applyFns(spec.fns, Number(v)) / 2 ** spec.shift));
  }
  return BigInt(Math.round(applyFns(spec.fns, Number(v) / spec.scale) * spec.returnScale!));
}

function argmax(v: Float64Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}
