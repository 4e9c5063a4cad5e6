/**
 * `blindml train --scheme <scheme> --dataset <name>`: training on encrypted data. Each scheme
 * registers a runner in {@link TRAIN_SCHEMES}; `fe` is CryptoNN (inner-product functional
 * encryption).
 *
 * @module
 */
import { Option, type Command } from 'commander';
import { positiveInt } from '../options.js';
import { loadFashionMnist, loadFashionMnistSample } from '../../data/fashion-mnist.js';
import { DataNotFoundError } from '../../errors.js';
import { runFeTraining, type FeTrainResult } from '../../train/fe/run.js';
import { feMlpReference } from '../../train/fe/reference.js';
import { DEFAULT_MLP } from '../../train/fe/mlp.js';
import { DEFAULT_QUANT } from '../../train/fe/quantize.js';
import type { TrainingReference } from '../../train/reference.js';
import { referenceText } from '../reference-text.js';
import { availableParallelism } from 'node:os';
import { FeWorkerPool } from '../../workers/fe-pool.js';
import { UsageError } from '../usage-error.js';
import { progressBar, progressEnabled } from '../progress.js';
import { runSmlpJob, smlpSummary } from '../smlp-job.js';
import type { SmlpJobResult } from '../smlp-job.js';
import { multikeySummary, runMultikeyJob, type MultikeyJobResult } from '../multikey-job.js';
import { DEFAULT_MULTIKEY_EPOCHS } from '../../train/multikey/mlp.js';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { exportOnnx } from '../../nn/onnx-export.js';
import { writeAtomically } from '../write-atomically.js';

/** Options common to every scheme. */
export interface TrainOptions {
  readonly scheme: string;
  readonly dataset: string;
  readonly trainLimit: number;
  readonly testLimit: number;
  /** Default: the scheme's own ({@link DEFAULT_EPOCHS}). */
  readonly epochs?: number;
  readonly model: string;
  readonly batchSize?: number;
  readonly seed: number;
  readonly threads: number;
  readonly json?: boolean;
  /** smlp: Paillier modulus bits, below 2048 only with --insecure. */
  readonly keyBits?: number;
  readonly insecure?: boolean;
  readonly hidden?: number;
  readonly checkpoint?: string;
  readonly resume?: boolean;
  readonly out?: string;
  readonly timeout?: number;
  readonly s2StopAfter?: number;
  /** multikey: number of data providers, each with its own keys. */
  readonly providers?: number;
  /** fe: `full` Fashion-MNIST, the committed `sample`, or (absent) the full set when installed, else the sample. */
  readonly data?: 'full' | 'sample';
  /** Write the trained model to this ONNX file. */
  readonly export?: string;
}

type TrainRunner = (options: TrainOptions, onProgress: (done: number, total: number, label: string) => void, onPhase: (phase: string) => void) => Promise<object>;

/** Each scheme's own data set, the default of --dataset. */
export const TRAIN_DATASETS: Readonly<Record<string, string>> = { fe: 'fashion-mnist', smlp: 'breast-cancer', multikey: 'diabetes' };

/** The schemes whose keys are Paillier keys (where --key-bits applies). */
const PAILLIER_SCHEMES = new Set(['smlp', 'multikey']);

/** Of the committed 1,000-image sample, the images `--data sample` trains on (the rest test). */
const SAMPLE_TRAIN = 800;

/**
 * One split of Fashion-MNIST: the full data set, or the committed sample (`--data sample`, or when
 * the full set is missing and `--data` was not given, with a note on stderr).
 */
export function loadImages(options: Pick<TrainOptions, 'dataset' | 'data'>, split: 'train' | 'test', limit: number, dirs?: readonly string[]) {
  if (options.dataset !== 'fashion-mnist') throw new UsageError(`unknown dataset '${options.dataset}' for --scheme fe (known: fashion-mnist)`);
  const fromSample = () => {
    const sample = loadFashionMnistSample();
    const [first, available] = split === 'train' ? [0, SAMPLE_TRAIN] : [SAMPLE_TRAIN, sample.count - SAMPLE_TRAIN];
    const count = Math.min(limit, available);
    const size = sample.shape[0] * sample.shape[1] * sample.shape[2];
    return { count, shape: sample.shape, features: size, images: sample.images.subarray(first * size, (first + count) * size), labels: sample.labels.subarray(first, first + count) };
  };
  if (options.data === 'sample') return fromSample();
  try {
    const set = loadFashionMnist(split, { limit, ...(dirs ? { dirs } : {}) });
    return { count: set.count, shape: set.shape, features: set.shape[0] * set.shape[1] * set.shape[2], images: set.images, labels: set.labels };
  } catch (err) {
    if (!(err instanceof DataNotFoundError) || options.data === 'full') throw err;
    if (split === 'train') {
      process.stderr.write(`blindml: the full Fashion-MNIST is not installed; training on the committed sample (${SAMPLE_TRAIN} images, ${1000 - SAMPLE_TRAIN} to test). \`blindml data fetch fashion-mnist\` gets the full set.\n`);
    }
    return fromSample();
  }
}

