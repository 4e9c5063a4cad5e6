/**
 * One encrypted-inference run over a set of labelled images, as `blindml infer`, the demo and the
 * inference benchmark perform it: compile the model, run the protocol image by image (or batch by
 * batch), compare with the plaintext executor, and measure time and traffic.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FormatError } from '../errors.js';
import type { LabeledImages } from '../data/files.js';
import { importOnnx } from '../nn/onnx.js';
import { runPlaintext, argmaxRows } from '../nn/plaintext.js';
import type { Model } from '../nn/model.js';
import { formatShape } from '../nn/shape.js';
import { HttpTransport } from '../client/http-transport.js';
import { WebSocketTransport } from '../client/websocket-transport.js';
import { getModel, registerModel } from '../client/owner.js';
import { withFailover } from '../client/routing.js';
import { compileModel, type CompiledPaillierModel, type QuantizationParams } from '../protocol/paillier-inference/compile.js';
import { INFERENCE_KEY_PRIMES, PaillierInferenceClient, type Transport } from '../protocol/paillier-inference/client.js';
import { PaillierInferenceService } from '../protocol/paillier-inference/service.js';
import { generateKeyPair } from '../schemes/paillier/keys.js';
import { PaillierWorkerPool } from '../workers/paillier-pool.js';
import { checkCalibrationSize } from './calibration.js';
import { calibrationIdx, isModelFile, readModelFile } from './model-file.js';

/** The models shipped with blindml, by file name. */
export function bundledModelPath(name: string): string {
  return fileURLToPath(new URL(`../../models/${name}`, import.meta.url));
}

/** Content id of a model file: the first 16 hex digits of its SHA-256. */
export function modelIdOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** A loaded model and its id. */
export interface LoadedModel {
  model: Model;
  /** The content id of the ONNX bytes (what a service registers the model under). */
  id: string;
  path: string;
  /** The ONNX bytes (from the file itself, or embedded in a `.blindml` file). */
  onnx: Uint8Array;
  /**
   * Calibration inputs that travel with the model: a `.blindml` file's, or those given with
   * `--calibration` (uploaded with the model when a run registers it on a service).
   */
  calibration?: Float32Array;
  /** A `.blindml` file's `--normalize` for 8-bit inputs. */
  normalize?: string;
}

/**
 * Reads and imports an ONNX file or a `.blindml` file (`blindml compile`).
 *
 * @throws DataNotFoundError/FormatError/UnsupportedOpError.
 */
