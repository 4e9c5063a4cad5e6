// `--activations`: a sigmoid model runs with the client evaluating the sigmoid on values it sees
// (the default) or as blinded ReLU splines, chosen from the command line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliProcess } from '../helpers/cli.js';
import { buildModel, floatTensor, randoms } from '../nn/onnx-helpers.js';

/** 1×28×28 → conv 5×5 stride 4 (1×6×6) → sigmoid → flatten → dense 10. */
function sigmoidModel(): Uint8Array {
  return buildModel({
    sampleShape: [1, 28, 28],
    nodes: [
      { op: 'Conv', inputs: ['input', 'w', 'b'], outputs: ['c'], attrs: { strides: { ints: [4, 4] } } },
      { op: 'Sigmoid', inputs: ['c'], outputs: ['s'] },
      { op: 'Flatten', inputs: ['s'], outputs: ['f'] },
      { op: 'Gemm', inputs: ['f', 'd', 'e'], outputs: ['logits'], attrs: { transB: { i: 1 } } },
    ],
    initializers: [
      floatTensor('w', [1, 1, 5, 5], randoms(25, 1, 0.3)),
      floatTensor('b', [1], [0.1]),
      floatTensor('d', [10, 36], randoms(360, 2)),
      floatTensor('e', [10], randoms(10, 3)),
    ],
    output: 'logits',
  });
}

test('--activations spline runs a sigmoid as blinded ReLU splines (16 values per unit travel instead of 1); client is the default', () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-activations-'));
  try {
    const model = join(dir, 'sigmoid.onnx');
    writeFileSync(model, sigmoidModel());
    const run = (...extra: string[]) => {
      const r = runCliProcess(['infer', '--model', model, '--scheme', 'ckks', '--limit', '2', '--threads', '0', '--json', ...extra]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { bytesPerSample: number; maxLogitError: number; samples: number };
    };
    const client = run();
    const spline = run('--activations', 'spline');
    assert.equal(spline.samples, 2);
    assert.ok(client.maxLogitError < 1e-2, `client: ${client.maxLogitError}`);
    assert.ok(spline.maxLogitError < 5e-2, `spline fit error ${spline.maxLogitError}`);
    assert.ok(spline.bytesPerSample > 2 * client.bytesPerSample, `${spline.bytesPerSample} vs ${client.bytesPerSample} bytes`);
    const bad = runCliProcess(['infer', '--model', model, '--activations', 'polynomial']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--activations <mode>' argument 'polynomial' is invalid/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
