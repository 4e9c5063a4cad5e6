/**
 * `blindml infer --scheme ckks`: the interactive CKKS protocol on labelled images, with an
 * in-process service, compared with the plaintext executor. Same result fields as the Paillier job.
 *
 * @module
 */
import { argmaxRows, runPlaintext } from '../nn/plaintext.js';
import {
  CkksInferenceClient, CkksInferenceService, clientActivations, compileCkksModel, inProcessCkksTransport,
} from '../protocol/ckks-inference/index.js';
import { availableParallelism } from 'node:os';
import { CkksProductPool } from '../workers/ckks-products-pool.js';
import { checkImagesFit, type InferenceJobOptions, type InferenceJobResult, comparePredictions, perSample } from './inference-job.js';

/** Options of the CKKS job (the Paillier job's, minus keys, batch and servers). */
export type CkksJobOptions = Pick<InferenceJobOptions, 'loaded' | 'data' | 'calibration' | 'onProgress' | 'modelId' | 'workers'> & {
  /**
   * Do the input-independent work before each image (default true): the client's encryptions of
   * zero, the service's smudging ciphertexts and its prepared session (every per-session
   * plaintext encoded). Its time is reported as precomputation, apart from the online time; false
   * measures cold latency (all of it online).
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
 * @throws whatever the protocol throws (FormatError, KeyMismatchError, InvalidCiphertextError...).
 */
export async function runCkksInferenceJob(options: CkksJobOptions): Promise<InferenceJobResult> {
  const { loaded, data } = options;
  checkImagesFit(loaded.model, data);
  const inputSize = loaded.model.inputSize;
  const plainLogits = runPlaintext(loaded.model, data.images);
  const plain = Array.from(argmaxRows(plainLogits, loaded.model.outputSize));
  const compiled = compileCkksModel(loaded.model, options.calibration);
  const threads = options.workers ?? availableParallelism();
  const pool = threads > 0 ? new CkksProductPool({ threads }) : undefined;
  const service = await CkksInferenceService.create(compiled, pool ? { evaluator: pool } : {});
  let client: CkksInferenceClient | undefined;
  try {
    const offlineStart = performance.now();
    await pool?.prepare(compiled.params.ckks);
    client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(compiled));
    const perImage = client.ciphertextsPerInference;
    const p = compiled.params.ckks;
    const ciphertextBytes = 2 * (p.coeffModulusBits.length - 1) * p.polyModulusDegree * 8;
    const window = precomputeWindow(perImage.client + perImage.service, ciphertextBytes, data.count);
    let offlineMs = performance.now() - offlineStart;
    const predictions: number[] = [];
    let maxLogitError = 0;
    let clientMs = 0;
    let bytes = client.keyBytes;
    let rounds = 0;
    let onlineMs = 0;
    const precompute = options.precompute ?? true;
    for (let i = 0; i < data.count; i++) {
      if (precompute) {
        const t = performance.now();
        if (i % window === 0) {
          const images = Math.min(window, data.count - i);
          client.precompute(perImage.client * images);
          service.precompute(client.keyId, perImage.service * images);
        }
        // One prepared session at a time: a reference-CNN session's plaintexts take about 350 MiB.
        await service.prepare(1);
        offlineMs += performance.now() - t;
      }
      const started = performance.now();
      const { logits, stats } = await client.predict(data.images.subarray(i * inputSize, (i + 1) * inputSize));
      predictions.push(argmaxRows(logits, logits.length)[0]!);
      logits.forEach((v, j) => (maxLogitError = Math.max(maxLogitError, Math.abs(v - plainLogits[i * logits.length + j]!))));
      clientMs += stats.clientMs;
      bytes += stats.bytesUp + stats.bytesDown;
      rounds = stats.rounds;
      onlineMs += performance.now() - started;
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
      rounds,
      keyBits: p.coeffModulusBits.reduce((a, b) => a + b, 0),
      scheme: 'ckks',
      ckks: { polyModulusDegree: p.polyModulusDegree, coeffModulusBits: [...p.coeffModulusBits], securityBits: 128 },
      mode: 'latency',
      batch: 1,
      modelId: options.modelId ?? loaded.id,
      scales: compiled.stages.map((s, i) => ({ stage: i, q: [s.sigma], shift: 0 })),
    };
  } finally {
    client?.dispose();
    service.dispose();
    await pool?.destroy();
  }
}
