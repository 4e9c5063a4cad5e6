/**
 * `blindml infer --scheme ckks`: the interactive CKKS protocol on labelled images, with an
 * in-process service, compared with the plaintext executor. Same result fields as the Paillier job.
 *
 * @module
 */
import { argmaxRows, runPlaintext } from '../nn/plaintext.js';
import {
  CkksInferenceClient, CkksInferenceService, compileCkksModel, DEFAULT_CKKS_PROTOCOL, inProcessCkksTransport, type CkksTransport, type CompiledCkksModel,
} from '../protocol/ckks-inference/index.js';
import { HttpCkksTransport } from '../client/ckks-http-transport.js';
import { WebSocketCkksTransport } from '../client/ckks-ws-transport.js';
import { withFailover } from '../client/routing.js';
import { median } from '../bench/stats.js';
import { availableParallelism } from 'node:os';
import { CkksProductPool } from '../workers/ckks-products-pool.js';
import { checkImagesFit, ensureRegistered, type InferenceJobOptions, type InferenceJobResult, comparePredictions, perSample } from './inference-job.js';
import { checkCalibrationSize } from './calibration.js';

/** Options of the CKKS job (the Paillier job's, minus keys and batch; `transport` defaults to HTTP). */
export type CkksJobOptions = Pick<InferenceJobOptions, 'loaded' | 'data' | 'calibration' | 'onProgress' | 'onPhase' | 'onPrediction' | 'nonHomogeneous' | 'modelId' | 'workers' | 'server' | 'apiKey' | 'transport'> & {
  /**
   * Do the input-independent work before each image (default true): the client's encryptions of
   * zero, and in process the service's smudging ciphertexts and its prepared session (every
   * per-session plaintext encoded; a server does its own between sessions). Its time is reported
   * as precomputation, apart from the online time; false measures cold latency.
   */
  readonly precompute?: boolean;
};

/** WebAssembly memory the job lets precomputed ciphertexts take at once (SEAL's heap stops at 4 GiB). */
export const PRECOMPUTE_BUDGET_BYTES = 512 * 2 ** 20;

/**
 * Images whose ciphertexts are precomputed at a time: as many as fit the budget, at least one. (A
 * reference-CNN image needs about 2,100 pooled ciphertexts of 256 KiB; precomputing every image of
 * a long run up front would exhaust the WebAssembly heap.)
 */
export function precomputeWindow(ciphertextsPerImage: number, ciphertextBytes: number, images: number, budget = PRECOMPUTE_BUDGET_BYTES): number {
  return Math.max(1, Math.min(images, Math.floor(budget / Math.max(1, ciphertextsPerImage * ciphertextBytes))));
}

/**
 * Runs the interactive CKKS protocol on every image (latency mode: one image per session).
 *
 * @throws ShapeError if the calibration data is not a whole number of model inputs.
 * @throws whatever the protocol throws (FormatError, KeyMismatchError, InvalidCiphertextError...).
 */
