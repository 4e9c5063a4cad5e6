/**
 * The Paillier benchmark: blindml against paillier-bigint (the npm Paillier library) in one run,
 * medians of repeated runs, ratios baseline/blindml (> 1 means blindml is faster).
 *
 * Node-only; paillier-bigint is a devDependency, loaded on demand.
 *
 * @module
 */
import { BlindmlError } from '../errors.js';
import { randomBits } from '../math/random.js';
import { DjnNoise, NoisePool } from '../schemes/paillier/noise.js';
import { dot } from '../schemes/paillier/linear.js';
import { generateKeyPair } from '../schemes/paillier/keys.js';
import { PaillierWorkerPool } from '../workers/paillier-pool.js';
import { machineDescription, timeMedian } from './stats.js';

/** One line of the results. `ratio` = baselineMs / blindmlMs. */
export interface BenchRow {
  op: string;
  blindmlMs: number;
  baselineMs: number | null;
  ratio: number | null;
  /** What the baseline column measured. */
  baseline: string;
  note?: string;
}

export interface PaillierBenchResult {
  bits: number;
  machine: string;
  rows: BenchRow[];
}

export interface PaillierBenchOptions {
  bits?: number;
  /** Repetitions of each timed operation (medians are reported); at least 5. */
  reps?: number;
  /** Encryptions the one-time table cost is amortized over. */
  amortizeOver?: number;
  /** Called before each step, for a progress display. */
  onStep?: (step: number, total: number, label: string) => void;
  insecure?: boolean;
}

interface PaillierBigintPublicKey {
  n: bigint;
  encrypt(m: bigint): bigint;
  multiply(c: bigint, k: bigint): bigint;
  addition(...cs: bigint[]): bigint;
}

interface PaillierBigint {
  generateRandomKeysSync(bits: number, simpleVariant?: boolean): {
    publicKey: PaillierBigintPublicKey;
    privateKey: { decrypt(c: bigint): bigint; lambda: bigint; mu: bigint };
  };
  /** (lambda, mu, publicKey) without p and q: the textbook decryption path. */
  PrivateKey: new (lambda: bigint, mu: bigint, publicKey: PaillierBigintPublicKey) => { decrypt(c: bigint): bigint };
}

async function loadBaseline(): Promise<PaillierBigint> {
  try {
    return (await import('paillier-bigint')) as unknown as PaillierBigint;
  } catch (err) {
    throw new BlindmlError('ERR_MISSING_BASELINE', 'the baseline library paillier-bigint is not installed (run npm ci in the blindml checkout)', { cause: err });
  }
}

const row = (op: string, blindmlMs: number, baselineMs: number | null, baseline: string, note?: string): BenchRow => {
  const r: BenchRow = { op, blindmlMs: round(blindmlMs), baselineMs: baselineMs === null ? null : round(baselineMs), ratio: baselineMs === null ? null : round(baselineMs / blindmlMs), baseline };
  if (note) r.note = note;
  return r;
};

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** A random signed 16-bit integer. */
function int16(): number {
  return Number(randomBits(16)) - 32768;
}

/**
 * Runs the benchmark. Takes a few minutes at 2048 bits, mostly in the baseline's bulk encryption.
 *
 * @throws BlindmlError if paillier-bigint is not installed.
 */
