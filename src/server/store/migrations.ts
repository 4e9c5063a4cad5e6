/**
 * The registry's schema, as numbered migrations per store. Each store records the versions it has
 * applied in a `schema_migrations` table and applies the missing ones in order, each in a
 * transaction together with its `schema_migrations` row, so a crash leaves a version either fully
 * applied or not at all. Never edit a released migration: add the next number.
 *
 * SQLite migration 1 is exactly the schema blindml created before migrations were versioned
 * (`CREATE TABLE IF NOT EXISTS`), so a database from then is adopted as version 1 unchanged.
 *
 * @module
 */
import { RegistryStoreError } from './model-store.js';

/** One schema step. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The SQLite registry (model files stay beside the database). */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'models and settings',
    sql: `
      CREATE TABLE IF NOT EXISTS models (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, input_shape TEXT NOT NULL, output_size INTEGER NOT NULL,
        rounds INTEGER NOT NULL, bytes INTEGER NOT NULL, created_at TEXT NOT NULL,
        calibration TEXT NOT NULL, calibration_samples INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  },
];

/** The channel on which PostgreSQL announces added and removed models (`add:<id>`, `remove:<id>`). */
export const MODELS_CHANNEL = 'blindml_models';

/**
 * The PostgreSQL registry. Model bytes live in `model_files` (bytea, one row per model, deleted
 * with it), apart from `models` so listing never reads them. A trigger announces every inserted or
 * deleted model on {@link MODELS_CHANNEL}; PostgreSQL delivers it when the transaction commits,
 * so a listener that hears of a model finds its files.
 */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'models, model files, settings and change notification',
    sql: `
      CREATE TABLE models (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, input_shape INTEGER[] NOT NULL, output_size INTEGER NOT NULL,
        rounds INTEGER NOT NULL, bytes INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        calibration TEXT NOT NULL CHECK (calibration IN ('sample', 'upload')), calibration_samples INTEGER NOT NULL
      );
      CREATE TABLE model_files (
        id TEXT PRIMARY KEY REFERENCES models (id) ON DELETE CASCADE,
        onnx BYTEA NOT NULL, calibration BYTEA
      );
      CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE FUNCTION blindml_models_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          PERFORM pg_notify('${MODELS_CHANNEL}', 'remove:' || OLD.id);
          RETURN OLD;
        END IF;
        PERFORM pg_notify('${MODELS_CHANNEL}', 'add:' || NEW.id);
        RETURN NEW;
      END $$;
      CREATE TRIGGER models_notify AFTER INSERT OR DELETE ON models
        FOR EACH ROW EXECUTE FUNCTION blindml_models_notify();`,
  },
];

/**
 * The migrations still to apply, in order, given the versions a store has applied.
 *
 * @throws RegistryStoreError when the store has a version this blindml does not know (made by a
 *   newer release: running older code on it could corrupt it).
 */
export function pendingMigrations(all: readonly Migration[], applied: Iterable<number>, location: string): Migration[] {
  const done = new Set(applied);
  const known = new Set(all.map((m) => m.version));
  const unknown = [...done].filter((v) => !known.has(v)).sort((a, b) => b - a);
  if (unknown.length > 0) {
    throw new RegistryStoreError(`the registry at ${location} has schema version ${unknown[0]}, newer than this blindml knows (${Math.max(0, ...known)}): upgrade blindml`);
  }
  return all.filter((m) => !done.has(m.version)).sort((a, b) => a.version - b.version);
}
