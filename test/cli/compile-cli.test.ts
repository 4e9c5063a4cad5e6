// `blindml compile` writes one verifiable .blindml file; `inspect` says what it holds and what the
// client learns per round; infer and predict run it with its own calibration and class names.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { runCli, runCliProcess } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'blindml-compile-'));
const file = join(dir, 'small.blindml');
const NAMES = ['top', 'trousers', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot'];

interface Inspected {
  classNames: string[] | null;
  calibrationInputs: number;
  input: { shape: number[]; normalize: string };
  schemes: Record<string, { supported: boolean; reason?: string; rounds?: Array<{ values: number; kind: string; blinded: boolean }>; details?: { scales?: Array<{ q: number[]; shift: number }> } }>;
}

let compiled: ReturnType<typeof runCliProcess>;
before(() => {
  compiled = runCliProcess(['compile', 'models/fashion-small.onnx', '--labels', NAMES.join(','), '-o', file]);
});

test('compile writes a .blindml file that inspect verifies and explains', () => {
  assert.equal(compiled.code, 0, compiled.stderr);
  assert.match(compiled.stdout, /blindml model file v1 .*\(verified\)/);
  assert.match(compiled.stdout, /class names: top, trousers/);
  assert.match(compiled.stdout, /paillier: 2 client round\(s\)\n {2}round 1: \d+ values \(relu\) each behind a fresh random positive factor/);
  assert.match(compiled.stdout, /ckks-poly: not available — node '[^']+' \(relu\) cannot be evaluated on CKKS ciphertexts without the client/);
  const r = runCliProcess(['inspect', file, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as Inspected;
  assert.deepEqual(info.classNames, NAMES);
  assert.equal(info.calibrationInputs, 100);
  assert.deepEqual(info.input, { shape: [1, 28, 28], normalize: 'unit' });
  assert.equal(info.schemes['paillier']!.rounds!.length, 2);
  assert.ok(info.schemes['paillier']!.rounds!.every((round) => round.blinded));
  assert.equal(info.schemes['ckks-poly']!.supported, false);
});

test('inspect refuses an edited file and another version, in one line each', async () => {
  const text = readFileSync(file, 'utf8');
  const edited = join(dir, 'edited.blindml');
  writeFileSync(edited, text.replace('"name": "fashion-small"', '"name": "fashion-smalI"'));
  const r = await runCli(['inspect', edited]);
  assert.equal(r.code, 1);
  assert.match(r.lines[0]!, /the \.blindml hash does not match its content \(edited or damaged file\)/);
  const future = join(dir, 'future.blindml');
  writeFileSync(future, text.replace('"version": 1', '"version": 2'));
  const v = await runCli(['inspect', future]);
  assert.equal(v.code, 1);
  assert.match(v.lines[0]!, /\.blindml version 2; this blindml reads version 1/);
});

test('infer runs a .blindml file with the scales compile recorded; predict prints its class names', () => {
  const info = JSON.parse(runCliProcess(['inspect', file, '--json']).stdout) as Inspected;
  const infer = runCliProcess(['infer', '--model', file, '--limit', '1', '--key-bits', '512', '--insecure', '--threads', '0', '--json']);
  assert.equal(infer.code, 0, infer.stderr);
  const result = JSON.parse(infer.stdout) as { scales: Array<{ q: number[]; shift: number }>; agreement: number };
  assert.deepEqual(result.scales.map(({ q, shift }) => ({ q, shift })), info.schemes['paillier']!.details!.scales);
  assert.equal(result.agreement, 1);
  const sample = loadFashionMnistSample({ limit: 1 });
  const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 784), }".padEnd(117, ' ') + '\n';
  const npy = join(dir, 'one.npy');
  writeFileSync(npy, Buffer.concat([Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length, 0), Buffer.from(header), Buffer.from(sample.images.buffer, 0, 784 * 4)]));
  const p = runCliProcess(['predict', npy, '--model', file, '--scheme', 'ckks', '--threads', '0']);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /^one\.npy\[0\]\s+boot\s+\d+\.\d%\n$/);
});