export async function runPaillierBench(options: PaillierBenchOptions = {}): Promise<PaillierBenchResult> {
  const bits = options.bits ?? 2048;
  const reps = Math.max(5, options.reps ?? 5);
  const amortizeOver = options.amortizeOver ?? 10_000;
  const pb = await loadBaseline();
  const total = 9;
  let step = 0;
  const stepTo = (label: string) => options.onStep?.(step++, total, label);
  const rows: BenchRow[] = [];
  const insecure = options.insecure ?? bits < 2048;

  stepTo('keygen');
  const ourKeygen = await timeMedian(reps, () => generateKeyPair({ bits, insecure }));
  const theirKeygen = await timeMedian(reps, () => pb.generateRandomKeysSync(bits, true));
  rows.push(row('keygen', ourKeygen, theirKeygen, 'paillier-bigint generateRandomKeysSync (g = n + 1)'));

  const { publicKey, privateKey } = generateKeyPair({ bits, insecure });
  const theirs = pb.generateRandomKeysSync(bits, true);

  stepTo('encryption tables');
  const tableStart = performance.now();
  const djn = new DjnNoise(publicKey.n, publicKey.nSquared);
  const tableMs = performance.now() - tableStart;
  publicKey.useNoise(djn);
  const m16 = () => BigInt(int16());

  stepTo('encrypt');
  const perOpReps = Math.max(reps, 21);
  const ourEncrypt = await timeMedian(perOpReps, () => publicKey.encrypt(m16()));
  const theirEncrypt = await timeMedian(reps * 2 + 1, () => theirs.publicKey.encrypt(BigInt.asUintN(16, m16())));
  const amortized = ourEncrypt + tableMs / amortizeOver;
  rows.push(row('encrypt', amortized, theirEncrypt, 'paillier-bigint encrypt', `DJN fixed-base, ${djn.exponentBits}-bit exponent; one-time table ${Math.round(tableMs)} ms amortized over ${amortizeOver} encryptions`));
  const pool = new NoisePool(djn);
  pool.fill(perOpReps);
  publicKey.useNoise(pool);
  const pooled = await timeMedian(perOpReps, () => publicKey.encrypt(m16()));
  publicKey.useNoise(djn);
  rows.push(row('encryptPooled', pooled, theirEncrypt, 'paillier-bigint encrypt', 'online cost with r^n from a ready pool (filled ahead of time or by workers)'));

  stepTo('decrypt');
  const ct = publicKey.encrypt(123456789n);
  const theirCt = theirs.publicKey.encrypt(123456789n);
  const ourDecrypt = await timeMedian(perOpReps, () => privateKey.decrypt(ct));
  const theirDecrypt = await timeMedian(perOpReps, () => theirs.privateKey.decrypt(theirCt));
  rows.push(row('decrypt', ourDecrypt, theirDecrypt, 'paillier-bigint decrypt (its CRT path: p, q known)', 'full-range CRT decryption'));
  const textbook = new pb.PrivateKey(theirs.privateKey.lambda, theirs.privateKey.mu, theirs.publicKey);
  const theirTextbook = await timeMedian(perOpReps, () => textbook.decrypt(theirCt));
  rows.push(row('decryptVsTextbook', ourDecrypt, theirTextbook, 'paillier-bigint decrypt without p, q (textbook λ, μ)', 'same blindml decryption against the textbook formula'));
  const three = generateKeyPair({ bits, primes: 3, insecure });
  const ct3 = three.publicKey.encrypt(123456789n);
  const ourDecrypt3 = await timeMedian(perOpReps, () => three.privateKey.decrypt(ct3));
  rows.push(row('decrypt3Primes', ourDecrypt3, ourDecrypt, 'blindml decrypt with a two-prime key (row decrypt)', 'three-prime key (n = p·q·s, as inference clients use): one exponentiation per prime, each modulo a square a third the size'));
  const bound = 1n << 64n;
  const ourBounded = await timeMedian(perOpReps, () => privateKey.decryptBounded(ct, bound));
  rows.push(row('decryptBounded', ourBounded, theirDecrypt, 'paillier-bigint decrypt', 'plaintexts known to be below 2^64 in magnitude: one half-size exponentiation'));

  stepTo('ciphertext × 16-bit int');
  const k16 = () => randomBits(16);
  const ourMul = await timeMedian(perOpReps * 5, () => ct.mulPlain(k16()));
  const theirMul = await timeMedian(perOpReps * 5, () => theirs.publicKey.multiply(theirCt, k16()));
  rows.push(row('mulPlain16', ourMul, theirMul, 'paillier-bigint multiply', 'non-negative 16-bit factors'));

  stepTo('784-term dot product');
  const xs = Array.from({ length: 784 }, () => publicKey.encrypt(BigInt(int16() >> 8)));
  const theirXs = Array.from({ length: 784 }, () => theirs.publicKey.encrypt(BigInt.asUintN(8, BigInt(int16()))));
  const weights = Array.from({ length: 784 }, int16);
  const ourDot = await timeMedian(reps, () => dot(xs, weights));
  const theirDot = await timeMedian(reps, () =>
    theirs.publicKey.addition(...theirXs.map((c, i) => theirs.publicKey.multiply(c, BigInt(weights[i]!)))),
  );
  rows.push(row('dot784', ourDot, theirDot, 'paillier-bigint multiply-then-add', 'signed 16-bit weights; Bos–Coster multi-exponentiation, one inversion per output'));

  stepTo('bulk encryption of 784 values');
  const values = Array.from({ length: 784 }, m16);
  const ourBulk = await timeMedian(reps, () => values.map((v) => publicKey.encrypt(v)));
  const theirBulk = await timeMedian(reps, () => values.map((v) => theirs.publicKey.encrypt(BigInt.asUintN(16, v))));
  rows.push(row('encrypt784', ourBulk + (784 * tableMs) / amortizeOver, theirBulk, 'paillier-bigint encrypt × 784', 'one thread; table cost amortized as for encrypt'));

  stepTo('bulk encryption on 1 and 2 workers');
  const workerTimes: Record<number, number> = {};
  for (const threads of [1, 2]) {
    const workers = new PaillierWorkerPool({ threads });
    try {
      await workers.encryptMany(publicKey, values.slice(0, threads * 4)); // each worker builds its table first
      workerTimes[threads] = await timeMedian(reps, () => workers.encryptMany(publicKey, values));
    } finally {
      await workers.destroy();
    }
  }
  rows.push(row('encrypt784Workers2', workerTimes[2]!, workerTimes[1]!, 'blindml on 1 worker thread', 'speed-up of 2 worker threads over 1'));

  stepTo('done');
  return { bits, machine: await machineDescription(), rows };
}

/** The results as a Markdown table. */
export function benchToMarkdown(result: PaillierBenchResult): string {
  const lines = [
    `Paillier, ${result.bits}-bit modulus — ${result.machine}`,
    '',
    '| op | blindml ms | baseline ms | ratio | baseline | note |',
    '|---|---:|---:|---:|---|---|',
  ];
  for (const r of result.rows) {
    lines.push(`| ${r.op} | ${r.blindmlMs.toFixed(2)} | ${r.baselineMs?.toFixed(2) ?? '—'} | ${r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`} | ${r.baseline} | ${r.note ?? ''} |`);
  }
  return lines.join('\n');
}
