/**
 * The service's model registry: compiled models in memory (sync {@link ModelRegistry.get} and
 * {@link ModelRegistry.list} for the routes) over a store (`store/`): a SQLite file with the model
 * files beside it (the default for one machine), or a PostgreSQL database shared by replicas
 * (`postgres://…`), which tells every registry when another adds or removes a model.
 * Models are identified by the content hash of their ONNX bytes, so registering the same file twice
 * is a no-op and a restart finds every model again. The store also keeps the SHA-256 hash of
 * the owner's API key (never the key itself). Node-only.
 *
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Piscina } from 'piscina';
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
import { isPostgresUrl, RegistryStoreError, type ModelFiles, type ModelRecord, type ModelStore, type StoreChange } from './store/model-store.js';
import { SqliteModelStore } from './store/sqlite-store.js';
import { PostgresModelStore } from './store/postgres-store.js';

export { RegistryStoreError, type ModelRecord } from './store/model-store.js';

/** How many of the committed sample's last images calibrate a 1×28×28 model by default. */
export const DEFAULT_CALIBRATION_IMAGES = 100;

/** What a model id looks like: {@link modelIdOf}'s 16 lowercase hex digits. */
export const MODEL_ID = /^[0-9a-f]{16}$/;

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
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
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
export type CompileRequest = ModelFiles;

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

/** Options of {@link ModelRegistry.open}. */
export interface RegistryOptions {
  /**
   * How often a shared (PostgreSQL) registry compares its models with the store, ms, to recover
   * changes a dropped listening connection missed. Default 5000.
   */
  readonly resyncMs?: number;
  /** PostgreSQL connections in the pool (the change listener has one more). Default 4. */
  readonly maxConnections?: number;
}

/** What the service does as models come and go (see {@link ModelRegistry.warm}). */
export interface RegistryHandlers {
  /** A stored model compiled: found at start, or added through another replica. */
  loaded(model: RegisteredModel): void;
  /** A stored model that could not be loaded (missing file, import or compile error). */
  failed?(id: string, reason: string): void;
  /** A loaded model removed through another replica. */
  removed?(id: string): void;
}

/** The registry: open with {@link ModelRegistry.open}, close with {@link ModelRegistry.close}. */
export class ModelRegistry {
  private readonly models = new Map<string, RegisteredModel>();
  private readonly compiling = new Map<string, Promise<{ model: RegisteredModel; created: boolean }>>();
  /** Stored models not compiled yet (see {@link warm}). */
  private readonly pending = new Map<string, ModelRecord>();
  /** Callers waiting for a warming model, by id. */
  private readonly waiting = new Map<string, (() => void)[]>();
  /** Stored models that could not be loaded (missing file, import or compile error). */
  readonly skipped: { id: string; reason: string }[] = [];
  /** Ids in `skipped` still stored: not retried until uploaded again. */
  private readonly unloadable = new Set<string>();
  /** Models stored when the registry opened and not loaded yet. */
  private readonly atOpen = new Set<string>();
  private handlers: RegistryHandlers | undefined;
  /** The loop compiling `pending`, one model at a time, while it runs. */
  private loading: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncing = false;
  private closed = false;

  private constructor(private readonly store: ModelStore) {}

