/**
 * `blindml infer`: encrypted inference on labelled images, in-process or against a server.
 *
 * @module
 */
import { Option, type Command } from 'commander';
import { readLabeledImages, type LabeledImages } from '../../data/files.js';
import { loadFashionMnistSample } from '../../data/fashion-mnist.js';
import { bundledModelPath, loadModel, runInferenceJob, type InferenceJobResult } from '../inference-job.js';
import { UsageError } from '../usage-error.js';
import { runCkksPolyJob } from '../ckks-poly-job.js';
import { runCkksInferenceJob } from '../ckks-job.js';
import { progressBar } from '../progress.js';
import { nonNegativeInt, positiveInt } from './bench.js';

interface InferOptions {
  model: string;
  images?: string;
  labels?: string;
  limit: number;
  skip: number;
  scheme: string;
  batch: number;
  keyBits: number;
  keyPrimes: '2' | '3';
  server?: string;
  modelId?: string;
  apiKey?: string;
  transport: 'websocket' | 'http';
  workers?: number;
  insecure?: boolean;
  json?: boolean;
  precisionBits?: number;
  weightBits?: number;
  /** False with --no-precompute. */
  precompute: boolean;
}

/** The committed sample's last 100 images calibrate; evaluation uses the first ones. */
const CALIBRATION_IMAGES = 100;

function loadData(options: InferOptions): { data: LabeledImages; calibration: Float32Array } {
  if ((options.images === undefined) !== (options.labels === undefined)) {
    throw new UsageError('--images and --labels go together');
  }
  const sample = loadFashionMnistSample();
  const size = sample.shape[0] * sample.shape[1] * sample.shape[2];
  const calibration = sample.images.subarray((sample.count - CALIBRATION_IMAGES) * size);
  if (options.images && options.labels) {
    const data = readLabeledImages(options.images, options.labels, { limit: options.limit, skip: options.skip });
    if (data.count === 0) throw new UsageError(`--skip ${options.skip} leaves no images in ${options.images}`);
    return { data, calibration };
  }
  if (options.skip > 0) throw new UsageError('--skip applies to --images/--labels files');
  if (options.limit > sample.count - CALIBRATION_IMAGES) {
    throw new UsageError(`the committed sample has ${sample.count - CALIBRATION_IMAGES} evaluation images; pass --images/--labels for more`);
  }
  return { data: loadFashionMnistSample({ limit: options.limit }), calibration };
}

function schemeLabel(r: InferenceJobResult): string {
  if (!r.ckks) return `Paillier ${r.keyBits}-bit${r.keyPrimes ? `, ${r.keyPrimes} primes` : ''}`;
  return `${r.scheme === 'ckks' ? 'CKKS' : 'CKKS polynomial network'} N=${r.ckks.polyModulusDegree}, ${r.keyBits}-bit modulus (128-bit security)`;
}

/** Prints the human-readable summary. */
export function formatInferenceSummary(r: InferenceJobResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  return [
    `model ${r.modelId}, ${r.samples} images, ${schemeLabel(r)}, ${r.mode} mode${r.batch > 1 ? ` (${r.batch} per ciphertext)` : ''}`,
    `accuracy ${pct(r.accuracy)} (plaintext ${pct(r.plaintextAccuracy)}), agreement with plaintext ${pct(r.agreement)}, max logit error ${r.maxLogitError.toExponential(2)}`,
    `${r.msPerSample.toFixed(0)} ms per image online (client ${r.clientMsPerSample.toFixed(0)} ms, service and transport ${r.serviceMsPerSample.toFixed(0)} ms), plus ${r.offlineMsPerSample.toFixed(0)} ms of precomputation`,
    `${(r.bytesPerSample / 1024).toFixed(1)} KiB per image, ${r.rounds} client rounds`,
  ].join('\n');
}

