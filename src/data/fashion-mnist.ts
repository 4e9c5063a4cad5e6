/**
 * Fashion-MNIST on disk (node-only): where blindml looks for it, how it obtains it, and the
 * 1,000-image test sample committed with the repository so demos run with no network.
 *
 * Search order for the full data set:
 * 1. the data directory: `$BLINDML_DATA_DIR/fashion-mnist` if that variable is set, otherwise
 *    `~/.cache/blindml/fashion-mnist`;
 * 2. `/usr/share/datasets/fashion-mnist/`, where Debian's `dataset-fashion-mnist` installs it.
 *
 * Each file may be gzip-compressed (`.gz`) or not.
 *
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataNotFoundError, FormatError } from '../errors.js';
import { readImagesFile, readLabeledImages, readLabelsFile, type LabeledImages } from './files.js';

/** The two splits of the data set. */
export type FashionMnistSplit = 'train' | 'test';

/** Class names, by label. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** File names (without `.gz`) and sample counts of each split. */
export const FASHION_MNIST_FILES: Readonly<
  Record<FashionMnistSplit, { readonly images: string; readonly labels: string; readonly count: number }>
> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte', count: 60000 },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte', count: 10000 },
};

/** Where Debian's `dataset-fashion-mnist` package puts the files. */
export const SYSTEM_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The Debian package that carries the data set. */
export const FASHION_MNIST_DEB = 'dataset-fashion-mnist';

const IMAGE_SIZE = 28;
const NUM_CLASSES = 10;

/** The committed sample: the first 1,000 test images and their labels. */
export const SAMPLE_COUNT = 1000;
const SAMPLE_DIR = fileURLToPath(new URL('../../data/fashion-mnist/', import.meta.url));
/** Paths of the committed sample files. */
export const FASHION_MNIST_SAMPLE = {
  images: join(SAMPLE_DIR, 't10k-1000-images-idx3-ubyte.gz'),
  labels: join(SAMPLE_DIR, 't10k-1000-labels-idx1-ubyte.gz'),
} as const;

/** The directory `blindml data fetch` writes to and blindml looks in first. */
export function fashionMnistDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const root = env['BLINDML_DATA_DIR'];
  return root ? join(root, 'fashion-mnist') : join(homedir(), '.cache', 'blindml', 'fashion-mnist');
}

/** The directories searched for the full data set, in order. */
export function fashionMnistSearchDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [fashionMnistDataDir(env), SYSTEM_FASHION_MNIST_DIR];
}

/** Paths of one split's image and label files. */
export interface SplitFiles {
  readonly images: string;
  readonly labels: string;
}

/**
 * Finds one split's files in the search directories (uncompressed or `.gz`).
 *
 * @throws {DataNotFoundError} if no directory has both files; the message says how to fetch them.
 */
export function findFashionMnist(
  split: FashionMnistSplit,
  dirs: readonly string[] = fashionMnistSearchDirs(),
): SplitFiles {
  const names = FASHION_MNIST_FILES[split];
  for (const dir of dirs) {
    const images = existing(dir, names.images);
    const labels = existing(dir, names.labels);
    if (images !== undefined && labels !== undefined) return { images, labels };
  }
  throw new DataNotFoundError(
    `Fashion-MNIST ${split} files not found in ${dirs.join(' or ')}; ` +
      'run `blindml data fetch fashion-mnist` (apt), or `blindml data fetch fashion-mnist --from DIR|ARCHIVE` ' +
      'with files you have (a directory, .tar.gz or .deb holding the four IDX files), or use the committed 1,000-image sample ' +
      '(`train --data sample`)',
  );
}

/**
 * Loads a split of the full data set, pixels scaled to [0, 1].
 *
 * @throws {DataNotFoundError} if the files are not found (see {@link findFashionMnist}).
 * @throws {FormatError} if a file is malformed.
 */
