/**
 * `blindml infer`: encrypted inference on labelled images, in-process or against a server.
 *
 * @module
 */
import { Option, type Command } from 'commander';
import { readLabeledImages, type LabeledImages } from '../../data/files.js';
import { loadFashionMnistSample } from '../../data/fashion-mnist.js';
import { bundledModelPath, checkImagesFit, loadModel, runInferenceJob, type InferenceJobResult, type LoadedModel } from '../inference-job.js';
import { calibrationFor, committedCalibration, COMMITTED_CALIBRATION_IMAGES, readCalibrationFile } from '../calibration.js';
import { UsageError } from '../usage-error.js';
import { runCkksPolyJob } from '../ckks-poly-job.js';
import { runCkksInferenceJob } from '../ckks-job.js';
import { progressBar, progressEnabled } from '../progress.js';
import { activationsOption, deprecatedAlias, nonNegativeInt, positiveInt, SCHEME_DEFAULT_MODELS, threadsOption } from '../options.js';

interface InferOptions {
  activations: 'client' | 'spline';
  model?: string;
  images?: string;
  labels?: string;
  calibration?: string;
  limit: number;
  skip: number;
  scheme: keyof typeof SCHEME_DEFAULT_MODELS;
  batchSize: number;
  keyBits: number;
  keyPrimes: '2' | '3';
  server?: string;
  modelId?: string;
  apiKey?: string;
  transport: 'websocket' | 'http';
  threads?: number;
  insecure?: boolean;
  json?: boolean;
  precisionBits?: number;
  weightBits?: number;
  /** False with --no-precompute. */
  precompute: boolean;
}

function loadData(options: InferOptions): LabeledImages {
  if ((options.images === undefined) !== (options.labels === undefined)) {
    throw new UsageError('--images and --labels go together');
  }
  if (options.images && options.labels) {
    const data = readLabeledImages(options.images, options.labels, { limit: options.limit, skip: options.skip });
    if (data.count === 0) throw new UsageError(`--skip ${options.skip} leaves no images in ${options.images}`);
    return data;
  }
  if (options.skip > 0) throw new UsageError('--skip applies to --images/--labels files');
  // The committed sample's last images calibrate by default; evaluation uses the first ones.
  const available = loadFashionMnistSample().count - COMMITTED_CALIBRATION_IMAGES;
  if (options.limit > available) {
    throw new UsageError(`the committed sample has ${available} evaluation images; pass --images/--labels for more`);
  }
  return loadFashionMnistSample({ limit: options.limit });
}

/**
 * The model's calibration inputs: those a .blindml file carries, --calibration, or the committed
 * images when they fit the model.
 *
 * @throws FormatError if the images do not fit the model (checked first, to name the real problem).
 * @throws ShapeError if the calibration data does not have the model's input shape (it is never cut to fit).
 */
