/**
 * The shared registry store: one PostgreSQL database for every replica (the `pg` driver).
 *
 * Model bytes live in the database (`bytea`), not on disk: a replica needs nothing but the URL,
 * no shared or replicated directory, and a model's row and bytes are written in one transaction,
 * so no replica ever sees one without the other. The cost is a model's bytes travelling once per
 * replica when it compiles the model (and once per process compiling it for CKKS); models are
 * megabytes and compiled rarely.
 *
 * Replicas learn of changes at once through LISTEN/NOTIFY (a trigger announces every inserted or
 * deleted model when its transaction commits: `migrations.ts`); a dropped listening connection is
 * re-opened and reported, so the registry compares its models with the table then.
 *
 * Node-only.
 *
 * @module
 */
import pg from 'pg';
import { RegistryStoreError, redactDbUrl, type ModelFiles, type ModelRecord, type ModelStore, type StoreChange } from './model-store.js';
import { MODELS_CHANNEL, pendingMigrations, POSTGRES_MIGRATIONS } from './migrations.js';

/** Options of {@link PostgresModelStore.open}. */
export interface PostgresStoreOptions {
  /** Connections in the pool (the listener has one more of its own). Default 4. */
  readonly maxConnections?: number;
  /** How long to wait for a connection, ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** How long to wait before re-opening a lost listening connection, ms. Default 2000. */
  readonly reconnectMs?: number;
}

interface Row {
  id: string;
  name: string;
  input_shape: number[];
  output_size: number;
  rounds: number;
  bytes: number;
  created_at: Date;
  calibration: 'sample' | 'upload';
  calibration_samples: number;
}

const COLUMNS = 'id, name, input_shape, output_size, rounds, bytes, created_at, calibration, calibration_samples';

function toRecord(r: Row): ModelRecord {
  return {
    id: r.id,
    name: r.name,
    inputShape: r.input_shape,
    outputSize: r.output_size,
    rounds: r.rounds,
    bytes: r.bytes,
    createdAt: r.created_at.toISOString(),
    calibration: r.calibration,
    calibrationSamples: r.calibration_samples,
  };
}

/**
 * Model bytes are read in slices of this size: the driver receives every value as text (bytea as
 * hex, twice the bytes), and one string must stay far below V8's limit (about 512 MiB).
 */
const READ_SLICE_BYTES = 8 * 2 ** 20;

/** A fixed key for the advisory lock that serialises migrations across replicas. */
const MIGRATION_LOCK = 0x626c_696e; // 'blin'

/** The driver's reason in one line, never the password. */
function reason(err: unknown, password: string): string {
  const e = err as { message?: string; code?: string; errors?: { message?: string }[] };
  let text = e?.message || e?.errors?.[0]?.message || e?.code || String(err);
  if (password) text = text.split(password).join('***');
  return text.replace(/\s+/g, ' ').trim();
}

