/**
 * The interactive CKKS service on worker threads: each thread holds the service of every model it
 * serves (its own SEAL context), and a client's keys, the sessions opened under them, the prepared
 * sessions and the smudging ciphertexts live on one thread, which every later request for them goes
 * to. SEAL objects cannot cross threads: requests and replies travel as wire-format bytes
 * (`protocol/ckks-inference/wire.ts`), moved rather than copied; a compiled model travels once, as
 * `v8.serialize` bytes in a SharedArrayBuffer every thread reads.
 *
 * Each thread is a piscina pool of one thread. Its tasks start in the order they were sent and
 * overlap only where they wait (for a load, or for products on the product threads), the way
 * requests overlapped when the service ran on the event loop: a discard sent after an open applies
 * after it, and a client's round does not wait for a prepared session to be encoded. A thread that dies takes its clients' keys and sessions with it: the requests in flight on
 * it fail with {@link CkksThreadLostError}, `onLost` is told so its accounts can go, and piscina
 * starts a fresh thread in its place (which loads models again as they are asked for).
 *
 * Node-only (worker_threads through piscina).
 *
 * @module
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { BlindmlError } from '../errors.js';
import type { DescribeReply } from '../protocol/ckks-inference/messages.js';
import type { ProductEvaluator } from '../protocol/ckks-inference/products.js';
import { serveProducts } from './ckks-product-relay.js';
import { ownsBuffer, siblingModuleUrl } from './pool-support.js';

/** What a session thread is asked to do (`model` is the caller's id of a loaded model). */
export type SessionTask =
  | { readonly op: 'attach'; readonly model: ''; readonly port: MessagePort }
  | { readonly op: 'load'; readonly model: string; readonly compiled: Uint8Array }
  | { readonly op: 'keys' | 'round'; readonly model: string; readonly body: Uint8Array }
  | { readonly op: 'open'; readonly model: string; readonly body: Uint8Array; readonly prepared: boolean }
  | { readonly op: 'precompute' | 'drop-keys'; readonly model: string; readonly keyId: string }
  | { readonly op: 'prepare' | 'forget' | 'stats'; readonly model: string }
  | { readonly op: 'close'; readonly model: string; readonly sessionId: string }
  | { readonly op: 'discard-prepared'; readonly model: string; readonly count: number };

/** What a session thread answers: a value, or the code and message of the error the task raised. */
export type SessionReply = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly code: string; readonly message: string };

/** The thread holding a client's keys or session stopped: they are gone; upload the keys again. */
export class CkksThreadLostError extends BlindmlError {
  constructor() {
    super('ERR_THREAD_LOST', 'the thread holding these CKKS keys and sessions stopped; upload the keys and open a session again');
  }
}

/** A step's reply bytes (wire format) with what the caller needs to know of it. */
export interface StepResult {
  readonly body: Uint8Array;
}

interface Slot {
  readonly piscina: Piscina;
  /** Models loaded on the thread now: their describe replies. */
  readonly loaded: Map<string, Promise<DescribeReply>>;
  /** Tasks sent and not yet answered (the pool is destroyed only once they are). */
  readonly inFlight: Set<Promise<unknown>>;
  /** The main thread's end of the thread's product relay, once attached. */
  relay?: MessagePort;
}

/** The interactive CKKS service over `threads` session threads. Call {@link destroy} when done. */
export class CkksSessionPool {
  readonly threads: number;
  private readonly slots: Slot[];
  /** Every model's `v8.serialize` bytes (in a SharedArrayBuffer), for threads that load it later. */
  private readonly models = new Map<string, Uint8Array>();
  private destroying = false;