export function registerInferCommand(program: Command): void {
  program
    .command('infer')
    .description('encrypted inference: the client encrypts images, the service evaluates the model on ciphertexts')
    .option('--model <file>', 'ONNX model', bundledModelPath('fashion-small.onnx'))
    .option('--images <file>', 'IDX images (.idx3-ubyte, optionally .gz); default: the committed Fashion-MNIST sample')
    .option('--labels <file>', 'IDX labels (.idx1-ubyte, optionally .gz)')
    .option('--limit <n>', 'number of images', positiveInt, 10)
    .option('--skip <n>', 'with --images: start after the first n images', nonNegativeInt, 0)
    .addOption(new Option('--scheme <scheme>', 'cryptosystem: paillier, or ckks (interactive, 128-bit lattice parameters), or ckks-poly (polynomial networks, one round, N/2 images per ciphertext)').choices(['paillier', 'ckks', 'ckks-poly']).default('paillier'))
    .option('--batch <k>', 'images per ciphertext (1 = latency mode)', positiveInt, 1)
    .option('--key-bits <bits>', 'Paillier modulus size', positiveInt, 2048)
    .addOption(new Option('--key-primes <count>', "prime factors of the client's Paillier key (3 decrypts about 2x faster)").choices(['2', '3']).default('3'))
    .option('--server <url>', 'use a running service instead of an in-process one')
    .option('--model-id <id>', 'model id on the server (default: the model file content id)')
    .option('--api-key <key>', 'with --server: register --model first if the service lacks it (owner key; default $BLINDML_API_KEY)')
    .addOption(new Option('--transport <kind>', 'with --server and --scheme paillier or ckks: one WebSocket connection or one HTTP POST per message (--scheme ckks-poly uploads each batch as a job over HTTP)').choices(['websocket', 'http']).default('websocket'))
    .option('--workers <n>', 'worker threads (default: all cores; ckks-poly with --server: batches in flight)', (v) => Number.parseInt(v, 10))
    .option('--insecure', 'allow keys below 2048 bits (tests only)')
    .option('--precision-bits <n>', 'paillier, in-process: bits the client keeps per activation (default 18; fewer = narrower slots)', positiveInt)
    .option('--weight-bits <n>', 'paillier, in-process: bits of each integer weight exponent (default 16)', positiveInt)
    .option('--no-precompute', 'ckks: do the input-independent work (encryptions of zero, the service\'s per-session plaintexts) online, to measure cold latency')
    .option('--json', 'print one JSON object on stdout')
    .action(async (options: InferOptions) => {
      if (options.keyBits < 2048 && !options.insecure) throw new UsageError(`--key-bits ${options.keyBits} is insecure; use 2048 or more, or add --insecure`);
      if (!options.precompute && options.scheme !== 'ckks') throw new UsageError('--no-precompute applies to --scheme ckks');
      const { data, calibration } = loadData(options);
      const bar = progressBar(data.count, 'encrypted inference');
      if (options.scheme === 'ckks-poly') {
        const apiKey = options.apiKey ?? process.env['BLINDML_API_KEY'];
        const poly = await runCkksPolyJob({
          loaded: loadModel(options.model),
          data,
          calibration,
          batch: options.batch,
          ...(options.workers !== undefined ? { workers: options.workers } : {}),
          ...(options.server ? { server: options.server } : {}),
          ...(options.modelId ? { modelId: options.modelId } : {}),
          ...(options.server && apiKey ? { apiKey } : {}),
          onProgress: (done) => bar.update(done),
        }).finally(() => bar.finish());
        process.stdout.write(options.json ? `${JSON.stringify(poly)}\n` : `${formatInferenceSummary(poly)}\n`);
        return;
      }
      if (options.scheme === 'ckks') {
        if (options.batch > 1) throw new UsageError('--scheme ckks is latency mode (one image per session); drop --batch');
        const apiKey = options.apiKey ?? process.env['BLINDML_API_KEY'];
        const ckks = await runCkksInferenceJob({
          loaded: loadModel(options.model),
          data,
          calibration,
          ...(options.workers !== undefined ? { workers: options.workers } : {}),
          ...(options.server ? { server: options.server } : {}),
          ...(options.modelId ? { modelId: options.modelId } : {}),
          ...(options.server && apiKey ? { apiKey } : {}),
          transport: options.transport,
          precompute: options.precompute,
          onProgress: (done) => bar.update(done),
        }).finally(() => bar.finish());
        process.stdout.write(options.json ? `${JSON.stringify(ckks)}\n` : `${formatInferenceSummary(ckks)}\n`);
        return;
      }
      const result = await runInferenceJob({
        loaded: loadModel(options.model),
        data,
        calibration,
        keyBits: options.keyBits,
        keyPrimes: options.keyPrimes === '2' ? 2 : 3,
        insecure: options.insecure ?? false,
        batch: options.batch,
        ...(options.workers !== undefined ? { workers: options.workers } : {}),
        ...(options.server ? { server: options.server } : {}),
        ...(options.modelId ? { modelId: options.modelId } : {}),
        ...(options.server && (options.apiKey ?? process.env['BLINDML_API_KEY']) ? { apiKey: options.apiKey ?? process.env['BLINDML_API_KEY']! } : {}),
        transport: options.transport,
        quantization: {
          ...(options.precisionBits !== undefined ? { precisionBits: options.precisionBits } : {}),
          ...(options.weightBits !== undefined ? { weightBits: options.weightBits } : {}),
        },
        onProgress: (done) => bar.update(done),
      }).finally(() => bar.finish());
      process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${formatInferenceSummary(result)}\n`);
    });
}
