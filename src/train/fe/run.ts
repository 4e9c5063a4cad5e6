/**
 * One CryptoNN training run: the encrypted run (data owner, key authority and server in process)
 * and its plaintext twin (same quantization, initialization, data order and key-request policy),
 * timed separately, then both models evaluated on the same test set.
 *
 * @module
 */
import { FeEngine } from '../../schemes/fe/index.js';
import { LocalFeCompute, type FeCompute } from '../../protocol/fe-training/compute.js';
import type { FixedPointSamples } from '../../protocol/fe-training/data-owner.js';
import type { KeyPolicyOptions } from '../../protocol/fe-training/policy.js';
import { EncryptedFirstLayer } from './encrypted-source.js';
import { DEFAULT_MLP, Mlp } from './mlp.js';
import { SeededRandom } from './prng.js';
import { DEFAULT_QUANT, quantizeInputs, type QuantConfig } from './quantize.js';
import { PlainFirstLayer } from './source.js';
import { DEFAULT_LENET, LENET_GEOMETRY, LeNet5 } from './lenet.js';
import { EncryptedPatchSource, PlainPatchSource } from './patch-source.js';
import type { ExportSpec } from '../../nn/onnx-export.js';
import { feMlpExport } from '../export.js';

/** Images with labels, pixels in [0, 1]. */
export interface ImageSet {
  readonly count: number;
  readonly features: number;
  readonly images: Float32Array;
  readonly labels: Uint8Array;
}

/** Options of {@link runFeTraining}. */
export interface FeTrainOptions {
  readonly train: ImageSet;
  readonly test: ImageSet;
  readonly epochs: number;
  /** 'mlp' (default, 784-64-10) or 'lenet5' (28×28 images only). */
  readonly model?: 'mlp' | 'lenet5';
  /** Samples per batch; must exceed the hidden width or the authority's rank rule refuses δ keys. */
  readonly batchSize?: number;
  readonly hidden?: number;
  readonly learningRate?: number;
  readonly seed?: number;
  readonly quant?: QuantConfig;
  readonly policy?: KeyPolicyOptions;
  /** Engine of the key authority (and of the bulk work when no `compute` is given). */
  readonly engine?: FeEngine;
  /** Where encryption and decryption run: a worker pool, or (default) the calling thread. */
  readonly compute?: FeCompute;
  /**
   * Also return the encrypted run's trained MLP as an ONNX chain taking samples of this shape
   * ({@link FeTrainResult.exported}; the mlp model only).
   */
  readonly export?: { readonly inputShape: readonly number[] };
  /** Called after each batch of either run. */
  readonly onProgress?: (done: number, total: number, label: string) => void;
}

/** Per-epoch timing. */
export interface EpochTiming {
  readonly seconds: number;
  readonly plaintextSeconds: number;
  /** CPU seconds of the whole process, worker threads included (Node only; 0 elsewhere). */
  readonly cpuSeconds: number;
  readonly plaintextCpuSeconds: number;
  readonly loss: number;
  readonly plaintextLoss: number;
}

/** Results (the CLI prints this object with --json). */
export interface FeTrainResult {
  readonly scheme: 'fe';
  readonly model: 'mlp' | 'lenet5';
  readonly samples: number;
  readonly testSamples: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly accuracy: number;
  readonly plaintextAccuracy: number;
  /** Encrypted run, all parties, all epochs (setup, encryption, keys, decryption, training). */
  readonly seconds: number;
  readonly plaintextSeconds: number;
  /** seconds / plaintextSeconds. */
  readonly overhead: number;
  /** CPU seconds (all threads) of the encrypted run and of the twin: independent of other load. */
  readonly cpuSeconds: number;
  readonly plaintextCpuSeconds: number;
  /** cpuSeconds / plaintextCpuSeconds. */
  readonly cpuOverhead: number;
  readonly perEpoch: readonly EpochTiming[];
  /** Identical final weights in both runs (expected: the twin sees the same integers). */
  readonly identicalWeights: boolean;
  /** Medians over batches (per-op times below are medians unless named mean). */
  readonly encryptPerSampleMs: number;
  readonly encryptPerColumnMs: number;
  readonly decryptPerInnerProductUs: number;
  readonly dlogPerResultUs: number;
  readonly meanDecryptPerInnerProductUs: number;
  readonly meanDlogPerResultUs: number;
  readonly innerProducts: number;
  readonly keyRequests: number;
  readonly refusedVectors: number;
  readonly timings: Readonly<Record<string, number>>;
  /** With `export` (mlp): the server's learned weights as an ONNX chain. */
  readonly exported?: ExportSpec;
}

