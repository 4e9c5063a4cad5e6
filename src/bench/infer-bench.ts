/**
 * The encrypted-inference benchmark: per model and mode, time per image (service, client, total),
 * precomputation, traffic, rounds and agreement with the plaintext model, on the committed
 * Fashion-MNIST sample. Node-only.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { writeAtomically } from '../cli/write-atomically.js';
import { availableParallelism } from 'node:os';
import { loadFashionMnist, loadFashionMnistSample } from '../data/fashion-mnist.js';
import type { LabeledImages } from '../data/files.js';
import { runCkksPolyJob, type CkksPolyJobResult } from '../cli/ckks-poly-job.js';
import { compilePolyNetwork } from '../protocol/ckks-poly/compile.js';
import { CkksContext, CkksKeyring, addInPlace, free, mulPlain, type CkksParameters } from '../schemes/ckks/index.js';
import { bundledModelPath, loadModel, runInferenceJob, type InferenceJobResult } from '../cli/inference-job.js';
import { runCkksInferenceJob } from '../cli/ckks-job.js';
import type { QuantizationParams } from '../protocol/paillier-inference/compile.js';
import { machineDescription, timeMedian } from './stats.js';

/** One configuration to time. */
export interface InferCase {
  model: string;
  batch: number;
  images: number;
  /** Default paillier. */
  scheme?: 'paillier' | 'ckks';
  /** Paillier precision knobs, when the model's owner tuned them (see REFERENCE_QUANTIZATION). */
  quantization?: Partial<QuantizationParams>;
  /** CKKS: false to do the input-independent work online (cold latency). Default true. */
  precompute?: boolean;
}

/**
 * The reference CNN's precision, chosen with `simulateProtocol` on the 1,000 committed test images
 * (docs/benchmarks.md): the narrowest setting that changed no prediction there.
 */
export const REFERENCE_QUANTIZATION: Partial<QuantizationParams> = { precisionBits: 14, weightBits: 14 };

/** The default cases; the reference architecture is slow and only runs on request. */
export function inferCases(reference: boolean, onlyReference = false): InferCase[] {
  const cases: InferCase[] = onlyReference
    ? []
    : [
        { model: 'fashion-small.onnx', batch: 1, images: 10 },
        { model: 'fashion-small.onnx', batch: 1, images: 10, scheme: 'ckks' },
        { model: 'fashion-small.onnx', batch: 64, images: 100 },
      ];
  if (reference) {
    cases.push({ model: 'fashion-reference.onnx', batch: 1, images: 5, scheme: 'ckks' });
    cases.push({ model: 'fashion-reference.onnx', batch: 1, images: 3, scheme: 'ckks', precompute: false });
    cases.push({ model: 'fashion-reference.onnx', batch: 1, images: 1 });
    // 31 images: one full batch (the service grants 31 images per ciphertext at this precision).
    cases.push({ model: 'fashion-reference.onnx', batch: 64, images: 31, quantization: REFERENCE_QUANTIZATION });
  }
  return cases;
}

export interface InferBenchRow extends InferCase {
  result: InferenceJobResult;
}

/** Runs every case with `keyBits` keys. */
export async function runInferBench(cases: readonly InferCase[], keyBits: number, onCase?: (c: InferCase) => void): Promise<{ machine: string; keyBits: number; rows: InferBenchRow[] }> {
  const sample = loadFashionMnistSample();
  const size = sample.shape[0] * sample.shape[1] * sample.shape[2];
  const calibration = sample.images.subarray((sample.count - 100) * size);
  const rows: InferBenchRow[] = [];
  for (const c of cases) {
    onCase?.(c);
    const loaded = loadModel(bundledModelPath(c.model));
    const data = loadFashionMnistSample({ limit: c.images });
    const result =
      c.scheme === 'ckks'
        ? await runCkksInferenceJob({ loaded, data, calibration, precompute: c.precompute ?? true })
        : await runInferenceJob({ loaded, data, calibration, keyBits, batch: c.batch, ...(c.quantization ? { quantization: c.quantization } : {}) });
    rows.push({ ...c, result });
  }
  return { machine: await machineDescription(), keyBits, rows };
}

