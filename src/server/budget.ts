/**
 * The service's memory budget: every per-client structure (a Paillier client key with the DJN
 * tables every worker thread builds for it, a client's CKKS keys with their smudging ciphertexts,
 * an open CKKS session with its prepared plaintexts, a prepared session waiting for a client) is an
 * entry of one byte-budgeted LRU cache (lru-cache) with idle expiry.
 *
 * - An entry is admitted only if it fits: least recently used entries that are not pinned make
 *   room; if pinned ones (sessions in flight, keys an open session uses) fill the budget, the new
 *   entry is refused and nothing is evicted.
 * - Each client address may hold at most `perOwnerBytes`, so one address can neither take the
 *   whole budget nor push out another address's session; past its share, an address's new entry
 *   pushes out that address's own unpinned entries first.
 * - An entry unused for `idleMs` expires, pinned or not (an abandoned session ends like this).
 * - Every way out (expiry, eviction, deletion, {@link MemoryBudget.clear}) calls the entry's
 *   `release` exactly once, which frees what it stands for.
 *
 * Sizes are estimates from the parameters ({@link djnTableBytes}, {@link ckksKeyBytes}), not
 * measurements: the budget bounds what clients can make the service hold, the process's RSS
 * stays above it by the models, the worker threads and the allocator's slack.
 *
 * @module
 */
import { LRUCache } from 'lru-cache';

/** What kind of per-client structure an entry is (for counts in /healthz and metrics). */
export type BudgetKind = 'paillier-key' | 'ckks-keys' | 'ckks-session' | 'ckks-prepared';

/** One per-client structure. */
export interface BudgetEntry {
  readonly kind: BudgetKind;
  /** The client address it belongs to ('' for the service's own idle work). */
  readonly owner: string;
  readonly bytes: number;
  /** Its own idle time, when not the budget's (keys a client reuses across sessions live longer). */
  readonly idleMs?: number;
  /** While true the entry is never evicted to make room (it may still expire when idle). */
  readonly pinned?: () => boolean;
  /** Frees the structure; called once, however the entry leaves. */
  readonly release: (reason: 'expire' | 'evict' | 'delete') => void;
}

/** Why {@link MemoryBudget.admit} refused. */
export type Refusal = 'owner' | 'full';

/** Options of {@link MemoryBudget}. */
export interface BudgetOptions {
  /** Bytes all entries together may take. */
  readonly maxBytes: number;
  /** An entry unused this long expires. */
  readonly idleMs: number;
  /** Bytes one owner's entries may take together. Default: maxBytes / 3. */
  readonly perOwnerBytes?: number;
}

/** The budget (see the module comment). */
export class MemoryBudget {
  readonly maxBytes: number;
  readonly perOwnerBytes: number;
  private readonly cache: LRUCache<string, BudgetEntry>;
  private readonly byOwner = new Map<string, number>();
  private readonly counts = new Map<BudgetKind, { entries: number; bytes: number }>();
  /** Keys being deleted to make room (their release is told 'evict'). */
  private readonly evicting = new Set<string>();

  /** @throws RangeError for a non-positive budget or idle time. */
  constructor(options: BudgetOptions) {
    if (!(options.maxBytes > 0) || !(options.idleMs > 0)) throw new RangeError('MemoryBudget: maxBytes and idleMs must be positive');
    this.maxBytes = options.maxBytes;
    this.perOwnerBytes = options.perOwnerBytes ?? Math.floor(options.maxBytes / 3);
    this.cache = new LRUCache<string, BudgetEntry>({
      maxSize: this.maxBytes,
      sizeCalculation: (e) => Math.max(1, Math.ceil(e.bytes)),
      ttl: options.idleMs,
      updateAgeOnGet: true,
      updateAgeOnHas: false,
      // Expired entries must go even when nobody asks the cache (an abandoned session).
      ttlAutopurge: true,
      dispose: (entry, key, reason) => this.released(entry, reason === 'expire' ? 'expire' : reason === 'evict' || this.evicting.has(key) ? 'evict' : 'delete'),
    });
  }

  /**
   * Adds an entry under `key` if it fits, evicting unpinned entries (least recently used first)
   * to make room: the owner's own ones to stay within its share, then anyone's to stay within the
   * budget. Refuses, evicting nothing, when the owner's pinned entries fill its share ('owner') or
   * pinned entries fill the budget ('full'). An existing entry under `key` is only touched.
   */
  admit(key: string, entry: BudgetEntry): Refusal | null {
    if (this.cache.get(key)) return null;
    const bytes = Math.max(1, Math.ceil(entry.bytes));
    if (bytes > this.maxBytes) return 'full';
    if (entry.owner !== '' && bytes > this.perOwnerBytes) return 'owner';
    const own = entry.owner === '' ? [] : this.victims(bytes - (this.perOwnerBytes - this.ownerBytes(entry.owner)), (e) => e.owner === entry.owner);
    if (!own) return 'owner';
    const freed = own.reduce((sum, k) => sum + Math.max(1, Math.ceil(this.cache.peek(k, { allowStale: true })!.bytes)), 0);
    const others = this.victims(bytes - (this.maxBytes - this.cache.calculatedSize) - freed, (_e, k) => !own.includes(k));
    if (!others) return 'full';
    for (const k of [...own, ...others]) {
      this.evicting.add(k);
      this.cache.delete(k);
      this.evicting.delete(k);
    }
    this.byOwner.set(entry.owner, (this.byOwner.get(entry.owner) ?? 0) + bytes);
    const c = this.counts.get(entry.kind) ?? { entries: 0, bytes: 0 };
    c.entries++;
    c.bytes += bytes;
    this.counts.set(entry.kind, c);
    this.cache.set(key, entry, entry.idleMs === undefined ? {} : { ttl: entry.idleMs });
    return null;
  }

