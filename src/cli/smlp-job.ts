/**
 * `blindml train --scheme smlp`: the Secure MLP on the breast cancer data, with checkpoints
 * written atomically after every completed epoch (`--checkpoint`, `--resume`) and the final
 * encrypted model written only once training has finished (`--out`).
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { breastCancerSplit } from '../data/breast-cancer.js';
import { FormatError } from '../errors.js';
import { CryptoServerUnavailableError } from '../protocol/two-server/errors.js';
import type { TwoServerTransport } from '../protocol/two-server/transport.js';
import { DEFAULT_SMLP, type SmlpConfig } from '../train/smlp/config.js';
import { runSmlpTraining, type CheckpointSink, type SmlpCheckpoint, type SmlpResult } from '../train/smlp/run.js';
import { TwoServerWorkerPool } from '../workers/two-server-pool.js';
import { UsageError } from './usage-error.js';
import { writeAtomically } from './write-atomically.js';
import { exportOnnx } from '../nn/onnx-export.js';
import { smlpExport } from '../train/export.js';
import { smlpReference } from '../train/smlp/reference.js';
import type { TrainingReference } from '../train/reference.js';
import { referenceText } from './reference-text.js';

/** The options `train --scheme smlp` reads. */
export interface SmlpJobOptions {
  readonly dataset: string;
  readonly epochs: number;
  readonly seed: number;
  readonly threads: number;
  /** At most this many training / test samples (the split's first ones). */
  readonly trainLimit?: number;
  readonly testLimit?: number;
  readonly keyBits?: number;
  readonly insecure?: boolean;
  readonly hidden?: number;
  readonly checkpoint?: string;
  readonly resume?: boolean;
  readonly out?: string;
  /** Write the trained model (weights the user decrypted) to this ONNX file. */
  readonly export?: string;
  readonly timeout?: number;
  /** Test hook: the crypto server stops answering after this many rounds. */
  readonly s2StopAfter?: number;
}

const big = z.string().regex(/^[0-9a-f]+$/).transform((s) => BigInt(`0x${s}`));
const bigs = z.array(big);
const keySchema = z.object({ n: big, p: big, q: big });
const checkpointSchema = z.object({
  format: z.literal('blindml-smlp-checkpoint'),
  version: z.literal(1),
  config: z.object({ hidden: z.number().int().positive().max(1024), fracBits: z.number().int().min(4).max(32), batchLog2: z.number().int().min(0).max(12), lrLog2: z.number().int().min(0).max(30), seed: z.number().int() }),
  epochsPlanned: z.number().int().positive(),
  epochsDone: z.number().int().nonnegative(),
  cryptoKey: keySchema,
  userKey: keySchema,
  trainX: bigs, trainT: bigs, testX: bigs, w1: bigs, w2: bigs,
  twin: z.object({ w1: z.array(z.string().regex(/^-?[0-9]+$/).transform(BigInt)), w2: z.array(z.string().regex(/^-?[0-9]+$/).transform(BigInt)) }),
  epochs: z.array(z.object({ epoch: z.number().int().positive(), seconds: z.number().nonnegative(), bytes: z.number().nonnegative(), rounds: z.number().int().nonnegative() })),
  uploadBytes: z.number().nonnegative(),
});

const hex = (v: bigint): string => v.toString(16);

/** A checkpoint file: JSON with hex integers, validated on load, replaced atomically. */
export function fileCheckpoint(path: string, resume: boolean): CheckpointSink {
  return {
    load(): SmlpCheckpoint | undefined {
      if (!resume) return undefined;
      if (!existsSync(path)) throw new UsageError(`--resume: no checkpoint at ${path}`);
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(path, 'utf8'));
      } catch (err) {
        throw new FormatError(`checkpoint ${path} is not JSON`, { cause: err });
      }
      const parsed = checkpointSchema.safeParse(raw);
      if (!parsed.success) throw new FormatError(`checkpoint ${path} is malformed (${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? ''})`);
      const { format: _format, ...rest } = parsed.data;
      return rest as SmlpCheckpoint;
    },
    save(c: SmlpCheckpoint): void {
      const text = JSON.stringify({
        format: 'blindml-smlp-checkpoint', ...c,
        cryptoKey: { n: hex(c.cryptoKey.n), p: hex(c.cryptoKey.p), q: hex(c.cryptoKey.q) },
        userKey: { n: hex(c.userKey.n), p: hex(c.userKey.p), q: hex(c.userKey.q) },
        trainX: c.trainX.map(hex), trainT: c.trainT.map(hex), testX: c.testX.map(hex), w1: c.w1.map(hex), w2: c.w2.map(hex),
        twin: { w1: c.twin.w1.map(String), w2: c.twin.w2.map(String) },
      });
      writeAtomically(path, text);
    },
  };
}

