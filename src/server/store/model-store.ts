/**
 * Where the registry keeps its models: one asynchronous interface over two stores.
 *
 * - {@link SqliteModelStore} (`sqlite-store.ts`): a SQLite file with the model files beside it —
 *   the embedded default for one machine.
 * - {@link PostgresModelStore} (`postgres-store.ts`): a PostgreSQL database shared by every
 *   replica, model bytes included (`bytea`), so replicas need no shared disk; it tells the
 *   registry when another replica adds or removes a model (LISTEN/NOTIFY).
 *
 * Node-only.
 *
 * @module
 */
import { BlindmlError } from '../../errors.js';

/** What the registry records about a model (public fields first). */
export interface ModelRecord {
  /** Content id: the first 16 hex digits of the SHA-256 of the ONNX bytes. */
  readonly id: string;
  readonly name: string;
  readonly inputShape: readonly number[];
  readonly outputSize: number;
  /** Client activation rounds per session. */
  readonly rounds: number;
  readonly bytes: number;
  readonly createdAt: string;
  /** 'sample' (the committed Fashion-MNIST tail) or 'upload'. */
  readonly calibration: 'sample' | 'upload';
  readonly calibrationSamples: number;
}

/** A model's files as the owner uploaded them. */
export interface ModelFiles {
  readonly onnx: Uint8Array;
  /** Calibration inputs (IDX), when the owner uploaded them. */
  readonly calibration?: Uint8Array;
}

/** A change another process made to a shared store. */
export interface StoreChange {
  readonly op: 'add' | 'remove';
  readonly id: string;
}

/** The registry store is unreachable or unusable (one line, its address redacted). */
export class RegistryStoreError extends BlindmlError {
  /** What a request that needed the store answers (the details go to the log, not the client). */
  readonly statusCode = 503;

  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_REGISTRY_STORE', message.replace(/\s+/g, ' ').trim(), options);
  }
}

/** The registry's storage. Every method may throw {@link RegistryStoreError} (or the driver's error). */
export interface ModelStore {
  /** Where it lives, for messages (a URL's password redacted). */
  readonly location: string;
  /** Whether other processes share it (and so may change it: see {@link watch}). */
  readonly shared: boolean;
  /** Every stored model, oldest first. */
  list(): Promise<ModelRecord[]>;
  /** One stored model, or undefined. */
  get(id: string): Promise<ModelRecord | undefined>;
  /** A stored model's files, or undefined when there is no such row. @throws when the row's files are missing. */
  files(id: string): Promise<ModelFiles | undefined>;
  /**
   * Stores a model and its files, atomically. @returns false when a row with this id was there
   * already and was kept (a shared store: another replica stored it first), true when stored.
   */
  insert(record: ModelRecord, files: ModelFiles): Promise<boolean>;
  /** Deletes a model and its files. @returns whether a row existed. */
  remove(id: string): Promise<boolean>;
  setting(name: string): Promise<string | undefined>;
  setSetting(name: string, value: string): Promise<void>;
  /**
   * Stores `value` unless the setting exists; @returns the stored value (`value`, or the one
   * another process stored first). Race-safe.
   */
  claimSetting(name: string, value: string): Promise<string>;
  /** @throws RegistryStoreError unless the store answers a trivial query within `timeoutMs`. */
  ping(timeoutMs: number): Promise<void>;
  /**
   * Calls `onChange` when another process adds or removes a model (shared stores; a local store
   * never calls it), and `onLost` when notifications may have been missed (the caller then
   * compares {@link list} with what it holds). Resolves once listening.
   */
  watch(onChange: (change: StoreChange) => void, onLost: () => void): Promise<void>;
  close(): Promise<void>;
}

/** Whether `db` names a PostgreSQL database (`postgres://` or `postgresql://`) rather than a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

/**
 * A database URL fit for logs and error messages: the password (in the user part or a
 * `password=` parameter) replaced by `***`. Anything unparsable is reduced to its scheme.
 */
export function redactDbUrl(db: string): string {
  if (!isPostgresUrl(db)) return db;
  try {
    const url = new URL(db);
    if (url.password) url.password = '***';
    for (const key of [...url.searchParams.keys()]) if (/pass/i.test(key)) url.searchParams.set(key, '***');
    return url.toString();
  } catch {
    return `${db.slice(0, db.indexOf(':'))}://…`;
  }
}
