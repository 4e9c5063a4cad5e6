/**
 * `blindml predict <inputs...>`: encrypted predictions on a user's own data — PNG/JPEG images (or a
 * directory of them), `.npy` arrays, CSV rows or IDX files — converted to the model's input shape,
 * encrypted by the client, evaluated by the service on ciphertexts, and printed one line per input
 * with its class name and probability.
 *
 * @module
 */
import { basename, dirname, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { FormatError } from '../../errors.js';
import { FASHION_MNIST_CLASSES } from '../../data/fashion-mnist.js';
import { readInputs } from '../../data/input-files.js';
import { parseNormalization, type NamedInput, type Normalization } from '../../data/inputs.js';
import { readInputStandardization, readModelLabels, standardizeInputs } from '../../data/onnx-labels.js';
import { labelsArgument } from './model.js';
import { formatShape } from '../../nn/shape.js';
import { runPlaintext } from '../../nn/plaintext.js';
import { getModel, type PublicModelInfo } from '../../client/owner.js';
import { runRemoteOnly, servedRecord, standardizeAsServed } from '../remote-predict.js';
import { runCkksInferenceJob } from '../ckks-job.js';
import { runCkksPolyJob } from '../ckks-poly-job.js';
import { committedCalibration } from '../calibration.js';
import { bundledModelPath, loadModel, runInferenceJob, type InferenceJobResult, type LoadedModel } from '../inference-job.js';
import { activationsOption, calibrationOption, deprecatedAlias, nonNegativeInt, positiveInt, SCHEME_DEFAULT_MODELS, threadsOption } from '../options.js';
import { progressBar, progressEnabled, type Progress } from '../progress.js';
import { UsageError } from '../usage-error.js';

interface PredictOptions {
  activations: 'client' | 'spline';
  model?: string;
  scheme: 'paillier' | 'ckks' | 'ckks-poly';
  normalize?: string;
  labels?: string;
  calibration?: string[];
  batchSize: number;
  keyBits: number;
  insecure?: boolean;
  threads?: number;
  server?: string;
  modelId?: string;
  apiKey?: string;
  transport: 'websocket' | 'http';
  json?: boolean;
}

/** One input's result from a classifier. */
export interface Prediction {
  input: string;
  label: number;
  className: string;
  probability: number;
  logits: number[];
  probabilities: number[];
  /** What the plaintext model predicts on the same input (a check that nothing went wrong); absent without a local model. */
  plaintextLabel?: number;
}

/** One input's result from a regression model (one output): the value, not a class. */
export interface ValuePrediction {
  input: string;
  value: number;
  /** The plaintext model's value on the same input; absent without a local model. */
  plaintextValue?: number;
}

/**
 * How 8-bit data becomes inputs unless told: `unit` (v/255) for image models (channels × height ×
 * width), `none` (values as given) for models on feature vectors, whose rows are not pixels.
 */
export function defaultNormalize(inputShape: readonly number[]): string {
  return inputShape.length === 3 ? 'unit' : 'none';
}

/** Softmax of logits, computed stably (max subtracted). */
export function softmax(logits: ArrayLike<number>): number[] {
  const values = Array.from(logits);
  const max = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/**
 * The class names known for a model: `--labels` (names or a file of them), else the model's
 * `labels` metadata, else Fashion-MNIST's for the bundled Fashion-MNIST models; undefined otherwise.
 *
 * @throws FormatError when the count differs from the model's outputs.
 */
export function knownClassNames(loaded: LoadedModel, flag: string | undefined): string[] | undefined {
  const outputs = loaded.model.outputSize;
  let names = flag !== undefined ? labelsArgument(flag) : readModelLabels(loaded.onnx);
  if (names === undefined && isBundledFashionModel(loaded.path) && outputs === FASHION_MNIST_CLASSES.length) names = [...FASHION_MNIST_CLASSES];
  if (names !== undefined && names.length !== outputs) throw new FormatError(`${names.length} class names for a model with ${outputs} outputs`);
  return names;
}

/** {@link knownClassNames}, or `class <n>` for each output when none are known. */
export function classNames(loaded: LoadedModel, flag: string | undefined): string[] {
  return knownClassNames(loaded, flag) ?? Array.from({ length: loaded.model.outputSize }, (_, i) => `class ${i}`);
}

function isBundledFashionModel(path: string): boolean {
  return resolve(dirname(path)) === dirname(bundledModelPath('x')) && basename(path).startsWith('fashion-');
}

/**
 * A user's files as model inputs: read and converted to the model's shape (`readInputs`), then
 * standardised when the model states a standardisation of its features (`blindml.standardize`).
 *
 * @throws as `readInputs`; FormatError for a malformed standardisation entry.
 */
export function readModelInputs(loaded: LoadedModel, paths: readonly string[], norm: Normalization): NamedInput[] {
  const inputs = readInputs(paths, loaded.model.inputShape, norm);
  const standardization = readInputStandardization(loaded.onnx, loaded.model.inputSize);
  if (standardization) for (const input of inputs) standardizeInputs(input.values, standardization);
  return inputs;
}

/**
 * Calibration inputs: `--calibration` files read like the inputs, else a `.blindml` file's own,
 * else the committed Fashion-MNIST sample when the model takes 1×28×28 inputs.
 *
 * @throws UsageError when neither fits the model.
 */
export function predictCalibration(loaded: LoadedModel, files: readonly string[] | undefined, norm: Normalization): Float32Array {
  const shape = loaded.model.inputShape;
  if (files && files.length > 0) return concat(readModelInputs(loaded, files, norm));
  if (loaded.calibration) return loaded.calibration;
  const committed = committedCalibration();
  if (formatShape(committed.shape) !== formatShape(shape)) {
    throw new UsageError(
      `the model takes ${shape.join('×')} inputs and the committed calibration images are ${committed.shape.join('×')}: ` +
        'pass --calibration FILE (typical inputs of the model, in any format predict reads; repeat it for more files)',
    );
  }
  return committed.values;
}

function concat(inputs: readonly NamedInput[]): Float32Array {
  const size = inputs[0]?.values.length ?? 0;
  const out = new Float32Array(inputs.length * size);
  inputs.forEach((x, i) => out.set(x.values, i * size));
  return out;
}

/** Runs the chosen scheme's job on the inputs, collecting each input's decrypted logits. */
async function runScheme(options: PredictOptions, loaded: LoadedModel, inputs: readonly NamedInput[], calibration: Float32Array, bar: Progress): Promise<{ result: InferenceJobResult; logits: ArrayLike<number>[] }> {
  // No labels are known: the jobs' accuracy fields are not reported. The jobs only compare the
  // shape with the model's, so a feature vector's one axis passes as it is.
  const shape = loaded.model.inputShape as unknown as readonly [number, number, number];
  const data = { count: inputs.length, shape, images: concat(inputs), labels: new Uint8Array(inputs.length) };
  const logits: ArrayLike<number>[] = [];
  const common = {
    loaded,
    data,
    calibration,
    ...(options.threads !== undefined ? { workers: options.threads } : {}),
    onProgress: (done: number) => bar.update(done),
    onPhase: (phase: string) => bar.phase(phase),
    onPrediction: (i: number, l: ArrayLike<number>) => (logits[i] = Array.from(l)),
  };
  const interactive = { ...common, nonHomogeneous: options.activations };
  const apiKey = options.apiKey ?? process.env['BLINDML_API_KEY'];
  const remote = { ...(options.server ? { server: options.server } : {}), ...(options.modelId ? { modelId: options.modelId } : {}), ...(options.server && apiKey ? { apiKey } : {}) };
  let result: InferenceJobResult;
  if (options.scheme === 'ckks-poly') {
    result = await runCkksPolyJob({ ...common, ...remote, batch: options.batchSize });
  } else if (options.scheme === 'ckks') {
    result = await runCkksInferenceJob({ ...interactive, ...remote });
  } else {
    result = await runInferenceJob({ ...interactive, ...remote, keyBits: options.keyBits, insecure: options.insecure ?? false, batch: options.batchSize, transport: options.transport });
  }
  return { result, logits };
}

/** The text output of a regression model: one line per input (name, value). */
export function formatValues(predictions: readonly ValuePrediction[]): string {
  const width = Math.max(...predictions.map((p) => p.input.length));
  return predictions.map((p) => `${p.input.padEnd(width)}  ${formatValue(p.value)}`).join('\n');
}

/** Six significant digits, without an exponent for everyday magnitudes. */
const formatValue = (v: number): string => (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e9 ? String(Number(v.toPrecision(6))) : v.toExponential(5));

/** The text output: one line per input (name, class, probability), names padded to one column. */
export function formatPredictions(predictions: readonly Prediction[]): string {
  const width = Math.max(...predictions.map((p) => p.input.length));
  const classWidth = Math.max(...predictions.map((p) => p.className.length));
  return predictions.map((p) => `${p.input.padEnd(width)}  ${p.className.padEnd(classWidth)}  ${(100 * p.probability).toFixed(1).padStart(5)}%`).join('\n');
}

export function registerPredictCommand(program: Command): void {
  const command = program
    .command('predict')
    .description('encrypted predictions on your own data: images (PNG/JPEG files or a directory), .npy, CSV rows or IDX files')
    .argument('<inputs...>', 'files or directories of images; .npy, .csv and IDX files hold one input per item')
    .option('--model <file>', 'ONNX or .blindml model (default: models/fashion-small.onnx; models/fashion-poly.onnx with --scheme ckks-poly)')
    .addOption(new Option('--scheme <scheme>', 'paillier (interactive), ckks (interactive, lattice) or ckks-poly (polynomial networks, one round)').choices(['paillier', 'ckks', 'ckks-poly']).default('paillier'))
    .option('--normalize <mode>', '8-bit data (images, IDX, uint8 .npy, CSV of whole numbers 0–255) becomes model inputs by: unit = v/255, invert = 1 − v/255 (dark objects on a light background), none = 0–255, MEAN/STD = (v/255 − mean)/std per channel (e.g. 0.5/0.5); other numbers are used as given (default: what a .blindml model states, else unit for image models and none for models on feature vectors)')
    .option('--labels <names>', "class names, comma-separated or a file with one per line (default: the model's 'labels' metadata)")
    .addOption(calibrationOption('inputs that size the fixed-point scales, read like the inputs (default: the committed Fashion-MNIST images, for 1×28×28 models)'))
    .option('--batch-size <n>', 'paillier: inputs per ciphertext (1 = one session per input); ckks-poly: inputs per request (1 = a full ciphertext, N/2)', positiveInt, 1)
    .option('--key-bits <bits>', 'paillier: modulus size', positiveInt, 2048)
    .option('--insecure', 'paillier: allow keys below 2048 bits (tests only)')
    .addOption(activationsOption())
    .addOption(threadsOption())
    .option('--server <url>', 'use a running service instead of an in-process one (ckks-poly: its batch jobs)')
    .option('--model-id <id>', 'with --server: model id on the server (default: the model file content id); without --model, the inputs are read as the service describes the model, and nothing checks the results against a local plaintext model')
    .option('--api-key <key>', 'with --server: register --model first if the service lacks it (owner key; default $BLINDML_API_KEY)')
    .addOption(new Option('--transport <kind>', 'with --server and paillier: WebSocket session or one HTTP POST per message').choices(['websocket', 'http']).default('websocket'))
    .option('--json', 'print one JSON object on stdout: per input its label, class name, logits and probabilities')
    .action(async (inputPaths: string[], options: PredictOptions) => {
      if (options.scheme !== 'paillier' && command.getOptionValueSource('keyBits') === 'cli') {
        throw new UsageError('--key-bits sizes Paillier keys; CKKS parameters are fixed at 128-bit security');
      }
      if (options.scheme === 'ckks' && options.batchSize > 1) throw new UsageError('--scheme ckks encrypts one input per session; drop --batch-size');
      if (options.keyBits < 2048 && !options.insecure) throw new UsageError(`--key-bits ${options.keyBits} is insecure; use 2048 or more, or add --insecure`);
      if (options.server && options.modelId !== undefined && options.model === undefined) {
        if (options.batchSize > 1) throw new UsageError('--batch-size needs --model FILE (without the model, one session per input)');
        await predictWithoutModel(inputPaths, options, options.server, options.modelId);
        return;
      }
      const loaded = loadModel(options.model ?? bundledModelPath(SCHEME_DEFAULT_MODELS[options.scheme]));
      const served = options.server ? await servedModel(options.server, options.modelId ?? loaded.id, loaded) : undefined;
      // A .blindml file states the normalization its model expects.
      const norm = parseNormalization(options.normalize ?? loaded.normalize ?? defaultNormalize(loaded.model.inputShape));
      const regression = loaded.model.outputSize === 1;
      let names = regression ? [] : classNames(loaded, options.labels);
      const inputs = readModelInputs(loaded, inputPaths, norm);
      const calibration = remoteOrLocalCalibration(options, loaded, inputs, norm);
      // Given calibration inputs travel with the model when a run registers it on a service.
      const withCalibration = options.calibration ? { ...loaded, calibration } : loaded;
      const bar = progressBar(inputs.length, 'predict', progressEnabled(options.json));
      const { result, logits } = await runScheme(options, withCalibration, inputs, calibration, bar).finally(() => bar.finish());
      if (regression) {
        reportValues(options, loaded, result, inputs, logits);
        return;
      }
      if (served?.classNames && options.labels === undefined) names = served.classNames;
      const predictions = inputs.map((input, i): Prediction => ({ ...classify(input.name, logits[i]!, names), plaintextLabel: result.plaintextPredictions[i]! }));
      if (options.json) {
        const { scheme, modelId, msPerSample, bytesPerSample, rounds, offlineMsPerSample } = result;
        process.stdout.write(`${JSON.stringify({ model: loaded.path, modelId, scheme, classNames: names, predictions, msPerInput: msPerSample, precomputationMsPerInput: offlineMsPerSample, bytesPerInput: bytesPerSample, rounds })}\n`);
        return;
      }
      process.stdout.write(`${formatPredictions(predictions)}\n`);
      const disagree = predictions.filter((p) => p.label !== p.plaintextLabel).length;
      process.stderr.write(`${costLine(options, result, inputs.length)}; ${disagree === 0 ? 'every prediction matches the plaintext model' : `${disagree} differ from the plaintext model`}\n`);
    });
  deprecatedAlias(command, 'workers', 'threads', nonNegativeInt);
}

/** One input's class, its probability and every output, from its decrypted logits. */
function classify(input: string, logits: ArrayLike<number>, names: readonly string[]): Prediction {
  const l = Array.from(logits);
  const probabilities = softmax(l);
  const label = probabilities.indexOf(Math.max(...probabilities));
  return { input, label, className: names[label]!, probability: probabilities[label]!, logits: l, probabilities };
}

/**
 * `predict --server URL --model-id ID` without `--model`: the inputs are read as the service's
 * public record describes the model, and the client SDK runs the protocol; nothing checks the
 * results against a plaintext model, and the summary says so.
 */
async function predictWithoutModel(paths: readonly string[], options: PredictOptions, server: string, modelId: string): Promise<void> {
  const remote = { server, modelId, scheme: options.scheme, transport: options.transport, keyBits: options.keyBits, insecure: options.insecure ?? false };
  const record = await servedRecord(remote);
  const inputs = readInputs(paths, record.inputShape, parseNormalization(options.normalize ?? defaultNormalize(record.inputShape)));
  standardizeAsServed(inputs, record);
  const names = options.labels !== undefined ? labelsArgument(options.labels) : record.classNames ?? Array.from({ length: record.outputSize }, (_, i) => `class ${i}`);
  if (record.outputSize > 1 && names.length !== record.outputSize) throw new FormatError(`${names.length} class names for a model with ${record.outputSize} outputs`);
  const bar = progressBar(inputs.length, 'predict', progressEnabled(options.json));
  const run = await runRemoteOnly(remote, inputs, (done) => bar.update(done), (phase) => bar.phase(phase)).finally(() => bar.finish());
  const regression = record.outputSize === 1;
  const predictions = inputs.map((input, i) => (regression ? { input: input.name, value: run.logits[i]![0]! } : classify(input.name, run.logits[i]!, names)));
  const cost = { msPerInput: run.msPerInput, bytesPerInput: run.bytesPerInput, rounds: run.rounds };
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ modelId, scheme: options.scheme, ...(regression ? {} : { classNames: names }), predictions, ...cost })}\n`);
    return;
  }
  process.stdout.write(`${regression ? formatValues(predictions as ValuePrediction[]) : formatPredictions(predictions as Prediction[])}\n`);
  process.stderr.write(`${inputs.length} input(s), ${options.scheme}, ${run.msPerInput.toFixed(0)} ms and ${(run.bytesPerInput / 1024).toFixed(0)} KiB per input online; no plaintext check (the model is not here: pass --model FILE for one)\n`);
}

/**
 * {@link predictCalibration}; with `--server` and none available, the inputs themselves: the
 * service calibrates the model it runs, and the client compiles it only to count the values it
 * will encrypt (nothing derived from them leaves the client).
 */
function remoteOrLocalCalibration(options: PredictOptions, loaded: LoadedModel, inputs: readonly NamedInput[], norm: Normalization): Float32Array {
  try {
    return predictCalibration(loaded, options.calibration, norm);
  } catch (err) {
    if (!(err instanceof UsageError) || !options.server) throw err;
    return concat(inputs);
  }
}

/**
 * The service's public record of the model a run will use (undefined when the service lacks it and
 * the run may register it), checked against the local model, which gives the input shape and the
 * plaintext check.
 *
 * @throws UsageError when the service's model takes other inputs or has other outputs than the local one.
 */
async function servedModel(server: string, modelId: string, loaded: LoadedModel): Promise<PublicModelInfo | undefined> {
  const record = await getModel(server, modelId);
  if (!record) return undefined;
  const names = record.classNames;
  if (formatShape(record.inputShape) !== formatShape(loaded.model.inputShape) || record.outputSize !== loaded.model.outputSize || (names && names.length !== record.outputSize)) {
    throw new UsageError(
      `the service's model ${modelId} takes ${record.inputShape.join('×')} inputs to ${record.outputSize} outputs, the local model ${loaded.model.inputShape.join('×')} to ${loaded.model.outputSize}: ` +
        'check --model FILE (the model the service runs: it is read locally for the input shape and the plaintext check)',
    );
  }
  return record;
}

