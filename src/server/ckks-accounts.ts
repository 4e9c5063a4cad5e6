/**
 * The interactive CKKS protocol's per-client structures under the memory budget: a client's keys
 * (with the smudging ciphertexts kept for them), each open session (with the prepared plaintexts it
 * took) and the sessions prepared ahead of time. Each is an entry of the {@link MemoryBudget}:
 *
 * - keys and sessions belong to the address that sent them, so one address holds at most its share
 *   and at most `perClientSessions` open sessions over every model;
 * - an open session is pinned (no other client's request can evict it) until it completes, fails,
 *   or lies idle past the budget's idle time; its keys are pinned while it is open;
 * - prepared sessions are the service's idle work: admitted only when there is room, first to go
 *   when a client needs the room, dropped when idle.
 *
 * Before SEAL parses a client's keys, their sizes are checked against what the compiled model's
 * parameters can need ({@link checkKeySizes}).
 *
 * @module
 */
import type { CkksInferenceService } from '../protocol/ckks-inference/index.js';
import { ckksKeyBytes, type MemoryBudget } from './budget.js';

/** A refusal, sent back as HTTP `status` with `{ error: code, message }`. */
export interface CkksRefusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** Bytes an open session without prepared plaintexts is counted for (its draws and layouts). */
export const SESSION_FLOOR_BYTES = 2 ** 20;

/** Envelope, SEAL header and per-key metadata a serialized key may add to its polynomials. */
const KEY_SLACK_BYTES = 64 * 1024;

/**
 * Refuses keys larger than the model's parameters allow (checked before SEAL sees them): the
 * public key at most 2 polynomials over every prime, the Galois keys at most one key switching key
 * per rotation the model needs, and none when it needs no rotation.
 */
export function checkKeySizes(describe: ReturnType<CkksInferenceService['describe']>, request: unknown): CkksRefusal | null {
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
  readonly service: CkksInferenceService;
  /** Whether admitting it took a prepared session (which `open` then uses). */
  readonly tookPrepared: boolean;
  sessionId?: string;
  /** The budget entry of the keys it runs under. */
  keys?: string;
}

/** Accounts for one front's CKKS structures (all models). */
export class CkksAccounts {
  /** Open (or opening) sessions by budget entry. */
  private readonly sessions = new Map<string, SessionEntry>();
  /** Budget entry of each open session, by `modelId:sessionId`. */
  private readonly bySession = new Map<string, string>();
  /** Budget entries of each model's prepared sessions, oldest first (the order `open` takes them). */
  private readonly ready = new Map<string, string[]>();
  /** Prepared entries being handed to a session (their release must not discard anything). */
  private readonly taken = new Set<string>();
  private serial = 0;

  constructor(
    private readonly budget: MemoryBudget,
    private readonly options: {
      readonly perClientSessions: number;
      /** How long a client's keys stay loaded unused (longer than a session: clients come back). */
      readonly keysIdleMs: number;
    },
  ) {}

  /** Loaded keys of `owner`: admitted, or a refusal (the keys are then unloaded). */
  keysLoaded(modelId: string, service: CkksInferenceService, keyId: string, owner: string): CkksRefusal | null {
    const entry = `ckks-keys:${modelId}:${keyId}`;
    const d = service.describe();
    const refused = this.budget.admit(entry, {
      kind: 'ckks-keys',
      owner,
      bytes: ckksKeyBytes(d.params, d.galoisSteps.length, d.outputCiphertexts),
      idleMs: this.options.keysIdleMs,
      pinned: () => [...this.sessions.values()].some((s) => s.keys === entry),
      release: () => void service.dropKeys(keyId),
    });
    if (!refused) return null;
    service.dropKeys(keyId);
    return refused === 'owner' ? SHARE : FULL;
  }

