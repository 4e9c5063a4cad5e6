/**
 * The service's model registry: a SQLite database (better-sqlite3) with the model files beside it
 * (`<db>.models/<id>.onnx`, and `<id>.calibration` when the owner uploaded calibration images).
 * Models are identified by the content hash of their ONNX bytes, so registering the same file twice
 * is a no-op and a restart finds every model again. The database also keeps the SHA-256 hash of
 * the owner's API key (never the key itself). Node-only.
 *
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Piscina } from 'piscina';
import Database from 'better-sqlite3';
import { FormatError } from '../errors.js';
import { parseIdxNumbers } from '../data/idx.js';
import { checkedModelLabels, readInputStandardization, type InputStandardization } from '../data/onnx-labels.js';
import { maybeGunzip } from '../data/files.js';
import { loadFashionMnistSample } from '../data/fashion-mnist.js';
import { importOnnx } from '../nn/onnx.js';
import type { Model } from '../nn/model.js';
import { calibrate, compilePaillierModel, type CompiledPaillierModel } from '../protocol/paillier-inference/compile.js';
import { planModel } from '../protocol/paillier-inference/plan.js';
import { checkCompiled, checkWeights, ModelCheckError } from './model-checks.js';
import { planPolyNetwork } from '../protocol/ckks-poly/plan.js';
import { modelIdOf } from '../cli/inference-job.js';
import { siblingModuleUrl } from '../workers/pool-support.js';

/** How many of the committed sample's last images calibrate a 1×28×28 model by default. */
export const DEFAULT_CALIBRATION_IMAGES = 100;

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
  /** Class names from the model's `labels` metadata (read from the ONNX bytes at compile time). */
  readonly classNames?: readonly string[];
  /** The input standardisation the model's metadata states (feature models), read likewise. */
  readonly standardization?: InputStandardization;
}

/** A registered model ready to serve. */
export interface RegisteredModel {
  readonly record: ModelRecord;
  /** Undefined for a polynomial network the Paillier protocol cannot run (served by ckks-poly only). */
  readonly compiled: CompiledPaillierModel | undefined;
}

/** A registry refusal with an HTTP status. */
export class RegistryError extends FormatError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

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

/** SHA-256 of an API key, hex. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A fresh random API key (256 bits, base64url). */
export function generateApiKey(): string {
  return `bml_${randomBytes(32).toString('base64url')}`;
}

