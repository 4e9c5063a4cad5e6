// `blindml infer` refuses bad input with one readable line and a non-zero exit; a small run works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliProcess } from '../helpers/cli.js';
import { PRECOMPUTE_BUDGET_BYTES, precomputeWindow } from '../../src/cli/ckks-job.js';

const cifar = new URL('../../models/cifar-shaped.onnx', import.meta.url).pathname;

test('infer refuses images that do not fit the model, naming both shapes', async () => {
  const r = await runCli(['infer', '--model', cifar, '--limit', '1', '--key-bits', '512', '--insecure', '--threads', '0']);
  assert.equal(r.code, 1);
  assert.equal(r.lines.length, 1, r.stderr);
  assert.match(r.lines[0]!, /^blindml: the images are \[1, 28, 28\] but the model expects \[3, 32, 32\]/);
});

test('infer refuses small keys without --insecure, and --images without --labels', async () => {
  const weak = await runCli(['infer', '--limit', '1', '--key-bits', '1024']);
  assert.equal(weak.code, 2);
  assert.match(weak.lines[0]!, /insecure/);
  const half = await runCli(['infer', '--images', 'x.idx3-ubyte', '--limit', '1']);
  assert.equal(half.code, 2);
  assert.match(half.lines[0]!, /--images and --labels go together/);
});

test('infer reports a truncated image file or a model that is not ONNX in one line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-infer-'));
  const images = join(dir, 'images.idx3-ubyte');
  const labels = join(dir, 'labels.idx1-ubyte');
  writeFileSync(images, Uint8Array.of(0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3));
  writeFileSync(labels, Uint8Array.of(0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3, 4, 5));
  const truncated = await runCli(['infer', '--images', images, '--labels', labels, '--limit', '1', '--key-bits', '512', '--insecure', '--threads', '0']);
  assert.equal(truncated.code, 1);
  assert.equal(truncated.lines.length, 1, truncated.stderr);
  const junkModel = join(dir, 'model.onnx');
  writeFileSync(junkModel, 'not a model');
  const junk = await runCli(['infer', '--model', junkModel, '--limit', '1', '--key-bits', '512', '--insecure', '--threads', '0']);
  assert.equal(junk.code, 1);
  assert.equal(junk.lines.length, 1, junk.stderr);
});

test('--json prints one object with the fields the issue asks for', () => {
  const r = runCliProcess(['infer', '--limit', '2', '--key-bits', '512', '--insecure', '--threads', '0', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  for (const field of ['predictions', 'samples', 'accuracy', 'plaintextAccuracy', 'agreement', 'msPerSample', 'bytesPerSample', 'keyBits', 'scheme']) {
    assert.ok(field in out, field);
  }
  assert.equal(out['samples'], 2);
  assert.equal(out['agreement'], 1);
  assert.deepEqual(out['predictions'], out['plaintextPredictions']);
  assert.equal(out['keyBits'], 512);
  assert.equal(out['scheme'], 'paillier');
  assert.equal(out['keyPrimes'], 3, 'inference clients make three-prime keys by default');
});

test('--key-primes 2 makes a two-prime client key; anything else is refused', () => {
  const r = runCliProcess(['infer', '--limit', '1', '--key-bits', '512', '--insecure', '--threads', '0', '--key-primes', '2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as Record<string, unknown>)['keyPrimes'], 2);
  const bad = runCliProcess(['infer', '--limit', '1', '--key-primes', '4']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /key-primes/);
});

test('CKKS runs precompute a bounded number of images at a time (the WebAssembly heap is 4 GiB)', () => {
  const refImage = 2_100;
  assert.equal(precomputeWindow(refImage, 256 * 1024, 100), 1, 'the reference CNN: one image at a time');
  assert.equal(precomputeWindow(10, 256 * 1024, 900), 204);
  assert.equal(precomputeWindow(10, 256 * 1024, 5), 5);
  assert.ok(precomputeWindow(10, 256 * 1024, 900) * 10 * 256 * 1024 <= PRECOMPUTE_BUDGET_BYTES);
});

test('--skip needs --images; --no-precompute is for --scheme ckks; a skip past the file is refused', async () => {
  const noFile = await runCli(['infer', '--limit', '1', '--skip', '3']);
  assert.equal(noFile.code, 2);
  assert.match(noFile.lines[0]!, /--skip applies to --images/);
  const paillier = await runCli(['infer', '--limit', '1', '--no-precompute']);
  assert.equal(paillier.code, 2);
  assert.match(paillier.lines[0]!, /--no-precompute applies to --scheme ckks/);
  const dir = mkdtempSync(join(tmpdir(), 'blindml-skip-'));
  const images = join(dir, 'images.idx3-ubyte');
  const labels = join(dir, 'labels.idx1-ubyte');
  writeFileSync(images, Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, ...new Uint8Array(2 * 784)]));
  writeFileSync(labels, Uint8Array.of(0, 0, 8, 1, 0, 0, 0, 2, 1, 2));
  const past = await runCli(['infer', '--scheme', 'ckks', '--images', images, '--labels', labels, '--skip', '2']);
  assert.equal(past.code, 2);
  assert.match(past.lines[0]!, /leaves no images/);
});

test('--scheme ckks --no-precompute --json: cold latency, the same predictions as plaintext', () => {
  const r = runCliProcess(['infer', '--scheme', 'ckks', '--limit', '2', '--no-precompute', '--threads', '0', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(out['agreement'], 1);
  assert.equal(out['precomputed'], false);
  assert.ok((out['latencyMs'] as { median: number }).median > 0);
});