  /**
   * @param options.products - where large rounds' products and prepared sessions' encoding run
   *   (a `CkksProductPool`), reached through a relay on this thread; without it each session
   *   thread does them itself.
   * @param options.onLost - told the index of a thread that died (its keys and sessions are gone).
   * @throws RangeError if threads is not a positive integer.
   */
  constructor(private readonly options: { readonly threads: number; readonly products?: ProductEvaluator; readonly onLost?: (thread: number) => void }) {
    if (!Number.isSafeInteger(options.threads) || options.threads < 1) throw new RangeError('CkksSessionPool: threads must be >= 1');
    this.threads = options.threads;
    this.slots = Array.from({ length: options.threads }, (_, i) => {
      // Tasks overlap where they wait (a prepared session's encoding, a round's products on the
      // product threads), so idle work never holds a client's request back for long.
      const piscina = new Piscina({ filename: siblingModuleUrl(import.meta.url, 'ckks-session-worker'), minThreads: 1, maxThreads: 1, idleTimeout: 60_000, concurrentTasksPerWorker: 16 });
      const slot: Slot = { piscina, loaded: new Map(), inFlight: new Set() };
      piscina.on('workerDestroy', () => {
        if (this.destroying) return;
        slot.loaded.clear();
        slot.relay?.close();
        delete slot.relay;
        options.onLost?.(i);
      });
      return slot;
    });
  }

  /**
   * Adds a compiled model (its `v8.serialize` bytes, ideally in a SharedArrayBuffer) and loads it
   * on one thread.
   *
   * @returns its describe reply.
   * @throws BlindmlError when the thread cannot build its service (bad parameters).
   */
  async addModel(model: string, compiled: Uint8Array): Promise<DescribeReply> {
    this.models.set(model, compiled);
    let best = 0;
    for (let i = 1; i < this.threads; i++) if (this.slots[i]!.inFlight.size < this.slots[best]!.inFlight.size) best = i;
    return this.ensure(best, model);
  }

  /** Drops a model from every thread (its keys and sessions go with it). */
  removeModel(model: string): void {
    this.models.delete(model);
    this.slots.forEach((slot, i) => {
      if (slot.loaded.delete(model)) void this.send(i, { op: 'forget', model }).catch(() => undefined);
    });
  }

  /**
   * Loads client keys (a wire-format keys request, moved) on thread `thread`.
   *
   * @throws FormatError, KeyMismatchError (as BlindmlError codes) for bad keys; CkksThreadLostError.
   */
  async keys(thread: number, model: string, body: Uint8Array): Promise<StepResult & { keyId: string }> {
    return (await this.step(thread, { op: 'keys', model, body }, body)) as StepResult & { keyId: string };
  }

  /** Opens a session (a wire-format open request, moved); `prepared`: whether it takes a prepared session. */
  async open(thread: number, model: string, body: Uint8Array, prepared: boolean): Promise<StepResult & { sessionId: string }> {
    return (await this.step(thread, { op: 'open', model, body, prepared }, body)) as StepResult & { sessionId: string };
  }

  /**
   * One round (a wire-format round request, moved). `done`: it was the session's last;
   * `keyId`: the keys the session ran under.
   */
  async round(thread: number, model: string, body: Uint8Array): Promise<StepResult & { done: boolean; keyId?: string }> {
    return (await this.step(thread, { op: 'round', model, body }, body)) as StepResult & { done: boolean; keyId?: string };
  }

  /** Makes one smudging ciphertext for loaded keys ahead of time. */
  async precompute(thread: number, model: string, keyId: string): Promise<void> {
    await this.step(thread, { op: 'precompute', model, keyId });
  }

  /** Prepares one session ahead of time. @returns the bytes its plaintexts take. */
  async prepare(thread: number, model: string): Promise<number> {
    return ((await this.step(thread, { op: 'prepare', model })) as { bytes: number }).bytes;
  }

  /** What a thread holds for a model (nothing when the model is not loaded there). */
  async stats(thread: number, model: string): Promise<{ keys: number; sessions: number; prepared: number }> {
    return (await this.send(thread, { op: 'stats', model })) as { keys: number; sessions: number; prepared: number };
  }

  /** Unloads keys no open session uses (sent; nothing to wait for). */
  dropKeys(thread: number, model: string, keyId: string): void {
    this.notify(thread, { op: 'drop-keys', model, keyId });
  }

