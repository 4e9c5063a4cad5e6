// `blindml infer --scheme ckks-poly`: one readable line for what it cannot do, and the same --json
// fields as the Paillier path on a tiny polynomial network (one full batch costs the same for any
// number of images, so the network, not the image count, keeps this fast).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliProcess } from '../helpers/cli.js';
import { tinyPolyOnnx } from '../helpers/poly-model.js';

test('ckks-poly refuses a ReLU model in one line that says what to do', async () => {
  const r = await runCli(['infer', '--scheme', 'ckks-poly', '--model', 'models/fashion-small.onnx', '--limit', '1']);
  assert.equal(r.code, 1);
  assert.equal(r.lines.length, 1, r.stderr);
  assert.match(r.lines[0]!, /^blindml: node '[^']+' \(relu\) cannot be evaluated on CKKS ciphertexts without the client: replace it by a degree-2 polynomial/);
});

test('--scheme ckks-poly --json prints the common fields, the ring and the throughput', () => {
  const bytes = tinyPolyOnnx();
  const dir = mkdtempSync(join(tmpdir(), 'blindml-poly-'));
  const model = join(dir, 'tiny-poly.onnx');
  writeFileSync(model, bytes);
  const r = runCliProcess(['infer', '--scheme', 'ckks-poly', '--model', model, '--limit', '3', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  for (const field of ['predictions', 'samples', 'accuracy', 'plaintextAccuracy', 'agreement', 'msPerSample', 'bytesPerSample', 'keyBits', 'scheme', 'ckks', 'ckksPoly']) {
    assert.ok(field in out, field);
  }
  assert.equal(out['scheme'], 'ckks-poly');
  assert.equal(out['samples'], 3);
  assert.deepEqual(out['predictions'], out['plaintextPredictions']);
  const ckks = out['ckks'] as { polyModulusDegree: number; coeffModulusBits: number[] };
  assert.equal(out['keyBits'], ckks.coeffModulusBits.reduce((a, b) => a + b, 0));
  assert.equal((out['ckksPoly'] as { depth: number }).depth, 1);
});
