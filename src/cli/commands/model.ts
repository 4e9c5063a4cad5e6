/**
 * `blindml model info <file.onnx>` and `blindml model eval <file.onnx>`: what blindml makes of a
 * model, and its plaintext accuracy on Fashion-MNIST as computed by blindml's own executor.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { DataNotFoundError, ShapeError } from '../../errors.js';
import type { LabeledImages } from '../../data/files.js';
import { readLabeledImages } from '../../data/files.js';
import { loadFashionMnist, loadFashionMnistSample } from '../../data/fashion-mnist.js';
import { importOnnx } from '../../nn/onnx.js';
import { accuracy, predictPlaintext } from '../../nn/plaintext.js';
import { formatShape } from '../../nn/shape.js';
import { UsageError } from '../usage-error.js';
import { parseLabelList, readModelLabels, withModelLabels } from '../../data/onnx-labels.js';
import { writeAtomically } from '../write-atomically.js';

interface EvalOptions {
  images?: string;
  labels?: string;
  sample: boolean;
  limit?: string;
  json: boolean;
}

export function registerModelCommands(program: Command): void {
  const model = program.command('model').description('Inspect and evaluate models.');
  model
    .command('info')
    .description('Import an ONNX model and print its layers, shapes and parameter count.')
    .argument('<file>', 'an .onnx file')
    .action((file: string) => {
      const bytes = readModelFile(file);
      const labels = readModelLabels(bytes);
      process.stdout.write(`${importOnnx(bytes).summary()}\n${labels ? `class names: ${labels.join(', ')}\n` : ''}`);
    });
  model
    .command('label')
    .description("Store class names in a model (its ONNX metadata 'labels'), which predict prints and the service keeps.")
    .argument('<file>', 'an .onnx file')
    .requiredOption('--labels <names>', 'class names, comma-separated or a file with one per line')
    .option('-o, --output <file>', 'write the labelled model here (default: replace <file>)')
    .action((file: string, opts: { labels: string; output?: string }) => {
      const bytes = readModelFile(file);
      const model = importOnnx(bytes);
      const names = labelsArgument(opts.labels);
      if (names.length !== model.outputSize) throw new UsageError(`${names.length} class names for a model with ${model.outputSize} outputs`);
      writeAtomically(opts.output ?? file, withModelLabels(bytes, names));
      process.stdout.write(`${opts.output ?? file}: ${names.length} class names\n`);
    });
  model
    .command('eval')
    .description(
      'Plaintext accuracy with blindml\'s executor: on the full Fashion-MNIST test set if it is ' +
        'installed (see `blindml data fetch`), else on the committed 1,000-image sample.',
    )
    .argument('<file>', 'an .onnx file')
    .option('--images <path>', 'IDX image file (.gz or not) instead of Fashion-MNIST')
    .option('--labels <path>', 'IDX label file to go with --images')
    .option('--sample', 'use the committed 1,000-image sample even if the full test set is there', false)
    .option('--limit <n>', 'evaluate only the first n images')
    .option('--json', 'print one JSON object on stdout', false)
    .action((file: string, opts: EvalOptions) => {
      const model = importOnnx(readModelFile(file));
      const { data, source } = evalData(opts);
      if (formatShape(data.shape) !== formatShape(model.inputShape)) {
        throw new ShapeError(
          `the model takes ${formatShape(model.inputShape)} inputs but the images are ${formatShape(data.shape)}`,
        );
      }
      const start = performance.now();
      const predictions = predictPlaintext(model, data.images);
      const ms = performance.now() - start;
      const result = {
        model: file,
        data: source,
        samples: data.count,
        accuracy: accuracy(predictions, data.labels),
        msPerSample: ms / data.count,
      };
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(result)}\n`
          : `${file}: accuracy ${(100 * result.accuracy).toFixed(2)}% on ${data.count} images ` +
              `(${source}), ${result.msPerSample.toFixed(2)} ms per image\n`,
      );
    });
}

/**
 * A `--labels` value: names inline (comma-separated or a JSON array), or the path of a file that
 * holds them.
 *
 * @throws FormatError for an empty list or name.
 */
export function labelsArgument(value: string): string[] {
  let text = value;
  try {
    text = readFileSync(value, 'utf8');
  } catch {
    // Not a file: the names themselves.
  }
  return parseLabelList(text);
}

/** Reads a model file. @throws DataNotFoundError naming the file. */
export function readModelFile(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new DataNotFoundError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`, { cause: err });
  }
}

function evalData(opts: EvalOptions): { data: LabeledImages; source: string } {
  const limit = parseLimit(opts.limit);
  const limitOption = limit === undefined ? {} : { limit };
  if (opts.images !== undefined || opts.labels !== undefined) {
    if (opts.images === undefined || opts.labels === undefined) {
      throw new UsageError('--images and --labels go together');
    }
    return { data: readLabeledImages(opts.images, opts.labels, limitOption), source: opts.images };
  }
  if (!opts.sample) {
    try {
      return { data: loadFashionMnist('test', limitOption), source: 'Fashion-MNIST test set' };
    } catch (err) {
      if (!(err instanceof DataNotFoundError)) throw err;
      process.stderr.write('full Fashion-MNIST test set not found; using the committed 1,000-image sample\n');
    }
  }
  return { data: loadFashionMnistSample(limitOption), source: 'committed 1,000-image sample' };
}

function parseLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--limit must be a positive integer, got '${text}'`);
  return n;
}
