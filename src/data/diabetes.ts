/**
 * The diabetes regression data set (Efron et al., 2004; 442 patients, 10 features: age, sex, BMI,
 * average blood pressure, six serum measurements; target: disease progression after one year),
 * committed under `data/diabetes/` from Debian's python3-sklearn (see `data/diabetes/SOURCE.md`).
 *
 * {@link loadDiabetes} reads the two files, {@link splitDiabetes} makes a fixed-seed train/test
 * split and standardizes with the training split's statistics, and {@link assignProviders} cuts the
 * training records into P contiguous parts, one per data provider.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataNotFoundError, FormatError } from '../errors.js';
import { maybeGunzip } from './files.js';

/** Number of features per record. */
export const DIABETES_FEATURES = 10;
/** Number of records in the data set. */
export const DIABETES_RECORDS = 442;
/** Feature names, in column order. */
export const DIABETES_FEATURE_NAMES = ['age', 'sex', 'bmi', 'bp', 's1', 's2', 's3', 's4', 's5', 's6'] as const;

const DATA_DIR = fileURLToPath(new URL('../../data/diabetes/', import.meta.url));

/** Records as rows: `features[i]` has {@link DIABETES_FEATURES} values, `targets[i]` one. */
export interface RegressionSet {
  readonly features: readonly Float64Array[];
  readonly targets: Float64Array;
}

/** A split, standardized set and the statistics used (from the training split only). */
export interface DiabetesSplit {
  readonly train: RegressionSet;
  readonly test: RegressionSet;
  /** Per-feature mean and standard deviation of the training split. */
  readonly featureMean: Float64Array;
  readonly featureStd: Float64Array;
  readonly targetMean: number;
  readonly targetStd: number;
}

function readGzText(path: string): string {
  let raw: Uint8Array;
  try {
    raw = readFileSync(path);
  } catch (err) {
    throw new DataNotFoundError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  return new TextDecoder().decode(maybeGunzip(raw));
}

function parseRows(text: string, width: number, path: string): Float64Array[] {
  const rows: Float64Array[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    const cells = trimmed.split(/\s+/).map(Number);
    if (cells.length !== width || cells.some((v) => !Number.isFinite(v))) {
      throw new FormatError(`${path}: line ${i + 1} has ${cells.length} values (expected ${width} numbers)`);
    }
    rows.push(Float64Array.from(cells));
  }
  return rows;
}

/**
 * Reads the committed data set (raw, unscaled).
 *
 * @throws DataNotFoundError if a file is missing; FormatError if a line is malformed or the
 *   two files disagree on the record count.
 */
export function loadDiabetes(dir: string = DATA_DIR): RegressionSet {
  const xPath = join(dir, 'diabetes_data_raw.csv.gz');
  const yPath = join(dir, 'diabetes_target.csv.gz');
  const features = parseRows(readGzText(xPath), DIABETES_FEATURES, xPath);
  const targets = parseRows(readGzText(yPath), 1, yPath).map((r) => r[0]!);
  if (features.length !== targets.length) throw new FormatError(`diabetes: ${features.length} records but ${targets.length} targets`);
  return { features, targets: Float64Array.from(targets) };
}

/** A permutation of 0..n−1 from a 32-bit seed (splitmix32 + Fisher–Yates; not for cryptography). */
export function seededPermutation(n: number, seed: number): number[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

function meanStd(values: readonly number[]): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) || 1 };
}

/**
 * Shuffles with `seed`, holds out `testFraction` of the records, and standardizes features and
 * target with the training split's mean and standard deviation (the public parameters every
 * provider scales its records with; see docs/security.md).
 *
 * @throws RangeError if the fraction leaves either split empty.
 */
export function splitDiabetes(set: RegressionSet, options: { seed?: number; testFraction?: number } = {}): DiabetesSplit {
  const n = set.targets.length;
  const testCount = Math.round(n * (options.testFraction ?? 0.2));
  if (testCount < 1 || testCount >= n) throw new RangeError('splitDiabetes: the test fraction leaves a split empty');
  const order = seededPermutation(n, options.seed ?? 7);
  const trainIdx = order.slice(testCount);
  const testIdx = order.slice(0, testCount);
  const featureMean = new Float64Array(DIABETES_FEATURES);
  const featureStd = new Float64Array(DIABETES_FEATURES);
  for (let f = 0; f < DIABETES_FEATURES; f++) {
    const s = meanStd(trainIdx.map((i) => set.features[i]![f]!));
    featureMean[f] = s.mean;
    featureStd[f] = s.std;
  }
  const t = meanStd(trainIdx.map((i) => set.targets[i]!));
  const pick = (idx: number[]): RegressionSet => ({
    features: idx.map((i) => set.features[i]!.map((v, f) => (v - featureMean[f]!) / featureStd[f]!)),
    targets: Float64Array.from(idx, (i) => (set.targets[i]! - t.mean) / t.std),
  });
  return { train: pick(trainIdx), test: pick(testIdx), featureMean, featureStd, targetMean: t.mean, targetStd: t.std };
}

/**
 * Cuts `count` training records into `providers` contiguous parts whose sizes differ by at most
 * one: part p holds the record indices [start_p, start_p + size_p).
 *
 * @throws RangeError unless 1 ≤ providers ≤ count.
 */
export function assignProviders(count: number, providers: number): number[][] {
  if (!Number.isSafeInteger(providers) || providers < 1 || providers > count) {
    throw new RangeError(`cannot split ${count} records across ${providers} providers`);
  }
  const base = Math.floor(count / providers);
  const extra = count % providers;
  const parts: number[][] = [];
  let start = 0;
  for (let p = 0; p < providers; p++) {
    const size = base + (p < extra ? 1 : 0);
    parts.push(Array.from({ length: size }, (_, i) => start + i));
    start += size;
  }
  return parts;
}