export function loadFashionMnist(
  split: FashionMnistSplit,
  options: { readonly limit?: number; readonly dirs?: readonly string[] } = {},
): LabeledImages {
  const files = findFashionMnist(split, options.dirs);
  return readLabeledImages(files.images, files.labels, limitOption(options.limit, NUM_CLASSES));
}

/**
 * Loads the committed sample: the first 1,000 test images and labels, pixels scaled to [0, 1].
 * Needs no network and no installed data set.
 *
 * @throws {DataNotFoundError} if the sample files are missing from the installation.
 * @throws {FormatError} if they are corrupt.
 */
export function loadFashionMnistSample(options: { readonly limit?: number } = {}): LabeledImages {
  return readLabeledImages(
    FASHION_MNIST_SAMPLE.images,
    FASHION_MNIST_SAMPLE.labels,
    limitOption(options.limit, NUM_CLASSES),
  );
}

/**
 * Checks one split's files: 28×28 images, labels below 10, the expected number of each.
 *
 * @throws {FormatError} if anything does not match.
 * @throws {DataNotFoundError} if a file cannot be read.
 */
export function verifyFashionMnistSplit(split: FashionMnistSplit, files: SplitFiles): void {
  const expected = FASHION_MNIST_FILES[split].count;
  const images = readImagesFile(files.images);
  if (images.rows !== IMAGE_SIZE || images.cols !== IMAGE_SIZE) {
    throw new FormatError(`${files.images}: expected 28×28 images, got ${images.rows}×${images.cols}`);
  }
  if (images.count !== expected) {
    throw new FormatError(`${files.images}: expected ${expected} images, got ${images.count}`);
  }
  const labels = readLabelsFile(files.labels, NUM_CLASSES);
  if (labels.length !== expected) {
    throw new FormatError(`${files.labels}: expected ${expected} labels, got ${labels.length}`);
  }
}

/** Options of {@link fetchFashionMnist}. */
export interface FetchOptions {
  /** Where to put the files; defaults to {@link fashionMnistDataDir}. */
  readonly dataDir?: string;
  /** Download again even if valid files are already in the data directory. */
  readonly force?: boolean;
  /** Where an installed copy is looked for first; defaults to {@link SYSTEM_FASHION_MNIST_DIR}. */
  readonly systemDir?: string;
  /** Receives one human-readable status line per step. */
  readonly log?: (line: string) => void;
  /**
   * Take the files from here instead of the network: a directory holding the four IDX files
   * (`.gz` or not, in any subdirectory), a tar archive (`.tar`, `.tar.gz`, `.tgz`...) or the
   * Debian package's `.deb`.
   */
  readonly from?: string;
}

/**
 * Puts the full data set into the data directory and verifies it. Uses files already in the data
 * directory if they verify, else copies them from `systemDir` if installed there,
 * else downloads the Debian package with `apt-get download` and unpacks it with `dpkg -x` (no root
 * needed, nothing installed).
 *
 * @returns the data directory.
 * @throws {DataNotFoundError} if apt-get/dpkg are missing or the download fails.
 * @throws {FormatError} if the obtained files do not verify.
 */
export function fetchFashionMnist(options: FetchOptions = {}): string {
  const dataDir = options.dataDir ?? fashionMnistDataDir();
  const log = options.log ?? (() => {});
  const splits: FashionMnistSplit[] = ['train', 'test'];

  if (!options.force && splits.every((s) => verifies(s, [dataDir]))) {
    log(`Fashion-MNIST is already in ${dataDir}`);
    return dataDir;
  }
  mkdirSync(dataDir, { recursive: true });
  const systemDir = options.systemDir ?? SYSTEM_FASHION_MNIST_DIR;
  if (options.from !== undefined) {
    copyFromLocal(options.from, dataDir, log);
  } else if (splits.every((s) => verifies(s, [systemDir]))) {
    log(`copying Fashion-MNIST from ${systemDir}`);
    copySplits(systemDir, dataDir);
  } else {
    downloadDeb(dataDir, log);
  }
  for (const split of splits) {
    log(`verifying the ${split} split`);
    verifyFashionMnistSplit(split, findFashionMnist(split, [dataDir]));
  }
  log(`Fashion-MNIST is in ${dataDir} (60000 train, 10000 test)`);
  return dataDir;
}