/** Process CPU time in seconds (user + system, all threads) where the runtime offers it. */
function cpuNow(): number {
  const proc = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process;
  const u = proc?.cpuUsage?.();
  return u === undefined ? 0 : (u.user + u.system) / 1e6;
}

/** Sums of the per-epoch timings. */
function totals(perEpoch: readonly EpochTiming[]) {
  const sum = (f: (e: EpochTiming) => number) => perEpoch.reduce((s, e) => s + f(e), 0);
  const seconds = sum((e) => e.seconds);
  const plaintextSeconds = sum((e) => e.plaintextSeconds);
  const cpuSeconds = sum((e) => e.cpuSeconds);
  const plaintextCpuSeconds = sum((e) => e.plaintextCpuSeconds);
  return {
    seconds,
    plaintextSeconds,
    overhead: plaintextSeconds > 0 ? seconds / plaintextSeconds : Infinity,
    cpuSeconds,
    plaintextCpuSeconds,
    cpuOverhead: plaintextCpuSeconds > 0 ? cpuSeconds / plaintextCpuSeconds : Infinity,
  };
}

function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function toFixedPoint(set: ImageSet, quant: QuantConfig): FixedPointSamples {
  return { count: set.count, features: set.features, x: quantizeInputs(set.images, quant), labels: set.labels, classes: 10 };
}

function accuracy(model: Mlp, test: FixedPointSamples): number {
  const predicted = model.predict(test.x, test.count);
  let right = 0;
  for (let i = 0; i < test.count; i++) if (predicted[i] === test.labels[i]) right++;
  return test.count === 0 ? 0 : right / test.count;
}

function sameWeights(a: Mlp, b: Mlp): boolean {
  const pa = [a.w1, a.b1, a.w2, a.b2];
  const pb = [b.w1, b.b1, b.w2, b.b2];
  return pa.every((p, n) => p.every((v, i) => v === pb[n]?.[i]));
}

/** Running totals of the encrypted run, read before and after each batch for per-op medians. */
interface EncryptedCounters {
  encryptMs: number;
  encrypted: number;
  decryptMs: number;
  products: number;
  dlogMs: number;
  dlogs: number;
}

/**
 * The epochs both models share: the same seeded batch order for the encrypted run and its twin,
 * each timed (wall and CPU) one after the other, and per-batch medians of the encrypted run's
 * encrypt / decrypt / discrete-log costs.
 */
async function trainTwins(
  options: FeTrainOptions,
  setup: {
    count: number;
    batchSize: number;
    seed: number;
    encryptedStep: (batch: number[]) => Promise<number>;
    plainStep: (batch: number[]) => Promise<number>;
    counters: () => EncryptedCounters;
  },
): Promise<{ perEpoch: EpochTiming[]; per: { encrypt: number[]; decrypt: number[]; dlog: number[] } }> {
  const { count, batchSize } = setup;
  const rng = new SeededRandom(setup.seed ^ 0x5eed);
  // The bar counts encrypted steps only: the twin's steps take a few milliseconds each.
  const total = Math.ceil(count / batchSize) * options.epochs;
  let done = 0;
  const perEpoch: EpochTiming[] = [];
  const per = { encrypt: [] as number[], decrypt: [] as number[], dlog: [] as number[] };
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const order = rng.permutation(count);
    const batches: number[][] = [];
    for (let s = 0; s < order.length; s += batchSize) batches.push(order.slice(s, s + batchSize));
    let t = performance.now();
    let cpu = cpuNow();
    let loss = 0;
    for (const b of batches) {
      const before = setup.counters();
      loss += (await setup.encryptedStep(b)) * b.length;
      const after = setup.counters();
      per.encrypt.push((after.encryptMs - before.encryptMs) / Math.max(1, after.encrypted - before.encrypted));
      per.decrypt.push(((after.decryptMs - before.decryptMs) * 1000) / Math.max(1, after.products - before.products));
      per.dlog.push(((after.dlogMs - before.dlogMs) * 1000) / Math.max(1, after.dlogs - before.dlogs));
      options.onProgress?.(++done, total, `epoch ${epoch + 1} encrypted`);
    }
    const seconds = (performance.now() - t) / 1000;
    const cpuSeconds = cpuNow() - cpu;
    t = performance.now();
    cpu = cpuNow();
    let plainLoss = 0;
    for (const b of batches) {
      plainLoss += (await setup.plainStep(b)) * b.length;
      options.onProgress?.(done, total, `epoch ${epoch + 1} plaintext twin`);
    }
    const plaintextSeconds = (performance.now() - t) / 1000;
    const plaintextCpuSeconds = cpuNow() - cpu;
    perEpoch.push({ seconds, plaintextSeconds, cpuSeconds, plaintextCpuSeconds, loss: loss / count, plaintextLoss: plainLoss / count });
  }
  return { perEpoch, per };
}