  /**
   * Before `open`: the address's session count and room for the session (the prepared session it
   * will take, or {@link SESSION_FLOOR_BYTES}). Call {@link opened} or {@link openFailed} after.
   *
   * @returns the entry, or a refusal.
   */
  admitOpen(modelId: string, service: CkksInferenceService, owner: string): { entry: string } | CkksRefusal {
    if (this.budget.ownedBy(owner, 'ckks-session') >= this.options.perClientSessions) {
      return { status: 429, code: 'ERR_TOO_MANY_SESSIONS', message: `at most ${this.options.perClientSessions} open CKKS sessions per client` };
    }
    // The service drops its oldest session past maxSessions: never let it get there.
    if (service.openSessions >= service.maxSessions) return { status: 503, code: 'ERR_BUSY', message: 'the model is at its session limit; retry later' };
    const prepared = this.ready.get(modelId)?.shift();
    const bytes = prepared && service.preparedSessions > 0 ? service.preparedBytes / service.preparedSessions : SESSION_FLOOR_BYTES;
    if (prepared) {
      this.taken.add(prepared);
      this.budget.delete(prepared);
      this.taken.delete(prepared);
    }
    const entry = `ckks-session:${modelId}:${++this.serial}`;
    this.sessions.set(entry, { modelId, service, tookPrepared: prepared !== undefined });
    const refused = this.budget.admit(entry, { kind: 'ckks-session', owner, bytes, pinned: () => true, release: () => this.released(entry) });
    if (!refused) return { entry };
    this.sessions.delete(entry);
    if (prepared) service.discardPrepared(1);
    return refused === 'owner' ? SHARE : FULL;
  }

  /** The session `open` made for an admitted entry, under the keys `keyId`. */
  opened(entry: string, sessionId: string, keyId: string): void {
    const s = this.sessions.get(entry);
    if (!s) return;
    s.sessionId = sessionId;
    s.keys = `ckks-keys:${s.modelId}:${keyId}`;
    this.bySession.set(`${s.modelId}:${sessionId}`, entry);
    this.budget.touch(s.keys);
  }

  /** An admitted open that failed: the prepared session it took is dropped too. */
  openFailed(entry: string): void {
    const s = this.sessions.get(entry);
    if (s?.tookPrepared) s.service.discardPrepared(1);
    this.budget.delete(entry);
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
   * Prepares sessions ahead of time while the budget has room for them (admitted at the size the
   * model's prepared sessions have; the first one once its size is known).
   */
  async prepare(modelId: string, service: CkksInferenceService, target: number, live: () => boolean): Promise<void> {
    while (service.preparedSessions < target && live()) {
      const entry = `ckks-prepared:${modelId}:${++this.serial}`;
      const admit = (bytes: number) => this.budget.admit(entry, { kind: 'ckks-prepared', owner: '', bytes, release: () => this.discarded(modelId, entry, service) });
      const known = service.preparedSessions > 0 ? service.preparedBytes / service.preparedSessions : undefined;
      if (known !== undefined && admit(known)) return;
      await service.prepare(1);
      if (known === undefined && admit(service.preparedBytes / Math.max(1, service.preparedSessions))) {
        service.discardPrepared(1);
        return;
      }
      if (!this.ready.has(modelId)) this.ready.set(modelId, []);
      this.ready.get(modelId)!.push(entry);
    }
  }

  /** Drops a model's entries (the model was removed; its service is disposed). */
  forget(modelId: string): void {
    for (const entry of this.ready.get(modelId) ?? []) this.budget.delete(entry);
    this.ready.delete(modelId);
    for (const [entry, s] of [...this.sessions]) if (s.modelId === modelId) this.budget.delete(entry);
  }

  private discarded(modelId: string, entry: string, service: CkksInferenceService): void {
    if (this.taken.has(entry)) return;
    const list = this.ready.get(modelId) ?? [];
    const at = list.indexOf(entry);
    if (at < 0) return;
    list.splice(at, 1);
    // The oldest prepared session goes: entries are admitted, and go idle, in the order they were made.
    service.discardPrepared(1);
  }

  private released(entry: string): void {
    const s = this.sessions.get(entry);
    this.sessions.delete(entry);
    if (s?.sessionId === undefined) return;
    this.bySession.delete(`${s.modelId}:${s.sessionId}`);
    s.service.close(s.sessionId);
  }
}