/**
 * Epochs each scheme runs unless told otherwise: enough for its plaintext twin to come within about
 * 2 points (R² 0.02) of the plaintext reference printed beside it, in about 15 minutes on 2 cores
 * (measured on the twins; fe: 80.4% after 4 epochs of 2,000 images against a reference of 82.1%,
 * 78.8% after 3; smlp: after 3 epochs from fresh starts, within 0.02 of the reference in 979 of
 * 1,000 runs on split seed 1, 181 of 200 on seed 2, 198 of 200 on seed 3 (docs/benchmarks.md); multikey: see
 * DEFAULT_MULTIKEY_MLP).
 */
export const DEFAULT_EPOCHS: Readonly<Record<string, number>> = { fe: 4, smlp: 3, multikey: DEFAULT_MULTIKEY_EPOCHS };

/** Training runners by scheme name; add new schemes here. */
export const TRAIN_SCHEMES: Readonly<Record<string, TrainRunner>> = {
  fe: async (options, onProgress, onPhase) => {
    if (options.model !== 'mlp' && options.model !== 'lenet5') {
      throw new UsageError(`model '${options.model}' is not available for --scheme fe (available: mlp, lenet5)`);
    }
    if (options.export !== undefined && options.model !== 'mlp') throw new UsageError('--export: only --model mlp can be exported');
    const train = loadImages(options, 'train', options.trainLimit);
    const test = loadImages(options, 'test', options.testLimit);
    const compute = options.threads > 1 ? new FeWorkerPool({ threads: options.threads }) : undefined;
    onPhase('setting up the functional-encryption keys and the first encrypted batch');
    try {
      const batchSize = options.batchSize ?? (options.model === 'lenet5' ? 50 : 100);
      const result = await runFeTraining({
        train, test, model: options.model, epochs: options.epochs ?? DEFAULT_EPOCHS.fe!, batchSize, seed: options.seed, onProgress,
        ...(compute ? { compute } : {}),
        ...(options.export !== undefined ? { export: { inputShape: train.shape } } : {}),
      });
      const { exported, ...rest } = result;
      if (exported && options.export !== undefined) writeAtomically(options.export, exportOnnx(exported));
      if (options.model !== 'mlp') return rest;
      const config = { ...DEFAULT_MLP, seed: options.seed, inputs: train.features };
      return { ...rest, reference: await feMlpReference(train, test, config, DEFAULT_QUANT, batchSize) };
    } finally {
      await compute?.destroy();
    }
  },
  // The two-server Secure MLP (src/train/smlp): S1 trains on Paillier ciphertexts, S2 helps.
  smlp: (options, onProgress, onPhase) => runSmlpJob({ ...options, epochs: options.epochs ?? DEFAULT_EPOCHS.smlp! }, onProgress, onPhase),
  // Collaborative training from providers with their own keys (src/train/multikey).
  multikey: (options, onProgress, onPhase) => runMultikeyJob(options, onProgress, onPhase),
};

/**
 * Fails before training if the export cannot be written.
 *
 * @throws UsageError if the file's directory does not exist.
 */
function checkExportPath(path: string): void {
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) throw new UsageError(`--export ${path}: the directory ${dir} does not exist`);
}

function summary(result: object): string {
  if ((result as { scheme?: string }).scheme === 'smlp') return smlpSummary(result as SmlpJobResult);
  if ((result as { scheme?: string }).scheme === 'multikey') return multikeySummary(result as MultikeyJobResult);
  const r = result as Partial<FeTrainResult> & { reference?: TrainingReference };
  const pct = (v: number | undefined) => (v === undefined ? '?' : `${(100 * v).toFixed(2)}%`);
  return [
    `scheme ${r.scheme}, model ${r.model}: ${r.samples} training samples, ${r.epochs} epoch(s), batch ${r.batchSize}`,
    `accuracy ${pct(r.accuracy)} (plaintext twin ${pct(r.plaintextAccuracy)}) on ${r.testSamples} test images` +
      (r.reference ? `; reference ${pct(r.reference.score)}: ${referenceText(r.reference)}` : ''),
    `time ${r.seconds?.toFixed(1)} s (plaintext twin ${r.plaintextSeconds?.toFixed(2)} s, ${r.overhead?.toFixed(0)}×)`,
    `CPU ${r.cpuSeconds?.toFixed(1)} s, all threads (plaintext twin ${r.plaintextCpuSeconds?.toFixed(2)} s, ${r.cpuOverhead?.toFixed(0)}×)`,
    `encrypt ${r.encryptPerSampleMs?.toFixed(2)} ms/sample, decrypt ${r.decryptPerInnerProductUs?.toFixed(1)} µs/inner product, ` +
      `discrete log ${r.dlogPerResultUs?.toFixed(2)} µs/result (medians over batches)`,
  ].join('\n');
}

