// The model registry over both stores (SQLite file, PostgreSQL database): the same suite for each,
// then what only a shared store does — two registries on one database learn of each other's
// uploads and removals without restart, concurrent uploads of one model, a race-safe owner key —
// migrations, and an unreachable database.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { encodeIdx } from '../../src/data/idx.js';
import { ModelRegistry, RegistryError, RegistryStoreError, type RegisteredModel } from '../../src/server/registry.js';
import { modelIdOf } from '../../src/cli/inference-job.js';
import { runCli } from '../helpers/cli.js';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tinyMlp } from '../helpers/tiny-mlp.js';


const sample = loadFashionMnistSample({ limit: 12 });
/** 12 calibration images as an IDX upload. */
const calibration = encodeIdx([12, 28, 28], Uint8Array.from(sample.images, (v) => Math.round(v * 255)));

const pgSkip = postgresUnavailable();
const dir = mkdtempSync(join(tmpdir(), 'blindml-registry-store-'));
let server: TestPostgres | undefined;
let databases = 0;
const registries: ModelRegistry[] = [];

before(async () => {
  if (!pgSkip) server = await startPostgres();
});
after(async () => {
  await Promise.allSettled(registries.map((r) => r.close()));
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh, empty store of each kind. */
const stores: { kind: string; skip: string | undefined; fresh: () => Promise<string> }[] = [
  { kind: 'SQLite', skip: undefined, fresh: async () => join(dir, `r${++databases}.db`) },
  {
    kind: 'PostgreSQL',
    skip: pgSkip,
    fresh: async () => {
      const name = `r${++databases}`;
      await server!.createDatabase(name);
      return server!.urlOf(name);
    },
  },
];

async function open(db: string, options: Parameters<typeof ModelRegistry.open>[1] = {}): Promise<ModelRegistry> {
  const { registry } = await ModelRegistry.open(db, options);
  registries.push(registry);
  return registry;
}

/** The registry's events, as promises a test can wait for. */
function follow(registry: ModelRegistry) {
  const loaded = new Map<string, (m: RegisteredModel) => void>();
  const removed = new Map<string, () => void>();
  const failed: string[] = [];
  const ready = registry.warm({
    loaded: (m) => loaded.get(m.record.id)?.(m),
    removed: (id) => removed.get(id)?.(),
    failed: (id) => void failed.push(id),
  });
  return {
    ready,
    failed,
    loaded: (id: string) => new Promise<RegisteredModel>((resolve) => loaded.set(id, resolve)),
    removed: (id: string) => new Promise<void>((resolve) => removed.set(id, resolve)),
  };
}

for (const store of stores) {
  describe(`registry on ${store.kind}`, { skip: store.skip, timeout: 120_000 }, () => {
    test('stores, lists, reopens, serves the stored files, removes; settings', async () => {
      const db = await store.fresh();
      const a = tinyMlp(10);
      const b = tinyMlp(20);
      const first = await open(db);
      follow(first);
      const added = await first.add(a, { name: 'a', inline: true });
      assert.equal(added.created, true);
      assert.equal((await first.add(a, { inline: true })).created, false, 'the same bytes twice');
      const withCalibration = await first.add(b, { name: 'b', calibration, inline: true });
      assert.equal(withCalibration.model.record.calibration, 'upload');
      assert.equal(withCalibration.model.record.calibrationSamples, 12);
      assert.deepEqual(first.list().map((m) => m.id).sort(), [modelIdOf(a), modelIdOf(b)].sort());
      assert.equal(await first.setting('k'), undefined);
      await first.setSetting('k', 'one');
      await first.setSetting('k', 'two');
      assert.equal(await first.claimSetting('k', 'three'), 'two', 'a claim keeps what is stored');
      assert.equal(await first.claimSetting('fresh', 'x'), 'x');
      await first.close();

      const second = await open(db);
      assert.equal(second.warming, 2, 'listed as warming before compiled');
      const events = follow(second);
      await events.ready;
      assert.deepEqual(events.failed, []);
      const records = second.list().sort((x, y) => x.name.localeCompare(y.name));
      assert.deepEqual(records, [added.model.record, withCalibration.model.record]);
      assert.ok(second.get(modelIdOf(a))?.compiled);
      assert.deepEqual(second.get(modelIdOf(b))?.compiled?.calibration, withCalibration.model.compiled?.calibration, 'compiled from the same calibration inputs');
      const files = await second.storedFiles(modelIdOf(b));
      assert.ok(Buffer.from(files.onnx).equals(b));
      assert.ok(Buffer.from(files.calibration!).equals(calibration));
      assert.equal((await second.storedFiles(modelIdOf(a))).calibration, undefined);
      await assert.rejects(second.storedFiles('0123456789abcdef'), /no model with id/);
      assert.equal(await second.setting('k'), 'two');

      assert.equal(await second.remove(modelIdOf(a)), true);
      assert.equal(await second.remove(modelIdOf(a)), false);
      assert.equal(second.get(modelIdOf(a)), undefined);
      await second.close();
      const third = await open(db);
      assert.deepEqual(third.list().map((m) => m.id), [modelIdOf(b)]);
      await third.ping(1_000);
    });

    test('a schema newer than this blindml is refused', async () => {
      const db = await store.fresh();
      await (await open(db)).close();
      if (store.kind === 'SQLite') {
        const raw = new Database(db);
        raw.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '')").run();
        raw.close();
      } else {
        await sql(db, "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')");
      }
      await assert.rejects(ModelRegistry.open(db), (e: unknown) => e instanceof RegistryStoreError && /schema version 99, newer than this blindml knows \(1\)/.test(e.message));
    });
  });
}

/** One statement on a database, outside any registry. */
async function sql(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

test('an id that is not a content hash removes nothing: no path outside the model directory, no NUL', async () => {
  const db = join(dir, 'ids.db');
  const registry = await open(db);
  follow(registry);
  await registry.add(tinyMlp(40), { inline: true });
  // A file the store's naming (`<id>.onnx` in `<db>.models/`) would reach with a relative id.
  const outside = join(dir, 'outside.onnx');
  writeFileSync(outside, 'keep');
  for (const id of ['../outside', '..%2Foutside', 'x\0', '', 'ABCDEF0123456789']) assert.equal(await registry.remove(id), false, JSON.stringify(id));
  assert.ok(existsSync(outside), 'the file outside the model directory is still there');
  assert.equal(registry.list().length, 1);
});

test('a SQLite registry made before migrations existed is adopted as version 1, its models kept', async () => {
  const db = join(dir, 'old.db');
  const onnx = tinyMlp(30);
  const id = modelIdOf(onnx);
  // Exactly what the registry created before its schema was versioned.
  const raw = new Database(db);
  raw.exec(`
    CREATE TABLE IF NOT EXISTS models (
      id TEXT PRIMARY KEY, name TEXT NOT NULL, input_shape TEXT NOT NULL, output_size INTEGER NOT NULL,
      rounds INTEGER NOT NULL, bytes INTEGER NOT NULL, created_at TEXT NOT NULL,
      calibration TEXT NOT NULL, calibration_samples INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  `);
  raw.prepare('INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(id, 'old', '[784]', 10, 1, onnx.length, '2025-01-01T00:00:00.000Z', 'sample', 100);
  raw.prepare('INSERT INTO settings VALUES (?, ?)').run('api_key_sha256', 'ab'.repeat(32));
  raw.close();
  mkdirSync(`${db}.models`);
  writeFileSync(join(`${db}.models`, `${id}.onnx`), onnx);

  const registry = await open(db);
  const events = follow(registry);
  await events.ready;
  assert.deepEqual(events.failed, []);
  assert.deepEqual(registry.get(id)?.record, { id, name: 'old', inputShape: [784], outputSize: 10, rounds: 1, bytes: onnx.length, createdAt: '2025-01-01T00:00:00.000Z', calibration: 'sample', calibrationSamples: 100 });
  assert.ok(registry.get(id)?.compiled);
  assert.equal(await registry.setting('api_key_sha256'), 'ab'.repeat(32));
  await registry.close();
  const check = new Database(db);
  assert.deepEqual(check.prepare('SELECT version FROM schema_migrations').pluck().all(), [1]);
  check.close();
});

describe('two registries on one PostgreSQL database', { skip: pgSkip, timeout: 120_000 }, () => {
  test('an upload through A is served by B without restart; a removal through B is dropped by A', async () => {
    const db = await stores[1]!.fresh();
    // No resync during this test: what B learns, it learns from the notifications.
    const a = await open(db, { resyncMs: 3_600_000 });
    const b = await open(db, { resyncMs: 3_600_000 });
    const onA = follow(a);
    const onB = follow(b);
    const onnx = tinyMlp(40);
    const id = modelIdOf(onnx);
    const learned = onB.loaded(id);
    const { model } = await a.add(onnx, { name: 'shared', calibration, inline: true });
    const seen = await learned;
    assert.deepEqual(seen.record, model.record);
    assert.deepEqual(seen.compiled?.calibration, model.compiled?.calibration, 'B compiled the same files');
    assert.equal(b.get(id), seen);
    assert.deepEqual(b.list(), [model.record]);

    const dropped = onA.removed(id);
    assert.equal(await b.remove(id), true);
    await dropped;
    assert.equal(a.get(id), undefined);
    assert.deepEqual(a.list(), []);
    assert.equal(await a.remove(id), false);
  });

  test('concurrent uploads of one model through two registries both succeed and agree', async () => {
    const db = await stores[1]!.fresh();
    const a = await open(db, { resyncMs: 3_600_000 });
    const b = await open(db, { resyncMs: 3_600_000 });
    follow(a);
    follow(b);
    const onnx = tinyMlp(50);
    // Different calibration inputs: whichever is stored first is what both serve.
    const [ra, rb] = await Promise.all([a.add(onnx, { name: 'from-a', calibration, inline: true }), b.add(onnx, { name: 'from-b', inline: true })]);
    assert.equal(Number(ra.created) + Number(rb.created), 1, 'exactly one stored it');
    assert.deepEqual(ra.model.record, rb.model.record);
    assert.deepEqual(ra.model.compiled?.calibration, rb.model.compiled?.calibration);
    const [{ count }] = (await sql(db, 'SELECT count(*)::int AS count FROM models')).rows as [{ count: number }];
    assert.equal(count, 1);
    // The first replica to claim the owner key wins; the other reads it.
    const [ka, kb] = await Promise.all([a.claimSetting('api_key_sha256', 'a'.repeat(64)), b.claimSetting('api_key_sha256', 'b'.repeat(64))]);
    assert.equal(ka, kb);
  });

  test('a registry whose listening connection is cut re-opens it and catches up', async () => {
    const db = await stores[1]!.fresh();
    const a = await open(db, { resyncMs: 3_600_000 });
    const b = await open(db, { resyncMs: 3_600_000 });
    follow(a);
    const onB = follow(b);
    const cut = await sql(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN blindml_models'");
    assert.equal(cut.rowCount, 2, 'both listeners cut');
    const onnx = tinyMlp(70);
    const learned = onB.loaded(modelIdOf(onnx));
    await a.add(onnx, { inline: true });
    // Announced while B may not listen yet: B re-opens, then compares its models with the table.
    await learned;
    assert.ok(b.get(modelIdOf(onnx))?.compiled);
  });

  test('a model that cannot be read during an outage is not given up: it loads once the store answers', async () => {
    const db = await stores[1]!.fresh();
    const a = await open(db, { resyncMs: 3_600_000 });
    follow(a);
    const onnx = tinyMlp(80);
    const id = modelIdOf(onnx);
    await a.add(onnx, { inline: true });
    // The rows answer, the model bytes do not (as if the database failed between the two).
    await sql(db, 'ALTER TABLE model_files RENAME TO model_files_away');
    // What a route hands a client says nothing of the database.
    await assert.rejects(a.storedFiles(id), (e: unknown) => e instanceof RegistryError && e.status === 503 && !/postgres|model_files/.test(e.message));
    const b = await open(db, { resyncMs: 100 });
    const onB = follow(b);
    await onB.ready;
    assert.deepEqual([onB.failed, b.skipped, b.get(id)], [[], [], undefined], 'not skipped for good');
    const learned = onB.loaded(id);
    await sql(db, 'ALTER TABLE model_files_away RENAME TO model_files');
    await learned;
    assert.ok(b.get(id)?.compiled);
  });

  test('the periodic resync catches changes no notification announced; migrations run once for replicas starting together', async () => {
    const db = await stores[1]!.fresh();
    const [a, b] = await Promise.all([open(db, { resyncMs: 100 }), open(db, { resyncMs: 100 })]);
    assert.deepEqual((await sql(db, 'SELECT version FROM schema_migrations')).rows, [{ version: 1 }]);
    const onB = follow(b);
    follow(a);
    const onnx = tinyMlp(60);
    const id = modelIdOf(onnx);
    const learned = onB.loaded(id);
    await a.add(onnx, { inline: true });
    await learned;
    // Deleted with triggers off (as if the notification were lost): only the resync can tell.
    const dropped = onB.removed(id);
    const client = new pg.Client({ connectionString: db });
    await client.connect();
    try {
      await client.query("SET session_replication_role = 'replica'");
      await client.query('DELETE FROM models WHERE id = $1', [id]);
    } finally {
      await client.end();
    }
    await dropped;
    assert.equal(b.get(id), undefined);
  });
});

describe('an unreachable or malformed PostgreSQL URL', () => {
  test('opening fails with one line that names the database without its password', async () => {
    const url = 'postgres://owner:s3cret-pass@127.0.0.1:1/blindml';
    await assert.rejects(ModelRegistry.open(url), (e: unknown) => {
      assert.ok(e instanceof RegistryStoreError, String(e));
      assert.match(e.message, /^cannot reach the registry database postgres:\/\/owner:\*\*\*@127\.0\.0\.1:1\/blindml: .*ECONNREFUSED/);
      assert.ok(!e.message.includes('s3cret') && !e.message.includes('\n'));
      return true;
    });
  });

  test('a server without that database is named as such', { skip: pgSkip }, async () => {
    await assert.rejects(ModelRegistry.open(server!.urlOf('nosuch')), (e: unknown) => e instanceof RegistryStoreError && /^cannot use the registry database postgres:\/\/postgres@127\.0\.0\.1:\d+\/nosuch: database "nosuch" does not exist$/.test(e.message));
  });

  test('blindml serve says so in one line and exits non-zero; a malformed URL is a usage error', async () => {
    const down = await runCli(['serve', '--port', '0', '--db', 'postgres://owner:s3cret-pass@127.0.0.1:1/blindml', '--log-level', 'silent']);
    assert.equal(down.code, 1);
    assert.equal(down.lines.length, 1, down.stderr);
    assert.match(down.stderr, /^blindml: cannot reach the registry database postgres:\/\/owner:\*\*\*@127\.0\.0\.1:1\/blindml/);
    assert.ok(!down.stderr.includes('s3cret'));
    const noDb = await runCli(['serve', '--port', '0', '--db', 'postgresql://owner:s3cret-pass@127.0.0.1:5432']);
    assert.equal(noDb.code, 2);
    assert.match(noDb.stderr, /--db postgresql:\/\/owner:\*\*\*@127\.0\.0\.1:5432 names no database/);
    assert.ok(!noDb.stderr.includes('s3cret'));
  });
});
