/**
 * The plaintext executor against onnxruntime-web (wasm, one thread) on the same inputs:
 * max abs difference ≤ 1e-4 for every committed model and for synthetic models that go through
 * every supported operator.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { importOnnx } from '../../src/nn/onnx.js';
import { runPlaintext } from '../../src/nn/plaintext.js';
import { boolTensor, buildModel, floatTensor, intTensor, maxAbsDiff, randoms, runOrt } from './onnx-helpers.js';

const TOLERANCE = 1e-4;

async function assertParity(
  t: TestContext,
  bytes: Uint8Array,
  inputs: Float32Array,
  sampleShape: readonly number[],
): Promise<void> {
  const model = importOnnx(bytes);
  assert.deepEqual(model.inputShape, sampleShape);
  const ours = runPlaintext(model, inputs);
  const reference = await runOrt(bytes, inputs, sampleShape);
  const diff = maxAbsDiff(ours, reference);
  assert.ok(diff <= TOLERANCE, `max abs difference ${diff} > ${TOLERANCE}`);
  // Guard against comparing two constant outputs.
  assert.ok(new Set(Array.from(reference, (v) => v.toFixed(4))).size > 1, 'outputs vary');
  t.diagnostic(`max abs difference ${diff.toExponential(2)}`);
}

const committed: Array<[string, number]> = [
  ['models/fashion-small.onnx', 100],
  ['models/fashion-reference.onnx', 16],
];
for (const [path, count] of committed) {
  test(`${path} matches onnxruntime-web on ${count} committed test images`, async (t) => {
    const data = loadFashionMnistSample({ limit: count });
    await assertParity(t, readFileSync(path), data.images, [1, 28, 28]);
  });
}

test('models/cifar-shaped.onnx matches onnxruntime-web on random colour images', async (t) => {
  const inputs = randoms(8 * 3 * 32 * 32, 7).map((v) => (v + 1) / 2);
  await assertParity(t, readFileSync('models/cifar-shaped.onnx'), inputs, [3, 32, 32]);
});

test('every supported operator (opset 13) matches onnxruntime-web', async (t) => {
  const bytes = buildModel({
    sampleShape: [2, 9, 9],
    initializers: [
      floatTensor('c1.w', [4, 2, 3, 3], randoms(72, 1, 0.5)),
      floatTensor('c1.b', [4], randoms(4, 2, 0.1), 'float_data'),
      floatTensor('bn1.scale', [4], randoms(4, 3).map((v) => v + 1.5)),
      floatTensor('bn1.bias', [4], randoms(4, 4, 0.2)),
      floatTensor('bn1.mean', [4], randoms(4, 5, 0.3)),
      floatTensor('bn1.var', [4], randoms(4, 6).map((v) => v + 1.2)),
      intTensor('pad.pads', [8], [0, 0, 1, 1, 0, 0, 1, 1]),
      floatTensor('c2.w', [3, 4, 2, 2], randoms(48, 7, 0.5)),
      floatTensor('c2.b', [1, 3, 1, 1], randoms(3, 8, 0.1)),
      floatTensor('g.B', [3, 5], randoms(15, 9)),
      floatTensor('g.C', [5], randoms(5, 10, 0.5)),
      floatTensor('drop.ratio', [], [0.5]),
      boolTensor('drop.training', [false]),
      floatTensor('mm.B', [5, 4], randoms(20, 11)),
      floatTensor('mm.bias', [4], randoms(4, 12, 0.3)),
      floatTensor('bn2.scale', [4], randoms(4, 13).map((v) => v + 1.5)),
      floatTensor('bn2.bias', [4], randoms(4, 14, 0.2)),
      floatTensor('bn2.mean', [4], randoms(4, 15, 0.3)),
      floatTensor('bn2.var', [4], randoms(4, 16).map((v) => v + 1.2)),
    ],
    nodes: [
      { op: 'Conv', inputs: ['input', 'c1.w', 'c1.b'], outputs: ['c1'], attrs: { pads: { ints: [1, 0, 1, 2] }, strides: { ints: [2, 1] }, kernel_shape: { ints: [3, 3] } } },
      { op: 'BatchNormalization', inputs: ['c1', 'bn1.scale', 'bn1.bias', 'bn1.mean', 'bn1.var'], outputs: ['bn1'], attrs: { epsilon: { f: 1e-3 } } },
      { op: 'Relu', inputs: ['bn1'], outputs: ['r1'] },
      { op: 'MaxPool', inputs: ['r1'], outputs: ['mp'], attrs: { kernel_shape: { ints: [2, 2] }, strides: { ints: [1, 2] }, pads: { ints: [1, 1, 0, 0] } } },
      { op: 'Pad', inputs: ['mp', 'pad.pads'], outputs: ['padded'] },
      { op: 'AveragePool', inputs: ['padded'], outputs: ['ap1'], attrs: { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] } } },
      { op: 'Conv', inputs: ['ap1', 'c2.w'], outputs: ['c2'] },
      { op: 'Add', inputs: ['c2.b', 'c2'], outputs: ['c2b'] },
      { op: 'AveragePool', inputs: ['c2b'], outputs: ['ap2'], attrs: { kernel_shape: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 1] }, count_include_pad: { i: 0 } } },
      { op: 'Sigmoid', inputs: ['ap2'], outputs: ['sg'] },
      { op: 'GlobalAveragePool', inputs: ['sg'], outputs: ['gap'] },
      { op: 'Flatten', inputs: ['gap'], outputs: ['flat'], attrs: { axis: { i: 1 } } },
      { op: 'Gemm', inputs: ['flat', 'g.B', 'g.C'], outputs: ['g'], attrs: { alpha: { f: 0.5 }, beta: { f: 2 } } },
      { op: 'Tanh', inputs: ['g'], outputs: ['th'] },
      { op: 'Dropout', inputs: ['th', 'drop.ratio', 'drop.training'], outputs: ['dr'] },
      { op: 'Identity', inputs: ['dr'], outputs: ['id'] },
      { op: 'MatMul', inputs: ['id', 'mm.B'], outputs: ['mm'] },
      { op: 'Add', inputs: ['mm', 'mm.bias'], outputs: ['mmb'] },
      { op: 'BatchNormalization', inputs: ['mmb', 'bn2.scale', 'bn2.bias', 'bn2.mean', 'bn2.var'], outputs: ['bn2'] },
      { op: 'Constant', inputs: [], outputs: ['shape'], attrs: { value: { t: intTensor('', [3], [0, 2, -1]) } } },
      { op: 'Reshape', inputs: ['bn2', 'shape'], outputs: ['rs'] },
      { op: 'Softmax', inputs: ['rs'], outputs: ['out'], attrs: { axis: { i: -1 } } },
    ],
    output: 'out',
  });
  const model = importOnnx(bytes);
  assert.deepEqual(
    model.layers.map((l) => l.kind),
    ['conv2d', 'relu', 'maxpool2d', 'avgpool2d', 'conv2d', 'avgpool2d', 'sigmoid', 'globalavgpool2d',
      'flatten', 'dense', 'tanh', 'dense', 'reshape', 'softmax'],
  );
  await assertParity(t, bytes, randoms(5 * 2 * 9 * 9, 99), [2, 9, 9]);
});

test('opset 10 forms (Pad attributes, Softmax flattening from axis 1, transB) match onnxruntime-web', async (t) => {
  const bytes = buildModel({
    opset: 10,
    sampleShape: [1, 6, 6],
    initializers: [
      floatTensor('w', [3, 1, 3, 3], randoms(27, 21), 'float_data'),
      floatTensor('B', [4, 12], randoms(48, 22), 'float_data'),
      floatTensor('C', [1, 4], randoms(4, 23), 'float_data'),
    ],
    nodes: [
      { op: 'Conv', inputs: ['input', 'w'], outputs: ['c'], attrs: { auto_pad: { s: 'VALID' } } },
      { op: 'Pad', inputs: ['c'], outputs: ['p'], attrs: { pads: { ints: [0, 0, 1, 0, 0, 0, 0, 1] }, mode: { s: 'constant' } } },
      { op: 'AveragePool', inputs: ['p'], outputs: ['a'], attrs: { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] } } },
      { op: 'Flatten', inputs: ['a'], outputs: ['f'] },
      { op: 'Gemm', inputs: ['f', 'B', 'C'], outputs: ['g'], attrs: { transB: { i: 1 } } },
      { op: 'Softmax', inputs: ['g'], outputs: ['out'] },
    ],
    output: 'out',
  });
  await assertParity(t, bytes, randoms(3 * 36, 24), [1, 6, 6]);
});
