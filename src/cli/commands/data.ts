/**
 * `blindml data fetch <dataset>`: puts a data set where blindml looks for it.
 *
 * @module
 */
import type { Command } from 'commander';
import { fetchFashionMnist } from '../../data/fashion-mnist.js';
import { UsageError } from '../usage-error.js';

const FETCHERS: Readonly<Record<string, (dataDir: string | undefined, force: boolean, from: string | undefined) => string>> = {
  'fashion-mnist': (dataDir, force, from) =>
    fetchFashionMnist({
      ...(dataDir === undefined ? {} : { dataDir }),
      ...(from === undefined ? {} : { from }),
      force,
      log: (line) => process.stderr.write(`${line}\n`),
    }),
};

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('Obtain and inspect data sets.');
  data
    .command('fetch')
    .description(
      'Put a data set into the data directory ($BLINDML_DATA_DIR/<name>, default ~/.cache/blindml/<name>) ' +
        'and verify it: from an installed copy, the Debian package (apt-get download), or --from a directory or archive you have.',
    )
    .argument('<dataset>', `one of: ${Object.keys(FETCHERS).join(', ')}`)
    .option('--data-dir <dir>', 'put the files here instead')
    .option('--from <path>', 'offline: a directory, tar archive (.tar, .tar.gz, .tgz) or .deb holding the files')
    .option('--force', 'fetch again even if the files are already there', false)
    .action((dataset: string, opts: { dataDir?: string; force: boolean; from?: string }) => {
      const fetcher = FETCHERS[dataset];
      if (fetcher === undefined) {
        throw new UsageError(
          `unknown data set '${dataset}' (known: ${Object.keys(FETCHERS).join(', ')})`,
        );
      }
      process.stdout.write(`${fetcher(opts.dataDir, opts.force, opts.from)}\n`);
    });
}