/** A transport that goes silent after `rounds` round trips (the CLI's test hook). */
function stopAfter(rounds: number): (t: TwoServerTransport) => TwoServerTransport {
  let calls = 0;
  return (inner) => ({ call: (bytes) => (++calls > rounds ? new Promise<Uint8Array>(() => {}) : inner.call(bytes)) });
}

/** The training result and the plaintext reference it is read against. */
export type SmlpJobResult = SmlpResult & { readonly reference: TrainingReference };

/**
 * Runs the job.
 *
 * @throws UsageError for a dataset other than breast-cancer or --resume without --checkpoint;
 *   CryptoServerUnavailableError (with where to resume from) if S2 stops answering.
 */
export async function runSmlpJob(o: SmlpJobOptions, onProgress: (done: number, total: number, label: string) => void, onPhase?: (phase: string) => void): Promise<SmlpJobResult> {
  if (o.dataset !== 'breast-cancer') throw new UsageError(`--scheme smlp trains on --dataset breast-cancer (got '${o.dataset}')`);
  if (o.resume && !o.checkpoint) throw new UsageError('--resume needs --checkpoint <file>');
  const split = breastCancerSplit({ seed: o.seed });
  const head = (d: typeof split.train, limit = d.count) => {
    const n = Math.min(limit, d.count);
    return { count: n, features: d.features, x: d.x.subarray(0, n * d.features), y: d.y.subarray(0, n) };
  };
  const train = head(split.train, o.trainLimit);
  const test = head(split.test, o.testLimit);
  const config: SmlpConfig = { ...DEFAULT_SMLP, seed: o.seed, ...(o.hidden ? { hidden: o.hidden } : {}) };
  const checkpoint = o.checkpoint ? fileCheckpoint(o.checkpoint, o.resume ?? false) : undefined;
  const pool = o.threads > 1 ? new TwoServerWorkerPool({ threads: o.threads }) : undefined;
  try {
    const trained = await runSmlpTraining({
      train, test, epochs: o.epochs, config, keyBits: o.keyBits ?? 2048, insecure: o.insecure ?? false,
      ...(pool ? { compute: pool } : {}),
      ...(checkpoint ? { checkpoint } : {}),
      ...(o.timeout ? { timeoutMs: o.timeout * 1000 } : {}),
      ...(o.s2StopAfter !== undefined ? { wrapTransport: stopAfter(o.s2StopAfter) } : {}),
      onProgress,
      ...(onPhase ? { onPhase } : {}),
      ...(o.export !== undefined ? { exportWeights: true } : {}),
    });
    const result: SmlpJobResult = { ...trained, reference: await smlpReference(train, test, config) };
    if (o.export !== undefined && result.weights) writeAtomically(o.export, exportOnnx(smlpExport(result.weights, config, split)));
    if (o.out) writeAtomically(o.out, `${JSON.stringify({ format: 'blindml-smlp-result', ...result })}\n`);
    return result;
  } catch (err) {
    if (err instanceof CryptoServerUnavailableError) {
      const where = !o.checkpoint
        ? 'no checkpoint was kept (use --checkpoint <file> to be able to resume)'
        : existsSync(o.checkpoint)
          ? `the checkpoint ${o.checkpoint} holds the last completed epoch; rerun with --resume`
          : `no epoch was completed, so there is no checkpoint at ${o.checkpoint} yet`;
      throw new CryptoServerUnavailableError(`${err.message} during training; ${where}`, { cause: err });
    }
    throw err;
  } finally {
    await pool?.destroy();
  }
}

/** Lines for the human-readable summary. */
export function smlpSummary(r: SmlpJobResult): string {
  const pct = (v: number): string => `${(100 * v).toFixed(2)}%`;
  const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;
  const per = r.perEpoch.map((e) => `epoch ${e.epoch}: ${e.seconds.toFixed(1)} s, ${mb(e.bytes)}, ${e.rounds} rounds`).join('; ');
  return [
    `scheme smlp (two servers, ${r.keyBits}-bit Paillier), ${r.architecture}: ${r.samples} training samples, ${r.epochs} epoch(s), batch ${r.batchSize}`,
    `accuracy ${pct(r.accuracy)} (plaintext twin ${pct(r.plaintextAccuracy)}, agreement ${pct(r.agreement)}) on ${r.testSamples} test samples; ` +
      `reference ${pct(r.reference.score)}: ${referenceText(r.reference)}`,
    `time ${r.seconds.toFixed(1)} s (setup ${r.setupSeconds.toFixed(1)} s, evaluation ${r.evaluationSeconds.toFixed(1)} s); traffic ${mb(r.bytes)} in ${r.rounds} rounds`,
    per,
  ].join('\n');
}
