/**
 * One `--scheme ckks-poly` run, as `blindml infer` and the inference benchmark perform it:
 * compile the polynomial network, open a session with an in-process service (or a server's batch
 * endpoint), send the images N/2 per request (one image per slot), decrypt the logits and compare
 * with the plaintext model.
 *
 * @module
 */
import { availableParallelism } from 'node:os';
import type { LabeledImages } from '../data/files.js';
import { CkksPolyWorkerPool } from '../workers/ckks-poly-pool.js';
import { argmaxRows } from '../nn/plaintext.js';
import { CkksPolyClient, CkksPolyService, compilePolyNetwork, polyLogits, type CompiledPolyNetwork, type PolyCompileOptions } from '../protocol/ckks-poly/index.js';
import { HttpPolyTransport } from '../client/ckks-poly-transport.js';
import { checkImagesFit, ensureRegistered, type InferenceJobResult, type LoadedModel, comparePredictions, perSample } from './inference-job.js';
import { checkCalibrationSize } from './calibration.js';

export interface CkksPolyJobOptions {
  loaded: LoadedModel;
  data: LabeledImages;
  /** Model-owner images that size the CKKS primes (not the evaluated images). */
  calibration: Float32Array;
  /** Images per request, at most N/2 (default N/2). */
  batch?: number;
  compile?: PolyCompileOptions;
  /** The network compiled already (from `loaded.model` and `calibration`); compiled here otherwise. */
  net?: CompiledPolyNetwork;
  /** Worker threads evaluating batches side by side (default: all cores; 0 or 1 = this thread); with `server`, batches in flight. */
  workers?: number;
  /** A running service's base URL: its batch endpoint evaluates (the network is not compiled here). */
  server?: string;
  /** Model id on the server (default: the model file's content id). */
  modelId?: string;
  /** Owner API key: register the model on the server first if it lacks it. */
  apiKey?: string;
  onProgress?: (done: number, total: number) => void;
  /** Called as each set-up phase starts (compilation, key generation), for progress displays. */
  onPhase?: (phase: string) => void;
  /** Called with each input's decrypted logits once its batch is back (input index, then logits). */
  onPrediction?: (index: number, logits: ArrayLike<number>) => void;
}

/** The common result, plus what only a polynomial network has. */
export interface CkksPolyJobResult extends InferenceJobResult {
  scheme: 'ckks-poly';
  ckksPoly: {
    /** Multiplicative depth: squares on the way from input to logits. */
    depth: number;
    inputScaleBits: number;
    /** In process only (a server does not publish how it compiled the network). */
    weightBits?: number;
    squaresPerBatch?: number;
    additionsPerBatch?: number;
    /** Worker threads that evaluated batches side by side. */
    workers: number;
    /** 3.6e6 / msPerSample: the batch throughput of this run, client included. */
    predictionsPerHour: number;
    /** Same, counting the service's computation only. */
    servicePredictionsPerHour: number;
  };
}

/**
 * Runs ckks-poly on every image.
 *
 * @throws ShapeError if the calibration data is not a whole number of model inputs.
 * @throws UnsupportedModelError for a model that is not a polynomial network; ParameterError when
 *   its values fit no 128-bit ring; FormatError when the images do not fit the model.
 */
export async function runCkksPolyJob(options: CkksPolyJobOptions): Promise<CkksPolyJobResult> {
  const { loaded, data } = options;
  checkImagesFit(loaded.model, data);
  const modelId = options.modelId ?? loaded.id;
  if (!options.server && options.net === undefined) {
    checkCalibrationSize(loaded.model, options.calibration);
    options.onPhase?.('compiling the polynomial network');
  }
  const net = options.server ? undefined : (options.net ?? compilePolyNetwork(loaded.model, options.calibration, options.compile));
  // The service returns the logits before a softmax or log-softmax head: compare with those.
  const plainLogits = polyLogits(loaded.model, data.images);
  const outSize = loaded.model.outputSize;
  const plain = Array.from(argmaxRows(plainLogits, outSize));
  const threads = options.workers ?? availableParallelism();
  const pool = net && threads > 1 ? new CkksPolyWorkerPool({ threads }) : undefined;
  const service = net ? new CkksPolyService(pool ? { evaluator: pool } : {}) : undefined;
  service?.register(modelId, net!, loaded.model.inputShape);
  if (options.server && options.apiKey) await ensureRegistered(options.server, options.apiKey, loaded, modelId);
  const offlineStart = performance.now();
  options.onPhase?.('generating CKKS keys');
  const client = await CkksPolyClient.connect(service ? { send: (bytes) => service.handle(bytes) } : new HttpPolyTransport(options.server!, modelId), modelId).catch(async (err: unknown) => {
    await service?.dispose();
    await pool?.destroy();
    throw err;
  });
  const offlineMs = performance.now() - offlineStart;
  const setupBytes = client.setupBytes;
  try {
    const batch = Math.min(options.batch && options.batch > 1 ? options.batch : client.slots, client.slots);
    options.onProgress?.(0, data.count);
    const started = performance.now();
    const predictions: number[] = [];
    const logits = new Float64Array(data.count * outSize);
    let clientMs = 0;
    let bytes = 0;
    // Full batches go out together (one per worker at a time); a smaller --batch goes one by one.
    const step = batch === client.slots ? data.count : batch;
    for (let first = 0; first < data.count; first += step) {
      const count = Math.min(step, data.count - first);
      const result = await client.predict(
        data.images.subarray(first * loaded.model.inputSize, (first + count) * loaded.model.inputSize),
        (done) => options.onProgress?.(first + done, data.count),
        { concurrency: Math.max(1, threads) },
      );
      predictions.push(...result.labels);
      logits.set(result.logits, first * outSize);
      for (let k = 0; k < count; k++) options.onPrediction?.(first + k, result.logits.subarray(k * outSize, (k + 1) * outSize));
      clientMs += result.stats.clientMs;
      bytes += result.stats.bytesSent + result.stats.bytesReceived;
    }
    const totalMs = performance.now() - started;
    let maxLogitError = 0;
    for (let i = 0; i < logits.length; i++) maxLogitError = Math.max(maxLogitError, Math.abs(logits[i]! - plainLogits[i]!));
    const n = data.count;
    // The key setup is paid once per session; it is spread over the images like Paillier's.
    const times = perSample({ totalMs, clientMs, offlineMs, bytes: bytes + setupBytes }, n);
    const params = client.info.params;
    const bits = params.coeffModulusBits;
    return {
      predictions,
      plaintextPredictions: plain,
      ...comparePredictions(predictions, plain, data.labels),
      maxLogitError,
      ...times,
      rounds: 0,
      keyBits: bits.reduce((a, b) => a + b, 0),
      scheme: 'ckks-poly',
      ckks: { polyModulusDegree: params.polyModulusDegree, coeffModulusBits: [...bits], securityBits: 128 },
      mode: 'batch',
      batch,
      modelId,
      scales: [],
      ckksPoly: {
        depth: client.info.depth,
        workers: Math.max(1, threads),
        inputScaleBits: Math.log2(client.info.inputScale),
        ...(net ? { weightBits: net.weightBits, squaresPerBatch: net.squares, additionsPerBatch: net.additions } : {}),
        predictionsPerHour: 3.6e6 / times.msPerSample,
        servicePredictionsPerHour: 3.6e6 / times.serviceMsPerSample,
      },
    };
  } finally {
    client.dispose();
    await service?.dispose();
    await pool?.destroy();
  }
}