  /**
   * Unpinned entries (least recently used first, among those `eligible`) that free at least
   * `needed` bytes: none when nothing is needed, undefined when they cannot.
   */
  private victims(needed: number, eligible: (e: BudgetEntry, key: string) => boolean): string[] | undefined {
    const out: string[] = [];
    let found = 0;
    for (const k of this.cache.rkeys()) {
      if (found >= needed) break;
      const e = this.cache.peek(k, { allowStale: true });
      if (!e || e.pinned?.() || !eligible(e, k)) continue;
      out.push(k);
      found += Math.max(1, Math.ceil(e.bytes));
    }
    return found >= needed ? out : undefined;
  }

  /** Marks an entry used now (restarting its idle time). @returns whether it is held. */
  touch(key: string): boolean {
    return this.cache.get(key) !== undefined;
  }

  /** Whether an entry is held (without touching it). */
  has(key: string): boolean {
    return this.cache.has(key);
  }

  /** Removes (and releases) an entry. @returns whether it was held. */
  delete(key: string): boolean {
    return this.cache.delete(key);
  }

  /** Releases every entry (shutdown). */
  clear(): void {
    this.cache.clear();
  }

  /** Bytes held, all entries or one kind. */
  bytes(kind?: BudgetKind): number {
    return kind ? this.counts.get(kind)?.bytes ?? 0 : this.cache.calculatedSize;
  }

  /** Entries held, all or one kind. */
  entries(kind?: BudgetKind): number {
    return kind ? this.counts.get(kind)?.entries ?? 0 : this.cache.size;
  }

  /** Entries of one kind owned by `owner`. */
  ownedBy(owner: string, kind: BudgetKind): number {
    let n = 0;
    for (const e of this.cache.values()) if (e.owner === owner && e.kind === kind) n++;
    return n;
  }

  /** Bytes held by one owner. */
  ownerBytes(owner: string): number {
    return this.byOwner.get(owner) ?? 0;
  }

  private released(entry: BudgetEntry, reason: 'expire' | 'evict' | 'delete'): void {
    const bytes = Math.max(1, Math.ceil(entry.bytes));
    const left = (this.byOwner.get(entry.owner) ?? 0) - bytes;
    if (left > 0) this.byOwner.set(entry.owner, left);
    else this.byOwner.delete(entry.owner);
    const c = this.counts.get(entry.kind);
    if (c) {
      c.entries--;
      c.bytes -= bytes;
    }
    entry.release(reason);
  }
}

/**
 * Bytes of the DJN fixed-base table a Paillier key of `bits` bits builds (`windowBits` 8 on the
 * worker threads, 5 for the service's own re-randomization): ⌈(bits/2)/w⌉·(2^w − 1) entries of
 * one n²-sized bigint each (2·bits/8 bytes plus V8's object header).
 */
export function djnTableBytes(bits: number, windowBits = 8): number {
  const entries = Math.ceil(Math.ceil(bits / 2) / windowBits) * (2 ** windowBits - 1);
  return entries * (Math.ceil((2 * bits) / 8) + 32);
}

/**
 * Bytes a client's CKKS keys take loaded in SEAL: the public key (2 polynomials at every prime of
 * the key level), one Galois key per rotation step (a key switching key: (primes − 1) pairs of
 * such polynomials), and `zeros` smudging ciphertexts kept for the client (2 polynomials at the
 * data level).
 */
export function ckksKeyBytes(params: { polyModulusDegree: number; coeffModulusBits: readonly number[] }, galoisSteps: number, zeros: number): number {
  const primes = params.coeffModulusBits.length;
  const poly = params.polyModulusDegree * 8;
  const publicKey = 2 * poly * primes;
  const galois = galoisSteps * (primes - 1) * 2 * poly * primes;
  const ciphertexts = zeros * 2 * poly * (primes - 1);
  return publicKey + galois + ciphertexts;
}

/** Memory kept back from the per-client budget for models compiled after start (CKKS contexts, plans). */
export const MODEL_RESERVE_BYTES = 512 * 2 ** 20;

/**
 * The budget for a service that should stay within `maxMemoryMb`: what the process holds now (its
 * models, worker threads, SEAL's heap) and {@link MODEL_RESERVE_BYTES} are taken off, and at least
 * a quarter of the total is left to clients. One address may hold a third of it.
 *
 * @throws RangeError for a non-positive size.
 */
export function serviceBudget(maxMemoryMb: number, idleMs: number, rssBytes = process.memoryUsage().rss): MemoryBudget {
  if (!(maxMemoryMb > 0)) throw new RangeError('the memory limit must be positive');
  const total = maxMemoryMb * 2 ** 20;
  return new MemoryBudget({ maxBytes: Math.max(Math.floor(total / 4), total - rssBytes - MODEL_RESERVE_BYTES), idleMs });
}
