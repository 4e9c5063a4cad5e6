/**
 * SVG charts of benchmark results, rendered in Node without a browser: a Vega-Lite specification
 * compiled to Vega, run in a headless `View`, written with `toSVG()`. The benchmark scripts keep
 * their numbers in docs/results/*.json (see {@link ChartData}) and call {@link writeCharts} after
 * each run, so the charts in docs/charts/ always show the last measured numbers. Node-only.
 *
 * @module
 */
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeAtomically } from '../cli/write-atomically.js';

/** One inference configuration's time per image. */
export interface InferenceChartRow {
  readonly model: string;
  /** 'Paillier', 'CKKS', 'CKKS (cold)', 'ckks-poly'. */
  readonly scheme: string;
  /** 'latency', 'batch', 'one round'. */
  readonly mode: string;
  readonly msPerImage: number;
}

/** One point of a training curve. */
export interface TrainingChartPoint {
  /** e.g. 'fe, MLP 784-64-10: test accuracy'. */
  readonly series: string;
  readonly run: 'encrypted' | 'plaintext twin';
  readonly epoch: number;
  readonly value: number;
}

/** One Paillier operation against the baseline library. */
export interface PaillierChartRow {
  readonly op: string;
  /** Baseline time / blindml time. */
  readonly ratio: number;
}

/**
 * Readable names of the Paillier benchmark's operations that compare blindml with the baseline
 * library (the others compare blindml with itself: thread counts, key shapes).
 */
export const PAILLIER_OPS: Readonly<Record<string, string>> = {
  keygen: 'keygen',
  encrypt: 'encrypt',
  encryptPooled: 'encrypt, pooled randomness',
  decrypt: 'decrypt',
  decryptVsTextbook: 'decrypt vs textbook',
  decryptBounded: 'decrypt, bounded plaintext',
  mulPlain16: 'multiply by 16-bit plaintext',
  dot784: '784-term dot product',
  encrypt784: 'encrypt 784 values',
};

/** What the charts are drawn from: docs/results/{inference,training,paillier}.json. */
export interface ChartData {
  readonly inference?: { readonly note: string; readonly rows: readonly InferenceChartRow[] };
  readonly training?: { readonly note: string; readonly points: readonly TrainingChartPoint[] };
  readonly paillier?: { readonly note: string; readonly rows: readonly PaillierChartRow[] };
}

const FONT = 'Helvetica, Arial, sans-serif';
const CONFIG = { font: FONT, view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12 } };

/**
 * Renders a Vega-Lite specification to an SVG document.
 *
 * @throws Error (rejects) if the specification is invalid.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The power of ten at or below the smallest value: where log-scale bars start (a log scale has no zero). */
function logFloor(values: readonly number[]): number {
  return 10 ** Math.floor(Math.log10(Math.min(...values.filter((v) => v > 0))));
}

/** Time per image by model and scheme, log scale. */
export function latencySpec(rows: readonly InferenceChartRow[], note: string): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Encrypted inference: time per image', subtitle: note },
    config: CONFIG,
    width: 420,
    height: { step: 14 },
    data: { values: rows.map((r) => ({ ...r, label: `${r.model.replace(/\.onnx$/, '')}, ${r.mode}` })) },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'label', type: 'nominal', title: null, sort: null, axis: { labelLimit: 0 } },
      yOffset: { field: 'scheme', type: 'nominal' },
      x: { field: 'msPerImage', type: 'quantitative', scale: { type: 'log', domainMin: logFloor(rows.map((r) => r.msPerImage)) }, title: 'ms per image (log scale, lower is better)' },
      x2: { datum: logFloor(rows.map((r) => r.msPerImage)) },
      color: { field: 'scheme', type: 'nominal', title: 'scheme' },
    },
  };
}

/** Predictions per hour (3.6·10⁶ / ms per image) by configuration, log scale. */
export function throughputSpec(rows: readonly InferenceChartRow[], note: string): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Encrypted inference: predictions per hour', subtitle: note },
    config: CONFIG,
    width: 420,
    data: { values: rows.map((r) => ({ label: `${r.model.replace(/\.onnx$/, '')}, ${r.scheme}, ${r.mode}`, scheme: r.scheme, perHour: 3.6e6 / r.msPerImage })) },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'label', type: 'nominal', title: null, sort: '-x', axis: { labelLimit: 0 } },
      x: { field: 'perHour', type: 'quantitative', scale: { type: 'log', domainMin: logFloor(rows.map((r) => 3.6e6 / r.msPerImage)) }, title: 'predictions per hour (log scale, higher is better)' },
      x2: { datum: logFloor(rows.map((r) => 3.6e6 / r.msPerImage)) },
      color: { field: 'scheme', type: 'nominal', title: 'scheme' },
    },
  };
}