function downloadDeb(dataDir: string, log: (line: string) => void): void {
  for (const tool of ['apt-get', 'dpkg']) {
    const probe = spawnSync(tool, ['--version'], { stdio: 'ignore' });
    if (probe.error) {
      throw new DataNotFoundError(
        `${tool} is not available, so Fashion-MNIST cannot be downloaded as a Debian package; ` +
          `put the four IDX files (train/t10k images and labels, .gz or not) in ${dataDir} by hand`,
      );
    }
  }
  const work = mkdtempSync(join(tmpdir(), 'blindml-fashion-'));
  try {
    log(`downloading ${FASHION_MNIST_DEB} with apt-get (about 31 MB)`);
    run('apt-get', ['download', FASHION_MNIST_DEB], work);
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (deb === undefined) {
      throw new DataNotFoundError(`apt-get download ${FASHION_MNIST_DEB} produced no .deb file`);
    }
    log(`unpacking ${deb}`);
    const root = join(work, 'root');
    run('dpkg', ['-x', join(work, deb), root], work);
    copySplits(join(root, SYSTEM_FASHION_MNIST_DIR), dataDir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Copies the four files from a local directory, tar archive or .deb (unpacked in a temporary directory). */
function copyFromLocal(from: string, dataDir: string, log: (line: string) => void): void {
  if (!existsSync(from)) throw new DataNotFoundError(`--from ${from}: no such file or directory`);
  if (statSync(from).isDirectory()) {
    log(`copying Fashion-MNIST from ${from}`);
    copySplits(directoryHolding(from), dataDir);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'blindml-fashion-'));
  try {
    log(`unpacking ${from}`);
    if (from.endsWith('.deb')) run('dpkg', ['-x', from, work], work);
    else run('tar', ['-xf', from, '-C', work], work);
    copySplits(directoryHolding(work), dataDir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The directory under `root` (itself or a subdirectory, depth first) holding the train images.
 *
 * @throws {DataNotFoundError} naming the file that is looked for.
 */
function directoryHolding(root: string, depth = 0): string {
  if (existing(root, FASHION_MNIST_FILES.train.images) !== undefined) return root;
  if (depth < 6) {
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      try {
        return directoryHolding(join(root, entry.name), depth + 1);
      } catch (err) {
        if (!(err instanceof DataNotFoundError)) throw err;
      }
    }
  }
  throw new DataNotFoundError(`${FASHION_MNIST_FILES.train.images}[.gz] is not in ${root} or below it`);
}

function run(cmd: string, args: string[], cwd: string): void {
  try {
    execFileSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim().split('\n').pop() ?? '';
    const hint = cmd === 'apt-get' ? ' (is the package index current? try `apt-get update`)' : '';
    throw new DataNotFoundError(`${cmd} ${args.join(' ')} failed: ${stderr}${hint}`, { cause: err });
  }
}

function copySplits(fromDir: string, toDir: string): void {
  for (const split of Object.values(FASHION_MNIST_FILES)) {
    for (const name of [split.images, split.labels]) {
      const from = existing(fromDir, name);
      if (from === undefined) {
        throw new DataNotFoundError(`${name}[.gz] is missing from ${fromDir}`);
      }
      copyFileSync(from, join(toDir, basename(from)));
    }
  }
}

function verifies(split: FashionMnistSplit, dirs: readonly string[]): boolean {
  try {
    verifyFashionMnistSplit(split, findFashionMnist(split, dirs));
    return true;
  } catch {
    return false;
  }
}

function existing(dir: string, name: string): string | undefined {
  for (const candidate of [join(dir, `${name}.gz`), join(dir, name)]) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function limitOption(
  limit: number | undefined,
  numClasses: number,
): { limit?: number; numClasses: number } {
  return limit === undefined ? { numClasses } : { limit, numClasses };
}
