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
import { checkImagesFit, type InferenceJobOptions, type InferenceJobResult, comparePredictions, perSample } from './inference-job.js';

/** Options of the CKKS job (the Paillier job's, minus keys, batch and servers). */
export type CkksJobOptions = Pick<InferenceJobOptions, 'loaded' | 'data' | 'calibration' | 'onProgress' | 'modelId'>;

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let k = 1; k < v.length; k++) if (v[k]! > v[best]!) best = k;
  return best;
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
  const service = await CkksInferenceService.create(compiled);
  let client: CkksInferenceClient | undefined;
  try {
    const offlineStart = performance.now();
    client = await CkksInferenceClient.connect(inProcessCkksTransport(service), clientActivations(compiled));
    const perImage = client.ciphertextsPerInference;
    client.precompute(perImage.client * data.count);
    service.precompute(client.keyId, perImage.service * data.count);
    const offlineMs = performance.now() - offlineStart;
    const predictions: number[] = [];
    let maxLogitError = 0;
    let clientMs = 0;
    let bytes = client.keyBytes;
    let rounds = 0;
    const started = performance.now();
    for (let i = 0; i < data.count; i++) {
      const { logits, stats } = await client.predict(data.images.subarray(i * inputSize, (i + 1) * inputSize));
      predictions.push(argmax(logits));
      logits.forEach((v, j) => (maxLogitError = Math.max(maxLogitError, Math.abs(v - plainLogits[i * logits.length + j]!))));
      clientMs += stats.clientMs;
      bytes += stats.bytesUp + stats.bytesDown;
      rounds = stats.rounds;
      options.onProgress?.(i + 1, data.count);
    }
    const totalMs = performance.now() - started;
    const n = data.count;
    const p = compiled.params.ckks;
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
  }
}
