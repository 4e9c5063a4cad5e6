/**
 * The client side of ckks-poly: generates a CKKS key pair for the service's parameters, sends the
 * public and relinearization keys, encrypts images one per slot (one ciphertext per pixel
 * position), and decrypts the logits. The secret key never leaves this object.
 *
 * CKKS decryption is approximate and its error depends on the computation (Li–Micciancio): the
 * decrypted logits must stay with the client. Never send them back to the service.
 *
 * @module
 */
import { ShapeError } from '../../errors.js';
import { argmaxRows } from '../../nn/plaintext.js';
import { CkksCiphertext, CkksContext, CkksKeyring, checkParameters } from '../../schemes/ckks/index.js';
import { decodePolyMessage, encodePolyMessage, expectPolyMessage, ProtocolError, type PolyInfo, type PolyMessage } from './messages.js';

/** Carries request bytes to a service and brings back its answer. */
export interface PolyTransport {
  send(request: Uint8Array): Promise<Uint8Array>;
}

/** Predictions for a set of images, with what they cost. */
export interface PolyPrediction {
  readonly labels: Int32Array;
  /** outputSize values per image, image after image. */
  readonly logits: Float64Array;
  readonly stats: {
    /** Encryption, decryption and (de)serialization on the client. */
    readonly clientMs: number;
    readonly bytesSent: number;
    readonly bytesReceived: number;
    /** Requests sent (one per batch of up to `slots` images). */
    readonly batches: number;
  };
}

/** A client bound to one model on one service. Call {@link dispose} when done. */
export class CkksPolyClient {
  private bytesSent = 0;
  private bytesReceived = 0;

  private constructor(
    private readonly transport: PolyTransport,
    readonly model: string,
    readonly info: PolyInfo,
    private readonly context: CkksContext,
    private readonly keyring: CkksKeyring,
    private readonly session: string,
    /** Bytes of the setup (info and keys), both directions. */
    readonly setupBytes: number,
  ) {}

  /**
   * Fetches the model's parameters, generates keys and opens a session.
   *
   * @throws ProtocolError for an unknown model or a refused request; InvalidKeyError for
   *   parameters below 128-bit security.
   */
  static async connect(transport: PolyTransport, model: string): Promise<CkksPolyClient> {
    let bytes = 0;
    const call = async (msg: PolyMessage): Promise<PolyMessage> => {
      const req = encodePolyMessage(msg);
      const res = await transport.send(req);
      bytes += req.length + res.length;
      return decodePolyMessage(res);
    };
    const { info } = expectPolyMessage(await call({ type: 'info', model, blobs: [] }), 'info-reply');
    // The client checks the service's choice: it will not encrypt under parameters below 128 bits.
    checkParameters(info.params);
    const context = await CkksContext.create(info.params);
    const keyring = CkksKeyring.generate(context);
    try {
      const bundle = keyring.exportPublic({ relin: true });
      const reply = expectPolyMessage(await call({ type: 'keys', model, blobs: [bundle.publicKey, bundle.relinKeys!] }), 'session');
      return new CkksPolyClient(transport, model, info, context, keyring, reply.session, bytes);
    } catch (e) {
      keyring.dispose();
      context.dispose();
      throw e;
    }
  }

  /** Images per ciphertext (N/2). */
  get slots(): number {
    return this.context.slots;
  }

  /**
   * Encrypts, sends and decrypts, `slots` images per request.
   *
   * @param images inputSize values per image, image after image.
   * @throws ShapeError when `images` is not a whole number of images; ProtocolError when the
   *   service refuses.
   */
  async predict(
    images: Float32Array | Float64Array,
    onBatch?: (done: number, total: number) => void,
    options: { readonly concurrency?: number } = {},
  ): Promise<PolyPrediction> {
    const size = this.info.inputSize;
    if (images.length === 0 || images.length % size !== 0) {
      throw new ShapeError(`${images.length} input values are not a whole number of images of ${size}`);
    }
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    const total = images.length / size;
    const outSize = this.info.outputSize;
    const logits = new Float64Array(total * outSize);
    const sent0 = this.bytesSent;
    const received0 = this.bytesReceived;
    let clientMs = 0;
    let batches = 0;
    let done = 0;
    const inFlight: Promise<void>[] = [];
    const receive = async (first: number, count: number, pending: Promise<Uint8Array>): Promise<void> => {
      const response = await pending;
      this.bytesReceived += response.length;
      const t = performance.now();
      const reply = expectPolyMessage(decodePolyMessage(response), 'result', outSize);
      if (reply.count !== count) throw new ProtocolError('ERR_BAD_MESSAGE', `the result holds ${reply.count} images, not ${count}`);
      reply.blobs.forEach((blob, j) => {
        const ct = CkksCiphertext.load(this.context, this.keyring.keyId, blob, { levelPrimes: 1 });
        try {
          const values = this.keyring.decrypt(ct);
          for (let i = 0; i < count; i++) logits[(first + i) * outSize + j] = values[i]!;
        } finally {
          ct.free();
        }
      });
      clientMs += performance.now() - t;
      batches++;
      done += count;
      onBatch?.(done, total);
    };
    try {
      // Up to `concurrency` requests in flight: the next batch is encrypted while others are evaluated.
      for (let first = 0; first < total; first += this.slots) {
        const count = Math.min(this.slots, total - first);
        const t = performance.now();
        const blobs = this.encryptBatch(images.subarray(first * size, (first + count) * size), count);
        const request = encodePolyMessage({ type: 'infer', session: this.session, count, blobs });
        clientMs += performance.now() - t;
        this.bytesSent += request.length;
        const pending = receive(first, count, this.transport.send(request));
        pending.catch(() => undefined); // awaited below; this only keeps Node from calling it unhandled meanwhile
        inFlight.push(pending);
        if (inFlight.length >= concurrency) await inFlight.shift();
      }
      while (inFlight.length > 0) await inFlight.shift();
    } finally {
      // Settle whatever is still running before reporting a failure.
      await Promise.allSettled(inFlight);
    }
    return {
      labels: argmaxRows(logits, outSize),
      logits,
      stats: { clientMs, bytesSent: this.bytesSent - sent0, bytesReceived: this.bytesReceived - received0, batches },
    };
  }

  /** One seeded ciphertext per input position; slot i holds image i's value there. */
  private encryptBatch(images: Float32Array | Float64Array, count: number): Uint8Array[] {
    const size = this.info.inputSize;
    const column = new Float64Array(count);
    const blobs: Uint8Array[] = [];
    for (let c = 0; c < size; c++) {
      for (let i = 0; i < count; i++) column[i] = images[i * size + c]!;
      blobs.push(this.keyring.encryptSeeded(column, this.info.inputScale));
    }
    return blobs;
  }

  /** Frees the keys and the context (idempotent). */
  dispose(): void {
    this.keyring.dispose();
    this.context.dispose();
  }
}
