// `blindml infer --scheme ckks-poly`: one readable line for what it cannot do, and the same --json
// fields as the Paillier path on a tiny polynomial network (one full batch costs the same for any
// number of images, so the network, not the image count, keeps this fast).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliProcess } from '../helpers/cli.js';
import { buildModel, floatTensor, randoms } from '../nn/onnx-helpers.js';

test('ckks-poly refuses a ReLU model in one line that says what to do', async () => {
  const r = await runCli(['infer', '--scheme', 'ckks-poly', '--limit', '1']);
  assert.equal(r.code, 1);
  assert.equal(r.lines.length, 1, r.stderr);
  assert.match(r.lines[0]!, /^blindml: layer \d+ \(relu\) cannot be evaluated on CKKS ciphertexts without the client: replace it by a polynomial/);
});

test('ckks-poly refuses --server (in-process only)', async () => {
  const r = await runCli(['infer', '--scheme', 'ckks-poly', '--server', 'http://127.0.0.1:9', '--limit', '1']);
  assert.equal(r.code, 2);
  assert.match(r.lines[0]!, /ckks-poly runs with an in-process service/);
});

test('--scheme ckks-poly --json prints the common fields, the ring and the throughput', () => {
  // 1×28×28 → conv 5×5 stride 4 (1×6×6) → 0.1x² + 0.5x + 0.2 → flatten → dense 10.
  const bytes = buildModel({
    sampleShape: [1, 28, 28],
    nodes: [
      { op: 'Conv', inputs: ['input', 'w', 'b'], outputs: ['c'], attrs: { strides: { ints: [4, 4] } } },
      { op: 'Mul', inputs: ['c', 'c'], outputs: ['sq'] },
      { op: 'Mul', inputs: ['sq', 'a2'], outputs: ['t2'] },
      { op: 'Mul', inputs: ['c', 'a1'], outputs: ['t1'] },
      { op: 'Add', inputs: ['t2', 't1'], outputs: ['s'] },
      { op: 'Add', inputs: ['s', 'a0'], outputs: ['p'] },
      { op: 'Flatten', inputs: ['p'], outputs: ['f'] },
      { op: 'Gemm', inputs: ['f', 'd', 'e'], outputs: ['logits'], attrs: { transB: { i: 1 } } },
    ],
    initializers: [
      floatTensor('w', [1, 1, 5, 5], randoms(25, 1, 0.3)),
      floatTensor('b', [1], [0.1]),
      floatTensor('a2', [], [0.1]),
      floatTensor('a1', [], [0.5]),
      floatTensor('a0', [], [0.2]),
      floatTensor('d', [10, 36], randoms(360, 2)),
      floatTensor('e', [10], randoms(10, 3)),
    ],
    output: 'logits',
  });
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
