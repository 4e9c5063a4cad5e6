/**
 * Encrypted inference on the model zoo (models/zoo): for each model, the interactive Paillier and
 * CKKS protocols on the committed evaluation images, calibrated on the committed calibration
 * images, through the same jobs as `blindml infer` (in-process service, latency mode). Prints one
 * JSON object per run and a markdown row for docs/benchmarks.md.
 *
 *     npx tsx bench/zoo-encrypted.ts [--models a,b] [--schemes paillier,ckks] [--limit 100] [--workers 2] [--batch 1]
 *
 * `--batch k` runs Paillier in batch mode (up to k images per ciphertext, as many as the slots
 * hold): the same protocol and blinding, k times the throughput of latency mode.
 */
import { parseArgs } from 'node:util';
import { readIdxFile, type LabeledImages } from '../src/data/files.js';
import { loadModel, runInferenceJob, type InferenceJobResult } from '../src/cli/inference-job.js';
import { runCkksInferenceJob } from '../src/cli/ckks-job.js';
import type { Model } from '../src/nn/model.js';

const ZOO = new URL('../models/zoo/', import.meta.url);
const ALL = ['resnet-style', 'mobilenet-style', 'inception-style', 'keras-style', 'lenet5'];

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: ALL.join(',') },
    schemes: { type: 'string', default: 'paillier,ckks' },
    limit: { type: 'string', default: '100' },
    workers: { type: 'string', default: '2' },
    batch: { type: 'string', default: '1' },
  },
});

/** Pixels of an IDX file as the model expects them (bytes / 255, in the model's input shape). */
function images(model: Model, file: string, limit = Infinity): Float32Array {
  const idx = readIdxFile(new URL(`data/${file}`, ZOO).pathname);
  const count = Math.min(idx.dims[0]!, limit);
  const data = Float32Array.from(idx.data.subarray(0, count * model.inputSize), (v) => v / 255);
  if (data.length !== count * model.inputSize) throw new RangeError(`${file}: images do not have the model's ${model.inputSize} values`);
  return data;
}

function labelled(model: Model, name: string, limit: number): LabeledImages {
  const x = images(model, `${name}-eval-images.idx.gz`, limit);
  const labels = readIdxFile(new URL(`data/${name}-eval-labels.idx.gz`, ZOO).pathname).data.slice(0, x.length / model.inputSize);
  return { count: labels.length, shape: model.inputShape as [number, number, number], images: x, labels };
}

function row(name: string, r: InferenceJobResult): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  return `| ${name} | ${r.scheme} | ${r.mode}${r.batch > 1 ? ` (${r.batch}/ciphertext)` : ''} | ${r.samples} | ${pct(r.agreement)} | ${pct(r.accuracy)} (${pct(r.plaintextAccuracy)}) | ${r.msPerSample.toFixed(0)} | ${r.clientMsPerSample.toFixed(0)} | ${(r.bytesPerSample / 1024).toFixed(0)} | ${r.rounds} |`;
}

const limit = Number(values.limit);
const workers = Number(values.workers);
for (const name of values.models!.split(',')) {
  const loaded = loadModel(new URL(`${name}.onnx`, ZOO).pathname);
  const data = labelled(loaded.model, name, limit);
  const calibration = images(loaded.model, `${name}-calibration-images.idx.gz`);
  for (const scheme of values.schemes!.split(',')) {
    const common = { loaded, data, calibration, workers };
    const result = scheme === 'ckks' ? await runCkksInferenceJob(common) : await runInferenceJob({ ...common, keyBits: 2048, batch: Number(values.batch) });
    const { predictions: _p, plaintextPredictions: _q, scales: _s, ...summary } = result;
    console.log(JSON.stringify({ model: name, ...summary }));
    console.log(row(name, result));
  }
}
