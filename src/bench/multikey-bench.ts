/**
 * `npm run bench:multikey [-- --epochs E --providers P --threads T]` (`--results DIR`: also record
 * R² per epoch in DIR/results/training.json and redraw DIR/charts/): collaborative training from
 * P providers with their own keys (2048-bit Paillier, every fifth CKKS) on the diabetes data, next
 * to its plaintext twin measured in the same run. Prints a markdown block for docs/benchmarks.md:
 * the machine, its load, per-epoch seconds and traffic (medians over epochs) beside MSCryptoNet's
 * published 290 s and 257.4 MB per epoch, the key switch, R² of both runs.
 *
 * @module
 */
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { loadDiabetes, splitDiabetes } from '../data/diabetes.js';
import { runMultikeyTraining } from '../train/multikey/run.js';
import { DEFAULT_MULTIKEY_EPOCHS, DEFAULT_MULTIKEY_MLP } from '../train/multikey/mlp.js';
import { plaintextReference } from '../train/multikey/reference.js';
import { PaillierWorkerPool } from '../workers/paillier-pool.js';
import { machineDescription, median } from './stats.js';
import { join } from 'node:path';
import { recordTraining } from './charts.js';

const MSCRYPTONET = { secondsPerEpoch: 290, mbPerEpoch: 257.4 };

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { epochs: { type: 'string', default: String(DEFAULT_MULTIKEY_EPOCHS) }, providers: { type: 'string', default: '50' }, threads: { type: 'string', default: String(availableParallelism()) }, results: { type: 'string' } },
  });
  const epochs = Number(values.epochs);
  const providers = Number(values.providers);
  const threads = Number(values.threads);
  const loadBefore = loadavg()[0]!;
  const pool = new PaillierWorkerPool({ threads });
  try {
    const split = splitDiabetes(loadDiabetes());
    const r = await runMultikeyTraining({ split, providers, epochs, compute: pool });
    const reference = plaintextReference(split, DEFAULT_MULTIKEY_MLP, 1);
    const loadAfter = loadavg()[0]!;
    const sec = median(r.perEpoch.map((e) => e.seconds));
    const cpu = median(r.perEpoch.map((e) => e.cpuSeconds));
    const mb = median(r.perEpoch.map((e) => e.bytes)) / 1e6;
    const rounds = median(r.perEpoch.map((e) => e.rounds));
    const lines = [
      `Machine: ${await machineDescription()}, ${threads} worker threads; 1-minute load average ${loadBefore.toFixed(1)} at start, ${loadAfter.toFixed(1)} at the end.`,
      `Command: \`npm run bench:multikey -- --epochs ${epochs} --providers ${providers}\` (${r.keyBits}-bit Paillier keys, ${r.paillierProviders} Paillier and ${r.ckksProviders} CKKS providers, ${r.trainRecords} training and ${r.testRecords} test records, batch ${r.batchSize}).`,
      '',
      '| | blindml (2 servers, shares under a Paillier training key) | MSCryptoNet (published) | ratio |',
      '|---|---:|---:|---:|',
      `| seconds per epoch (median of ${r.perEpoch.length}) | ${sec.toFixed(1)} | ${MSCRYPTONET.secondsPerEpoch} | ${(sec / MSCRYPTONET.secondsPerEpoch).toFixed(2)}× |`,
      `| CPU seconds per epoch, all threads (median) | ${cpu.toFixed(1)} | — | |`,
      `| traffic per epoch, MB | ${mb.toFixed(1)} | ${MSCRYPTONET.mbPerEpoch} | ${(mb / MSCRYPTONET.mbPerEpoch).toFixed(3)}× |`,
      `| rounds per epoch | ${rounds} | — | |`,
      `| plaintext twin, whole run (same process), s | ${r.plaintextSeconds.toFixed(2)} | | encrypted ${(r.seconds / r.plaintextSeconds).toFixed(0)}× |`,
      '',
      `Whole run ${r.seconds.toFixed(1)} s wall, ${r.cpuSeconds.toFixed(1)} s CPU (key generation, uploads and key switch ${r.keySwitch.seconds.toFixed(1)} s, ${(r.keySwitch.bytes / 1e6).toFixed(1)} MB in ${r.keySwitch.rounds} rounds); ` +
        `${(r.bytes / 1e6).toFixed(1)} MB in ${r.rounds} rounds in all. R² on the held-out split: ${r.r2.toFixed(4)} encrypted, ${r.plaintextR2.toFixed(4)} plaintext twin, ` +
        `${reference.r2.toFixed(4)} for the same network in plaintext trained to convergence (L2 ${reference.l2} chosen on the training records).`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const docs = values.results;
    if (docs !== undefined) {
      const series = 'multikey 10-8-1, defaults: test R²';
      await recordTraining(join(docs, 'results'), join(docs, 'charts'), [
        ...r.perEpoch.map((e) => ({ series, run: 'plaintext twin' as const, epoch: e.epoch, value: e.plaintextR2 })),
        { series, run: 'encrypted', epoch: epochs, value: r.r2 },
      ], `last run: ${await machineDescription()}, ${r.keyBits}-bit keys, ${providers} providers`);
    }
  } finally {
    await pool.destroy();
  }
}

await main();
