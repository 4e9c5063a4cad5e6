/**
 * `connect(url)` and `client.predict(modelId, image)`: encrypted predictions against a blindml
 * service, in Node and in browsers (also inside a Web Worker). The client generates and keeps the
 * Paillier key pair; the service only ever sees the public key and ciphertexts.
 *
 * ```ts
 * const client = await connect('http://127.0.0.1:8080');
 * const { label, logits } = await client.predict(modelId, image, { onProgress: (p) => console.log(p.phase) });
 * client.close();
 * ```
 *
 * @module
 */
import { generateKeyPair, type PaillierKeyPair } from '../schemes/paillier/keys.js';
import { INFERENCE_KEY_PRIMES, PaillierInferenceClient, type Prediction, type Transport } from '../protocol/paillier-inference/client.js';
import { HttpTransport, TransportError } from './http-transport.js';
import { WebSocketTransport, type WebSocketConstructor } from './websocket-transport.js';
import { listModels, type ModelInfo } from './owner.js';
import { retryAfterMs, withFailover } from './routing.js';

/** Where a prediction is. `round` counts the client's activation rounds done so far. */
export type PredictPhase = 'keys' | 'opening' | 'encrypting' | 'evaluating' | 'round' | 'decrypting' | 'done';

export interface PredictProgress {
  readonly phase: PredictPhase;
  /** Rounds done (phase 'round'). */
  readonly round?: number;
  /** Rounds in the session, once known. */
  readonly rounds?: number;
  /** Protocol bytes sent and received so far in this prediction. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** 'websocket' (default) or 'http' (POST /v1/paillier per message). */
  transport?: 'websocket' | 'http';
  /** An existing key pair; otherwise one is generated. */
  keys?: PaillierKeyPair;
  /** Modulus size of a generated key. Default 2048. */
  keyBits?: number;
  /** Prime factors of a generated key: 3 by default (about 2× faster decryption), or 2. */
  keyPrimes?: 2 | 3;
  /** Allow keys below 2048 bits (tests only; the service must allow them too). */
  insecure?: boolean;
  /** A WebSocket constructor (default: the global one, or the `ws` package in Node). */
  WebSocket?: WebSocketConstructor;
  /** Progress of key generation (phase 'keys'). */
  onProgress?: (p: PredictProgress) => void;
}

/** One image's prediction. */
export interface PredictResult {
  /** Arg-max class. */
  label: number;
  /** Output values (before any final softmax / sigmoid). */
  logits: Float64Array;
  stats: Prediction['stats'];
}

/** The type field of a protocol message's header, without decoding its ciphertexts. */
function messageType(bytes: Uint8Array): string | undefined {
  if (bytes.length < 8) return undefined;
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  if (8 + length > bytes.length || length > 65536) return undefined;
  try {
    const head = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as { type?: unknown; spec?: unknown } | null;
    return typeof head?.type === 'string' ? head.type : undefined;
  } catch {
    return undefined;
  }
}

/** Many images' predictions (batch mode). */
export interface BatchPredictResult {
  /** Arg-max class per image, in input order. */
  labels: number[];
  /** Output values per image. */
  logits: Float64Array[];
  /** `batch` is the images per ciphertext the service granted; `rounds` per session. */
  stats: Prediction['stats'];
}

/** A connected client: keys, a transport, and predictions one at a time. */
export class BlindmlClient {
  private readonly inner: PaillierInferenceClient;
  private readonly watched: Transport;
  private listener: ((p: PredictProgress) => void) | undefined;
  private progress = { bytesSent: 0, bytesReceived: 0, rounds: undefined as number | undefined };
  private queue: Promise<unknown> = Promise.resolve();
  private moved = 0;

  /** Sessions moved to another replica since {@link connect} (their replica was gone; see `routing.ts`). */
  get failovers(): number {
    return this.moved;
  }

  /** Use {@link connect}. */
  constructor(
    readonly url: string,
    private readonly transport: Transport & { close?: () => void; failover?: () => Promise<void> },
    readonly keys: PaillierKeyPair,
  ) {
    this.watched = {
      send: async (bytes) => {
        this.progress.bytesSent += bytes.length;
        const type = messageType(bytes);
        if (type === 'open') this.emit({ phase: 'opening' });
        else if (type === 'input' || type === 'activated') this.emit({ phase: 'evaluating', ...(this.progress.rounds !== undefined ? { rounds: this.progress.rounds } : {}) });
        const reply = await transport.send(bytes);
        this.progress.bytesReceived += reply.length;
        const got = messageType(reply);
        if (got === 'opened') this.emit({ phase: 'encrypting' });
        else if (got === 'result') this.emit({ phase: 'decrypting' });
        return reply;
      },
    };
    this.inner = this.protocolClient();
  }

  /** Reports progress to the current call's listener, with the traffic so far. */
  private emit(p: Omit<PredictProgress, 'bytesSent' | 'bytesReceived'>): void {
    this.listener?.({ ...p, bytesSent: this.progress.bytesSent, bytesReceived: this.progress.bytesReceived });
  }

  /** A protocol client on this connection and key pair (latency mode unless `batch` > 1). */
  private protocolClient(batch = 1): PaillierInferenceClient {
    return new PaillierInferenceClient(this.watched, {
      keys: this.keys,
      ...(batch > 1 ? { mode: 'batch' as const, batch } : {}),
      onProgress: (done, total) => {
        this.progress.rounds = total;
        this.emit({ phase: 'round', round: done, rounds: total });
      },
    });
  }

