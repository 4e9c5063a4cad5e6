/**
 * The breast cancer Wisconsin (diagnostic) data set as committed in data/breast-cancer/
 * (569 samples, 30 features, label 0 = malignant, 1 = benign; see SOURCE.md), with a fixed-seed
 * stratified train/test split and the standardisation a user computes on its own plaintext
 * training data before encrypting anything.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DataNotFoundError, FormatError } from '../errors.js';

/** Default location of the committed CSV. */
export const BREAST_CANCER_CSV = fileURLToPath(new URL('../../data/breast-cancer/breast_cancer.csv', import.meta.url));

/** Number of features per record. */
export const BREAST_CANCER_FEATURES = 30;

/** Samples with binary labels, features row-major. */
export interface BinaryDataset {
  readonly count: number;
  readonly features: number;
  readonly x: Float64Array;
  /** 0 or 1 per sample. */
  readonly y: Uint8Array;
}

/** A split with the standardisation fitted on its training part. */
export interface StandardizedSplit {
  readonly train: BinaryDataset;
  readonly test: BinaryDataset;
  readonly mean: Float64Array;
  readonly std: Float64Array;
  /** Standardised values were clipped to ±clip. */
  readonly clip: number;
}

/**
 * Parses the CSV text: a header `count,features,name0,name1`, then `count` records of `features`
 * numbers and a 0/1 label.
 *
 * @throws FormatError naming the first bad line (wrong width, not a number, bad label, wrong count).
 */
export function parseBreastCancerCsv(text: string, expectedFeatures = BREAST_CANCER_FEATURES): BinaryDataset {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new FormatError('breast cancer CSV is empty');
  const head = lines[0]!.split(',');
  const count = Number(head[0]);
  const features = Number(head[1]);
  if (!Number.isSafeInteger(count) || count <= 0 || !Number.isSafeInteger(features)) throw new FormatError('breast cancer CSV: the first line must be "count,features,..."');
  if (features !== expectedFeatures) throw new FormatError(`breast cancer CSV: header says ${features} features, expected ${expectedFeatures}`);
  if (lines.length - 1 !== count) throw new FormatError(`breast cancer CSV: header says ${count} records, found ${lines.length - 1}`);
  const x = new Float64Array(count * features);
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const fields = lines[i + 1]!.split(',');
    if (fields.length !== features + 1) throw new FormatError(`breast cancer CSV line ${i + 2}: ${fields.length} fields, expected ${features + 1} (${features} features and a label)`);
    for (let j = 0; j < features; j++) {
      const v = Number(fields[j]);
      if (fields[j]!.trim() === '' || !Number.isFinite(v)) throw new FormatError(`breast cancer CSV line ${i + 2}: field ${j + 1} is not a number`);
      x[i * features + j] = v;
    }
    const label = fields[features]!.trim();
    if (label !== '0' && label !== '1') throw new FormatError(`breast cancer CSV line ${i + 2}: label must be 0 or 1`);
    y[i] = Number(label);
  }
  return { count, features, x, y };
}

/**
 * Reads and parses the CSV.
 *
 * @throws DataNotFoundError if the file is missing; FormatError if it is malformed.
 */
export function loadBreastCancer(path = BREAST_CANCER_CSV): BinaryDataset {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DataNotFoundError(`breast cancer data not found at ${path}`, { cause: err });
  }
  return parseBreastCancerCsv(text);
}

/** A small seeded generator (mulberry32) for the split; not for cryptography. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function subset(d: BinaryDataset, idx: readonly number[]): BinaryDataset {
  const x = new Float64Array(idx.length * d.features);
  const y = new Uint8Array(idx.length);
  idx.forEach((s, i) => {
    x.set(d.x.subarray(s * d.features, (s + 1) * d.features), i * d.features);
    y[i] = d.y[s]!;
  });
  return { count: idx.length, features: d.features, x, y };
}

/**
 * Stratified split: in each class, a seeded shuffle puts ⌈testFraction·class size⌉ samples in the
 * test set; both sets are then shuffled (same seed). Deterministic for a given seed.
 *
 * @throws RangeError if testFraction is not in (0, 1).
 */
export function stratifiedSplit(d: BinaryDataset, testFraction = 0.2, seed = 1): { train: BinaryDataset; test: BinaryDataset } {
  if (!(testFraction > 0 && testFraction < 1)) throw new RangeError('testFraction must be in (0, 1)');
  const rand = seeded(seed);
  const shuffle = (a: number[]): number[] => {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  };
  const train: number[] = [];
  const test: number[] = [];
  for (const label of [0, 1]) {
    const members = shuffle([...d.y.keys()].filter((i) => d.y[i] === label));
    const t = Math.ceil(testFraction * members.length);
    test.push(...members.slice(0, t));
    train.push(...members.slice(t));
  }
  return { train: subset(d, shuffle(train)), test: subset(d, shuffle(test)) };
}

/**
 * Standardises both sets with the training set's mean and standard deviation (the user's own
 * statistics, computed before encryption) and clips to ±clip so fixed-point bounds hold.
 */
export function standardize(train: BinaryDataset, test: BinaryDataset, clip = 15): StandardizedSplit {
  const f = train.features;
  const mean = new Float64Array(f);
  const std = new Float64Array(f);
  for (let i = 0; i < train.count; i++) for (let j = 0; j < f; j++) mean[j]! += train.x[i * f + j]! / train.count;
  for (let i = 0; i < train.count; i++) for (let j = 0; j < f; j++) std[j]! += (train.x[i * f + j]! - mean[j]!) ** 2 / train.count;
  for (let j = 0; j < f; j++) std[j] = Math.sqrt(std[j]!) || 1;
  const apply = (d: BinaryDataset): BinaryDataset => {
    const x = new Float64Array(d.x.length);
    for (let i = 0; i < d.count; i++) for (let j = 0; j < f; j++) x[i * f + j] = Math.max(-clip, Math.min(clip, (d.x[i * f + j]! - mean[j]!) / std[j]!));
    return { ...d, x };
  };
  return { train: apply(train), test: apply(test), mean, std, clip };
}

/** The committed data, split 80/20 (stratified, seeded) and standardised on the training part. */
export function breastCancerSplit(options: { seed?: number; testFraction?: number; path?: string } = {}): StandardizedSplit {
  const all = loadBreastCancer(options.path);
  const { train, test } = stratifiedSplit(all, options.testFraction ?? 0.2, options.seed ?? 1);
  return standardize(train, test);
}
