/**
 * The `blindml` command line. Each command family lives in `./commands/<family>.ts` and registers
 * itself on the root program; this file only wires them up and turns errors into one readable line.
 *
 * @module
 */
import { Command, CommanderError } from 'commander';
import { ServiceRequestError } from '../client/owner.js';
import { BlindmlError } from '../errors.js';
import { registerCommands } from './commands/index.js';
import { UsageError } from './usage-error.js';
import { packageVersion } from './version.js';

export { UsageError };

/** Builds the root program with every command registered. Exposed for tests. */
export function buildProgram(): Command {
  const program = new Command('blindml')
    .description('Neural networks on data the machine running them never sees.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerCommands(program);
  return program;
}

/**
 * Runs the CLI and resolves to the process exit code. Never throws: every error becomes one line
 * on stderr (`blindml: <what went wrong>`) and a non-zero code.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    return reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander already printed its message (or the help text).
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof ServiceRequestError && err.status === 401) {
    process.stderr.write('blindml: the API key was not accepted by the service (give the owner key with --api-key or $BLINDML_API_KEY)\n');
    return 1;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`blindml: ${err.message}\n`);
    return 2;
  }
  if (err instanceof BlindmlError) {
    process.stderr.write(`blindml: ${err.message}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`blindml: unexpected error: ${message}\n`);
  if (process.env['BLINDML_DEBUG'] && err instanceof Error && err.stack) {
    process.stderr.write(`${err.stack}\n`);
  }
  return 1;
}
