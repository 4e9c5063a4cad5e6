/**
 * The work a Paillier worker thread does, as plain functions over plain data (bigints cross
 * thread boundaries by structured clone). Keys are rebuilt once per worker and cached by modulus,
 * so each worker pays for its DJN table once.
 *
 * @module
 */
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
  | { kind: 'pack'; n: bigint; values: readonly bigint[]; factors: readonly bigint[] | null; slotBits: number; perCiphertext: number };

const publicKeys = new Map<bigint, PaillierPublicKey>();
const privateKeys = new Map<bigint, PaillierPrivateKey>();

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
  }
}
