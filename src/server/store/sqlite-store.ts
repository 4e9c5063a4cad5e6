/**
 * The embedded registry store: a SQLite database (better-sqlite3) with the model files beside it
 * (`<db>.models/<id>.onnx`, and `<id>.calibration` when the owner uploaded calibration images).
 * One process owns it; nothing else changes it, so it has nothing to announce. Node-only.
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { RegistryStoreError, type ModelFiles, type ModelRecord, type ModelStore, type StoreChange } from './model-store.js';
import { pendingMigrations, SQLITE_MIGRATIONS } from './migrations.js';

interface Row {
  id: string;
  name: string;
  input_shape: string;
  output_size: number;
  rounds: number;
  bytes: number;
  created_at: string;
  calibration: 'sample' | 'upload';
  calibration_samples: number;
}

function toRecord(r: Row): ModelRecord {
  return {
    id: r.id,
    name: r.name,
    inputShape: JSON.parse(r.input_shape) as number[],
    outputSize: r.output_size,
    rounds: r.rounds,
    bytes: r.bytes,
    createdAt: r.created_at,
    calibration: r.calibration,
    calibrationSamples: r.calibration_samples,
  };
}

/** A SQLite file and its model directory. */
export class SqliteModelStore implements ModelStore {
  readonly shared = false;

  private constructor(
    private readonly db: Database.Database,
    /** Directory of the model files. */
    readonly dir: string,
    readonly location: string,
  ) {}

  /**
   * Opens (creating if needed) the database and its model directory, and brings its schema up to
   * date (`migrations.ts`). `:memory:` keeps the rows in memory and the files in a directory
   * removed on close.
   *
   * @throws whatever better-sqlite3 throws for an unusable database file; RegistryStoreError for
   *   a schema newer than this blindml knows.
   */
  static open(dbPath: string): SqliteModelStore {
    const path = dbPath === ':memory:' ? dbPath : resolve(dbPath);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      migrate(db, dbPath);
    } catch (err) {
      db.close();
      throw err;
    }
    const dir = path === ':memory:' ? join(process.cwd(), `.blindml-memory-${process.pid}.models`) : `${path}.models`;
    mkdirSync(dir, { recursive: true });
    return new SqliteModelStore(db, dir, dbPath);
  }

  async list(): Promise<ModelRecord[]> {
    return (this.db.prepare('SELECT * FROM models ORDER BY created_at').all() as Row[]).map(toRecord);
  }

  async get(id: string): Promise<ModelRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM models WHERE id = ?').get(id) as Row | undefined;
    return row ? toRecord(row) : undefined;
  }

  async files(id: string): Promise<ModelFiles | undefined> {
    const row = this.db.prepare('SELECT calibration FROM models WHERE id = ?').get(id) as Pick<Row, 'calibration'> | undefined;
    if (!row) return undefined;
    const onnx = readFileSync(this.file(id, 'onnx'));
    return row.calibration === 'upload' ? { onnx, calibration: readFileSync(this.file(id, 'calibration')) } : { onnx };
  }

  /** Writes the files, then the row (replacing one with the same id: a re-upload repairs a row whose file went missing). */
  async insert(record: ModelRecord, files: ModelFiles): Promise<boolean> {
    writeAtomic(this.file(record.id, 'onnx'), files.onnx);
    if (files.calibration) writeAtomic(this.file(record.id, 'calibration'), files.calibration);
    this.db
      .prepare(
        `INSERT OR REPLACE INTO models (id, name, input_shape, output_size, rounds, bytes, created_at, calibration, calibration_samples)
         VALUES (@id, @name, @inputShape, @outputSize, @rounds, @bytes, @createdAt, @calibration, @calibrationSamples)`,
      )
      .run({ ...record, inputShape: JSON.stringify(record.inputShape) });
    return true;
  }

  async remove(id: string): Promise<boolean> {
    const stored = this.db.prepare('DELETE FROM models WHERE id = ?').run(id).changes > 0;
    rmSync(this.file(id, 'onnx'), { force: true });
    rmSync(this.file(id, 'calibration'), { force: true });
    return stored;
  }

  async setting(name: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT value FROM settings WHERE name = ?').get(name) as { value: string } | undefined)?.value;
  }

  async setSetting(name: string, value: string): Promise<void> {
    this.db.prepare('INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)').run(name, value);
  }

  async claimSetting(name: string, value: string): Promise<string> {
    this.db.prepare('INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)').run(name, value);
    return (await this.setting(name))!;
  }

  async ping(): Promise<void> {
    try {
      this.db.prepare('SELECT 1').get();
    } catch (err) {
      throw new RegistryStoreError(`the registry ${this.location} cannot be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** Nothing else writes this database: there is nothing to watch. */
  async watch(_onChange: (change: StoreChange) => void, _onLost: () => void): Promise<void> {}

  async close(): Promise<void> {
    this.db.close();
    if (this.dir.includes('.blindml-memory-') && existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }

  private file(id: string, ext: 'onnx' | 'calibration'): string {
    // Ids are content hashes (checked by the registry); a path here would name a file outside the directory.
    if (!/^[0-9a-f]{16}$/.test(id)) throw new RangeError(`not a model id: ${JSON.stringify(id.slice(0, 40))}`);
    return join(this.dir, `${id}.${ext}`);
  }
}

/** Applies the missing migrations, each in a transaction with its `schema_migrations` row. */
function migrate(db: Database.Database, location: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  const applied = db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[];
  for (const m of pendingMigrations(SQLITE_MIGRATIONS, applied, location)) {
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, new Date().toISOString());
    }).immediate();
  }
}

function writeAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}
