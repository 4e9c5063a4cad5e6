/**
 * `npm run bench:fe`: CryptoNN training (MLP 784-64-10, or LeNet-5 with `--model lenet5`, on Fashion-MNIST) against its plaintext
 * twin, with medians of the per-operation times. Arguments: `--train-limit N --test-limit M
 * --epochs E --threads T --model mlp|lenet5 --json --results DIR`. Prints a Markdown table (or one JSON object) on stdout;
 * with `--results docs` also records the accuracies in docs/results/training.json and redraws docs/charts/.
 *
 * @module
 */
import { cpus } from 'node:os';
import { loadFashionMnist } from '../data/fashion-mnist.js';
import { availableParallelism } from 'node:os';
import { runFeTraining } from '../train/fe/run.js';
import { FeWorkerPool } from '../workers/fe-pool.js';
import { join } from 'node:path';
import { recordTraining, resultsArg } from './charts.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`--${name} must be a positive integer`);
  return v;
}

const trainLimit = arg('train-limit', 2000);
const testLimit = arg('test-limit', 1000);
const epochs = arg('epochs', 1);
const threads = arg('threads', availableParallelism());
const model = process.argv.includes('lenet5') ? 'lenet5' : 'mlp';
const compute = threads > 1 ? new FeWorkerPool({ threads }) : undefined;
const load = (split: 'train' | 'test', limit: number) => {
  const s = loadFashionMnist(split, { limit });
  return { count: s.count, features: 784, images: s.images, labels: s.labels };
};
const started = performance.now();
const result = await runFeTraining({
  train: load('train', trainLimit),
  test: load('test', testLimit),
  epochs,
  model,
  ...(compute ? { compute } : {}),
  onProgress: (done, total, label) => {
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${done}/${total} ${label}`);
  },
});
if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
await compute?.destroy();
const wall = (performance.now() - started) / 1000;
const machine = `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.versions.node}, ${threads} thread(s), model ${model}`;
if (process.argv.includes('--json')) {
  process.stdout.write(`${JSON.stringify({ ...result, wallSeconds: wall, machine })}\n`);
} else {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const rows: [string, string][] = [
    ['machine', machine],
    ['training samples / test samples / epochs / batch', `${result.samples} / ${result.testSamples} / ${result.epochs} / ${result.batchSize}`],
    ['accuracy (encrypted) vs plaintext twin', `${pct(result.accuracy)} vs ${pct(result.plaintextAccuracy)}`],
    ['identical final weights', String(result.identicalWeights)],
    ['time per epoch, encrypted vs twin', result.perEpoch.map((e) => `${e.seconds.toFixed(1)} s vs ${e.plaintextSeconds.toFixed(2)} s (${(e.seconds / e.plaintextSeconds).toFixed(0)}×)`).join('; ')],
    ['CPU time (all threads), encrypted vs twin', `${result.cpuSeconds.toFixed(1)} s vs ${result.plaintextCpuSeconds.toFixed(2)} s (${result.cpuOverhead.toFixed(0)}×)`],
    ['encrypt one sample (784 values), median over batches', `${result.encryptPerSampleMs.toFixed(2)} ms`],
    ...(model === 'mlp' ? [['encrypt one feature column, mean', `${result.encryptPerColumnMs.toFixed(2)} ms`] as [string, string]] : []),
    ['decrypt one inner product (incl. discrete log), median', `${result.decryptPerInnerProductUs.toFixed(1)} µs`],
    ['discrete log per result, median', `${result.dlogPerResultUs.toFixed(2)} µs`],
    ['inner products decrypted / key requests / refused vectors', `${result.innerProducts} / ${result.keyRequests} / ${result.refusedVectors}`],
    ['whole command wall time', `${wall.toFixed(1)} s`],
  ];
  process.stdout.write(`| measure | value |\n|---|---|\n${rows.map(([a, b]) => `| ${a} | ${b} |`).join('\n')}\n`);
  process.stdout.write(`\ntimings (ms): ${JSON.stringify(result.timings)}\n`);
}
const docs = resultsArg();
if (docs !== undefined) {
  const series = model === 'mlp' ? 'fe, MLP 784-64-10: test accuracy' : 'fe, LeNet-5: test accuracy';
  await recordTraining(join(docs, 'results'), join(docs, 'charts'), [
    { series, run: 'plaintext twin', epoch: epochs, value: result.plaintextAccuracy },
    { series, run: 'encrypted', epoch: epochs, value: result.accuracy },
  ], `last run: ${machine}, ${result.samples} training samples`);
}
