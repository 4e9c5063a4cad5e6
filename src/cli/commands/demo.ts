/**
 * `blindml demo`: what `npm run demo` runs. Until encrypted inference lands, the Paillier
 * benchmark with 2048-bit keys.
 *
 * @module
 */
import type { Command } from 'commander';
import { benchToMarkdown } from '../../bench/paillier-bench.js';
import { benchPaillier } from './bench.js';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the demo: the Paillier benchmark with 2048-bit keys against paillier-bigint')
    .action(async () => {
      process.stderr.write('blindml demo: timing 2048-bit Paillier against paillier-bigint (takes a few minutes)\n');
      const result = await benchPaillier({ bits: 2048, reps: 5 });
      process.stdout.write(`${benchToMarkdown(result)}\n\nratio = baseline time / blindml time (higher is better for blindml)\n`);
    });
}