/**
 * Trains the encrypted model and its plaintext twin.
 *
 * @throws {InnerProductOutOfBoundError} (rejects) never in a correct run (the bounds are exact); a bug guard.
 * @throws {KeyRequestRefusedError} (rejects) if the authority rejects a whole request.
 * @throws {RangeError} (rejects) if `export` is asked of the lenet5 model.
 */
export async function runFeTraining(options: FeTrainOptions): Promise<FeTrainResult> {
  if (options.model === 'lenet5') {
    if (options.export) throw new RangeError('export: only the mlp model can be exported');
    return runLeNet(options);
  }
  const quant = options.quant ?? DEFAULT_QUANT;
  const batchSize = options.batchSize ?? 100;
  const config = {
    ...DEFAULT_MLP,
    hidden: options.hidden ?? DEFAULT_MLP.hidden,
    learningRate: options.learningRate ?? DEFAULT_MLP.learningRate,
    seed: options.seed ?? DEFAULT_MLP.seed,
    inputs: options.train.features,
  };
  const train = toFixedPoint(options.train, quant);
  const test = toFixedPoint(options.test, quant);
  const engine = options.engine ?? new FeEngine();
  const columnLength = Math.min(batchSize, train.count);
  const compute = options.compute ?? new LocalFeCompute(engine);
  const encSource = new EncryptedFirstLayer(engine, compute, train, columnLength, options.policy, quant.maxWeight, quant.maxDelta);
  const plainSource = new PlainFirstLayer(train, columnLength, options.policy);
  const encModel = new Mlp(config, quant);
  const plainModel = new Mlp(config, quant);
  const { perEpoch, per } = await trainTwins(options, {
    count: train.count,
    batchSize,
    seed: config.seed,
    encryptedStep: (batch) => encModel.trainBatch(encSource, batch, columnLength),
    plainStep: (batch) => plainModel.trainBatch(plainSource, batch, columnLength),
    counters: () => ({
      encryptMs: encSource.owner.timings.rowEncryptMs,
      encrypted: encSource.owner.timings.rowSamples,
      decryptMs: encSource.timings.rowDecryptMs + encSource.timings.columnDecryptMs,
      products: encSource.timings.rowProducts + encSource.timings.columnProducts,
      dlogMs: encSource.timings.dlogMs,
      dlogs: encSource.timings.dlogCount,
    }),
  });
  const m = perOpMedians(per);
  const time = totals(perEpoch);
  const et = encSource.timings;
  const ot = encSource.owner.timings;
  const products = et.rowProducts + et.columnProducts;
  const { dlogMs, dlogCount } = et;
  return {
    scheme: 'fe',
    model: 'mlp',
    samples: train.count,
    testSamples: test.count,
    epochs: options.epochs,
    batchSize,
    accuracy: accuracy(encModel, test),
    plaintextAccuracy: accuracy(plainModel, test),
    ...time,
    perEpoch,
    identicalWeights: sameWeights(encModel, plainModel),
    encryptPerSampleMs: m.encrypt,
    encryptPerColumnMs: ot.columnVectors ? ot.columnEncryptMs / ot.columnVectors : 0,
    decryptPerInnerProductUs: m.decrypt,
    dlogPerResultUs: m.dlog,
    meanDecryptPerInnerProductUs: products ? ((et.rowDecryptMs + et.columnDecryptMs) * 1000) / products : 0,
    meanDlogPerResultUs: dlogCount ? (dlogMs * 1000) / dlogCount : 0,
    innerProducts: products,
    keyRequests: encSource.authority.log.length,
    refusedVectors: et.refusedVectors,
    timings: {
      setupMs: et.setupMs,
      rowEncryptMs: ot.rowEncryptMs,
      columnEncryptMs: ot.columnEncryptMs,
      keyMs: et.keyMs,
      labelMs: et.labelMs,
      rowDecryptMs: et.rowDecryptMs,
      columnDecryptMs: et.columnDecryptMs,
      dlogMs,
    },
    ...(options.export ? { exported: feMlpExport(encModel, quant, options.export.inputShape) } : {}),
  };
}

