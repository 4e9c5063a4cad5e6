/**
 * Runs the CLI in-process through `main()` and captures stderr. stdout is left alone (the test
 * runner reports through it), so tests read results from `--output` files; {@link runCliProcess}
 * covers what goes to stdout.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stderr: string;
  /** stderr split into lines, without the empty one after the final newline. */
  lines: string[];
}

function splitLines(text: string): string[] {
  return text.split('\n').filter((line, i, all) => !(line === '' && i === all.length - 1));
}

/** `blindml ...args` in this process; resolves to its exit code and what it wrote to stderr. */
export async function runCli(args: readonly string[]): Promise<CliResult> {
  let stderr = '';
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'blindml', ...args]);
    return { code, stderr, lines: splitLines(stderr) };
  } finally {
    process.stderr.write = original;
  }
}

const RUN_TS = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `blindml ...args` as a child process (from the sources, through tsx), with stdout. */
export function runCliProcess(
  args: readonly string[],
  options: { cwd?: string; input?: string } = {},
): CliResult & { stdout: string } {
  // `--import tsx` resolves from the working directory, which may be a temporary one.
  const done = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), RUN_TS, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    input: options.input ?? '',
    encoding: 'utf8',
  });
  return { code: done.status ?? -1, stdout: done.stdout, stderr: done.stderr, lines: splitLines(done.stderr) };
}