/** Compares an offered key with a stored hash in constant time. */
export function apiKeyMatches(offered: string, storedHash: string): boolean {
  const a = Buffer.from(hashApiKey(offered), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Calibration inputs from an uploaded IDX file of N inputs (gzip or not): unsigned bytes → [0, 1]
 * (images, e.g. N×28×28 or N×3×32×32), or float32 values as they are (e.g. N×30 feature rows).
 *
 * @throws RegistryError (400) if the file is not IDX inputs of the model's input size.
 */
export function calibrationFromIdx(bytes: Uint8Array, model: Model): Float32Array {
  let tensor;
  try {
    tensor = parseIdxNumbers(maybeGunzip(bytes));
  } catch (err) {
    throw new RegistryError(400, `calibration file: ${err instanceof Error ? err.message : String(err)}`);
  }
  const [count = 0, ...rest] = tensor.dims;
  const size = rest.reduce((a, b) => a * b, 1);
  if (tensor.dims.length < 2 || size !== model.inputSize) {
    throw new RegistryError(400, `calibration file: expected N × ${model.inputSize} values (IDX, unsigned bytes or float32), got [${tensor.dims.join(', ')}]`);
  }
  if (count < 1) throw new RegistryError(400, 'calibration file has no images');
  return tensor.bytes ? tensor.values.map((v) => v / 255) : tensor.values;
}

/** The committed Fashion-MNIST tail, when the model takes 1×28×28 (or 784) inputs. */
function defaultCalibration(model: Model): Float32Array {
  const sample = loadFashionMnistSample();
  const size = sample.shape.reduce((a, b) => a * b, 1);
  if (model.inputSize !== size) {
    throw new RegistryError(400, `the model takes ${model.inputSize} values per input; upload calibration images (IDX) of that size`);
  }
  return sample.images.subarray((sample.count - DEFAULT_CALIBRATION_IMAGES) * size);
}

/** What {@link compileUpload} needs: the owner's files. */
export interface CompileRequest {
  readonly onnx: Uint8Array;
  readonly calibration?: Uint8Array;
}

/** What {@link compileUpload} produces. */
export interface CompiledUpload {
  readonly compiled: CompiledPaillierModel | undefined;
  readonly inputShape: readonly number[];
  readonly outputSize: number;
  readonly calibrationSamples: number;
  readonly classNames?: readonly string[];
  readonly standardization?: InputStandardization;
}

/**
 * Imports and compiles an uploaded model (what the compile worker runs).
 *
 * @throws RegistryError (400) for bytes that are not a model the protocol can run, a model the
 *   service cannot serve correctly (`model-checks.ts`), or bad calibration images.
 */
export function compileUpload(request: CompileRequest): CompiledUpload {
  const { model, calibration } = importUpload(request);
  let compiled: CompiledPaillierModel | undefined;
  try {
    compiled = compileChecked(model, calibration);
  } catch (err) {
    if (err instanceof ModelCheckError) throw new RegistryError(400, `the service cannot serve this model: ${err.message}`);
    // A polynomial network is served by ckks-poly only: its squares are the service's, not the client's.
    if (!isPolynomialNetwork(model)) throw new RegistryError(400, `the inference protocol cannot run this model: ${err instanceof Error ? err.message : String(err)}`);
  }
  const classNames = checkedModelLabels(request.onnx, model.outputSize);
  const standardization = readInputStandardization(request.onnx, model.inputSize);
  return { compiled, inputShape: [...model.inputShape], outputSize: model.outputSize, calibrationSamples: calibration.length / model.inputSize, ...(classNames ? { classNames } : {}), ...(standardization ? { standardization } : {}) };
}

/** The Paillier compilation, with the checks that the service can serve it correctly. */
function compileChecked(model: Model, calibration: Float32Array): CompiledPaillierModel {
  const plan = planModel(model);
  checkWeights(plan);
  const compiled = compilePaillierModel(plan, calibrate(plan, calibration, model.inputSize));
  checkCompiled(compiled);
  return compiled;
}

function isPolynomialNetwork(model: Model): boolean {
  try {
    planPolyNetwork(model);
    return true;
  } catch {
    return false;
  }
}

/**
 * Imports an owner's files: the graph and its calibration inputs (the uploaded images, or the
 * committed sample for 28×28 models).
 *
 * @throws RegistryError (400) for bytes that are not a model or bad calibration images.
 */
export function importUpload(request: CompileRequest): { model: Model; calibration: Float32Array } {
  let model: Model;
  try {
    model = importOnnx(request.onnx);
  } catch (err) {
    throw new RegistryError(400, `not a model blindml can import: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { model, calibration: request.calibration ? calibrationFromIdx(request.calibration, model) : defaultCalibration(model) };
}

/** Runs {@link compileUpload} on a worker thread (`.ts` under tsx, `.js` when built). */
async function compileOnWorker(pool: Piscina, request: CompileRequest): Promise<CompiledUpload> {
  let reply: { ok: true; value: CompiledUpload } | { ok: false; status: number; message: string };
  try {
    reply = (await pool.run(request)) as typeof reply;
  } catch (err) {
    throw new RegistryError(500, `model compilation failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!reply.ok) throw new RegistryError(reply.status, reply.message);
  return reply.value;
}

/** The registry: open with {@link ModelRegistry.open}, close with {@link ModelRegistry.close}. */
export class ModelRegistry {
  private readonly models = new Map<string, RegisteredModel>();
  private readonly compiling = new Map<string, Promise<RegisteredModel>>();
  /** Stored models not compiled yet (see {@link warm}). */
  private readonly pending = new Map<string, Row>();
  /** Callers waiting for a warming model, by id. */
  private readonly waiting = new Map<string, (() => void)[]>();
  /** Stored models that could not be loaded (missing file, import or compile error). */
  readonly skipped: { id: string; reason: string }[] = [];

  private constructor(
    private readonly db: Database.Database,
    /** Directory of the model files. */
    readonly dir: string,
  ) {}

  /**
   * Opens (creating if needed) the database. Its models are listed at once, as warming, and
   * compiled by {@link warm}, on the compile thread; a model whose file is missing or no longer
   * compiles is then skipped and reported in `skipped`.
   *
   * @throws whatever better-sqlite3 throws for an unusable database file.
   */
  static open(dbPath: string): { registry: ModelRegistry; skipped: readonly { id: string; reason: string }[] } {
    const path = dbPath === ':memory:' ? dbPath : resolve(dbPath);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec(`
      CREATE TABLE IF NOT EXISTS models (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, input_shape TEXT NOT NULL, output_size INTEGER NOT NULL,
        rounds INTEGER NOT NULL, bytes INTEGER NOT NULL, created_at TEXT NOT NULL,
        calibration TEXT NOT NULL, calibration_samples INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
    const dir = path === ':memory:' ? join(process.cwd(), `.blindml-memory-${process.pid}.models`) : `${path}.models`;
    mkdirSync(dir, { recursive: true });
    const registry = new ModelRegistry(db, dir);
    for (const row of db.prepare('SELECT * FROM models ORDER BY created_at').all() as Row[]) registry.pending.set(row.id, row);
    return { registry, skipped: registry.skipped };
  }

  /**
   * Compiles the stored models, one after another on the compile thread (the event
   * loop stays free), calling `ready` for each one compiled; a failure goes to `skipped` and
   * `failed`.
   */
  async warm(ready: (model: RegisteredModel) => void, failed: (id: string, reason: string) => void = () => undefined): Promise<void> {
    for (const [id, row] of [...this.pending]) {
      let reason: string | undefined;
      try {
        const request = this.storedFiles(id, row);
        const done = request ? await compileOnWorker(this.compiler(), request) : undefined;
        // Removed while compiling: nothing to register.
        if (!this.pending.delete(id)) continue;
        if (done) {
          const model = { record: { ...toRecord(row), ...fromMetadata(done) }, compiled: done.compiled };
          this.models.set(id, model);
          ready(model);
        }
      } catch (err) {
        reason = err instanceof Error ? err.message : String(err);
      }
      if (reason !== undefined && this.pending.delete(id)) {
        this.skipped.push({ id, reason });
        failed(id, reason);
      }
      this.settled(id);
    }
  }

  /** Resolves once the model is no longer warming (compiled, skipped or removed). */
  whenWarm(id: string): Promise<void> {
    if (!this.pending.has(id)) return Promise.resolve();
    return new Promise((resolve) => {
      if (!this.waiting.has(id)) this.waiting.set(id, []);
      this.waiting.get(id)!.push(resolve);
    });
  }

  private settled(id: string): void {
    for (const resolve of this.waiting.get(id) ?? []) resolve();
    this.waiting.delete(id);
  }

  /** Stored models still being compiled after start. */
  get warming(): number {
    return this.pending.size;
  }

  /**
   * A compiled model's files as the owner uploaded them (what a compile thread needs), or
   * undefined for an unknown id. @throws whatever reading the files throws.
   */
  storedFiles(id: string, stored?: Row): CompileRequest | undefined {
    const row = stored ?? (this.models.has(id) ? (this.db.prepare('SELECT * FROM models WHERE id = ?').get(id) as Row | undefined) : undefined);
    if (!row) return undefined;
    const onnx = readFileSync(this.file(row.id, 'onnx'));
    return row.calibration === 'upload' ? { onnx, calibration: readFileSync(this.file(row.id, 'calibration')) } : { onnx };
  }

  private file(id: string, ext: 'onnx' | 'calibration'): string {
    return join(this.dir, `${id}.${ext}`);
  }


  /** Every registered model, those still warming included. */
  list(): ModelRecord[] {
    return [...[...this.models.values()].map((m) => m.record), ...[...this.pending.values()].map(toRecord)];
  }

  get(id: string): RegisteredModel | undefined {
    return this.models.get(id);
  }

  /**
   * Imports, compiles (on a worker thread unless `inline`) and stores a model. The same bytes
   * twice return the existing record; concurrent uploads of the same bytes share one compilation.
   *
   * @throws RegistryError (400) for bytes that are not a model the protocol can run or bad
   *   calibration images.
   */
  async add(onnx: Uint8Array, options: { name?: string; calibration?: Uint8Array; inline?: boolean } = {}): Promise<{ model: RegisteredModel; created: boolean }> {
    const id = modelIdOf(onnx);
    const existing = this.models.get(id);
    if (existing) return { model: existing, created: false };
    const running = this.compiling.get(id);
    if (running) return { model: await running, created: false };
    const request: CompileRequest = { onnx, ...(options.calibration ? { calibration: options.calibration } : {}) };
    const job = (options.inline ? Promise.resolve().then(() => compileUpload(request)) : compileOnWorker(this.compiler(), request)).then((done) => this.store(id, onnx, done, options));
    this.compiling.set(id, job);
    try {
      return { model: await job, created: true };
    } finally {
      this.compiling.delete(id);
    }
  }

  private pool: Piscina | undefined;

  /** One compile thread, started on first use. */
  private compiler(): Piscina {
    this.pool ??= new Piscina({ filename: siblingModuleUrl(import.meta.url, 'compile-worker'), minThreads: 0, maxThreads: 1, idleTimeout: 10_000 });
    return this.pool;
  }

  private store(id: string, onnx: Uint8Array, done: CompiledUpload, options: { name?: string; calibration?: Uint8Array }): RegisteredModel {
    const { compiled } = done;
    const record: ModelRecord = {
      id,
      name: (options.name ?? id).slice(0, 200),
      inputShape: [...done.inputShape],
      outputSize: done.outputSize,
      rounds: compiled ? compiled.plan.stages.length - 1 : 0,
      bytes: onnx.length,
      createdAt: new Date().toISOString(),
      calibration: options.calibration ? 'upload' : 'sample',
      calibrationSamples: done.calibrationSamples,
      ...fromMetadata(done),
    };
    writeAtomic(this.file(id, 'onnx'), onnx);
    if (options.calibration) writeAtomic(this.file(id, 'calibration'), options.calibration);
    this.db
      .prepare(
        `INSERT OR REPLACE INTO models (id, name, input_shape, output_size, rounds, bytes, created_at, calibration, calibration_samples)
         VALUES (@id, @name, @inputShape, @outputSize, @rounds, @bytes, @createdAt, @calibration, @calibrationSamples)`,
      )
      .run({ ...record, inputShape: JSON.stringify(record.inputShape) });
    const registered = { record, compiled };
    this.models.set(id, registered);
    return registered;
  }

  /**
   * Deletes a model and its files, also a stored row the registry could not load (its file
   * missing or no longer importable). @returns whether it existed.
   */
  remove(id: string): boolean {
    const loaded = this.models.delete(id) || this.pending.delete(id);
    if (loaded) this.settled(id);
    const stored = this.db.prepare('DELETE FROM models WHERE id = ?').run(id).changes > 0;
    if (!loaded && !stored) return false;
    rmSync(this.file(id, 'onnx'), { force: true });
    rmSync(this.file(id, 'calibration'), { force: true });
    return true;
  }

  /** A stored setting, or undefined. */
  setting(name: string): string | undefined {
    return (this.db.prepare('SELECT value FROM settings WHERE name = ?').get(name) as { value: string } | undefined)?.value;
  }

  setSetting(name: string, value: string): void {
    this.db.prepare('INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)').run(name, value);
  }

  /** Stops the compile thread and closes the database. */
  async close(): Promise<void> {
    for (const id of [...this.pending.keys()]) {
      this.pending.delete(id);
      this.settled(id);
    }
    await Promise.allSettled(this.compiling.values());
    await this.pool?.destroy();
    this.db.close();
    if (this.dir.includes('.blindml-memory-') && existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The record fields read from the model's metadata at compile time (not stored in the database). */
function fromMetadata(done: CompiledUpload): Pick<ModelRecord, 'classNames' | 'standardization'> {
  return { ...(done.classNames ? { classNames: done.classNames } : {}), ...(done.standardization ? { standardization: done.standardization } : {}) };
}

function writeAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}
