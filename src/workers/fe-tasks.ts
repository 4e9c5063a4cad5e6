/**
 * The work an FE worker thread does, as plain functions over plain data (keys and ciphertexts
 * are objects of typed arrays, strings and bigints, which cross threads by structured clone).
 * Each worker keeps one {@link FeEngine} per discrete-log table cap, so tables are built once.
 * Errors come back as data and are rebuilt with their class on the calling thread.
 *
 * @module
 */
import { KeyMismatchError, InvalidKeyError, FormatError } from '../errors.js';
import { FeEngine, InnerProductOutOfBoundError, type Ciphertext, type FunctionKey, type MasterPublicKey } from '../schemes/fe/index.js';
import { sparseJobs, type SparseJob } from '../protocol/fe-training/compute.js';

/** A task for {@link runFeTask}. */
export type FeTask =
  | { kind: 'encrypt'; maxDlogTable: number; mpk: MasterPublicKey; vectors: Int32Array[] }
  | { kind: 'decrypt'; maxDlogTable: number; cts: Ciphertext[]; keys: FunctionKey[]; bound: number }
  | { kind: 'decrypt-sparse'; maxDlogTable: number; jobs: SparseJob[]; bound: number };

/** What a task returns. */
export type FeTaskResult =
  | { kind: 'encrypt'; cts: Ciphertext[] }
  | { kind: 'decrypt'; values: Float64Array; dlogMs: number; dlogCount: number }
  | { kind: 'error'; name: string; message: string; bound?: number };

const engines = new Map<number, FeEngine>();

function engineFor(maxDlogTable: number): FeEngine {
  let e = engines.get(maxDlogTable);
  if (e === undefined) {
    e = new FeEngine({ maxDlogTable });
    engines.set(maxDlogTable, e);
  }
  return e;
}

/** Runs one task; never throws (errors are returned as `{ kind: 'error' }`). */
export function runFeTask(task: FeTask): FeTaskResult {
  try {
    const engine = engineFor(task.maxDlogTable);
    if (task.kind === 'encrypt') return { kind: 'encrypt', cts: engine.encrypt(task.mpk, task.vectors) };
    if (task.kind === 'decrypt-sparse') return { kind: 'decrypt', ...sparseJobs(engine, task.jobs, task.bound) };
    const before = { ...engine.stats };
    const values = engine.decryptMany(task.cts, task.keys, task.bound);
    return { kind: 'decrypt', values, dlogMs: engine.stats.dlogMs - before.dlogMs, dlogCount: engine.stats.dlogCount - before.dlogCount };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const out: FeTaskResult = { kind: 'error', name: e.name, message: e.message };
    if (e instanceof InnerProductOutOfBoundError) out.bound = e.bound;
    return out;
  }
}

/** Rebuilds a worker's error with its class. */
export function reviveFeError(r: { name: string; message: string; bound?: number }): Error {
  switch (r.name) {
    case 'InnerProductOutOfBoundError':
      return new InnerProductOutOfBoundError(r.bound ?? 0);
    case 'KeyMismatchError':
      return new KeyMismatchError(r.message);
    case 'InvalidKeyError':
      return new InvalidKeyError(r.message);
    case 'FormatError':
      return new FormatError(r.message);
    case 'RangeError':
      return new RangeError(r.message);
    case 'TypeError':
      return new TypeError(r.message);
    default:
      return new Error(r.message);
  }
}