  /**
   * Prepares encryption randomness for about `count` values ahead of time (optional: it moves
   * the cost of encryption off the critical path of the next predictions). `fill` may compute
   * the values elsewhere (e.g. `(n) => pool.noise(client.keys.publicKey, n)` on worker threads).
   */
  precompute(count: number, fill?: (count: number) => Promise<bigint[]>): Promise<void> {
    return this.inner.precompute(count, fill);
  }

  /**
   * Encrypts one input, runs the protocol with the service, and decrypts the result. Calls on
   * one client run one after another.
   *
   * @param image - the model's input values, e.g. 784 pixels in [0, 1] for the Fashion-MNIST models.
   * @throws ServiceError when the service refuses (unknown model, limits, wrong input size...);
   *   TransportError when the connection fails; SessionLostError when the session failed on a
   *   replica and again on the one it moved to; RangeError for a wrong number of values.
   */
  predict(modelId: string, image: Float32Array | Float64Array | readonly number[], options: { onProgress?: (p: PredictProgress) => void } = {}): Promise<PredictResult> {
    const input = image instanceof Float32Array || image instanceof Float64Array ? image : Float64Array.from(image);
    return this.run(options.onProgress, async () => {
      const p = await this.inner.predict(modelId, input);
      return { label: p.labels[0]!, logits: p.logits[0]!, stats: p.stats };
    });
  }

  /**
   * Batch mode: packs up to `batch` images into each ciphertext (one session per `batch` images,
   * the same rounds and nearly the same traffic as one image), so throughput grows with the batch
   * while each image waits for its whole batch. The service may grant fewer images per ciphertext
   * than asked (`stats.batch`); the rest go in further sessions.
   *
   * @param images - the images' values one after another (a whole number of the model's inputs).
   * @param options.batch - images per ciphertext wanted (default: as many as the service grants).
   * @throws ServiceError when the service refuses; TransportError when the connection fails;
   *   RangeError when `images` is not a whole number of inputs; OverflowError if a value left its
   *   slot (never a silently wrong prediction).
   */
  predictBatch(modelId: string, images: Float32Array | Float64Array, options: { batch?: number; onProgress?: (p: PredictProgress) => void } = {}): Promise<BatchPredictResult> {
    const batch = options.batch ?? 4096;
    if (!Number.isSafeInteger(batch) || batch < 1) return Promise.reject(new RangeError(`batch must be a positive integer, got ${batch}`));
    return this.run(options.onProgress, async () => {
      const p = await this.protocolClient(batch).predict(modelId, images);
      return { labels: p.labels, logits: p.logits, stats: p.stats };
    });
  }

  /** One call, after the ones before it: progress goes to `onProgress`, ending with 'done'. */
  private run<T extends { stats: Prediction['stats'] }>(onProgress: ((p: PredictProgress) => void) | undefined, call: () => Promise<T>): Promise<T> {
    return this.enqueue(async () => {
      this.listener = onProgress;
      this.progress = { bytesSent: 0, bytesReceived: 0, rounds: undefined };
      try {
        // Behind a balancer: a session whose replica is gone runs once more on another (`routing.ts`).
        const transport = this.transport;
        const move = transport.failover?.bind(transport);
        const failover = move
          ? () => {
              this.moved++;
              return move();
            }
          : undefined;
        const result = await (failover ? withFailover(call, failover) : call());
        this.emit({ phase: 'done', rounds: result.stats.rounds });
        return result;
      } finally {
        this.listener = undefined;
      }
    });
  }

  /** Runs calls on this client one after another (they share the connection and the progress). */
  private enqueue<T>(run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The service's models (public fields). @throws TransportError. */
  models(): Promise<ModelInfo[]> {
    return listModels(this.url);
  }

  /** Closes the connection (WebSocket); the service drops any session left open. */
  close(): void {
    this.transport.close?.();
  }
}

/**
 * Checks the service is up, generates a key pair (unless given) and opens the transport.
 *
 * @throws TransportError when the service cannot be reached or is not healthy.
 */
export async function connect(url: string, options: ConnectOptions = {}): Promise<BlindmlClient> {
  const base = url.replace(/\/+$/, '');
  const health = async (): Promise<Response> => {
    try {
      return await fetch(`${base}/healthz`);
    } catch (err) {
      throw new TransportError(`cannot reach the service at ${base}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  };
  let res = await health();
  // Behind a balancer a draining replica answers 503 until it leaves the ring: ask once more, later.
  if (res.status === 503) res = await new Promise((r) => setTimeout(r, retryAfterMs(res.headers.get('retry-after')) || 1000)).then(health);
  if (!res.ok) throw new TransportError(`the service at ${base} is not ready (HTTP ${res.status})`);
  options.onProgress?.({ phase: 'keys', bytesSent: 0, bytesReceived: 0 });
  const keys = options.keys ?? generateKeyPair({ bits: options.keyBits ?? 2048, primes: options.keyPrimes ?? INFERENCE_KEY_PRIMES, insecure: options.insecure ?? false });
  const transport =
    options.transport === 'http' ? new HttpTransport(base) : await WebSocketTransport.connect(base, options.WebSocket ? { WebSocket: options.WebSocket } : {});
  return new BlindmlClient(base, transport, keys);
}