function loadCalibration(options: InferOptions, loaded: LoadedModel, data: LabeledImages): Float32Array {
  checkImagesFit(loaded.model, data);
  if (loaded.calibration && options.calibration === undefined) return loaded.calibration;
  return calibrationFor(loaded.model, options.calibration ? readCalibrationFile(options.calibration) : committedCalibration());
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
  const command = program
    .command('infer')
    .description('encrypted inference: the client encrypts images, the service evaluates the model on ciphertexts')
    .option('--model <file>', 'ONNX or .blindml model (default: models/fashion-small.onnx; models/fashion-poly.onnx with --scheme ckks-poly)')
    .option('--images <file>', 'IDX images (.idx3-ubyte, optionally .gz); default: the committed Fashion-MNIST sample')
    .option('--labels <file>', 'IDX labels (.idx1-ubyte, optionally .gz)')
    .option('--calibration <file>', "IDX images of the model's input shape (N × C × H × W, or N × H × W for one channel; unsigned bytes, optionally .gz) that size the in-process service's fixed-point scales or CKKS primes; default: the committed Fashion-MNIST calibration images")
    .option('--limit <n>', 'number of images', positiveInt, 10)
    .option('--skip <n>', 'with --images: start after the first n images', nonNegativeInt, 0)
    .addOption(new Option('--scheme <scheme>', 'cryptosystem: paillier, or ckks (interactive, 128-bit lattice parameters), or ckks-poly (polynomial networks, one round, N/2 images per ciphertext)').choices(['paillier', 'ckks', 'ckks-poly']).default('paillier'))
    .option('--batch-size <k>', 'images per ciphertext (1 = latency mode)', positiveInt, 1)
    .option('--key-bits <bits>', 'paillier: modulus size', positiveInt, 2048)
    .addOption(new Option('--key-primes <count>', "prime factors of the client's Paillier key (3 decrypts about 2x faster)").choices(['2', '3']).default('3'))
    .option('--server <url>', 'use a running service instead of an in-process one')
    .option('--model-id <id>', 'model id on the server (default: the model file content id)')
    .option('--api-key <key>', 'with --server: register --model first if the service lacks it (owner key; default $BLINDML_API_KEY)')
    .addOption(new Option('--transport <kind>', 'with --server and --scheme paillier or ckks: one WebSocket connection or one HTTP POST per message (--scheme ckks-poly uploads each batch as a job over HTTP)').choices(['websocket', 'http']).default('websocket'))
    .addOption(activationsOption())
    .addOption(threadsOption('all cores; ckks-poly with --server: batches in flight'))
    .option('--insecure', 'allow keys below 2048 bits (tests only)')
    .option('--precision-bits <n>', 'paillier, in-process: bits the client keeps per activation (default 18; fewer = narrower slots)', positiveInt)
    .option('--weight-bits <n>', 'paillier, in-process: bits of each integer weight exponent (default 16)', positiveInt)
    .option('--no-precompute', 'ckks: do the input-independent work (encryptions of zero, the service\'s per-session plaintexts) online, to measure cold latency')
    .option('--json', 'print one JSON object on stdout')
    .action(async (options: InferOptions) => {
      if (options.scheme !== 'paillier' && command.getOptionValueSource('keyBits') === 'cli') {
        throw new UsageError('--key-bits sizes Paillier keys; CKKS parameters are fixed at 128-bit security');
      }
      const modelPath = options.model ?? bundledModelPath(SCHEME_DEFAULT_MODELS[options.scheme]);
      if (options.keyBits < 2048 && !options.insecure) throw new UsageError(`--key-bits ${options.keyBits} is insecure; use 2048 or more, or add --insecure`);
      if (!options.precompute && options.scheme !== 'ckks') throw new UsageError('--no-precompute applies to --scheme ckks');
      const data = loadData(options);
      const loaded = loadModel(modelPath);
      const calibration = loadCalibration(options, loaded, data);
      const bar = progressBar(data.count, 'encrypted inference', progressEnabled(options.json));
      const progress = { onProgress: (done: number) => bar.update(done), onPhase: (phase: string) => bar.phase(phase) };
      if (options.scheme === 'ckks-poly') {
        const apiKey = options.apiKey ?? process.env['BLINDML_API_KEY'];
        const poly = await runCkksPolyJob({
          loaded,
          data,
          calibration,
          batch: options.batchSize,
          ...(options.threads !== undefined ? { workers: options.threads } : {}),
          ...(options.server ? { server: options.server } : {}),
          ...(options.modelId ? { modelId: options.modelId } : {}),
          ...(options.server && apiKey ? { apiKey } : {}),
          ...progress,
        }).finally(() => bar.finish());
        process.stdout.write(options.json ? `${JSON.stringify(poly)}\n` : `${formatInferenceSummary(poly)}\n`);
        return;
      }
      if (options.scheme === 'ckks') {
        if (options.batchSize > 1) throw new UsageError('--scheme ckks is latency mode (one image per session); drop --batch-size');
        const apiKey = options.apiKey ?? process.env['BLINDML_API_KEY'];
        const ckks = await runCkksInferenceJob({
          loaded,
          data,
          calibration,
          ...(options.threads !== undefined ? { workers: options.threads } : {}),
          ...(options.server ? { server: options.server } : {}),
          ...(options.modelId ? { modelId: options.modelId } : {}),
          ...(options.server && apiKey ? { apiKey } : {}),
          transport: options.transport,
          nonHomogeneous: options.activations,
          precompute: options.precompute,
          ...progress,
        }).finally(() => bar.finish());
        process.stdout.write(options.json ? `${JSON.stringify(ckks)}\n` : `${formatInferenceSummary(ckks)}\n`);
        return;
      }
      const result = await runInferenceJob({
        loaded,
        data,
        calibration,
        keyBits: options.keyBits,
        keyPrimes: options.keyPrimes === '2' ? 2 : 3,
        insecure: options.insecure ?? false,
        batch: options.batchSize,
        ...(options.threads !== undefined ? { workers: options.threads } : {}),
        ...(options.server ? { server: options.server } : {}),
        ...(options.modelId ? { modelId: options.modelId } : {}),
        ...(options.server && (options.apiKey ?? process.env['BLINDML_API_KEY']) ? { apiKey: options.apiKey ?? process.env['BLINDML_API_KEY']! } : {}),
        transport: options.transport,
        nonHomogeneous: options.activations,
        quantization: {
          ...(options.precisionBits !== undefined ? { precisionBits: options.precisionBits } : {}),
          ...(options.weightBits !== undefined ? { weightBits: options.weightBits } : {}),
        },
        ...progress,
      }).finally(() => bar.finish());
      process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${formatInferenceSummary(result)}\n`);
    });
  deprecatedAlias(command, 'workers', 'threads', nonNegativeInt);
  deprecatedAlias(command, 'batch', 'batch-size', positiveInt);
}