export async function runCkksInferenceJob(options: CkksJobOptions): Promise<InferenceJobResult> {
  const { loaded, data } = options;
  checkImagesFit(loaded.model, data);
  const inputSize = loaded.model.inputSize;
  const plainLogits = runPlaintext(loaded.model, data.images);
  const plain = Array.from(argmaxRows(plainLogits, loaded.model.outputSize));
  const modelId = options.modelId ?? loaded.id;
  let compiled: CompiledCkksModel | undefined;
  let pool: CkksProductPool | undefined;
  let service: CkksInferenceService | undefined;
  let client: CkksInferenceClient | undefined;
  let socket: WebSocketCkksTransport | undefined;
  try {
    // Precomputation counts the workers' start, the client's keys and what comes before each image,
    // not compiling the model.
    let offlineMs = 0;
    let transport: CkksTransport;
    let failover: (() => Promise<void>) | undefined;
    if (options.server) {
      if (options.apiKey) await ensureRegistered(options.server, options.apiKey, loaded, modelId);
      const remote = options.transport === 'websocket' ? (socket = await WebSocketCkksTransport.connect(options.server, modelId)) : new HttpCkksTransport(options.server, modelId);
      transport = remote;
      // Behind a balancer: keys and session move once to another replica (client/routing.ts).
      failover = () => remote.failover();
    } else {
      checkCalibrationSize(loaded.model, options.calibration);
      options.onPhase?.('compiling the model for CKKS');
      compiled = compileCkksModel(loaded.model, options.calibration, options.nonHomogeneous ? { ...DEFAULT_CKKS_PROTOCOL, nonHomogeneous: options.nonHomogeneous } : DEFAULT_CKKS_PROTOCOL);
      const threads = options.workers ?? availableParallelism();
      pool = threads > 0 ? new CkksProductPool({ threads }) : undefined;
      service = await CkksInferenceService.create(compiled, pool ? { evaluator: pool } : {});
      const t = performance.now();
      await pool?.prepare(compiled.params.ckks);
      offlineMs += performance.now() - t;
      transport = inProcessCkksTransport(service);
    }
    options.onPhase?.('generating CKKS keys');
    const connectStart = performance.now();
    // The activation rounds come from the service's description (the model's public architecture).
    client = await CkksInferenceClient.connect(transport);
    offlineMs += performance.now() - connectStart;
    const perImage = client.ciphertextsPerInference;
    const p = client.parameters;
    const ciphertextBytes = 2 * (p.coeffModulusBits.length - 1) * p.polyModulusDegree * 8;
    const window = precomputeWindow(perImage.client + perImage.service, ciphertextBytes, data.count);
    const predictions: number[] = [];
    let maxLogitError = 0;
    let clientMs = 0;
    let bytes = client.keyBytes;
    let rounds = 0;
    let onlineMs = 0;
    const perImageMs: number[] = [];
    const precompute = options.precompute ?? true;
    for (let i = 0; i < data.count; i++) {
      if (precompute) {
        const t = performance.now();
        if (i % window === 0) {
          const images = Math.min(window, data.count - i);
          options.onPhase?.(`precomputing encryptions for ${images} image(s)`);
          client.precompute(perImage.client * images);
          service?.precompute(client.keyId, perImage.service * images);
        }
        // One prepared session at a time: a reference-CNN session's plaintexts take about 350 MiB.
        await service?.prepare(1);
        offlineMs += performance.now() - t;
        if (i % window === 0) options.onProgress?.(i, data.count);
      }
      const started = performance.now();
      const image = data.images.subarray(i * inputSize, (i + 1) * inputSize);
      const connected = client;
      const { logits, stats } = await (failover ? withFailover(() => connected.predict(image), failover) : connected.predict(image));
      options.onPrediction?.(i, logits);
      predictions.push(argmaxRows(logits, logits.length)[0]!);
      logits.forEach((v, j) => (maxLogitError = Math.max(maxLogitError, Math.abs(v - plainLogits[i * logits.length + j]!))));
      clientMs += stats.clientMs;
      bytes += stats.bytesUp + stats.bytesDown;
      rounds = stats.rounds;
      perImageMs.push(performance.now() - started);
      onlineMs += perImageMs[i]!;
      options.onProgress?.(i + 1, data.count);
    }
    const totalMs = onlineMs;
    const n = data.count;
    return {
      predictions,
      plaintextPredictions: plain,
      ...comparePredictions(predictions, plain, data.labels),
      maxLogitError,
      ...perSample({ totalMs, clientMs, offlineMs, bytes }, n),
      latencyMs: { median: median(perImageMs), min: Math.min(...perImageMs), max: Math.max(...perImageMs) },
      precomputed: precompute,
      rounds,
      keyBits: p.coeffModulusBits.reduce((a, b) => a + b, 0),
      scheme: 'ckks',
      ckks: { polyModulusDegree: p.polyModulusDegree, coeffModulusBits: [...p.coeffModulusBits], securityBits: 128 },
      mode: 'latency',
      batch: 1,
      modelId,
      scales: compiled ? compiled.stages.map((s, i) => ({ stage: i, q: [s.sigma], shift: 0 })) : [],
    };
  } finally {
    socket?.close();
    client?.dispose();
    service?.dispose();
    await pool?.destroy();
  }
}