/** A PostgreSQL database shared by the replicas. */
export class PostgresModelStore implements ModelStore {
  readonly shared = true;
  private listener: pg.Client | undefined;
  private reconnect: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly config: pg.ClientConfig,
    readonly location: string,
    private readonly password: string,
    private readonly reconnectMs: number,
  ) {}

  /**
   * Connects (a pool of at most `maxConnections`) and brings the schema up to date: the missing
   * migrations, in one transaction under an advisory lock, so replicas starting together migrate
   * once.
   *
   * @throws RegistryStoreError (one line, password redacted) when the database cannot be reached
   *   or migrated, or its schema is newer than this blindml knows.
   */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresModelStore> {
    const location = redactDbUrl(url);
    let password = '';
    try {
      password = decodeURIComponent(new URL(url).password);
    } catch {
      throw new RegistryStoreError(`the registry URL ${location} is not a valid URL`);
    }
    // TCP keepalive: a listening connection silently cut (a network partition) is noticed and re-opened.
    const config: pg.ClientConfig = { connectionString: url, connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000, application_name: 'blindml', keepAlive: true, keepAliveInitialDelayMillis: 10_000 };
    const pool = new pg.Pool({ ...config, max: options.maxConnections ?? 4, idleTimeoutMillis: 30_000 });
    // An idle connection that breaks is dropped by the pool; the next query reports the outage.
    pool.on('error', () => undefined);
    const store = new PostgresModelStore(pool, config, location, password, options.reconnectMs ?? 2_000);
    try {
      await store.migrate();
    } catch (err) {
      await pool.end().catch(() => undefined);
      // A refusal of ours (a newer schema) as it is; the driver's error said as what it means here.
      const driver = err instanceof RegistryStoreError ? err.cause : err;
      if (driver === undefined) throw err;
      const why = reason(driver, password);
      const unreachable = /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ECONNRESET|EAI_AGAIN)$/.test((driver as { code?: string }).code ?? '') || /timeout/i.test(why);
      throw new RegistryStoreError(`cannot ${unreachable ? 'reach' : 'use'} the registry database ${location}: ${why}`, { cause: driver });
    }
    return store;
  }

  private async migrate(): Promise<void> {
    await this.transaction('BEGIN', async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
      const applied = (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version);
      for (const m of pendingMigrations(POSTGRES_MIGRATIONS, applied, this.location)) {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
    });
  }

  /** Runs one statement; driver errors become one-line RegistryStoreErrors. */
  private async query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(config);
    } catch (err) {
      throw new RegistryStoreError(`the registry database ${this.location} failed: ${reason(err, this.password)}`, { cause: err });
    }
  }

  async list(): Promise<ModelRecord[]> {
    return (await this.query<Row>({ text: `SELECT ${COLUMNS} FROM models ORDER BY created_at, id` })).rows.map(toRecord);
  }

  async get(id: string): Promise<ModelRecord | undefined> {
    const row = (await this.query<Row>({ text: `SELECT ${COLUMNS} FROM models WHERE id = $1`, values: [id] })).rows[0];
    return row ? toRecord(row) : undefined;
  }

  /** In one read-only snapshot, slice by slice (see {@link READ_SLICE_BYTES}). */
  async files(id: string): Promise<ModelFiles | undefined> {
    return this.transaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (client) => {
      const { rows } = await client.query<{ onnx: number; calibration: number | null }>('SELECT octet_length(onnx) AS onnx, octet_length(calibration) AS calibration FROM model_files WHERE id = $1', [id]);
      const sizes = rows[0];
      if (!sizes) return undefined;
      const onnx = await readColumn(client, id, 'onnx', sizes.onnx);
      return sizes.calibration === null ? { onnx } : { onnx, calibration: await readColumn(client, id, 'calibration', sizes.calibration) };
    });
  }

  /** Runs `body` in a transaction on one pooled connection; driver errors become one-line RegistryStoreErrors. */
  private async transaction<T>(begin: string, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient | undefined;
    try {
      client = await this.pool.connect();
      await client.query(begin);
      const result = await body(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client?.query('ROLLBACK').catch(() => undefined);
      if (err instanceof RegistryStoreError) throw err;
      throw new RegistryStoreError(`the registry database ${this.location} failed: ${reason(err, this.password)}`, { cause: err });
    } finally {
      client?.release();
    }
  }

  /** INSERT … ON CONFLICT DO NOTHING: of two replicas storing the same model at once, the first wins and the second is told so. */
  async insert(record: ModelRecord, files: ModelFiles): Promise<boolean> {
    return this.transaction('BEGIN', async (client) => {
      const inserted = await client.query(
        `INSERT INTO models (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
        [record.id, record.name, [...record.inputShape], record.outputSize, record.rounds, record.bytes, record.createdAt, record.calibration, record.calibrationSamples],
      );
      const created = inserted.rowCount === 1;
      // Buffers travel as binary parameters.
      if (created) await client.query('INSERT INTO model_files (id, onnx, calibration) VALUES ($1, $2, $3)', [record.id, asBuffer(files.onnx), files.calibration ? asBuffer(files.calibration) : null]);
      return created;
    });
  }

  async remove(id: string): Promise<boolean> {
    return ((await this.query({ text: 'DELETE FROM models WHERE id = $1', values: [id] })).rowCount ?? 0) > 0;
  }

  async setting(name: string): Promise<string | undefined> {
    return (await this.query<{ value: string }>({ text: 'SELECT value FROM settings WHERE name = $1', values: [name] })).rows[0]?.value;
  }

  async setSetting(name: string, value: string): Promise<void> {
    await this.query({ text: 'INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value', values: [name, value] });
  }

  async claimSetting(name: string, value: string): Promise<string> {
    await this.query({ text: 'INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', values: [name, value] });
    // A separate statement: it sees a row another replica committed meanwhile.
    const stored = await this.setting(name);
    if (stored === undefined) throw new RegistryStoreError(`the registry database ${this.location} lost the setting ${name}`);
    return stored;
  }

  async ping(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RegistryStoreError(`the registry database ${this.location} did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.query({ text: 'SELECT 1' }), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async watch(onChange: (change: StoreChange) => void, onLost: () => void): Promise<void> {
    const client = new pg.Client(this.config);
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.end().catch(() => undefined);
      onLost();
      this.scheduleReconnect(onChange, onLost);
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (msg) => {
      const [op, id] = (msg.payload ?? '').split(':');
      if ((op === 'add' || op === 'remove') && id) onChange({ op, id });
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${MODELS_CHANNEL}`);
      // Only now do its errors count as a lost listener.
      this.listener = client;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw new RegistryStoreError(`cannot listen for registry changes on ${this.location}: ${reason(err, this.password)}`, { cause: err });
    }
    if (this.closed) await this.stopListening();
  }

  /** Re-opens a lost listening connection until it works or the store closes; a success is reported as a loss (changes may have been missed). */
  private scheduleReconnect(onChange: (change: StoreChange) => void, onLost: () => void): void {
    if (this.closed || this.reconnect) return;
    this.reconnect = setTimeout(() => {
      this.reconnect = undefined;
      this.watch(onChange, onLost).then(onLost, () => this.scheduleReconnect(onChange, onLost));
    }, this.reconnectMs);
    this.reconnect.unref();
  }

  private async stopListening(): Promise<void> {
    const client = this.listener;
    this.listener = undefined;
    await client?.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnect);
    await this.stopListening();
    await this.pool.end();
  }
}

/** One bytea column of one row, read slice by slice into one buffer. */
async function readColumn(client: pg.PoolClient, id: string, column: 'onnx' | 'calibration', size: number): Promise<Buffer> {
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; at += READ_SLICE_BYTES) {
    const { rows } = await client.query<{ part: Buffer }>(`SELECT substring(${column} FROM $2 FOR $3) AS part FROM model_files WHERE id = $1`, [id, at + 1, READ_SLICE_BYTES]);
    rows[0]!.part.copy(out, at);
  }
  return out;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