export function registerTrainCommand(program: Command): void {
  program
    .command('train')
    .description('Train a model on encrypted data, next to a plaintext twin, and compare them.')
    .addOption(new Option('--scheme <scheme>', 'encryption scheme').choices(Object.keys(TRAIN_SCHEMES)).makeOptionMandatory())
    .option('--dataset <name>', `data set (default: each scheme's own: ${Object.entries(TRAIN_DATASETS).map(([k, v]) => `${k} ${v}`).join(', ')})`)
    .option('--train-limit <n>', 'training samples', positiveInt, 2000)
    .option('--test-limit <n>', 'test samples', positiveInt, 1000)
    .addOption(new Option('--data <source>', 'fe: the full Fashion-MNIST (see `blindml data fetch`) or the committed 1,000-image sample (800 train, 200 test); default: full when installed, else the sample').choices(['full', 'sample']))
    .option('--epochs <n>', `epochs (default: ${Object.entries(DEFAULT_EPOCHS).map(([k, v]) => `${k} ${v}`).join(', ')})`, positiveInt)
    .option('--model <model>', 'mlp or lenet5', 'mlp')
    .option('--batch-size <n>', 'samples per batch (fe: mlp 100, more than the 64 hidden units; lenet5 50)', positiveInt)
    .option('--threads <n>', 'worker threads for encryption and decryption (1: none)', positiveInt, availableParallelism())
    .option('--seed <n>', 'seed of initialization and data order', positiveInt, 1)
    .option('--json', 'print one JSON object on stdout')
    .option('--key-bits <n>', 'smlp, multikey: Paillier modulus bits (below 2048 needs --insecure)', positiveInt)
    .option('--insecure', 'smlp: accept keys below 2048 bits (tests only)')
    .option('--hidden <n>', 'smlp: hidden ReLU units (default 2)', positiveInt)
    .option('--checkpoint <file>', 'smlp: write the state after every completed epoch to this file (atomically)')
    .option('--resume', 'smlp: continue from --checkpoint after the last completed epoch')
    .option('--out <file>', 'smlp: write the results there once training has finished')
    .option('--timeout <s>', 'smlp: longest wait for the crypto server, seconds (default 120)', positiveInt)
    .option('--providers <n>', 'multikey: data providers, each with its own keys (default 50)', positiveInt)
    .option(
      '--export <file.onnx>',
      'write the trained model as ONNX (raw inputs in, logits or the target out). fe: the weights the server learned ' +
        '(it holds them in the clear; --model mlp only); smlp: the weights the data owner decrypts with its own key; ' +
        'multikey: the regression network, as the model recipient combines it from the two servers\' shares',
    )
    .addOption(new Option('--s2-stop-after <rounds>', 'test hook: the crypto server stops answering').argParser(positiveInt).hideHelp())
    .action(async (given: Omit<TrainOptions, 'dataset'> & { dataset?: string }) => {
      const runner = TRAIN_SCHEMES[given.scheme];
      if (runner === undefined) throw new UsageError(`unknown scheme '${given.scheme}'`);
      if (given.keyBits !== undefined && !PAILLIER_SCHEMES.has(given.scheme)) throw new UsageError(`--key-bits sizes Paillier keys; --scheme ${given.scheme} has none`);
      if (given.export !== undefined) checkExportPath(given.export);
      const options: TrainOptions = { ...given, dataset: given.dataset ?? TRAIN_DATASETS[given.scheme]! };
      const bar = progressBar(0, `train ${options.scheme}`, progressEnabled(options.json));
      let result: object;
      try {
        result = await runner(options, (done, total, label) => bar.update(done, label, total), (phase) => bar.phase(phase));
      } finally {
        bar.finish();
      }
      const exported = options.export === undefined ? '' : `\nmodel written to ${options.export} (check it: blindml model info ${options.export})`;
      process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${summary(result)}${exported}\n`);
    });
}