/** One panel per series: the plaintext twin's curve, the encrypted run's measured points. */
export function trainingSpec(points: readonly TrainingChartPoint[], note: string): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Training on encrypted data: encrypted run vs plaintext twin', subtitle: note },
    config: CONFIG,
    data: { values: [...points] },
    facet: { field: 'series', type: 'nominal', title: null, header: { labelFontSize: 11, labelLimit: 0 } },
    columns: 3,
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 200,
      height: 150,
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' }, title: 'epoch' },
        y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: null },
        color: { field: 'run', type: 'nominal', title: null, scale: { domain: ['plaintext twin', 'encrypted'] } },
      },
      layer: [
        { transform: [{ filter: "datum.run === 'plaintext twin'" }], mark: { type: 'line', point: true, strokeDash: [4, 2] } },
        { transform: [{ filter: "datum.run === 'encrypted'" }], mark: { type: 'point', filled: true, size: 80, shape: 'diamond' } },
      ],
    },
  };
}

/** How many times faster than paillier-bigint each operation is, log scale. */
export function paillierSpec(rows: readonly PaillierChartRow[], note: string): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Paillier primitives: speed-up over the baseline', subtitle: note },
    config: CONFIG,
    width: 420,
    data: { values: [...rows] },
    layer: [
      {
        mark: { type: 'bar', tooltip: true },
        encoding: {
          y: { field: 'op', type: 'nominal', title: null, sort: null, axis: { labelLimit: 0 } },
          x: { field: 'ratio', type: 'quantitative', scale: { type: 'log', domainMin: logFloor([1, ...rows.map((r) => r.ratio)]) }, title: 'baseline time / blindml time (log scale; 1 = as fast)' },
          x2: { datum: logFloor([1, ...rows.map((r) => r.ratio)]) },
        },
      },
      { mark: { type: 'rule', color: 'gray', strokeDash: [3, 3] }, encoding: { x: { datum: 1 } } },
    ],
  };
}

/** The charts of `data`, by file name. */
export async function chartsOf(data: ChartData): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (data.inference) {
    out.set('inference-latency.svg', await renderSvg(latencySpec(data.inference.rows, data.inference.note)));
    out.set('inference-throughput.svg', await renderSvg(throughputSpec(data.inference.rows, data.inference.note)));
  }
  if (data.training) out.set('training-curves.svg', await renderSvg(trainingSpec(data.training.points, data.training.note)));
  if (data.paillier) out.set('paillier-ratios.svg', await renderSvg(paillierSpec(data.paillier.rows, data.paillier.note)));
  return out;
}

const RESULT_FILES = { inference: 'inference.json', training: 'training.json', paillier: 'paillier.json' } as const;

/**
 * Reads docs/results-style JSON files from `resultsDir` (those present) and writes every chart
 * they allow to `chartsDir`, each atomically.
 *
 * @returns the paths written.
 * @throws SyntaxError for a results file that is not JSON; the file system's errors.
 */
export async function writeCharts(resultsDir: string, chartsDir: string): Promise<string[]> {
  const data: Record<string, unknown> = {};
  for (const [key, file] of Object.entries(RESULT_FILES)) {
    const path = join(resultsDir, file);
    if (existsSync(path)) data[key] = JSON.parse(readFileSync(path, 'utf8'));
  }
  mkdirSync(chartsDir, { recursive: true });
  const written: string[] = [];
  for (const [name, svg] of await chartsOf(data as ChartData)) {
    const path = join(chartsDir, name);
    writeAtomically(path, svg);
    written.push(path);
  }
  return written;
}

/** Replaces one kind of results (e.g. `training` points of one series) in `resultsDir`, atomically. */
export function writeResults<K extends keyof ChartData>(resultsDir: string, kind: K, value: NonNullable<ChartData[K]>): void {
  mkdirSync(resultsDir, { recursive: true });
  writeAtomically(join(resultsDir, RESULT_FILES[kind]), `${JSON.stringify(value, null, 2)}\n`);
}

/** Reads one kind of results, if present. @throws SyntaxError if the file is not JSON. */
export function readResults<K extends keyof ChartData>(resultsDir: string, kind: K): ChartData[K] | undefined {
  const path = join(resultsDir, RESULT_FILES[kind]);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as ChartData[K]) : undefined;
}

/**
 * Adds a training run's points to `resultsDir`'s training results — replacing any point of the same
 * series, run and epoch, keeping the others (earlier epochs measured by earlier runs) — and redraws
 * the charts in `chartsDir`. `note` (the chart's subtitle) is used only when there was no file yet.
 *
 * @throws SyntaxError if the existing results file is not JSON; the file system's errors.
 */
export async function recordTraining(resultsDir: string, chartsDir: string, points: readonly TrainingChartPoint[], note: string): Promise<string[]> {
  const key = (p: TrainingChartPoint) => `${p.series}\u0000${p.run}\u0000${p.epoch}`;
  const fresh = new Set(points.map(key));
  const existing = readResults(resultsDir, 'training');
  const kept = (existing?.points ?? []).filter((p) => !fresh.has(key(p)));
  // The note describes the whole file (points from several runs): a new file takes this run's.
  writeResults(resultsDir, 'training', { note: existing?.note ?? note, points: [...kept, ...points] });
  return writeCharts(resultsDir, chartsDir);
}

/**
 * The docs directory named by `--results DIR` on the command line of a benchmark script, if any:
 * its numbers go to DIR/results/*.json and its charts to DIR/charts/.
 */
export function resultsArg(argv: readonly string[] = process.argv): string | undefined {
  const i = argv.indexOf('--results');
  return i >= 0 ? argv[i + 1] : undefined;
}
