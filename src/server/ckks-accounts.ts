/**
 * The interactive CKKS protocol's per-client structures under the memory budget. They live on the
 * session threads (`workers/ckks-session-pool.ts`); the accounts on the main thread say which
 * thread holds what and count it: a client's keys (with the smudging ciphertexts kept for them),
 * each open session (with the prepared plaintexts it took) and the sessions prepared ahead of time.
 * Each is an entry of the {@link MemoryBudget}:
 *
 * - keys and sessions belong to the address that sent them, so one address holds at most its share
 *   and at most `perClientSessions` open sessions over every model;
 * - an open session is pinned (no other client's request can evict it) until it completes, fails,
 *   or lies idle past the budget's idle time; its keys are pinned while it is open;
 * - prepared sessions are the service's idle work: admitted only when there is room, first to go
 *   when a client needs the room, dropped when idle.
 *
 * Whatever way an entry leaves, the thread holding it is told to free it. A thread that dies takes
 * its entries with it ({@link CkksAccounts.threadLost}).
 *
 * Before SEAL parses a client's keys, their sizes are checked against what the compiled model's
 * parameters can need ({@link checkKeySizes}).
 *
 * @module
 */
import type { DescribeReply } from '../protocol/ckks-inference/messages.js';
import { ckksKeyBytes, type MemoryBudget } from './budget.js';

/** A refusal, sent back as HTTP `status` with `{ error: code, message }`. */
export interface CkksRefusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** What the accounts ask of the session threads (`CkksSessionPool`); tasks for one thread run in order. */
export interface CkksThreadTasks {
  readonly threads: number;
  dropKeys(thread: number, model: string, keyId: string): void;
  close(thread: number, model: string, sessionId: string): void;
  discardPrepared(thread: number, model: string, count: number): void;
  /** Prepares one session; resolves with the bytes it takes. */
  prepare(thread: number, model: string): Promise<number>;
}

/** Bytes an open session without prepared plaintexts is counted for (its draws and layouts). */
export const SESSION_FLOOR_BYTES = 2 ** 20;

/** Open sessions one model keeps on one thread (the service drops its oldest past this). */
export const SESSIONS_PER_THREAD = 64;

/** Envelope, SEAL header and per-key metadata a serialized key may add to its polynomials. */
const KEY_SLACK_BYTES = 64 * 1024;

/**
 * Refuses keys larger than the model's parameters allow (checked before SEAL sees them): the
 * public key at most 2 polynomials over every prime, the Galois keys at most one key switching key
 * per rotation the model needs, and none when it needs no rotation.
 */
export function checkKeySizes(describe: DescribeReply, request: unknown): CkksRefusal | null {
  const r = request as { publicKey?: unknown; galoisKeys?: unknown } | null;
  const size = (v: unknown) => (v instanceof Uint8Array ? v.byteLength : 0);
  const publicMax = ckksKeyBytes(describe.params, 0, 0) + KEY_SLACK_BYTES;
  const galoisMax = describe.galoisSteps.length === 0 ? 0 : ckksKeyBytes(describe.params, describe.galoisSteps.length, 0) + KEY_SLACK_BYTES;
  if (size(r?.publicKey) > publicMax) return { status: 413, code: 'ERR_KEY_SIZE', message: `the public key has ${size(r?.publicKey)} bytes; this model's parameters need at most ${publicMax}` };
  if (size(r?.galoisKeys) > galoisMax) return { status: 413, code: 'ERR_KEY_SIZE', message: `the Galois keys have ${size(r?.galoisKeys)} bytes; this model's ${describe.galoisSteps.length} rotations need at most ${galoisMax}` };
  return null;
}

const FULL: CkksRefusal = { status: 503, code: 'ERR_BUSY', message: 'the service is at its memory budget; retry later' };
const SHARE: CkksRefusal = { status: 429, code: 'ERR_TOO_MANY_SESSIONS', message: 'this address holds as much as it may; finish its sessions first' };

interface SessionEntry {
  readonly modelId: string;
  readonly thread: number;
  readonly keyId: string;
  /** The budget entry of the keys it runs under (pinned from admission on). */
  readonly keys: string;
  /** Whether admitting it took a prepared session (which `open` then uses). */
  readonly tookPrepared: boolean;
  sessionId?: string;
}

interface KeysEntry {
  readonly modelId: string;
  readonly keyId: string;
  readonly thread: number;
}

/** Accounts for one front's CKKS structures (all models, all threads). */
export class CkksAccounts {
  /** Open (or opening) sessions by budget entry. */
  private readonly sessions = new Map<string, SessionEntry>();
  /** Budget entry of each open session, by `modelId:sessionId`. */
  private readonly bySession = new Map<string, string>();
  /** Loaded keys by budget entry. */
  private readonly keys = new Map<string, KeysEntry>();
  /** Budget entries of the prepared sessions of each `modelId:thread`, oldest first (the order `open` takes them). */
  private readonly ready = new Map<string, string[]>();
  /** Bytes of one prepared session of each model (known once one is made). */
  private readonly preparedSize = new Map<string, number>();
  /** Prepared entries being handed to a session (their release must not discard anything). */
  private readonly taken = new Set<string>();
  private serial = 0;

