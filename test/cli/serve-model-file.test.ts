// A model owner ships feature-vector models as .blindml files to `blindml serve --model`; a user
// predicts on raw CSV rows through the service and gets the class names the service keeps.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportOnnx, type ExportSpec } from '../../src/nn/onnx-export.js';
import { importOnnx } from '../../src/nn/onnx.js';
import { runPlaintext } from '../../src/nn/plaintext.js';
import { runCliProcess } from '../helpers/cli.js';

const RUN_TS = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'blindml-serve-model-'));
const KEY = 'bml_serve-model-test-owner-key-0123456789abcdef';

/** Features of very different scales (as breast-cancer's: 0.001 to thousands), standardised by the model's metadata. */
const MEAN = [0.004, 650, 18, 0.1];
const STD = [0.002, 350, 4, 0.03];

/** Deterministic pseudo-random numbers in [-1, 1). */
function noise(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 30) - 1;
}

function spec(outputs: 1 | 2, labels: boolean): ExportSpec {
  const r = noise(outputs);
  const w1 = Array.from({ length: 6 * 4 }, r);
  return {
    inputShape: [4],
    name: 'features',
    description: 'test model on standardised features',
    layers: [
      { kind: 'dense', weights: w1, bias: Array.from({ length: 6 }, r), inputs: 4, outputs: 6 },
      { kind: 'relu' },
      { kind: 'dense', weights: Array.from({ length: 6 * outputs }, r), bias: Array.from({ length: outputs }, r), inputs: 6, outputs },
    ],
    metadata: { 'blindml.standardize': JSON.stringify({ mean: MEAN, std: STD }), ...(labels ? { labels: JSON.stringify(['no', 'yes']) } : {}) },
  };
}

const rows = (n: number, seed: number) => {
  const r = noise(seed);
  return Array.from({ length: n }, () => MEAN.map((m, j) => m + 1.5 * STD[j]! * r()));
};
const csv = (data: number[][]) => `a,b,c,d\n${data.map((row) => row.join(',')).join('\n')}\n`;
/** What the model computes on raw rows, standardised as its metadata says. */
const plain = (onnx: Uint8Array, data: number[][]) => runPlaintext(importOnnx(onnx), Float64Array.from(data.flatMap((row) => row.map((v, j) => (v - MEAN[j]!) / STD[j]!))));

const classifier = exportOnnx(spec(2, true));
const regression = exportOnnx(spec(1, false));
const inputs = rows(6, 7);

let server: ChildProcess;
let url = '';
let serveLog = '';

before(async () => {
  writeFileSync(join(dir, 'classifier.onnx'), classifier);
  writeFileSync(join(dir, 'regression.onnx'), regression);
  writeFileSync(join(dir, 'unlabelled.onnx'), exportOnnx(spec(2, false)));
  writeFileSync(join(dir, 'calibration.csv'), csv(rows(40, 3)));
  writeFileSync(join(dir, 'rows.csv'), csv(inputs));
  for (const name of ['classifier', 'regression']) {
    const c = runCliProcess(['compile', join(dir, `${name}.onnx`), '--calibration', join(dir, 'calibration.csv'), '-o', join(dir, `${name}.blindml`)]);
    assert.equal(c.code, 0, c.stderr);
  }
  server = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), RUN_TS, 'serve', '--port', '0', '--db', join(dir, 'r.db'), '--insecure', '--threads', '1', '--log-level', 'warn',
    '--model', join(dir, 'classifier.blindml'), '--model', join(dir, 'regression.blindml')], {
    cwd: ROOT,
    env: { ...process.env, BLINDML_API_KEY: KEY },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    server.stderr!.on('data', (d: Buffer) => {
      serveLog += d.toString();
      const m = /serving \d+ model\(s\) at (\S+) /.exec(serveLog);
      if (m) {
        url = m[1]!;
        resolve();
      }
    });
    server.on('exit', () => reject(new Error(`serve exited: ${serveLog}`)));
  });
});