  /** Closes a session (sent; nothing to wait for). */
  close(thread: number, model: string, sessionId: string): void {
    this.notify(thread, { op: 'close', model, sessionId });
  }

  /** Drops the thread's `count` oldest prepared sessions (sent; nothing to wait for). */
  discardPrepared(thread: number, model: string, count: number): void {
    this.notify(thread, { op: 'discard-prepared', model, count });
  }

  /** Stops a thread now, as if it had died: its keys and sessions are lost (`onLost` is told). */
  async terminate(thread: number): Promise<void> {
    await this.slots[thread]!.piscina.threads[0]?.terminate();
  }

  async destroy(): Promise<void> {
    this.destroying = true;
    // Destroying piscina under a running task makes its late answer an uncaught error.
    await Promise.allSettled(this.slots.flatMap((s) => [...s.inFlight]));
    await Promise.all(this.slots.map((s) => s.piscina.destroy()));
    for (const s of this.slots) s.relay?.close();
  }

  /** Loads the model on the thread if it is not there yet. */
  private ensure(thread: number, model: string): Promise<DescribeReply> {
    const slot = this.slots[thread]!;
    const known = slot.loaded.get(model);
    if (known) return known;
    const compiled = this.models.get(model);
    if (!compiled) return Promise.reject(new BlindmlError('ERR_UNKNOWN_MODEL', `no model with id ${model}`));
    if (this.options.products && !slot.relay) {
      // The thread's services are made with the relay: it goes first (tasks run in order).
      const { port1, port2 } = new MessageChannel();
      serveProducts(port1, this.options.products);
      slot.relay = port1;
      void this.send(thread, { op: 'attach', model: '', port: port2 }, [port2]).catch(() => undefined);
    }
    const loading = this.send(thread, { op: 'load', model, compiled }).then((v) => (v as { describe: DescribeReply }).describe);
    slot.loaded.set(model, loading);
    loading.catch(() => slot.loaded.get(model) === loading && slot.loaded.delete(model));
    return loading;
  }

  /** A task that needs the model on the thread; `body` moves to the thread (copied when it is a view). */
  private async step(thread: number, task: SessionTask, body?: Uint8Array): Promise<unknown> {
    const ensured = this.ensure(thread, task.model);
    if (!body) {
      await ensured;
      return this.send(thread, task);
    }
    const moved = ownsBuffer(body) ? body : body.slice();
    // Sent right behind the load (not after it answers), so requests keep their order.
    const sent = this.send(thread, { ...task, body: moved } as SessionTask, [moved.buffer as ArrayBuffer]);
    try {
      await ensured;
    } catch (e) {
      sent.catch(() => undefined);
      throw e;
    }
    return sent;
  }

  /** Fire-and-forget tasks go only to threads that hold the model (a fresh thread holds nothing). */
  private notify(thread: number, task: SessionTask): void {
    if (!this.slots[thread]?.loaded.has(task.model)) return;
    void this.send(thread, task).catch(() => undefined);
  }

  private async send(thread: number, task: SessionTask, transferList?: (ArrayBuffer | MessagePort)[]): Promise<unknown> {
    const slot = this.slots[thread]!;
    const running = slot.piscina.run(task, transferList ? { transferList } : {});
    slot.inFlight.add(running);
    let reply: SessionReply;
    try {
      reply = (await running) as SessionReply;
    } catch {
      // The handler answers every error: a rejection is the thread dying (or the pool closing).
      throw new CkksThreadLostError();
    } finally {
      slot.inFlight.delete(running);
    }
    if (reply.ok) return reply.value;
    // Only a fresh thread lacks a model a task names: the one it replaced died with the task queued.
    if (reply.code === 'ERR_MODEL_NOT_LOADED') throw new CkksThreadLostError();
    if (reply.code === 'ERR_INTERNAL') throw new Error(`CKKS session thread: ${reply.message}`);
    throw new BlindmlError(reply.code, reply.message);
  }
}