  constructor(
    private readonly budget: MemoryBudget,
    private readonly threads: CkksThreadTasks,
    private readonly options: {
      readonly perClientSessions: number;
      /** How long a client's keys stay loaded unused (longer than a session: clients come back). */
      readonly keysIdleMs: number;
    },
  ) {}

  /** The thread a new key upload goes to: the one holding the fewest keys, then the fewest sessions. */
  threadForKeys(): number {
    const load = Array.from({ length: this.threads.threads }, () => 0);
    for (const k of this.keys.values()) load[k.thread]! += 1_000;
    for (const s of this.sessions.values()) load[s.thread]! += 1;
    return load.indexOf(Math.min(...load));
  }

  /**
   * Keys of `owner` loaded on `thread`: admitted, or a refusal (the thread then unloads them).
   * Keys already held on another thread stay there and this copy is unloaded.
   *
   * @returns the thread that holds the keys, or a refusal.
   */
  keysLoaded(modelId: string, describe: DescribeReply, thread: number, keyId: string, owner: string): { thread: number } | CkksRefusal {
    const entry = `ckks-keys:${modelId}:${keyId}`;
    const held = this.keys.get(entry);
    if (held && held.thread !== thread) {
      this.threads.dropKeys(thread, modelId, keyId);
      this.budget.touch(entry);
      return { thread: held.thread };
    }
    const refused = this.budget.admit(entry, {
      kind: 'ckks-keys',
      owner,
      bytes: ckksKeyBytes(describe.params, describe.galoisSteps.length, describe.outputCiphertexts),
      idleMs: this.options.keysIdleMs,
      pinned: () => [...this.sessions.values()].some((s) => s.keys === entry),
      release: () => {
        this.keys.delete(entry);
        this.threads.dropKeys(thread, modelId, keyId);
      },
    });
    if (!refused) {
      this.keys.set(entry, { modelId, keyId, thread });
      return { thread };
    }
    this.threads.dropKeys(thread, modelId, keyId);
    return refused === 'owner' ? SHARE : FULL;
  }

  /**
   * Before `open`: the keys (and so the thread), the address's session count and room for the
   * session (the prepared session it will take, or {@link SESSION_FLOOR_BYTES}). Call
   * {@link opened} or {@link openFailed} after.
   *
   * @returns the entry, the thread to open on and whether to take a prepared session; or a refusal.
   */
  admitOpen(modelId: string, keyId: string, owner: string): { entry: string; thread: number; prepared: boolean } | CkksRefusal {
    const keys = `ckks-keys:${modelId}:${keyId}`;
    const held = this.keys.get(keys);
    if (!held) return { status: 404, code: 'ERR_UNKNOWN_KEYS', message: `no CKKS keys with id ${keyId} are loaded; upload them again` };
    const { thread } = held;
    if (this.budget.ownedBy(owner, 'ckks-session') >= this.options.perClientSessions) {
      return { status: 429, code: 'ERR_TOO_MANY_SESSIONS', message: `at most ${this.options.perClientSessions} open CKKS sessions per client` };
    }
    // The service drops its oldest session past its limit: never let it get there.
    let here = 0;
    for (const s of this.sessions.values()) if (s.modelId === modelId && s.thread === thread) here++;
    if (here >= SESSIONS_PER_THREAD) return { status: 503, code: 'ERR_BUSY', message: 'the model is at its session limit; retry later' };
    const prepared = this.ready.get(`${modelId}:${thread}`)?.shift();
    const bytes = prepared ? this.preparedSize.get(modelId) ?? SESSION_FLOOR_BYTES : SESSION_FLOOR_BYTES;
    if (prepared) {
      this.taken.add(prepared);
      this.budget.delete(prepared);
      this.taken.delete(prepared);
    }
    const entry = `ckks-session:${modelId}:${++this.serial}`;
    this.sessions.set(entry, { modelId, thread, keyId, keys, tookPrepared: prepared !== undefined });
    this.budget.touch(keys);
    const refused = this.budget.admit(entry, { kind: 'ckks-session', owner, bytes, pinned: () => true, release: () => this.released(entry) });
    if (!refused) return { entry, thread, prepared: prepared !== undefined };
    this.sessions.delete(entry);
    if (prepared) this.threads.discardPrepared(thread, modelId, 1);
    return refused === 'owner' ? SHARE : FULL;
  }

  /** The session `open` made for an admitted entry. */
  opened(entry: string, sessionId: string): void {
    const s = this.sessions.get(entry);
    if (!s) return;
    s.sessionId = sessionId;
    this.bySession.set(`${s.modelId}:${sessionId}`, entry);
    this.budget.touch(s.keys);
  }