function costLine(options: PredictOptions, result: InferenceJobResult, count: number): string {
  return `${count} input(s), ${options.scheme}, ${result.msPerSample.toFixed(0)} ms and ${(result.bytesPerSample / 1024).toFixed(0)} KiB per input online`;
}

/** Prints a regression model's values (one output per input), each beside the plaintext model's in JSON. */
function reportValues(options: PredictOptions, loaded: LoadedModel, result: InferenceJobResult, inputs: readonly NamedInput[], logits: readonly ArrayLike<number>[]): void {
  const plain = runPlaintext(loaded.model, concat(inputs));
  const predictions = inputs.map((input, i) => ({ input: input.name, value: logits[i]![0]!, plaintextValue: plain[i]! }));
  const maxError = Math.max(...predictions.map((p) => Math.abs(p.value - p.plaintextValue)));
  if (options.json) {
    const { scheme, modelId, msPerSample, bytesPerSample, rounds, offlineMsPerSample } = result;
    process.stdout.write(`${JSON.stringify({ model: loaded.path, modelId, scheme, predictions, maxDifference: maxError, msPerInput: msPerSample, precomputationMsPerInput: offlineMsPerSample, bytesPerInput: bytesPerSample, rounds })}\n`);
    return;
  }
  process.stdout.write(`${formatValues(predictions)}\n`);
  process.stderr.write(`${costLine(options, result, inputs.length)}; the values differ from the plaintext model's by at most ${formatValue(maxError)}\n`);
}
