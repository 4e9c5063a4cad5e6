/**
 * The option vocabulary every command shares: one name per concept (`--threads`, `--key-bits`,
 * `--batch-size`), validated numbers, and old names still accepted with a note on stderr.
 *
 * @module
 */
import { InvalidArgumentError, Option, type Command } from 'commander';

/** The inference schemes, and the bundled model each one runs when `--model` is not given. */
export const SCHEME_DEFAULT_MODELS: Readonly<Record<'paillier' | 'ckks' | 'ckks-poly', string>> = {
  paillier: 'fashion-small.onnx',
  ckks: 'fashion-small.onnx',
  'ckks-poly': 'fashion-poly.onnx',
};

/** Parses a positive integer option, with commander's one-line error otherwise. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** Parses a non-negative integer option, with commander's one-line error otherwise. */
export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

/**
 * `--calibration <path>`, repeatable: each use adds one file or directory. One path per use (not
 * `<files...>`), so the command's own inputs after it are never taken for calibration data.
 */
export function calibrationOption(description: string): Option {
  return new Option('--calibration <path>', `${description}; repeat for more files`).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
}

/**
 * Accepts `--<old> <value>` as a hidden, deprecated spelling of `--<current>`: the value is parsed
 * like the current option's, stored under its name, and a one-line note goes to stderr.
 */
export function deprecatedAlias(command: Command, old: string, current: string, parse: (value: string) => unknown): Command {
  const option = new Option(`--${old} <value>`).hideHelp().argParser(parse);
  command.addOption(option);
  command.on(`option:${old}`, (raw: string) => {
    process.stderr.write(`blindml: --${old} is deprecated; use --${current}\n`);
    command.setOptionValueWithSource(camel(current), parse(raw), 'cli');
  });
  return command;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The `--threads` option: worker threads, 0 = everything on the main thread. */
export function threadsOption(defaultHelp = 'all cores'): Option {
  return new Option('--threads <n>', `worker threads (0 = none, all work on the main thread; default: ${defaultHelp})`).argParser(nonNegativeInt);
}

/**
 * The `--activations` option: how GELU, SiLU, HardSwish, sigmoid and tanh run in the interactive
 * protocols compiled in process (the service's own compilation decides with `--server`).
 */
export function activationsOption(): Option {
  return new Option(
    '--activations <mode>',
    'GELU, SiLU, HardSwish, sigmoid, tanh: client = the client evaluates them exactly on shuffled values it sees in the clear; ' +
      'spline = blinded ReLU splines over the calibrated range (hides the values, small fit error; docs/security.md). In process only',
  )
    .choices(['client', 'spline'])
    .default('client');
}
