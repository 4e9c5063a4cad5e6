/**
 * The work a Paillier worker thread does, as plain functions over plain data (bigints cross
 * thread boundaries by structured clone). Keys are rebuilt once per worker and cached by modulus,
 * so each worker pays for its DJN table once per key while the key is in use. The cache is
 * bounded (a DJN table is about 17 MiB for a 2048-bit key): least recently used keys go first,
 * keys unused for a while go on their own, and the pool's owner can drop a key at once
 * ({@link forgetKey}, which the pool broadcasts to every thread).
 *
 * @module
 */
import { LRUCache } from 'lru-cache';
import { PaillierPrivateKey, PaillierPublicKey } from '../schemes/paillier/keys.js';
import { dotRaw, sliceWeights, type IntegerWeights } from '../schemes/paillier/linear.js';
import { packRaw } from '../schemes/paillier/packing.js';
import { evaluateRows, type IntegerRows } from '../tensor/paillier-sparse.js';

/** A task for {@link runPaillierTask}. */
export type PaillierTask =
  | { kind: 'encrypt'; n: bigint; insecure: boolean; values: bigint[] }
  | { kind: 'noise'; n: bigint; insecure: boolean; count: number }
  | { kind: 'decrypt'; n: bigint; primes: bigint[]; insecure: boolean; values: bigint[] }
  | { kind: 'matvec'; n: bigint; insecure: boolean; values: bigint[]; weights: IntegerWeights; rowStart: number; rowEnd: number; bias?: bigint[] }
  | { kind: 'rows'; n: bigint; insecure: boolean; values: readonly bigint[]; rows: IntegerRows; rowStart: number; rowEnd: number }
  | { kind: 'pack'; n: bigint; values: readonly bigint[]; factors: readonly bigint[] | null; slotBits: number; perCiphertext: number }
  | { kind: 'cached' };

/** Bounds of a thread's key cache. */
export interface KeyCacheLimits {
  /** Keys kept (each with its DJN table). Default 8. */
  readonly maxKeys: number;
  /** A key unused this long is dropped. Default 60 s. */
  readonly idleMs: number;
}

export const DEFAULT_KEY_CACHE: KeyCacheLimits = { maxKeys: 8, idleMs: 60_000 };

let dropped: (() => void) | undefined;

function keyCache<K extends object>(limits: KeyCacheLimits): LRUCache<bigint, K> {
  // ttlAutopurge: an idle thread gets no task that would notice its stale keys.
  return new LRUCache<bigint, K>({ max: limits.maxKeys, ttl: limits.idleMs, updateAgeOnGet: true, ttlAutopurge: true, dispose: () => dropped?.() });
}

let publicKeys = keyCache<PaillierPublicKey>(DEFAULT_KEY_CACHE);
let privateKeys = keyCache<PaillierPrivateKey>(DEFAULT_KEY_CACHE);

/**
 * Sets this thread's cache bounds (dropping what it holds); `onDrop` is called whenever a key
 * leaves the cache (a thread may then collect its garbage: an idle one would not on its own).
 */
export function configureKeyCache(limits: KeyCacheLimits, onDrop?: () => void): void {
  dropped = onDrop;
  publicKeys.clear();
  privateKeys.clear();
  publicKeys = keyCache(limits);
  privateKeys = keyCache(limits);
}

/** Drops this thread's keys (and DJN tables) for modulus n. */
export function forgetKey(n: bigint): void {
  publicKeys.delete(n);
  privateKeys.delete(n);
}

/** Keys this thread holds (public and private). */
export function cachedKeys(): number {
  return publicKeys.size + privateKeys.size;
}

/** This worker's public key for modulus n, built once. */
export function publicKeyFor(n: bigint, insecure: boolean): PaillierPublicKey {
  let key = publicKeys.get(n);
  if (!key) {
    key = new PaillierPublicKey(n, { insecure });
    publicKeys.set(n, key);
  }
  return key;
}

/** This worker's private key for modulus n, built once (primes trusted: they come from the pool's owner). */
export function privateKeyFor(n: bigint, primes: readonly bigint[], insecure: boolean): PaillierPrivateKey {
  let key = privateKeys.get(n);
  if (!key) {
    key = new PaillierPrivateKey(publicKeyFor(n, insecure), primes, { checkPrimes: false });
    privateKeys.set(n, key);
  }
  return key;
}

/** Runs one task and returns raw bigints (ciphertexts, plaintexts or noise values). */
export function runPaillierTask(task: PaillierTask): bigint[] {
  switch (task.kind) {
    case 'encrypt': {
      const key = publicKeyFor(task.n, task.insecure);
      return task.values.map((m) => key.encryptRaw(m));
    }
    case 'noise': {
      const source = publicKeyFor(task.n, task.insecure).noiseSource;
      return Array.from({ length: task.count }, () => source.next());
    }
    case 'decrypt': {
      const key = privateKeyFor(task.n, task.primes, task.insecure);
      return task.values.map((c) => key.decryptRaw(c));
    }
    case 'matvec': {
      const key = publicKeyFor(task.n, task.insecure);
      const cols = task.values.length;
      const out: bigint[] = [];
      for (let r = task.rowStart; r < task.rowEnd; r++) {
        out.push(dotRaw(task.values, sliceWeights(task.weights, r * cols, (r + 1) * cols), key, task.bias?.[r]));
      }
      return out;
    }
    case 'pack':
      return packRaw(task.values, task.factors, task.slotBits, task.perCiphertext, task.n * task.n);
    case 'rows':
      return evaluateRows(publicKeyFor(task.n, task.insecure), task.values, task.rows, task.rowStart, task.rowEnd);
    case 'cached':
      return [BigInt(cachedKeys())];
  }
}