/** The rows as a Markdown table. */
export function inferBenchMarkdown(bench: { machine: string; keyBits: number; rows: InferBenchRow[] }): string {
  const lines = [
    `Paillier ${bench.keyBits}-bit keys, worker threads on every core.${ckksDescription(bench.rows)}`,
    `${bench.machine}, ${new Date().toISOString().slice(0, 10)}.`,
    ...ckksRatioLines(bench.rows),
    '',
    '**Time per image** (ms; precomputation is what is prepared before the image is known):',
    '',
    '| model | scheme | mode | images per ciphertext | images | total | service + transport | client | precomputation |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  const label = (r: InferenceJobResult) => `${r.mode}${r.precomputed === false ? ', cold' : ''}`;
  for (const { model, images, result: r } of bench.rows) {
    lines.push(`| ${model} | ${r.scheme} | ${label(r)} | ${r.batch} | ${images} | ${r.msPerSample.toFixed(0)} | ${r.serviceMsPerSample.toFixed(0)} | ${r.clientMsPerSample.toFixed(0)} | ${r.offlineMsPerSample.toFixed(0)} |`);
  }
  lines.push(
    '',
    '**Cost and correctness** (CPU of all threads; agreement = same top-1 class as the plaintext model):',
    '',
    '| model | scheme | mode | CPU ms/image, service + client | KiB/image | rounds | agreement | accuracy (plaintext) |',
    '|---|---|---|---:|---:|---:|---:|---|',
  );
  for (const { model, result: r } of bench.rows) {
    lines.push(`| ${model} | ${r.scheme} | ${label(r)} | ${r.cpu ? `${r.cpu.serviceMs.toFixed(0)} + ${r.cpu.clientMs.toFixed(0)}` : '—'} | ${(r.bytesPerSample / 1024).toFixed(1)} | ${r.rounds} | ${(100 * r.agreement).toFixed(1)}% | ${(100 * r.accuracy).toFixed(1)}% (${(100 * r.plaintextAccuracy).toFixed(1)}%) |`);
  }
  return lines.join('\n');
}

function ckksDescription(rows: readonly InferBenchRow[]): string {
  const ck = rows.find((r) => r.result.ckks)?.result.ckks;
  return ck
    ? `\nCKKS N = ${ck.polyModulusDegree}, primes of ${ck.coeffModulusBits.join('/')} bits, 128-bit security; the service's plaintext products on worker threads` +
        '\nfor rounds of 32 or more, the client on one thread. Precomputation: the client\'s encryptions of zero and' +
        '\nthe service\'s prepared session (every per-session plaintext encoded) before each image.'
    : '';
}

/**
 * "CKKS is X× faster than Paillier on model M", for every model run in latency mode with both
 * schemes (both with their precomputation, and CKKS cold too when run), and each CKKS latency's
 * median over its images.
 */
export function ckksRatioLines(rows: readonly InferBenchRow[]): string[] {
  const lines: string[] = [];
  for (const ck of rows.filter((r) => r.result.scheme === 'ckks')) {
    const pa = rows.find((r) => r.model === ck.model && r.result.scheme === 'paillier' && r.result.mode === 'latency');
    const cold = ck.result.precomputed === false ? ' without precomputation (cold)' : '';
    const lat = ck.result.latencyMs;
    const spread = lat ? ` (median ${lat.median.toFixed(0)}, range ${lat.min.toFixed(0)}–${lat.max.toFixed(0)} over ${ck.images} images)` : '';
    if (!pa) {
      lines.push('', `Latency mode, ${ck.model}, CKKS${cold}: ${ck.result.msPerSample.toFixed(0)} ms/image${spread}.`);
      continue;
    }
    const ratio = pa.result.msPerSample / ck.result.msPerSample;
    lines.push('', `Latency mode, ${ck.model}, same run: CKKS${cold} ${ck.result.msPerSample.toFixed(0)} ms/image${spread} vs Paillier ${pa.result.msPerSample.toFixed(0)} ms/image: **${ratio.toFixed(1)}×** faster.`);
  }
  return lines;
}

const START = '<!-- bench:infer:start -->';
const END = '<!-- bench:infer:end -->';

/** Replaces the marked inference section of a Markdown file (appending it if absent), atomically. */
export function writeInferSection(path: string, table: string): void {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    text = '# Benchmarks\n';
  }
  const block = `${START}\n${table}\n${END}`;
  const at = text.indexOf(START);
  const end = text.indexOf(END);
  const next = at >= 0 && end > at ? text.slice(0, at) + block + text.slice(end + END.length) : `${text.trimEnd()}\n\n## Encrypted inference\n\n${block}\n`;
  writeAtomically(path, next);
}

// --- ckks-poly (non-interactive CKKS polynomial network): one full batch -----------------------

/** The ckks-poly row: full batches (N/2 images each, one per worker) of the polynomial model, client included. */
export interface PolyBenchRow {
  model: string;
  images: number;
  /** Where the images came from: the full test set, or the committed sample repeated to fill the slots. */
  source: string;
  result: CkksPolyJobResult;
  /** Same run, same parameters: one weight as integer additions vs as an encoded plaintext product. */
  baseline: { additionMs: number; mulPlainMs: number; digitsPerWeight: number };
}

/**
 * Times ckks-poly on full batches, one per core (they are evaluated side by side on worker
 * threads): a batch costs the same however many of its slots hold images, so throughput is only
 * meaningful with all N/2 slots filled. Uses the full Fashion-MNIST test set when installed, else
 * the committed sample repeated (accuracy is then over repeats).
 */
