// `blindml predict --server` as a model owner and a user run it: label a model, upload it, predict
// on a PNG through the running service under Paillier, CKKS and ckks-poly; a wrong API key is named as such.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { runCliProcess } from '../helpers/cli.js';
import { tinyPolyOnnx } from '../helpers/poly-model.js';

const RUN_TS = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'blindml-predict-server-'));
const KEY = 'bml_predict-test-owner-key-0123456789abcdefghij';
const NAMES = ['top', 'trousers', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'boot'];

let server: ChildProcess;
let url = '';

before(async () => {
  server = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), RUN_TS, 'serve', '--port', '0', '--db', join(dir, 'r.db'), '--insecure', '--threads', '1', '--log-level', 'warn'], {
    cwd: ROOT,
    env: { ...process.env, BLINDML_API_KEY: KEY },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    server.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving \d+ model\(s\) at (\S+) /.exec(err);
      if (m) {
        url = m[1]!;
        resolve();
      }
    });
    server.on('exit', () => reject(new Error(`serve exited: ${err}`)));
  });
});

after(() => {
  if (server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('a labelled model uploaded by its owner predicts through the service, with its class names', () => {
  const sample = loadFashionMnistSample({ limit: 1 });
  const png = new PNG({ width: 28, height: 28 });
  sample.images.forEach((v, i) => png.data.set([Math.round(255 * v), Math.round(255 * v), Math.round(255 * v), 255], i * 4));
  const image = join(dir, 'boot.png');
  writeFileSync(image, PNG.sync.write(png));
  const model = join(dir, 'labelled.onnx');
  assert.equal(runCliProcess(['model', 'label', 'models/fashion-small.onnx', '--labels', NAMES.join(','), '-o', model]).code, 0);

  const wrong = runCliProcess(['models', 'add', model, '--server', url, '--api-key', 'bml_not-the-key']);
  assert.equal(wrong.code, 1);
  assert.equal(wrong.stderr.trim(), 'blindml: the API key was not accepted by the service (give the owner key with --api-key or $BLINDML_API_KEY)');
  const added = runCliProcess(['models', 'add', model, '--server', url, '--api-key', KEY]);
  assert.equal(added.code, 0, added.stderr);

  for (const scheme of ['paillier', 'ckks']) {
    const r = runCliProcess(['predict', image, '--model', model, '--server', url, '--scheme', scheme, '--threads', '0', '--json', ...(scheme === 'paillier' ? ['--key-bits', '1024', '--insecure'] : [])]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { scheme: string; predictions: Array<{ input: string; className: string; label: number; plaintextLabel: number }> };
    assert.equal(out.scheme, scheme);
    assert.deepEqual(out.predictions.map((p) => [p.input, p.className, p.label]), [['boot.png', 'boot', 9]]);
    assert.equal(out.predictions[0]!.plaintextLabel, 9);
  }
  // ckks-poly: the polynomial network is registered by its owner's key on first use, then one batch job.
  const polyModel = join(dir, 'poly.onnx');
  writeFileSync(polyModel, tinyPolyOnnx());
  const poly = runCliProcess(['predict', image, '--model', polyModel, '--server', url, '--scheme', 'ckks-poly', '--api-key', KEY, '--json']);
  assert.equal(poly.code, 0, poly.stderr);
  const polyOut = JSON.parse(poly.stdout) as { scheme: string; predictions: Array<{ input: string; label: number; plaintextLabel: number; probabilities: number[] }> };
  assert.equal(polyOut.scheme, 'ckks-poly');
  assert.equal(polyOut.predictions.length, 1);
  assert.equal(polyOut.predictions[0]!.label, polyOut.predictions[0]!.plaintextLabel);
  assert.equal(polyOut.predictions[0]!.probabilities.length, 10);
});
