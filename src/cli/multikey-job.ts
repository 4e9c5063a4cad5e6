/**
 * `blindml train --scheme multikey --dataset diabetes --providers P`: collaborative training from
 * P data providers with their own keys (src/train/multikey). Each server checkpoints its own
 * shares after every completed epoch (`--checkpoint PREFIX` writes `PREFIX.service-E.json` and
 * `PREFIX.crypto-server-E.json`, each atomically); `--resume` continues after the last epoch both
 * have; `--out` gets the results and trained weights only once training has finished.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { loadDiabetes, splitDiabetes, type RegressionSet } from '../data/diabetes.js';
import type { CheckpointStore } from '../protocol/multikey/crypto-server.js';
import { DEFAULT_MULTIKEY_EPOCHS, DEFAULT_MULTIKEY_MLP } from '../train/multikey/mlp.js';
import { plaintextReference, type PlaintextReference } from '../train/multikey/reference.js';
import { runMultikeyTraining, type MultikeyTrainResult } from '../train/multikey/run.js';
import { PaillierWorkerPool } from '../workers/paillier-pool.js';
import { UsageError } from './usage-error.js';
import { writeAtomically } from './write-atomically.js';
import { exportOnnx } from '../nn/onnx-export.js';
import { multikeyExport } from '../train/export.js';

/** The options `train --scheme multikey` reads. */
export interface MultikeyJobOptions {
  readonly dataset: string;
  readonly epochs?: number;
  /** At most this many training / test records (defaults: all). */
  readonly trainLimit?: number;
  readonly testLimit?: number;
  readonly seed: number;
  readonly threads: number;
  readonly providers?: number;
  readonly batchSize?: number;
  readonly keyBits?: number;
  readonly insecure?: boolean;
  readonly checkpoint?: string;
  readonly resume?: boolean;
  readonly out?: string;
  /** Write the trained regression network to this ONNX file. */
  readonly export?: string;
  readonly timeout?: number;
  /** Test hook: the crypto server stops answering after this many requests. */
  readonly s2StopAfter?: number;
}

/** Per-party checkpoint files next to a path prefix. */
export class FileCheckpoints implements CheckpointStore {
  constructor(private readonly prefix: string) {}

  path(party: string, epoch: number): string {
    return `${this.prefix}.${party}-${epoch}.json`;
  }

  async save(party: string, epoch: number, state: string): Promise<void> {
    writeAtomically(this.path(party, epoch), state);
  }

  async load(party: string, epoch: number): Promise<string | undefined> {
    const p = this.path(party, epoch);
    return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
  }
}

/** The training result and the plaintext reference it is read against. */
export type MultikeyJobResult = MultikeyTrainResult & { readonly reference: PlaintextReference };

/**
 * Runs the job.
 *
 * @throws UsageError for a dataset other than diabetes, --resume without --checkpoint, or a
 *   provider count the training split cannot fill.
 */
export async function runMultikeyJob(options: MultikeyJobOptions, onProgress: (done: number, total: number, label: string) => void, onPhase?: (phase: string) => void): Promise<MultikeyJobResult> {
  if (options.dataset !== 'diabetes') throw new UsageError(`--scheme multikey trains on --dataset diabetes (got '${options.dataset}')`);
  if (options.resume && !options.checkpoint) throw new UsageError('--resume needs --checkpoint PREFIX');
  const full = splitDiabetes(loadDiabetes());
  const limit = (set: RegressionSet, n: number | undefined): RegressionSet =>
    n === undefined ? set : { features: set.features.slice(0, n), targets: set.targets.slice(0, n) };
  const split = { ...full, train: limit(full.train, options.trainLimit), test: limit(full.test, options.testLimit) };
  const providers = options.providers ?? 50;
  if (providers > split.train.targets.length) throw new UsageError(`--providers ${providers}: the training split has only ${split.train.targets.length} records`);
  const config = { ...DEFAULT_MULTIKEY_MLP, ...(options.batchSize ? { batchSize: options.batchSize } : {}) };
  const compute = options.threads > 1 ? new PaillierWorkerPool({ threads: options.threads }) : undefined;
  try {
    const trained = await runMultikeyTraining({
      split,
      providers,
      epochs: options.epochs ?? DEFAULT_MULTIKEY_EPOCHS,
      keyBits: options.keyBits ?? 2048,
      insecure: options.insecure ?? false,
      seed: options.seed,
      config,
      onProgress,
      ...(onPhase ? { onPhase } : {}),
      ...(compute ? { compute } : {}),
      ...(options.checkpoint ? { checkpoints: new FileCheckpoints(options.checkpoint) } : {}),
      ...(options.resume ? { resume: true } : {}),
      ...(options.timeout ? { cryptoTimeoutMs: options.timeout * 1000 } : {}),
      ...(options.s2StopAfter ? { cryptoFailAfter: options.s2StopAfter } : {}),
    });
    const result: MultikeyJobResult = { ...trained, reference: plaintextReference(split, config, options.seed) };
    if (options.export !== undefined) {
      const spec = multikeyExport(result.weights, config, { mean: full.featureMean, std: full.featureStd, targetMean: full.targetMean, targetStd: full.targetStd });
      writeAtomically(options.export, exportOnnx(spec));
    }
    if (options.out) writeAtomically(options.out, `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await compute?.destroy();
  }
}

/** The human-readable summary. */
export function multikeySummary(r: MultikeyJobResult): string {
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  const last = r.perEpoch.at(-1);
  return [
    `scheme multikey: ${r.providers} providers (${r.paillierProviders} Paillier, ${r.ckksProviders} CKKS), ${r.trainRecords} training records, ${r.epochs} epoch(s)` +
      (r.resumedFromEpoch > 0 ? ` (resumed after epoch ${r.resumedFromEpoch})` : ''),
    `R² ${r.r2.toFixed(4)} (plaintext twin ${r.plaintextR2.toFixed(4)}) on ${r.testRecords} held-out records; ` +
      `reference ${r.reference.r2.toFixed(4)}: the same network in plaintext, trained to convergence (L2 ${r.reference.l2} chosen on the training records)`,
    `time ${r.seconds.toFixed(1)} s (key switch ${r.keySwitch.seconds.toFixed(1)} s; CPU ${r.cpuSeconds.toFixed(1)} s, all threads), traffic ${mb(r.bytes)} in ${r.rounds} rounds, ${r.keyBits}-bit keys`,
    last ? `per epoch: ${last.seconds.toFixed(1)} s, ${mb(last.bytes)}, ${last.rounds} rounds (MSCryptoNet: 290 s, 257.4 MB)` : '',
  ]
    .filter((l) => l !== '')
    .join('\n');
}