export async function runPolyBench(images = 4096 * Math.max(1, availableParallelism())): Promise<PolyBenchRow> {
  const sample = loadFashionMnistSample();
  const size = sample.shape[0] * sample.shape[1] * sample.shape[2];
  const calibration = sample.images.subarray((sample.count - 100) * size);
  let data: LabeledImages;
  let source: string;
  try {
    data = loadFashionMnist('test', { limit: images });
    source = `first ${images} Fashion-MNIST test images`;
  } catch {
    const reps = Math.ceil(images / sample.count);
    const pick = (a: Float32Array | Uint8Array, width: number) => {
      const out = new (a.constructor as new (n: number) => typeof a)(images * width);
      for (let i = 0; i < images; i++) out.set(a.subarray((i % sample.count) * width, (i % sample.count + 1) * width), i * width);
      return out;
    };
    data = { ...sample, count: images, images: pick(sample.images, size) as Float32Array, labels: pick(sample.labels, 1) as Uint8Array };
    source = `committed 1,000-image sample repeated ${reps}×`;
  }
  const loaded = loadModel(bundledModelPath('fashion-poly.onnx'));
  const net = compilePolyNetwork(loaded.model, calibration);
  const result = await runCkksPolyJob({ loaded, data, calibration, net });
  const weights = net.stages.reduce((n, st) => n + st.weights.length, 0);
  return { model: 'fashion-poly.onnx', images: data.count, source, result, baseline: { ...(await weightOpTimes(net.params)), digitsPerWeight: net.additions / weights } };
}

/**
 * Medians of one ciphertext addition (what an integer weight costs per signed digit) and of one
 * weight as CKKS usually applies it (encode the weight, multiply by the plaintext, add), at the
 * top level of `params`.
 */
async function weightOpTimes(params: CkksParameters): Promise<{ additionMs: number; mulPlainMs: number }> {
  const ctx = await CkksContext.create(params);
  const ring = CkksKeyring.generate(ctx);
  const x = ring.encrypt([0.5]);
  const acc = ring.encrypt([0.25]);
  try {
    // Additions take microseconds: each repetition times 50 of them.
    const additionMs = (await timeMedian(9, () => {
      for (let i = 0; i < 50; i++) addInPlace(acc, x);
    })) / 50;
    const mulPlainMs = await timeMedian(45, () => {
      const plain = ctx.encode(new Float64Array(ctx.slots).fill(0.123), ctx.scale);
      const y = mulPlain(x, plain);
      free(plain);
      y.free();
    });
    return { additionMs, mulPlainMs };
  } finally {
    x.free();
    acc.free();
    ring.dispose();
    ctx.dispose();
  }
}

/** The ckks-poly row as Markdown. */
export function polyBenchMarkdown(row: PolyBenchRow): string {
  const r = row.result;
  const p = r.ckksPoly;
  return [
    `ckks-poly (one round, no client interaction): ${row.model}, ${row.source},`,
    `N = ${r.ckks?.polyModulusDegree}, coefficient modulus ${r.ckks?.coeffModulusBits.join(' + ')} = ${r.keyBits} bits (128-bit security), depth ${p.depth},`,
    `${p.weightBits}-bit integer weights, ${p.workers} worker thread${p.workers === 1 ? '' : 's'} (one batch each).`,
    '',
    '| model | images | ms/image | service | client (encrypt + decrypt) | predictions/hour | service only, per hour |',
    '|---|---:|---:|---:|---:|---:|---:|',
    `| ${row.model} | ${row.images} | ${r.msPerSample.toFixed(2)} | ${r.serviceMsPerSample.toFixed(2)} | ${r.clientMsPerSample.toFixed(2)} | ${Math.round(p.predictionsPerHour).toLocaleString('en-US')} | ${Math.round(p.servicePredictionsPerHour).toLocaleString('en-US')} |`,
    '',
    `${(r.bytesPerSample / 1024).toFixed(1)} KiB per image; agreement with the plaintext model ${(100 * r.agreement).toFixed(2)}%; accuracy ${(100 * r.accuracy).toFixed(2)}% encrypted, ${(100 * r.plaintextAccuracy).toFixed(2)}% plaintext.`,
    '',
    `Baseline, same run and parameters: one ciphertext addition ${row.baseline.additionMs.toFixed(3)} ms;`,
    `one weight as encode + plaintext product ${row.baseline.mulPlainMs.toFixed(3)} ms. An integer weight costs`,
    `${row.baseline.digitsPerWeight.toFixed(2)} additions on average (doublings included), so **${(row.baseline.mulPlainMs / (row.baseline.digitsPerWeight * row.baseline.additionMs)).toFixed(1)}×** less per weight, and no level.`,
  ].join('\n');
}
