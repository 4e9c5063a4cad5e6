/**
 * Paillier client keys under the memory budget. A client's `open` names its modulus n; the front
 * checks n's size before the service does any arithmetic with it, and admits the key into the
 * {@link MemoryBudget} with what it will cost: a DJN table in every worker thread and a small one
 * for the service's re-randomization. The entry stays pinned while a session uses the key; once
 * it expires or is evicted, every worker thread drops its table.
 *
 * @module
 */
import { base64UrlToBigInt } from '../math/bigint.js';
import { decodeMessage } from '../protocol/paillier-inference/messages.js';
import { djnTableBytes, type MemoryBudget } from './budget.js';

/** Client modulus sizes the service accepts. */
export interface ModulusBounds {
  readonly minBits: number;
  readonly maxBits: number;
}

/** A refusal the front sends back as an error message. */
export interface KeyRefusal {
  readonly code: string;
  readonly message: string;
}

/** What the worker threads need to be told. */
export interface KeyForgetter {
  forgetKey(n: bigint): void;
}

/**
 * The bit length of the modulus an `open` message carries, without arithmetic on it: the size of
 * its base64url text first (so a huge n is refused before it becomes a bigint), then its exact
 * bit length. Undefined for a message that is not a well-formed `open` (the service answers it).
 */
export function openModulus(bytes: Uint8Array): { n: bigint; bits: number; text: string } | undefined {
  let text: string;
  try {
    const msg = decodeMessage(bytes);
    if (msg.type !== 'open') return undefined;
    text = msg.n;
  } catch {
    return undefined;
  }
  // 8 kbit is 1,366 base64url characters: anything longer is out of every sane bound.
  if (text.length > 1400) return { n: 0n, bits: Math.floor((text.length * 6) / 8) * 8, text };
  const n = base64UrlToBigInt(text);
  return { n, bits: n.toString(2).length, text };
}

/** Refuses a modulus outside the bounds (null when it is inside). */
export function checkModulus(bits: number, bounds: ModulusBounds): KeyRefusal | null {
  if (bits >= bounds.minBits && bits <= bounds.maxBits) return null;
  return { code: 'ERR_KEY_SIZE', message: `client keys must have ${bounds.minBits} to ${bounds.maxBits} bits (this one has ${bits})` };
}

/** Paillier client keys as entries of the budget, and which sessions use each. */
export class PaillierKeyAccounts {
  private readonly users = new Map<string, Set<string>>();
  private readonly keyOf = new Map<string, string>();

  constructor(
    private readonly budget: MemoryBudget,
    private readonly options: { readonly bounds: ModulusBounds; readonly threads: number; readonly workers?: KeyForgetter },
  ) {}

  /**
   * Checks an `open` message from `owner` before the service sees it: the modulus size, then room
   * in the budget for its tables. @returns the entry to pass to {@link opened}, or a refusal;
   * undefined for a message that is not an `open` with a readable modulus.
   */
  admit(bytes: Uint8Array, owner: string): { entry: string } | { refusal: KeyRefusal } | undefined {
    const open = openModulus(bytes);
    if (!open) return undefined;
    const refusal = checkModulus(open.bits, this.options.bounds);
    if (refusal) return { refusal };
    const entry = `paillier:${open.text}`;
    const { n, bits } = open;
    const bytesNeeded = this.options.threads * djnTableBytes(bits, 8) + djnTableBytes(bits, 5);
    const refused = this.budget.admit(entry, {
      kind: 'paillier-key',
      owner,
      bytes: bytesNeeded,
      pinned: () => (this.users.get(entry)?.size ?? 0) > 0,
      release: () => {
        this.users.delete(entry);
        this.options.workers?.forgetKey(n);
      },
    });
    if (refused === 'owner') return { refusal: { code: 'ERR_TOO_MANY_SESSIONS', message: 'this address holds as many client keys as it may; finish its sessions first' } };
    if (refused === 'full') return { refusal: { code: 'ERR_BUSY', message: 'the service is at its memory budget; retry later' } };
    return { entry };
  }

  /** A session opened with the key of `entry`. */
  opened(entry: string, sessionId: string): void {
    if (!this.users.has(entry)) this.users.set(entry, new Set());
    this.users.get(entry)!.add(sessionId);
    this.keyOf.set(sessionId, entry);
  }

  /** A session made progress (its key is in use). */
  touched(sessionId: string): void {
    const entry = this.keyOf.get(sessionId);
    if (entry) this.budget.touch(entry);
  }

  /** A session ended; its key stays until idle or evicted, so a returning client reuses the tables. */
  ended(sessionId: string): void {
    const entry = this.keyOf.get(sessionId);
    if (!entry) return;
    this.keyOf.delete(sessionId);
    this.users.get(entry)?.delete(sessionId);
  }
}
