/**
 * The work a two-server worker thread does (see {@link TwoServerWorkerPool}), as plain functions
 * over plain data. Keys are rebuilt once per worker and cached by modulus.
 *
 * @module
 */
import { powProducts, type PowRow } from '../math/straus.js';
import { privateKeyFor, publicKeyFor } from './paillier-tasks.js';
import { packRaw } from '../schemes/paillier/packing.js';

/** A task for {@link runTwoServerTask}. */
export type TwoServerTask =
  | { kind: 'pow'; m: bigint; bases: bigint[]; rows: PowRow[] }
  | { kind: 'encrypt'; n: bigint; insecure: boolean; values: bigint[] }
  | { kind: 'decrypt'; n: bigint; primes: bigint[]; insecure: boolean; values: bigint[] }
  | { kind: 'pack'; nSquared: bigint; values: bigint[]; slotBits: number; perCiphertext: number };

/** Runs one task and returns raw bigints. */
export function runTwoServerTask(task: TwoServerTask): bigint[] {
  switch (task.kind) {
    case 'pow':
      return powProducts(task.bases, task.rows, task.m);
    case 'encrypt': {
      const key = publicKeyFor(task.n, task.insecure);
      return task.values.map((v) => key.encryptRaw(v));
    }
    case 'decrypt': {
      const k = privateKeyFor(task.n, task.primes, task.insecure);
      return task.values.map((c) => k.decryptRaw(c));
    }
    case 'pack':
      return packRaw(task.values, null, task.slotBits, task.perCiphertext, task.nSquared);
  }
}
