/**
 * The plaintext executor against onnxruntime-web (wasm, one thread) on the same inputs:
 * max abs difference ≤ 1e-4 for every committed model and for synthetic models that go through
 * every supported operator.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { readIdxFile } from '../../src/data/files.js';
import { importOnnx } from '../../src/nn/onnx.js';
import { runPlaintext } from '../../src/nn/plaintext.js';
import { boolTensor, buildModel, floatTensor, intTensor, maxAbsDiff, randoms, runOrt } from './onnx-helpers.js';

const TOLERANCE = 1e-4;

async function assertParity(
  t: TestContext,
  bytes: Uint8Array,
  inputs: Float32Array,
  sampleShape: readonly number[],
  optimize = true,
): Promise<void> {
  const model = importOnnx(bytes);
  assert.deepEqual(model.inputShape, sampleShape);
  const ours = runPlaintext(model, inputs);
  const reference = await runOrt(bytes, inputs, sampleShape, optimize);
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

for (const name of ['resnet-style', 'mobilenet-style', 'inception-style', 'keras-style', 'lenet5']) {
  test(`models/zoo/${name}.onnx matches onnxruntime-web on 20 of its committed evaluation images`, async (t) => {
    const bytes = readFileSync(`models/zoo/${name}.onnx`);
    const model = importOnnx(bytes);
    const images = readIdxFile(`models/zoo/data/${name}-eval-images.idx.gz`).data;
    await assertParity(t, bytes, Float32Array.from(images.subarray(0, 20 * model.inputSize), (v) => v / 255), model.inputShape);
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

const scalar = (name: string, v: number) => floatTensor(name, [], [v]);

test('a graph through every new operator and pattern (opset 14) matches onnxruntime-web', async (t) => {
  const bytes = buildModel({
    opset: 14,
    sampleShape: [6, 6, 2],
    initializers: [
      floatTensor('mean', [1, 2, 1, 1], [0.1, -0.2]),
      floatTensor('std', [1, 2, 1, 1], [0.5, 2]),
      floatTensor('g.w', [4, 1, 3, 3], randoms(36, 31, 0.6)),
      floatTensor('g.b', [4], randoms(4, 32, 0.1)),
      floatTensor('bn.scale', [4], randoms(4, 33).map((v) => v + 1.5)),
      floatTensor('bn.bias', [4], randoms(4, 34, 0.2)),
      floatTensor('bn.mean', [4], randoms(4, 35, 0.3)),
      floatTensor('bn.var', [4], randoms(4, 36).map((v) => v + 1.2)),
      floatTensor('dw.w', [4, 1, 3, 3], randoms(36, 37, 0.8)),
      scalar('six', 6),
      scalar('zero', 0),
      floatTensor('elem', [1, 8, 2, 2], randoms(32, 38).map((v) => v + 1.5)),
      scalar('sqrt2', Math.SQRT2),
      scalar('one', 1),
      scalar('half', 0.5),
      intTensor('idx0', [], [0]),
      intTensor('axes0', [1], [0]),
      intTensor('minus1', [1], [-1]),
      floatTensor('mm.Bt', [8, 32], randoms(256, 39, 0.3)),
      floatTensor('fc.B', [5, 8], randoms(40, 40)),
      floatTensor('fc.C', [5], randoms(5, 41, 0.2)),
    ],
    nodes: [
      { op: 'Transpose', inputs: ['input'], outputs: ['nchw'], attrs: { perm: { ints: [0, 3, 1, 2] } } },
      { op: 'Sub', inputs: ['nchw', 'mean'], outputs: ['centred'] },
      { op: 'Div', inputs: ['centred', 'std'], outputs: ['normed'] },
      { op: 'Conv', inputs: ['normed', 'g.w', 'g.b'], outputs: ['g'], attrs: { group: { i: 2 }, pads: { ints: [1, 1, 1, 1] } } },
      { op: 'BatchNormalization', inputs: ['g', 'bn.scale', 'bn.bias', 'bn.mean', 'bn.var'], outputs: ['bn'] },
      { op: 'LeakyRelu', inputs: ['bn'], outputs: ['lr'], attrs: { alpha: { f: 0.2 } } },
      { op: 'Conv', inputs: ['lr', 'dw.w'], outputs: ['dw'], attrs: { group: { i: 4 }, pads: { ints: [1, 1, 1, 1] } } },
      { op: 'Clip', inputs: ['dw', 'zero', 'six'], outputs: ['relu6'] },
      { op: 'Add', inputs: ['lr', 'relu6'], outputs: ['residual'] },
      { op: 'HardSwish', inputs: ['residual'], outputs: ['hs'] },
      { op: 'Concat', inputs: ['hs', 'residual'], outputs: ['cat'], attrs: { axis: { i: 1 } } },
      { op: 'MaxPool', inputs: ['cat'], outputs: ['mp'], attrs: { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] }, ceil_mode: { i: 1 } } },
      { op: 'AveragePool', inputs: ['mp'], outputs: ['ap'], attrs: { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] }, ceil_mode: { i: 1 }, count_include_pad: { i: 1 } } },
      { op: 'Mul', inputs: ['ap', 'elem'], outputs: ['scaled'] },
      // GELU as PyTorch 1.13 exports it.
      { op: 'Div', inputs: ['scaled', 'sqrt2'], outputs: ['gd'] },
      { op: 'Erf', inputs: ['gd'], outputs: ['ge'] },
      { op: 'Add', inputs: ['ge', 'one'], outputs: ['ga'] },
      { op: 'Mul', inputs: ['scaled', 'ga'], outputs: ['gm'] },
      { op: 'Mul', inputs: ['gm', 'half'], outputs: ['gelu'] },
      { op: 'ReduceMean', inputs: ['gelu'], outputs: ['mean2'], attrs: { axes: { ints: [2, 3] }, keepdims: { i: 0 } } },
      // view(x.size(0), -1), and weights transposed in the graph.
      { op: 'Shape', inputs: ['gelu'], outputs: ['shape'] },
      { op: 'Gather', inputs: ['shape', 'idx0'], outputs: ['batch'], attrs: { axis: { i: 0 } } },
      { op: 'Unsqueeze', inputs: ['batch', 'axes0'], outputs: ['batch1'] },
      { op: 'Concat', inputs: ['batch1', 'minus1'], outputs: ['target'], attrs: { axis: { i: 0 } } },
      { op: 'Reshape', inputs: ['gelu', 'target'], outputs: ['flat'] },
      { op: 'Transpose', inputs: ['mm.Bt'], outputs: ['mm.B'], attrs: { perm: { ints: [1, 0] } } },
      { op: 'MatMul', inputs: ['flat', 'mm.B'], outputs: ['mm'] },
      { op: 'Add', inputs: ['mean2', 'mm'], outputs: ['joined'] },
      { op: 'Sigmoid', inputs: ['joined'], outputs: ['sig'] },
      { op: 'Mul', inputs: ['joined', 'sig'], outputs: ['silu'] },
      { op: 'Gemm', inputs: ['silu', 'fc.B', 'fc.C'], outputs: ['fc'], attrs: { transB: { i: 1 } } },
      { op: 'HardSigmoid', inputs: ['fc'], outputs: ['hsig'], attrs: { alpha: { f: 1 / 6 }, beta: { f: 0.5 } } },
      { op: 'Mul', inputs: ['hsig', 'fc'], outputs: ['hswish'] },
      { op: 'Sub', inputs: ['hswish', 'fc'], outputs: ['diff'] },
      { op: 'LogSoftmax', inputs: ['diff'], outputs: ['out'], attrs: { axis: { i: 1 } } },
    ],
    output: 'out',
  });
  const model = importOnnx(bytes);
  assert.deepEqual(
    model.layers.map((l) => l.kind),
    ['transpose', 'affine', 'conv2d', 'leakyrelu', 'conv2d', 'clip', 'add', 'hardswish', 'concat', 'maxpool2d', 'avgpool2d',
      'affine', 'gelu', 'globalavgpool2d', 'flatten', 'flatten', 'dense', 'add', 'silu', 'dense', 'hardswish', 'affine', 'add', 'logsoftmax'],
  );
  assert.equal(model.isChain, false);
  await assertParity(t, bytes, randoms(6 * 6 * 6 * 2, 42, 2), [6, 6, 2]);
});

test('a zero Pad before MaxPool, batch norm after ReLU and x*x polynomials in a graph match onnxruntime-web', async (t) => {
  const bytes = buildModel({
    sampleShape: [2, 5, 5],
    initializers: [
      intTensor('pads', [8], [0, 0, 1, 0, 0, 0, 1, 1]),
      floatTensor('bn.scale', [2], [1.5, 0.5]),
      floatTensor('bn.bias', [2], [0.1, -0.3]),
      floatTensor('bn.mean', [2], [0.2, 0.1]),
      floatTensor('bn.var', [2], [0.8, 1.3]),
      scalar('c', 0.25),
    ],
    nodes: [
      { op: 'Relu', inputs: ['input'], outputs: ['r'] },
      { op: 'BatchNormalization', inputs: ['r', 'bn.scale', 'bn.bias', 'bn.mean', 'bn.var'], outputs: ['bn'] },
      { op: 'Pad', inputs: ['bn', 'pads'], outputs: ['p'] },
      { op: 'MaxPool', inputs: ['p'], outputs: ['mp'], attrs: { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } } },
      { op: 'Mul', inputs: ['mp', 'mp'], outputs: ['sq'] },
      { op: 'Mul', inputs: ['sq', 'c'], outputs: ['q'] },
      { op: 'Add', inputs: ['q', 'mp'], outputs: ['out'] },
    ],
    output: 'out',
  });
  const model = importOnnx(bytes);
  assert.deepEqual(model.layers.map((l) => l.kind), ['relu', 'affine', 'pad', 'maxpool2d', 'polynomial']);
  // onnxruntime's own graph rewrites would fold the zero Pad into the MaxPool's −∞ padding.
  await assertParity(t, bytes, randoms(4 * 50, 43, 2), [2, 5, 5], false);
});

test('ReduceMean with keepdims, Squeeze and Unsqueeze of data match onnxruntime-web', async (t) => {
  const bytes = buildModel({
    sampleShape: [3, 4, 4],
    initializers: [intTensor('hw', [2], [2, 3]), intTensor('last', [1], [2])],
    nodes: [
      { op: 'ReduceMean', inputs: ['input'], outputs: ['m'], attrs: { axes: { ints: [-2, -1] } } },
      { op: 'Squeeze', inputs: ['m', 'hw'], outputs: ['s'] },
      { op: 'Unsqueeze', inputs: ['s', 'last'], outputs: ['u'] },
      { op: 'Flatten', inputs: ['u'], outputs: ['f'] },
      { op: 'Softmax', inputs: ['f'], outputs: ['out'] },
    ],
    output: 'out',
  });
  const model = importOnnx(bytes);
  assert.deepEqual(model.layers.map((l) => l.kind), ['globalavgpool2d', 'flatten', 'reshape', 'flatten', 'softmax']);
  await assertParity(t, bytes, randoms(3 * 48, 44, 2), [3, 4, 4]);
});