after(() => {
  if (server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('serve --model registers .blindml files with their calibration; the public record carries the class names', async () => {
  assert.match(serveLog, /model [0-9a-f]{16} \(classifier\) registered from .*classifier\.blindml/);
  assert.match(serveLog, /serving 2 model\(s\)/);
  const list = (await (await fetch(`${url}/v1/models`)).json()) as { models: { id: string; name: string; inputShape: number[]; classNames?: string[] }[] };
  const record = list.models.find((m) => m.name === 'classifier')!;
  assert.deepEqual(record.inputShape, [4]);
  const one = (await (await fetch(`${url}/v1/models/${record.id}`)).json()) as { classNames?: string[]; standardization?: unknown };
  assert.deepEqual(one.classNames, ['no', 'yes']);
  assert.deepEqual(one.standardization, { mean: MEAN, std: STD });
  assert.equal(list.models.find((m) => m.name === 'regression')!.classNames, undefined);
  // The owner's view: the float calibration rows travelled with the file.
  const owner = (await (await fetch(`${url}/v1/models/${record.id}`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { calibration: string; calibrationSamples: number };
  assert.deepEqual([owner.calibration, owner.calibrationSamples], ['upload', 40]);
});

test('predict --server on raw CSV rows: the service\'s class names, the plaintext model\'s classes, under Paillier and CKKS', () => {
  const expected = plain(classifier, inputs);
  // A local copy without class names: the names printed are the service's.
  const unlabelled = join(dir, 'unlabelled.onnx');
  const id = runCliProcess(['inspect', join(dir, 'classifier.blindml'), '--json']);
  const modelId = (JSON.parse(id.stdout) as { onnxSha256: string }).onnxSha256.slice(0, 16);
  // Another model than the service's: said before anything runs.
  const other = runCliProcess(['predict', join(dir, 'rows.csv'), '--model', 'models/fashion-small.onnx', '--model-id', modelId, '--server', url]);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /the service's model [0-9a-f]{16} takes 4 inputs to 2 outputs, the local model 1×28×28 to 10: check --model FILE/);
  // A user without the model: its shape, standardisation and class names from the service's record.
  const none = runCliProcess(['predict', join(dir, 'rows.csv'), '--model-id', modelId, '--server', url, '--key-bits', '1024', '--insecure', '--json']);
  assert.equal(none.code, 0, none.stderr);
  const remote = JSON.parse(none.stdout) as { classNames: string[]; predictions: { label: number; plaintextLabel?: number; logits: number[] }[] };
  assert.deepEqual(remote.classNames, ['no', 'yes']);
  remote.predictions.forEach((p, i) => {
    assert.equal(p.plaintextLabel, undefined);
    assert.ok(Math.abs(p.logits[0]! - expected[2 * i]!) < 1e-3, `row ${i} without the model: ${p.logits[0]} vs ${expected[2 * i]}`);
  });
  const text = runCliProcess(['predict', join(dir, 'rows.csv'), '--model-id', modelId, '--server', url, '--scheme', 'ckks']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^rows\.csv\[0\]  (no |yes) /);
  assert.match(text.stderr, /6 input\(s\), ckks, .*; no plaintext check \(the model is not here: pass --model FILE for one\)/);
  for (const scheme of ['paillier', 'ckks']) {
    const r = runCliProcess(['predict', join(dir, 'rows.csv'), '--model', unlabelled, '--model-id', modelId, '--server', url, '--scheme', scheme, '--threads', '0', '--json', ...(scheme === 'paillier' ? ['--key-bits', '1024', '--insecure'] : [])]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { classNames: string[]; predictions: { input: string; label: number; className: string; logits: number[] }[] };
    assert.deepEqual(out.classNames, ['no', 'yes']);
    out.predictions.forEach((p, i) => {
      const want = expected[2 * i + 1]! > expected[2 * i]! ? 1 : 0;
      assert.equal(p.label, want, `${scheme} row ${i}: ${p.logits} vs ${expected[2 * i]}, ${expected[2 * i + 1]}`);
      assert.equal(p.className, ['no', 'yes'][want]);
      assert.ok(Math.abs(p.logits[0]! - expected[2 * i]!) < 1e-3, `${scheme} row ${i}: ${p.logits[0]} vs ${expected[2 * i]}`);
    });
  }
});

test('predict --api-key registers a model the service lacks, with the --calibration rows (float32 IDX)', async () => {
  const model = join(dir, 'unlabelled.onnx');
  const r = runCliProcess(['predict', join(dir, 'rows.csv'), '--model', model, '--calibration', join(dir, 'calibration.csv'), '--server', url, '--api-key', KEY, '--key-bits', '1024', '--insecure', '--threads', '0', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { modelId: string; predictions: { label: number; plaintextLabel: number }[] };
  out.predictions.forEach((p) => assert.equal(p.label, p.plaintextLabel));
  const owner = (await (await fetch(`${url}/v1/models/${out.modelId}`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as { calibration: string; calibrationSamples: number; classNames?: string[] };
  assert.deepEqual([owner.calibration, owner.calibrationSamples, owner.classNames], ['upload', 40, undefined]);
});

test('predict on a regression model prints values, in process and through the service', () => {
  const expected = plain(regression, inputs);
  const local = runCliProcess(['predict', join(dir, 'rows.csv'), '--model', join(dir, 'regression.blindml'), '--key-bits', '1024', '--insecure', '--threads', '0']);
  assert.equal(local.code, 0, local.stderr);
  const lines = local.stdout.trim().split('\n');
  assert.equal(lines.length, 6);
  lines.forEach((line, i) => {
    const [name, value] = line.trim().split(/\s+/);
    assert.equal(name, `rows.csv[${i}]`);
    assert.ok(Math.abs(Number(value) - expected[i]!) < 1e-3, `row ${i}: ${line} vs ${expected[i]}`);
  });
  assert.match(local.stderr, /the values differ from the plaintext model's by at most/);
  const remote = runCliProcess(['predict', join(dir, 'rows.csv'), '--model', join(dir, 'regression.onnx'), '--server', url, '--key-bits', '1024', '--insecure', '--threads', '0', '--json']);
  assert.equal(remote.code, 0, remote.stderr);
  const values = (JSON.parse(remote.stdout) as { predictions: { value: number }[] }).predictions.map((p) => p.value);
  values.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-3, `row ${i}: ${v} vs ${expected[i]}`));
});

test('a damaged, truncated or newer .blindml file: one line from models add and serve --model, which creates nothing', () => {
  const good = readFileSync(join(dir, 'classifier.blindml'), 'utf8');
  const cases: [string, string, RegExp][] = [
    ['truncated', good.slice(0, 900), /not a \.blindml file \(not JSON/],
    ['newer', good.replace('"version": 1', '"version": 2'), /\.blindml version 2; this blindml reads version 1/],
    ['edited', good.replace('"name": "classifier"', '"name": "classifies"'), /hash does not match its content/],
  ];
  for (const [name, text, message] of cases) {
    const file = join(dir, `${name}.blindml`);
    writeFileSync(file, text);
    if (name === 'newer') {
      // serve checks its model files before it creates anything.
      const db = join(dir, `${name}.db`);
      const serve = runCliProcess(['serve', '--port', '0', '--db', db, '--model', file]);
      assert.equal(serve.code, 1, name);
      assert.equal(serve.lines.length, 1, serve.stderr);
      assert.match(serve.stderr, message);
      assert.ok(!existsSync(db), `${name}: no database created`);
    }
    const add = runCliProcess(['models', 'add', file, '--server', url, '--api-key', KEY]);
    assert.equal(add.code, 1, name);
    assert.equal(add.lines.length, 1, add.stderr);
    assert.match(add.stderr, message);
  }
});
