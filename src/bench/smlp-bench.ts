/**
 * `npm run bench:smlp`: the two-server Secure MLP on the breast cancer data (2048-bit keys by
 * default) next to its plaintext twin, with per-epoch time and S1↔S2 traffic beside MSCryptoNet's
 * published per-epoch figures. Arguments: `--epochs E --threads T --hidden H --key-bits B` (below
 * 2048 bits the run is marked insecure), `--json` and `--results DIR`. Prints Markdown rows (or one JSON object);
 * with `--results docs` also records the accuracies per epoch in docs/results/training.json and redraws docs/charts/.
 *
 * @module
 */
import { availableParallelism, loadavg } from 'node:os';
import { breastCancerSplit } from '../data/breast-cancer.js';
import { DEFAULT_SMLP, epochBatches } from '../train/smlp/config.js';
import { epochOrder, fixedFeatures, fixedTargets, initialWeights } from '../train/smlp/model.js';
import { runSmlpTraining } from '../train/smlp/run.js';
import { SmlpTwin } from '../train/smlp/twin.js';
import { TwoServerWorkerPool } from '../workers/two-server-pool.js';
import { machineDescription, median } from './stats.js';
import { join } from 'node:path';
import { recordTraining, resultsArg } from './charts.js';

/** MSCryptoNet (2019), per epoch of its configuration: seconds and megabytes. */
const MSCRYPTONET = { seconds: 290, megabytes: 257.4 };

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`--${name} must be a positive integer`);
  return v;
}

const epochs = arg('epochs', 3);
const threads = arg('threads', availableParallelism());
const hidden = arg('hidden', DEFAULT_SMLP.hidden);
const keyBits = arg('key-bits', 2048);
const loadBefore = loadavg()[0]!;
const { train, test } = breastCancerSplit();
const config = { ...DEFAULT_SMLP, hidden };

// Baseline in the same run: the plaintext twin's epochs (same fixed-point arithmetic).
const twin = new SmlpTwin(config, initialWeights(config, train.features), train.features + 1);
const x = fixedFeatures(train.x, train.count, train.features, config.fracBits);
const t = fixedTargets(train.y, config.fracBits);
const xTest = fixedFeatures(test.x, test.count, test.features, config.fracBits);
const twinEpochs: number[] = [];
const twinAccuracy: number[] = [];
for (let e = 0; e < epochs; e++) {
  const t0 = performance.now();
  for (const b of epochBatches(train.count, 2 ** config.batchLog2, epochOrder(config, train.count, e))) twin.step(x, t, b);
  twinEpochs.push((performance.now() - t0) / 1000);
  twinAccuracy.push(twin.predict(xTest, test.count).reduce((n, p, i) => n + +(p === test.y[i]), 0) / test.count);
}

const pool = threads > 1 ? new TwoServerWorkerPool({ threads }) : undefined;
const cpu0 = process.cpuUsage();
let result;
try {
  result = await runSmlpTraining({ train, test, epochs, config, keyBits, insecure: keyBits < 2048, ...(pool ? { compute: pool } : {}) });
} finally {
  await pool?.destroy();
}
const cpu = process.cpuUsage(cpu0);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
const loadAfter = loadavg()[0]!;
const epochSeconds = median(result.perEpoch.map((e) => e.seconds));
const epochMb = median(result.perEpoch.map((e) => e.bytes)) / 1e6;
const twinSeconds = median(twinEpochs);
const summary = {
  ...result, threads, cpuSeconds, machine: await machineDescription(), loadAverage: [loadBefore, loadAfter],
  medianEpochSeconds: epochSeconds, medianEpochMegabytes: epochMb, twinEpochSeconds: twinSeconds, overVsTwin: epochSeconds / twinSeconds,
  mscryptonet: MSCRYPTONET,
};
if (process.argv.includes('--json')) {
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} else {
  const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;
  process.stdout.write(
    [
      `machine: ${summary.machine}; ${threads} worker threads; load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after`,
      '',
      '| run | key | epochs | accuracy (twin) | per epoch, median | per epoch, S1↔S2 traffic | rounds per epoch | whole run | CPU, all threads |',
      '|---|---|---:|---|---:|---:|---:|---:|---:|',
      `| blindml smlp ${result.architecture} | ${keyBits}-bit Paillier | ${epochs} | ${pct(result.accuracy)} (${pct(result.plaintextAccuracy)}) | ${epochSeconds.toFixed(1)} s (twin ${(twinSeconds * 1000).toFixed(1)} ms, ${(epochSeconds / twinSeconds).toFixed(0)}×) | ${epochMb.toFixed(1)} MB | ${result.perEpoch[0]?.rounds ?? 0} | ${result.seconds.toFixed(0)} s, ${(result.bytes / 1e6).toFixed(1)} MB | ${cpuSeconds.toFixed(0)} s |`,
      `| MSCryptoNet (published) | — | — | — | ${MSCRYPTONET.seconds} s | ${MSCRYPTONET.megabytes} MB | — | — | — |`,
      '',
    ].join('\n'),
  );
}
const docs = resultsArg();
if (docs !== undefined) {
  const series = `smlp, ${result.architecture.split(' ')[0]}: test accuracy`;
  await recordTraining(join(docs, 'results'), join(docs, 'charts'), [
    ...twinAccuracy.map((value, e) => ({ series, run: 'plaintext twin' as const, epoch: e + 1, value })),
    { series, run: 'encrypted', epoch: epochs, value: result.accuracy },
  ], `last run: ${summary.machine}, ${keyBits}-bit keys`);
}