  /**
   * Opens the store — a SQLite file (created if needed) or a `postgres://`/`postgresql://` URL —
   * and brings its schema up to date. Its models are listed at once, as warming, and compiled by
   * {@link warm}, on the compile thread; a model whose file is missing or no longer compiles is
   * then skipped and reported in `skipped`. A PostgreSQL registry also listens for models other
   * replicas add or remove, and compares its list with the store every `resyncMs`.
   *
   * @throws whatever better-sqlite3 throws for an unusable database file; RegistryStoreError
   *   (one line, password redacted) for a PostgreSQL database that cannot be reached or migrated,
   *   or a schema newer than this blindml knows.
   */
  static async open(db: string, options: RegistryOptions = {}): Promise<{ registry: ModelRegistry; skipped: readonly { id: string; reason: string }[] }> {
    const store = isPostgresUrl(db) ? await PostgresModelStore.open(db, options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}) : SqliteModelStore.open(db);
    const registry = new ModelRegistry(store);
    try {
      // Listening before listing: nothing added in between is missed.
      if (store.shared) await store.watch((change) => registry.changed(change), () => void registry.resync());
      for (const record of await store.list()) {
        registry.pending.set(record.id, record);
        registry.atOpen.add(record.id);
      }
    } catch (err) {
      await store.close();
      throw err;
    }
    if (store.shared) {
      registry.resyncTimer = setInterval(() => void registry.resync(), options.resyncMs ?? 5_000);
      registry.resyncTimer.unref();
    }
    return { registry, skipped: registry.skipped };
  }

  /** Where the models are stored (a URL's password redacted). */
  get location(): string {
    return this.store.location;
  }

  /**
   * Compiles the stored models, one after another on the compile thread (the event loop stays
   * free), calling `handlers.loaded` for each one compiled; a failure goes to `skipped` and
   * `handlers.failed`. From then on, models other replicas add are compiled the same way, and
   * `handlers.removed` hears of those they remove. Resolves once the models stored at open are
   * loaded or skipped.
   */
  async warm(handlers: RegistryHandlers): Promise<void> {
    this.handlers = handlers;
    const initial = [...this.pending.keys()];
    this.startLoading();
    await Promise.all(initial.map((id) => this.whenWarm(id)));
  }

  private startLoading(): void {
    if (this.loading || !this.handlers || this.closed) return;
    this.loading = (async () => {
      for (let next = this.pending.values().next(); !next.done && !this.closed; next = this.pending.values().next()) await this.load(next.value);
    })().finally(() => {
      this.loading = undefined;
      // Added while the loop was finishing.
      if (this.pending.size > 0) this.startLoading();
    });
  }

  /** Compiles one stored model; leaves it loaded, skipped, or (removed meanwhile) gone. */
  private async load(record: ModelRecord): Promise<void> {
    const { id } = record;
    const current = () => this.pending.get(id) === record;
    try {
      const files = await this.store.files(id);
      const done = files && !this.closed ? await compileOnWorker(this.compiler(), files) : undefined;
      if (done && current()) {
        this.pending.delete(id);
        const model = { record: { ...record, ...fromMetadata(done) }, compiled: done.compiled };
        this.models.set(id, model);
        this.handlers?.loaded(model);
      }
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      // A shared store out of reach is no fault of the model: the next resync brings it back.
      const outage = err instanceof RegistryStoreError && this.store.shared;
      if (current() && !this.closed && !outage) {
        this.pending.delete(id);
        this.skipped.push({ id, reason });
        this.unloadable.add(id);
        this.handlers?.failed?.(id, reason);
      }
    }
    // No files (removed meanwhile), the store out of reach, or closing: nothing to register (yet).
    if (current()) this.pending.delete(id);
    this.settled(id);
  }

  /** A change another replica made (or this one: then it is known already). */
  private changed(change: StoreChange): void {
    if (change.op === 'remove') this.forget(change.id);
    else void this.learn(change.id);
  }

  private known(id: string): boolean {
    return this.models.has(id) || this.pending.has(id) || this.compiling.has(id) || this.unloadable.has(id);
  }

  /** A model stored elsewhere: listed as warming at once, compiled in turn. */
  private async learn(id: string): Promise<void> {
    if (this.known(id) || this.closed) return;
    // An error here (store unreachable) is retried by the next resync.
    const record = await this.store.get(id).catch(() => undefined);
    if (!record || this.known(id) || this.closed) return;
    this.pending.set(id, record);
    this.startLoading();
  }

  /** A model removed elsewhere: no longer listed or served. */
  private forget(id: string): void {
    this.unloadable.delete(id);
    if (this.pending.delete(id)) this.settled(id);
    if (this.models.delete(id)) this.handlers?.removed?.(id);
  }

  /**
   * Compares the models held with the store's list: learns the new, forgets the removed (what a
   * dropped listening connection missed). A store error leaves everything as it is until the next try.
   */
  private async resync(): Promise<void> {
    if (this.resyncing || this.closed) return;
    this.resyncing = true;
    try {
      // Only what was held before listing may be forgotten: a model added meanwhile is not listed.
      const before = [...this.models.keys(), ...this.pending.keys(), ...this.unloadable];
      const stored = await this.store.list();
      const ids = new Set(stored.map((r) => r.id));
      for (const id of before) if (!ids.has(id) && !this.compiling.has(id)) this.forget(id);
      for (const record of stored) {
        if (this.known(record.id) || this.closed) continue;
        this.pending.set(record.id, record);
      }
      this.startLoading();
    } catch {
      // Unreachable now: /readyz says so; the next resync tries again.
    } finally {
      this.resyncing = false;
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
    this.atOpen.delete(id);
    for (const resolve of this.waiting.get(id) ?? []) resolve();
    this.waiting.delete(id);
  }

  /** Stored models still being compiled (after start, or added through another replica). */
  get warming(): number {
    return this.pending.size;
  }

  /** Models stored when the registry opened that are still being compiled (what readiness waits for). */
  get warmingSinceOpen(): number {
    return this.atOpen.size;
  }

  /**
   * A loaded model's files as the owner uploaded them (what a compile thread needs).
   *
   * @throws RegistryError: 404 for an id not loaded (or removed meanwhile); 503 when the store is
   *   out of reach (its address and error only in `cause`: the message may reach a client);
   *   whatever reading a SQLite registry's files throws.
   */
  async storedFiles(id: string): Promise<CompileRequest> {
    let files: CompileRequest | undefined;
    try {
      files = this.models.has(id) ? await this.store.files(id) : undefined;
    } catch (err) {
      if (err instanceof RegistryStoreError) throw new RegistryError(503, 'the model store is out of reach; retry later', { cause: err });
      throw err;
    }
    if (!files) throw new RegistryError(404, `no model with id ${id}`);
    return files;
  }

  /** Every registered model, those still warming included. */
  list(): ModelRecord[] {
    return [...[...this.models.values()].map((m) => m.record), ...this.pending.values()];
  }

  get(id: string): RegisteredModel | undefined {
    return this.models.get(id);
  }

  /**
   * Imports, compiles (on a worker thread unless `inline`) and stores a model. The same bytes
   * twice return the existing record; concurrent uploads of the same bytes share one compilation.
   * When another replica stores the same model first, its record is kept (`created` false) and
   * served.
   *
   * @throws RegistryError (400) for bytes that are not a model the protocol can run or bad
   *   calibration images; RegistryStoreError when the store fails.
   */
  async add(onnx: Uint8Array, options: { name?: string; calibration?: Uint8Array; inline?: boolean } = {}): Promise<{ model: RegisteredModel; created: boolean }> {
    const id = modelIdOf(onnx);
    // Stored already and compiling (at start, or added elsewhere): that one, once loaded.
    if (this.pending.has(id)) await this.whenWarm(id);
    const existing = this.models.get(id);
    if (existing) return { model: existing, created: false };
    const running = this.compiling.get(id);
    if (running) return { model: (await running).model, created: false };
    const request: CompileRequest = { onnx, ...(options.calibration ? { calibration: options.calibration } : {}) };
    const compile = (files: CompileRequest) => (options.inline ? Promise.resolve().then(() => compileUpload(files)) : compileOnWorker(this.compiler(), files));
    const job = compile(request).then((done) => this.save(id, request, done, options, compile));
    this.compiling.set(id, job);
    try {
      return await job;
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

  /** Stores a compiled upload; if another replica stored the same model first, serves its version. */
  private async save(
    id: string,
    files: CompileRequest,
    done: CompiledUpload,
    options: { name?: string },
    compile: (files: CompileRequest) => Promise<CompiledUpload>,
  ): Promise<{ model: RegisteredModel; created: boolean }> {
    const { compiled } = done;
    const record: ModelRecord = {
      id,
      name: (options.name ?? id).slice(0, 200),
      inputShape: [...done.inputShape],
      outputSize: done.outputSize,
      rounds: compiled ? compiled.plan.stages.length - 1 : 0,
      bytes: files.onnx.length,
      createdAt: new Date().toISOString(),
      calibration: files.calibration ? 'upload' : 'sample',
      calibrationSamples: done.calibrationSamples,
      ...fromMetadata(done),
    };
    let model: RegisteredModel = { record, compiled };
    const created = await this.store.insert(record, files);
    if (!created) {
      const [stored, storedFiles] = await Promise.all([this.store.get(id), this.store.files(id)]);
      if (!stored || !storedFiles) throw new RegistryError(409, `model ${id} was removed while it was being stored; upload it again`);
      // The ONNX bytes are the same (same id); other calibration inputs compile differently.
      const same = sameBytes(storedFiles.calibration, files.calibration);
      model = { record: { ...stored, ...fromMetadata(done) }, compiled: same ? compiled : (await compile(storedFiles)).compiled };
    }
    this.unloadable.delete(id);
    this.models.set(id, model);
    return { model, created };
  }

  /**
   * Deletes a model and its files, also a stored row the registry could not load (its file
   * missing or no longer importable). @returns whether it existed.
   * @throws RegistryStoreError when the store fails (the model then stays).
   */
  async remove(id: string): Promise<boolean> {
    // Ids are content hashes; anything else (a path, a NUL) never reaches the store's file names.
    if (!MODEL_ID.test(id)) return false;
    const stored = await this.store.remove(id);
    this.unloadable.delete(id);
    const loaded = this.models.delete(id) || this.pending.delete(id);
    if (loaded) this.settled(id);
    return loaded || stored;
  }

  /** A stored setting, or undefined. */
  async setting(name: string): Promise<string | undefined> {
    return this.store.setting(name);
  }

  async setSetting(name: string, value: string): Promise<void> {
    await this.store.setSetting(name, value);
  }

  /** Stores `value` unless the setting exists (another replica's); @returns the stored value. */
  async claimSetting(name: string, value: string): Promise<string> {
    return this.store.claimSetting(name, value);
  }

  /** @throws RegistryStoreError unless the store answers within `timeoutMs`. */
  async ping(timeoutMs: number): Promise<void> {
    await this.store.ping(timeoutMs);
  }

  /** Stops listening, the compile thread, and closes the store. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.resyncTimer);
    for (const id of [...this.pending.keys()]) {
      this.pending.delete(id);
      this.settled(id);
    }
    await Promise.allSettled(this.compiling.values());
    await this.pool?.destroy();
    await this.loading?.catch(() => undefined);
    await this.store.close();
  }
}

/** The record fields read from the model's metadata at compile time (not stored in the database). */
function fromMetadata(done: CompiledUpload): Pick<ModelRecord, 'classNames' | 'standardization'> {
  return { ...(done.classNames ? { classNames: done.classNames } : {}), ...(done.standardization ? { standardization: done.standardization } : {}) };
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a === undefined || b === undefined ? a === b : Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}