export function loadModel(path: string): LoadedModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new FormatError(`cannot read model file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (isModelFile(bytes)) {
    const file = readModelFile(bytes, path);
    return { model: file.model, id: modelIdOf(file.onnx), path, onnx: file.onnx, calibration: file.calibration, normalize: file.input.normalize };
  }
  return { model: importOnnx(bytes), id: modelIdOf(bytes), path, onnx: bytes };
}

/**
 * Checks the images fit the model's input.
 *
 * @throws FormatError naming both shapes.
 */
export function checkImagesFit(model: Model, data: LabeledImages): void {
  const want = model.inputShape;
  const got = data.shape;
  if (want.length !== got.length || want.some((d, i) => d !== got[i])) {
    throw new FormatError(`the images are ${formatShape(got)} but the model expects ${formatShape(want)} (wrong data set or channel count?)`);
  }
}

export interface InferenceJobOptions {
  loaded: LoadedModel;
  data: LabeledImages;
  /** Images used to calibrate fixed-point scales (the model owner's data, not the evaluated images). */
  calibration: Float32Array;
  keyBits: number;
  /** Prime factors of the client's Paillier key (default 3: faster decryption). */
  keyPrimes?: 2 | 3;
  insecure?: boolean;
  /** Samples per ciphertext; 1 = latency mode. */
  batch: number;
  /** Precision knobs for compiling the model (in-process service); defaults otherwise. */
  quantization?: Partial<QuantizationParams>;
  /**
   * In process: how non-homogeneous activations (GELU, SiLU, HardSwish, sigmoid, tanh) run —
   * 'client' (default: the client evaluates them on shuffled values it sees in the clear) or
   * 'spline' (blinded ReLU splines over the calibrated range; docs/security.md).
   */
  nonHomogeneous?: 'client' | 'spline';
  /** Worker threads for the in-process service and the client's precomputation (0 = none). */
  workers?: number;
  /** Remote service base URL; in-process when absent. */
  server?: string;
  /** Model id on the remote service (defaults to the content id). */
  modelId?: string;
  /** Owner API key: register the model on the remote service first if it lacks it. */
  apiKey?: string;
  /** Remote transport (the SDK's WebSocket by default, or HTTP POST per message). */
  transport?: 'websocket' | 'http';
  onProgress?: (done: number, total: number) => void;
  /** Called as each set-up phase starts (compilation, key generation, precomputation), for progress displays. */
  onPhase?: (phase: string) => void;
  /** Called with each input's decrypted logits as soon as it has them (input index, then logits). */
  onPrediction?: (index: number, logits: ArrayLike<number>) => void;
}

export interface InferenceJobResult {
  predictions: number[];
  plaintextPredictions: number[];
  samples: number;
  accuracy: number;
  plaintextAccuracy: number;
  agreement: number;
  maxLogitError: number;
  msPerSample: number;
  /** Client-side computation per sample (encrypt, activations, decrypt). */
  clientMsPerSample: number;
  /** Everything else per sample: service computation and transport. */
  serviceMsPerSample: number;
  /** One-time client preparation (key generation, encryption tables, precomputed randomness) per sample. */
  offlineMsPerSample: number;
  /**
   * Process CPU time per sample (all threads, online part), split into the in-process service's
   * and the client's; less sensitive than wall time to other load on the machine. Absent when the
   * service is remote or the job does not measure it.
   */
  cpu?: { totalMs: number; serviceMs: number; clientMs: number };
  /** Latency mode, CKKS: online milliseconds per image, median and extremes over the run. */
  latencyMs?: { median: number; min: number; max: number };
  /** CKKS: false when the input-independent work was done online (`--no-precompute`). */
  precomputed?: boolean;
  bytesPerSample: number;
  rounds: number;
  /** Paillier: the modulus size. CKKS: the coefficient modulus size in bits (see `ckks` for the ring). */
  keyBits: number;
  /** Paillier: prime factors of the client's key. */
  keyPrimes?: number;
  scheme: 'paillier' | 'ckks' | 'ckks-poly';
  /** CKKS runs: the ring degree, the primes' sizes and the security level the parameters meet. */
  ckks?: { polyModulusDegree: number; coeffModulusBits: number[]; securityBits: 128 };
  mode: 'latency' | 'batch';
  batch: number;
  modelId: string;
  scales: { stage: number; q: number[]; shift: number }[];
}

/**
 * How predictions compare with the labels and with the plaintext model's predictions: the fields
 * every inference job (any scheme) reports alike.
 */
export function comparePredictions(
  predictions: readonly number[],
  plain: readonly number[],
  labels: ArrayLike<number>,
): Pick<InferenceJobResult, 'samples' | 'accuracy' | 'plaintextAccuracy' | 'agreement'> {
  const n = predictions.length;
  return {
    samples: n,
    accuracy: predictions.filter((p, i) => p === labels[i]).length / n,
    plaintextAccuracy: plain.filter((p, i) => p === labels[i]).length / n,
    agreement: predictions.filter((p, i) => p === plain[i]).length / n,
  };
}

/** Totals of a run, as the per-sample time and traffic fields every inference job reports. */
export function perSample(
  totals: { totalMs: number; clientMs: number; offlineMs: number; bytes: number },
  n: number,
): Pick<InferenceJobResult, 'msPerSample' | 'clientMsPerSample' | 'serviceMsPerSample' | 'offlineMsPerSample' | 'bytesPerSample'> {
  return {
    msPerSample: totals.totalMs / n,
    clientMsPerSample: totals.clientMs / n,
    serviceMsPerSample: (totals.totalMs - totals.clientMs) / n,
    offlineMsPerSample: totals.offlineMs / n,
    bytesPerSample: totals.bytes / n,
  };
}

/**
 * Registers the model file on the server unless a model with `modelId` is there already, with the
 * model's own calibration inputs when it has some (else the service calibrates on its default).
 *
 * @throws FormatError when the server registers it under another id; whatever the owner calls throw.
 */
export async function ensureRegistered(server: string, apiKey: string, loaded: LoadedModel, modelId: string): Promise<void> {
  if (await getModel(server, modelId)) return;
  const { model } = await registerModel(server, apiKey, loaded.onnx, {
    name: loaded.path.replace(/^.*[\\/]/, '').replace(/\.(onnx|blindml)$/, ''),
    ...(loaded.calibration ? { calibration: calibrationIdx(loaded.model, loaded.calibration) } : {}),
  });
  if (model.id !== modelId) throw new FormatError(`the service registered the model as ${model.id}, not ${modelId}: pass --model-id ${model.id} or leave it out`);
}

/**
 * Runs the protocol on every image and compares with the plaintext executor.
 *
 * @throws ShapeError if the calibration data is not a whole number of model inputs.
 * @throws whatever the protocol throws (ServiceError, OverflowError, TransportError...).
 */
export async function runInferenceJob(options: InferenceJobOptions): Promise<InferenceJobResult> {
  const { loaded, data, batch } = options;
  checkImagesFit(loaded.model, data);
  const inputSize = loaded.model.inputSize;
  const plainLogits = runPlaintext(loaded.model, data.images);
  const plain = Array.from(argmaxRows(plainLogits, loaded.model.outputSize));
  checkCalibrationSize(loaded.model, options.calibration);
  options.onPhase?.('compiling the model for Paillier');
  const compiled = compileModel(loaded.model, options.calibration, options.quantization ?? {}, options.nonHomogeneous ? { nonHomogeneous: options.nonHomogeneous } : {});
  const threads = options.workers ?? availableParallelism();
  const pool = threads > 0 ? new PaillierWorkerPool({ threads }) : undefined;
  let service: PaillierInferenceService | undefined;
  let transport: Transport;
  // Behind a balancer: a session whose replica is gone runs once more on another (client/routing.ts).
  let failover: (() => Promise<void>) | undefined;
  const modelId = options.modelId ?? loaded.id;
  let closeTransport: (() => void) | undefined;
  let serviceCpuMs = 0;
  if (options.server) {
    if (options.apiKey) await ensureRegistered(options.server, options.apiKey, loaded, modelId);
    if (options.transport === 'http') {
      const http = new HttpTransport(options.server);
      transport = http;
      failover = () => http.failover();
    } else {
      const ws = await WebSocketTransport.connect(options.server);
      transport = ws;
      failover = () => ws.failover();
      closeTransport = () => ws.close();
    }
  } else {
    // In process nothing idles: a long client round on a loaded machine must not expire the session.
    service = new PaillierInferenceService({ allowInsecureKeys: options.insecure ?? false, idleTimeoutMs: 3_600_000, ...(pool ? { evaluator: pool } : {}) });
    service.register(modelId, compiled);
    transport = {
      send: async (bytes) => {
        const before = cpuMs();
        try {
          return await service!.handle(bytes);
        } finally {
          serviceCpuMs += cpuMs() - before;
        }
      },
    };
  }
  try {
    const offlineStart = performance.now();
    options.onPhase?.(`generating a ${options.keyBits}-bit Paillier key`);
    const keys = generateKeyPair({ bits: options.keyBits, primes: options.keyPrimes ?? INFERENCE_KEY_PRIMES, insecure: options.insecure ?? false });
    const client = new PaillierInferenceClient(transport, {
      keys,
      mode: batch > 1 ? 'batch' : 'latency',
      batch,
      ...(pool ? { decryptMany: (cts: readonly bigint[]) => pool.decryptMany(keys.privateKey, cts.map((c) => keys.publicKey.ciphertext(c))) } : {}),
    });
    const perSession = inputSize + activationValues(compiled);
    const sessions = Math.ceil(data.count / batch);
    options.onPhase?.('precomputing encryption randomness');
    await client.precompute(sessions * perSession + 8, pool ? (n) => pool.noise(client.keys.publicKey, n) : undefined);
    const offlineMs = performance.now() - offlineStart;

    const predictions: number[] = [];
    let maxLogitError = 0;
    let clientMs = 0;
    let bytes = 0;
    let rounds = 0;
    let granted = batch;
    const started = performance.now();
    serviceCpuMs = 0;
    const cpuStarted = cpuMs();
    options.onProgress?.(0, data.count);
    // Chunks of `batch` samples: the client opens as many sessions as the service's grant needs.
    for (let first = 0; first < data.count; first += batch) {
      const count = Math.min(batch, data.count - first);
      const chunk = data.images.subarray(first * inputSize, (first + count) * inputSize);
      const result = await (failover ? withFailover(() => client.predict(modelId, chunk), failover) : client.predict(modelId, chunk));
      result.logits.forEach((logits, k) => {
        options.onPrediction?.(first + k, logits);
        predictions.push(result.labels[k]!);
        logits.forEach((v, j) => {
          maxLogitError = Math.max(maxLogitError, Math.abs(v - plainLogits[(first + k) * logits.length + j]!));
        });
      });
      clientMs += result.stats.clientMs;
      bytes += result.stats.bytesSent + result.stats.bytesReceived;
      rounds = result.stats.rounds;
      granted = result.stats.batch;
      options.onProgress?.(first + count, data.count);
    }
    const totalMs = performance.now() - started;
    const totalCpuMs = cpuMs() - cpuStarted;
    const n = data.count;
    return {
      predictions,
      plaintextPredictions: plain,
      ...comparePredictions(predictions, plain, data.labels),
      maxLogitError,
      ...perSample({ totalMs, clientMs, offlineMs, bytes }, n),
      ...(service ? { cpu: { totalMs: totalCpuMs / n, serviceMs: serviceCpuMs / n, clientMs: (totalCpuMs - serviceCpuMs) / n } } : {}),
      rounds,
      keyBits: options.keyBits,
      keyPrimes: keys.privateKey.primes.length,
      scheme: 'paillier',
      mode: batch > 1 ? 'batch' : 'latency',
      batch: granted,
      modelId,
      scales: compiled.stages.map((s, i) => ({ stage: i, q: s.maps.map((m) => m.q), shift: s.shift })),
    };
  } finally {
    closeTransport?.();
    await pool?.destroy();
  }
}

/** CPU time of this process so far (user + system, every thread), in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Values the client encrypts per session beyond the input: one per activation output. */
function activationValues(compiled: CompiledPaillierModel): number {
  return compiled.plan.stages.reduce((sum, s) => sum + (s.activation?.outputSize ?? 0), 0);
}
