/**
 * `blindml bench paillier`: the Paillier benchmark against paillier-bigint.
 *
 * @module
 */
import type { Command } from 'commander';
import { inferBenchMarkdown, inferCases, polyBenchMarkdown, runInferBench, runPolyBench, writeInferSection } from '../../bench/infer-bench.js';
import { benchToMarkdown, runPaillierBench, type PaillierBenchResult } from '../../bench/paillier-bench.js';
import { progressBar } from '../progress.js';
import { deprecatedAlias, nonNegativeInt, positiveInt } from '../options.js';
import { join } from 'node:path';

export { nonNegativeInt, positiveInt };

interface BenchOptions {
  keyBits: number;
  reps: number;
  json?: boolean;
  insecure?: boolean;
  results?: string;
}

/**
 * Records a run's numbers in DOCS/results/ and redraws DOCS/charts/. The chart renderer (vega) is a
 * development dependency, loaded only here.
 */
async function recordResults(docs: string, record: (charts: typeof import('../../bench/charts.js'), resultsDir: string) => void): Promise<void> {
  const charts = await import('../../bench/charts.js');
  const resultsDir = join(docs, 'results');
  record(charts, resultsDir);
  const written = await charts.writeCharts(resultsDir, join(docs, 'charts'));
  process.stderr.write(`charts: ${written.join(', ')}\n`);
}

/** Runs the Paillier benchmark with a progress bar on stderr and returns its results. */
export async function benchPaillier(options: BenchOptions): Promise<PaillierBenchResult> {
  const bar = progressBar(9, `paillier ${options.keyBits}-bit`, process.stderr.isTTY === true);
  try {
    return await runPaillierBench({
      bits: options.keyBits,
      reps: options.reps,
      insecure: options.insecure ?? false,
      onStep: (done, _total, label) => bar.update(done, label),
    });
  } finally {
    bar.finish();
  }
}

export function registerBenchCommands(program: Command): void {
  const bench = program.command('bench').description('benchmarks against baseline libraries, measured in the same run');
  const paillier = bench
    .command('paillier')
    .description('Paillier keygen, encrypt, decrypt, ciphertext×int, 784-term dot product and bulk encryption vs paillier-bigint')
    .option('--key-bits <n>', 'modulus size in bits', positiveInt, 2048)
    .option('--reps <n>', 'repetitions per operation (medians are reported; at least 5)', positiveInt, 5)
    .option('--insecure', 'allow a modulus below 2048 bits (to compare with published small-key figures)')
    .option('--json', 'print one JSON object {bits, machine, rows} on stdout')
    .option('--results <dir>', 'also record the ratios in DIR/results/paillier.json and redraw the charts in DIR/charts/ (needs the development dependencies)')
    .action(async (options: BenchOptions) => {
      if (!process.stderr.isTTY && !options.json) process.stderr.write('running the Paillier benchmark (a few minutes)...\n');
      const result = await benchPaillier(options);
      if (options.results !== undefined) {
        await recordResults(options.results, (charts, dir) =>
          charts.writeResults(dir, 'paillier', {
            note: `${result.bits} bits, blindml vs paillier-bigint, medians; ${result.machine}`,
            rows: result.rows.flatMap((r) => (r.ratio !== null && charts.PAILLIER_OPS[r.op] !== undefined ? [{ op: charts.PAILLIER_OPS[r.op]!, ratio: r.ratio }] : [])),
          }),
        );
      }
      process.stdout.write(options.json ? `${JSON.stringify(result)}\n` : `${benchToMarkdown(result)}\n`);
    });
  deprecatedAlias(paillier, 'bits', 'key-bits', positiveInt);
  bench
    .command('infer')
    .description('encrypted inference per model and mode: time per image (service, client), bytes, rounds, agreement')
    .option('--key-bits <bits>', 'Paillier modulus size', positiveInt, 2048)
    .option('--reference', 'also time the 1.56 M-parameter reference CNN (slow)')
    .option('--only-reference', 'time only the reference CNN')
    .option('--no-poly', 'skip the ckks-poly row (a full batch of 4096 images per core through models/fashion-poly.onnx)')
    .option('--write <file>', 'replace the inference section of this Markdown file (e.g. docs/benchmarks.md)')
    .option('--json', 'print the results as JSON')
    .option('--results <dir>', 'also record the times in DIR/results/inference.json and redraw the charts in DIR/charts/ (needs the development dependencies)')
    .action(async (options: { keyBits: number; reference?: boolean; onlyReference?: boolean; poly?: boolean; write?: string; json?: boolean; results?: string }) => {
      const only = options.onlyReference ?? false;
      const bench = await runInferBench(inferCases((options.reference ?? false) || only, only), options.keyBits, (c) =>
        process.stderr.write(`timing ${c.model}, ${c.scheme ?? 'paillier'}, ${c.batch > 1 ? 'batch' : 'latency'} mode, ${c.images} images...\n`),
      );
      let table = inferBenchMarkdown(bench);
      const rows: { model: string; scheme: string; mode: string; msPerImage: number }[] = bench.rows.map(({ model, result: r }) => ({
        model,
        scheme: r.scheme === 'paillier' ? 'Paillier' : r.precomputed === false ? 'CKKS (cold)' : 'CKKS',
        mode: r.mode,
        msPerImage: r.msPerSample,
      }));
      if (options.poly !== false && !only) {
        process.stderr.write('timing fashion-poly.onnx, ckks-poly, a batch of 4096 images per core...\n');
        const poly = await runPolyBench();
        table += `\n\n${polyBenchMarkdown(poly)}`;
        Object.assign(bench, { poly });
        rows.push({ model: poly.model, scheme: 'ckks-poly', mode: 'one round', msPerImage: poly.result.msPerSample });
      }
      if (options.results !== undefined) {
        await recordResults(options.results, (charts, dir) => charts.writeResults(dir, 'inference', { note: `${bench.keyBits}-bit Paillier keys, CKKS at 128-bit security; ${bench.machine}`, rows }));
      }
      if (options.write) writeInferSection(options.write, table);
      process.stdout.write(options.json ? `${JSON.stringify(bench)}\n` : `${table}\n`);
    });
}