/** Per-batch medians and totals shared by both models. */
function perOpMedians(samples: { encrypt: number[]; decrypt: number[]; dlog: number[] }) {
  return { encrypt: median(samples.encrypt), decrypt: median(samples.decrypt), dlog: median(samples.dlog) };
}

/**
 * LeNet-5 with an encrypted first convolution and its plaintext twin (see {@link LeNet5} and
 * {@link EncryptedPatchSource}).
 *
 * @throws {RangeError} (rejects) if the images are not 28×28.
 * @throws {KeyRequestRefusedError} (rejects) if the authority rejects a whole request.
 */
async function runLeNet(options: FeTrainOptions): Promise<FeTrainResult> {
  if (options.train.features !== 784) throw new RangeError(`lenet5 needs 28×28 images, got ${options.train.features} features`);
  const quant = options.quant ?? DEFAULT_QUANT;
  const batchSize = options.batchSize ?? 50;
  const config = { ...DEFAULT_LENET, learningRate: options.learningRate ?? DEFAULT_LENET.learningRate, seed: options.seed ?? DEFAULT_LENET.seed };
  const train = toFixedPoint(options.train, quant);
  const test = toFixedPoint(options.test, quant);
  const engine = options.engine ?? new FeEngine();
  const compute = options.compute ?? new LocalFeCompute(engine);
  const enc = new EncryptedPatchSource(engine, compute, train, LENET_GEOMETRY, options.policy, quant.maxWeight, quant.maxDelta);
  const plain = new PlainPatchSource(train, LENET_GEOMETRY, options.policy);
  const encModel = new LeNet5(config, quant);
  const plainModel = new LeNet5(config, quant);
  const t0 = enc.timings;
  const { perEpoch, per } = await trainTwins(options, {
    count: train.count,
    batchSize,
    seed: config.seed,
    encryptedStep: (batch) => encModel.trainBatch(enc, batch),
    plainStep: (batch) => plainModel.trainBatch(plain, batch),
    counters: () => ({
      encryptMs: t0.encryptMs,
      encrypted: t0.encryptedSamples,
      decryptMs: t0.convDecryptMs + t0.gradDecryptMs,
      products: t0.convProducts + t0.gradProducts,
      dlogMs: t0.dlogMs,
      dlogs: t0.dlogCount,
    }),
  });
  const time = totals(perEpoch);
  const acc = (model: LeNet5) => {
    const predicted = model.predict(test.x, test.count);
    let right = 0;
    for (let i = 0; i < test.count; i++) if (predicted[i] === test.labels[i]) right++;
    return test.count === 0 ? 0 : right / test.count;
  };
  const m = perOpMedians(per);
  const et = enc.timings;
  const products = et.convProducts + et.gradProducts;
  return {
    scheme: 'fe',
    model: 'lenet5',
    samples: train.count,
    testSamples: test.count,
    epochs: options.epochs,
    batchSize,
    accuracy: acc(encModel),
    plaintextAccuracy: acc(plainModel),
    ...time,
    perEpoch,
    identicalWeights: encModel.params.every((p, n) => p.every((v, i) => v === plainModel.params[n]?.[i])),
    encryptPerSampleMs: m.encrypt,
    encryptPerColumnMs: 0,
    decryptPerInnerProductUs: m.decrypt,
    dlogPerResultUs: m.dlog,
    meanDecryptPerInnerProductUs: products ? ((et.convDecryptMs + et.gradDecryptMs) * 1000) / products : 0,
    meanDlogPerResultUs: et.dlogCount ? (et.dlogMs * 1000) / et.dlogCount : 0,
    innerProducts: products,
    keyRequests: enc.authority.log.length,
    refusedVectors: et.refusedVectors,
    timings: {
      setupMs: et.setupMs,
      rowEncryptMs: et.encryptMs,
      keyMs: et.keyMs,
      labelMs: et.labelMs,
      convDecryptMs: et.convDecryptMs,
      gradDecryptMs: et.gradDecryptMs,
      convProducts: et.convProducts,
      gradProducts: et.gradProducts,
      dlogMs: et.dlogMs,
    },
  };
}
