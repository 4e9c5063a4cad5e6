/**
 * `blindml compile model.onnx -o model.blindml` (one versioned file a model owner ships) and
 * `blindml inspect <file>` (what a model file contains and what the client learns per round).
 *
 * @module
 */
import { basename } from 'node:path';
import type { Command } from 'commander';
import { parseNormalization } from '../../data/inputs.js';
import { loadModel } from '../inference-job.js';
import { buildModelFile, isModelFile, readModelFile, type ModelFile, type SchemeSummary } from '../model-file.js';
import { progressBar, progressEnabled } from '../progress.js';
import { writeAtomically } from '../write-atomically.js';
import { packageVersion } from '../version.js';
import { defaultNormalize, knownClassNames, predictCalibration } from './predict.js';
import { readModelFile as readBytes } from './model.js';
import { calibrationOption } from '../options.js';

const count = (n: number) => n.toLocaleString('en-US');

/** What the client learns in the rounds of one scheme, in words. */
function schemeLines(name: string, s: SchemeSummary, outputs: number): string[] {
  if (!s.supported) return [`${name}: not available — ${s.reason}`];
  if (name === 'ckks-poly') {
    const d = s.details as { depth: number; polyModulusDegree: number };
    return [
      `${name}: one request, no client rounds (multiplicative depth ${d.depth}, N = ${count(d.polyModulusDegree)}); ` +
        `the service learns nothing about the inputs, the client only the ${outputs} logits`,
    ];
  }
  const lines = [`${name}: ${s.rounds.length} client round(s)`];
  s.rounds.forEach((r, i) => {
    const factor = r.kind.startsWith('max-pool') ? 'one fresh random positive factor per pooling window, windows and cells shuffled' : 'each behind a fresh random positive factor, shuffled';
    const how = r.blinded
      ? `${factor}: the client learns their signs (how many units are active) and magnitudes only up to the factor`
      : 'shuffled but in the clear (not positively homogeneous): the client learns this layer\'s values';
    lines.push(`  round ${i + 1}: ${count(r.values)} values (${r.kind}) ${how}; it returns ${count(r.returns)}`);
  });
  lines.push(`  at the end: the ${outputs} logits (the prediction)`);
  if (name === 'ckks') lines.push('  also: which of its values feed each output position (the routing table; see docs/security.md)');
  return lines;
}

/** The human-readable description of a model file. */
export function describeModelFile(path: string, f: ModelFile): string {
  const params = /total (\d+) params/.exec(f.model.summary())?.[1];
  return [
    `${path}: blindml model file v1 by ${f.createdBy}, sha256 ${f.sha256.slice(0, 16)}… (verified)`,
    `model ${f.name}: input ${f.input.shape.join('×')} (--normalize ${f.input.normalize}), ${f.model.outputSize} outputs${params ? `, ${count(Number(params))} parameters` : ''}; ONNX sha256 ${f.onnxSha256.slice(0, 16)}…`,
    `class names: ${f.classNames ? f.classNames.join(', ') : 'none (predict prints class N)'}`,
    `calibration: ${count(f.calibration.length / f.model.inputSize)} inputs (${f.calibrationEncoding === 'uint8' ? '8-bit' : 'float32'}), readable by whoever holds this file`,
    ...schemeLines('paillier', f.schemes.paillier, f.model.outputSize),
    ...schemeLines('ckks', f.schemes.ckks, f.model.outputSize),
    ...schemeLines('ckks-poly', f.schemes['ckks-poly'], f.model.outputSize),
  ].join('\n');
}

const withNames = (names: readonly string[] | undefined) => (names ? { classNames: names } : {});


interface CompileOptions {
  output?: string;
  calibration?: string[];
  normalize?: string;
  labels?: string;
  json?: boolean;
}

/** Compiles an ONNX (or re-compiles a .blindml) model into `.blindml` bytes. */
function compileFile(file: string, options: CompileOptions): Uint8Array {
  const loaded = loadModel(file);
  const normalize = options.normalize ?? loaded.normalize ?? defaultNormalize(loaded.model.inputShape);
  const norm = parseNormalization(normalize);
  const bar = progressBar(0, 'compile', progressEnabled(options.json));
  try {
    bar.phase('calibrating and compiling for paillier, ckks and ckks-poly');
    return buildModelFile({
      onnx: loaded.onnx,
      name: basename(file).replace(/\.(onnx|blindml)$/, ''),
      calibration: predictCalibration(loaded, options.calibration, norm),
      ...withNames(knownClassNames(loaded, options.labels)),
      normalize,
      createdBy: `blindml ${packageVersion()}`,
    });
  } finally {
    bar.finish();
  }
}

export function registerCompileCommands(program: Command): void {
  program
    .command('compile')
    .description('compile an ONNX model into one .blindml file: the model, class names, input spec, calibration, what each scheme derives from it, and a hash')
    .argument('<model>', 'an .onnx file')
    .option('-o, --output <file>', 'where to write (default: the model name with .blindml)')
    .addOption(calibrationOption('typical inputs that size the fixed-point scales, in any format predict reads (default: the committed Fashion-MNIST images, for 1×28×28 models); they are stored in the file'))
    .option('--normalize <mode>', 'how 8-bit calibration data becomes model inputs, and what predict should use (see predict --help; default unit for image models, none for feature vectors)')
    .option('--labels <names>', 'class names, comma-separated or a file with one per line (default: the model\'s own)')
    .option('--json', 'print the contents (without the model and calibration bytes) as JSON')
    .action((file: string, options: CompileOptions) => {
      const bytes = compileFile(file, options);
      const out = options.output ?? file.replace(/\.onnx$/, '') + '.blindml';
      writeAtomically(out, bytes);
      const parsed = readModelFile(bytes, out);
      process.stdout.write(options.json ? `${JSON.stringify(jsonOf(out, parsed))}\n` : `${describeModelFile(out, parsed)}\n`);
    });
  program
    .command('inspect')
    .description('print what a .blindml file contains (verifying its hash) and what the client learns in each round of each scheme')
    .argument('<file>', 'a .blindml file (an .onnx file is compiled first, as compile would)')
    .addOption(calibrationOption('for an .onnx file: calibration inputs (default: the committed Fashion-MNIST images)'))
    .option('--json', 'print JSON')
    .action((file: string, options: { calibration?: string[]; json?: boolean }) => {
      const raw = readBytes(file);
      const bytes = isModelFile(raw) ? raw : compileFile(file, options);
      const parsed = readModelFile(bytes, file);
      process.stdout.write(options.json ? `${JSON.stringify(jsonOf(file, parsed))}\n` : `${describeModelFile(file, parsed)}\n`);
    });
}

function jsonOf(path: string, f: ModelFile): object {
  return {
    path,
    name: f.name,
    createdBy: f.createdBy,
    sha256: f.sha256,
    onnxSha256: f.onnxSha256,
    classNames: f.classNames,
    input: f.input,
    outputs: f.model.outputSize,
    calibrationInputs: f.calibration.length / f.model.inputSize,
    schemes: f.schemes,
  };
}