  /** An admitted open that failed: the prepared session it took is dropped too. */
  openFailed(entry: string): void {
    const s = this.sessions.get(entry);
    if (s?.tookPrepared) this.threads.discardPrepared(s.thread, s.modelId, 1);
    this.budget.delete(entry);
  }

  /** The thread holding an open session, if it is open. */
  sessionThread(modelId: string, sessionId: string): number | undefined {
    const entry = this.bySession.get(`${modelId}:${sessionId}`);
    return entry === undefined ? undefined : this.sessions.get(entry)?.thread;
  }

  /** A round for the session: restarts its and its keys' idle time. */
  touched(modelId: string, sessionId: string): void {
    const entry = this.bySession.get(`${modelId}:${sessionId}`);
    if (!entry) return;
    this.budget.touch(entry);
    const keys = this.sessions.get(entry)?.keys;
    if (keys) this.budget.touch(keys);
  }

  /** A session completed or failed: its entry goes. */
  ended(modelId: string, sessionId: string): void {
    const entry = this.bySession.get(`${modelId}:${sessionId}`);
    if (entry) this.budget.delete(entry);
  }

  /** Open sessions, all models. */
  get openSessions(): number {
    return this.budget.entries('ckks-session');
  }

  /**
   * Prepares sessions of a model on a thread ahead of time while the model has fewer than `target`
   * on all threads together and the budget has room for them (admitted at the size the model's
   * prepared sessions have; the first one once its size is known).
   */
  async prepare(modelId: string, thread: number, target: number, live: () => boolean): Promise<void> {
    const key = `${modelId}:${thread}`;
    while (this.preparedOf(modelId) < target && live()) {
      const entry = `ckks-prepared:${modelId}:${++this.serial}`;
      const admit = (bytes: number) => this.budget.admit(entry, { kind: 'ckks-prepared', owner: '', bytes, release: () => this.discarded(key, entry, thread, modelId) });
      const known = this.preparedSize.get(modelId);
      if (known !== undefined && admit(known)) return;
      let bytes: number;
      try {
        bytes = await this.threads.prepare(thread, modelId);
      } catch (err) {
        this.budget.delete(entry);
        throw err;
      }
      this.preparedSize.set(modelId, bytes);
      // Not admitted, or let go of while it was being made: the thread drops it again.
      if ((known === undefined && admit(bytes)) || !this.budget.has(entry)) {
        this.threads.discardPrepared(thread, modelId, 1);
        return;
      }
      if (!this.ready.has(key)) this.ready.set(key, []);
      this.ready.get(key)!.push(entry);
    }
  }

  /** Prepared sessions of a model, all threads. */
  private preparedOf(modelId: string): number {
    let n = 0;
    for (const [key, list] of this.ready) if (key.startsWith(`${modelId}:`)) n += list.length;
    return n;
  }

  /** A thread died: everything it held is gone, and its entries go too. */
  threadLost(thread: number): void {
    for (const [entry, s] of [...this.sessions]) if (s.thread === thread) this.budget.delete(entry);
    for (const [entry, k] of [...this.keys]) if (k.thread === thread) this.budget.delete(entry);
    for (const [key, list] of [...this.ready]) if (key.endsWith(`:${thread}`)) for (const entry of [...list]) this.budget.delete(entry);
  }

  /** Drops a model's entries (the model was removed; the threads drop it). */
  forget(modelId: string): void {
    for (const [key, list] of [...this.ready]) {
      if (!key.startsWith(`${modelId}:`)) continue;
      for (const entry of [...list]) this.budget.delete(entry);
      this.ready.delete(key);
    }
    for (const [entry, s] of [...this.sessions]) if (s.modelId === modelId) this.budget.delete(entry);
    for (const [entry, k] of [...this.keys]) if (k.modelId === modelId) this.budget.delete(entry);
    this.preparedSize.delete(modelId);
  }

  private discarded(key: string, entry: string, thread: number, modelId: string): void {
    if (this.taken.has(entry)) return;
    const list = this.ready.get(key) ?? [];
    const at = list.indexOf(entry);
    if (at < 0) return;
    list.splice(at, 1);
    // The oldest prepared session goes: prepared sessions are all alike, only their count matters.
    this.threads.discardPrepared(thread, modelId, 1);
  }

  private released(entry: string): void {
    const s = this.sessions.get(entry);
    this.sessions.delete(entry);
    if (s?.sessionId === undefined) return;
    this.bySession.delete(`${s.modelId}:${s.sessionId}`);
    this.threads.close(s.thread, s.modelId, s.sessionId);
    // Keys let go of while this session used them stayed loaded for it: now they go.
    if (!this.budget.has(s.keys)) this.threads.dropKeys(s.thread, s.modelId, s.keyId);
  }
}
