import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { FormatError, ShapeError, UnsupportedOpError } from '../../src/errors.js';
import { AvgPool2d, Conv2d, Dense } from '../../src/nn/layers.js';
import { importOnnx, SUPPORTED_OPS } from '../../src/nn/onnx.js';
import { runPlaintext } from '../../src/nn/plaintext.js';
import { buildModel, floatTensor, intTensor, maxAbsDiff, randoms, type NodeSpec } from './onnx-helpers.js';

test('the reference model has the published architecture and 1,560,876 parameters', () => {
  const model = importOnnx(readFileSync('models/fashion-reference.onnx'));
  assert.equal(model.parameterCount, 1_560_876);
  assert.deepEqual(
    model.layers.map((l) => l.kind),
    ['conv2d', 'relu', 'avgpool2d', 'conv2d', 'relu', 'avgpool2d', 'flatten', 'dense', 'relu', 'dense'],
  );
  assert.deepEqual(model.shapes[6], [50, 11, 11]);
  assert.deepEqual(model.shapes[7], [6050]);
  // PyTorch's Pad with zero pads before each AveragePool disappears.
  const pool = model.layers[2] as AvgPool2d;
  assert.deepEqual(pool.pads, [0, 0, 0, 0]);
  assert.deepEqual(pool.stride, [1, 1]);
});

test('the CIFAR-shaped model imports with its batch norms folded away', () => {
  const model = importOnnx(readFileSync('models/cifar-shaped.onnx'));
  assert.deepEqual(model.inputShape, [3, 32, 32]);
  assert.deepEqual(model.outputShape, [10]);
  const kinds = model.layers.map((l) => l.kind);
  assert.equal(kinds.filter((k) => k === 'conv2d').length, 3);
  assert.ok(kinds.includes('maxpool2d') && kinds.includes('globalavgpool2d'));
  // PyTorch's AvgPool2d(padding=1, count_include_pad=True) arrives as Pad + AveragePool.
  const pool = model.layers.find((l) => l.kind === 'avgpool2d') as AvgPool2d;
  assert.deepEqual(pool.pads, [1, 1, 1, 1]);
  assert.equal(pool.countIncludePad, true);
});

function singleOp(node: Omit<NodeSpec, 'inputs' | 'outputs'> & { inputs?: string[] }, extra: Partial<Parameters<typeof buildModel>[0]> = {}) {
  return buildModel({
    sampleShape: [1, 4, 4],
    nodes: [{ ...node, inputs: node.inputs ?? ['input'], outputs: ['out'] }],
    output: 'out',
    ...extra,
  });
}

function assertUnsupported(bytes: Uint8Array, op: string, node: string, detail?: RegExp): void {
  assert.throws(() => importOnnx(bytes), (err: unknown) => {
    assert.ok(err instanceof UnsupportedOpError, `expected UnsupportedOpError, got ${String(err)}`);
    assert.equal(err.op, op);
    assert.equal(err.node, node);
    assert.equal(err.code, 'ERR_UNSUPPORTED_OP');
    assert.ok(err.message.includes(op) && err.message.includes(node), err.message);
    if (detail) assert.match(err.message, detail);
    return true;
  });
}

test('an unsupported operator is refused with its name, the node name and what to do instead', () => {
  assertUnsupported(singleOp({ op: 'Elu', name: 'act3' }), 'Elu', 'act3', /use Relu or LeakyRelu/);
  assertUnsupported(singleOp({ op: 'Exp', name: 'scale' }), 'Exp', 'scale', /supported: Conv/);
  assertUnsupported(singleOp({ op: 'Erf', name: 'e' }), 'Erf', 'e', /only inside GELU/);
  assert.ok(!SUPPORTED_OPS.includes('Elu'));
});

test('an unsupported attribute value is refused with the node name and the setting', () => {
  const w = floatTensor('w', [2, 1, 3, 3], randoms(18, 1));
  const conv = (attrs: NodeSpec['attrs']) =>
    singleOp({ op: 'Conv', name: 'conv1', inputs: ['input', 'w'], attrs }, { initializers: [w] });
  assertUnsupported(conv({ dilations: { ints: [2, 2] } }), 'Conv', 'conv1', /dilations/);
  assertUnsupported(conv({ auto_pad: { s: 'SAME_UPPER' } }), 'Conv', 'conv1', /auto_pad/);
  assertUnsupported(singleOp({ op: 'Flatten', name: 'f0', attrs: { axis: { i: 0 } } }), 'Flatten', 'f0', /axis 0/);
  assertUnsupported(singleOp({ op: 'ReduceMean', name: 'rm', attrs: { axes: { ints: [1] } } }), 'ReduceMean', 'rm', /spatial axes/);
  assertUnsupported(singleOp({ op: 'Transpose', name: 't', attrs: { perm: { ints: [1, 0, 2, 3] } } }), 'Transpose', 't', /batch axis/);
  assertUnsupported(
    singleOp({ op: 'Pad', name: 'reflect', inputs: ['input', 'pads'], attrs: { mode: { s: 'reflect' } } }, { initializers: [intTensor('pads', [8], [0, 0, 1, 1, 0, 0, 1, 1])] }),
    'Pad',
    'reflect',
    /only constant zero padding/,
  );
});

test('a branch that does not reach the output is dropped', () => {
  const bytes = buildModel({
    sampleShape: [4],
    nodes: [
      { op: 'Relu', inputs: ['input'], outputs: ['a'], name: 'left' },
      { op: 'Sigmoid', inputs: ['input'], outputs: ['b'], name: 'right' },
    ],
    output: 'b',
  });
  const model = importOnnx(bytes);
  assert.deepEqual(model.nodes.map((n) => n.name), ['right']);
});

test('batch norm that follows no linear layer becomes a per-channel affine map', () => {
  const v = (name: string, values: number[]) => floatTensor(name, [2], values);
  const bytes = singleOp(
    { op: 'BatchNormalization', name: 'bn0', inputs: ['input', 's', 'b', 'm', 'v'] },
    { sampleShape: [2, 2, 2], initializers: [v('s', [2, 0.5]), v('b', [1, -1]), v('m', [0.5, 0]), v('v', [4, 1])] },
  );
  const model = importOnnx(bytes);
  assert.deepEqual(model.layers.map((l) => l.kind), ['affine']);
  const x = Float32Array.of(1, 2, 3, 4, 1, 2, 3, 4);
  const expected = Array.from(x, (v, i) => (i < 4 ? (2 * (v - 0.5)) / Math.sqrt(4 + 1e-5) + 1 : (0.5 * v) / Math.sqrt(1 + 1e-5) - 1));
  assert.ok(maxAbsDiff(runPlaintext(model, x), expected) < 1e-6);
});

test('a zero Pad before a MaxPool stays a Pad layer (its zeros can win)', () => {
  const bytes = buildModel({
    sampleShape: [1, 4, 4],
    initializers: [intTensor('pads', [8], [0, 0, 1, 1, 0, 0, 1, 1])],
    nodes: [
      { op: 'Pad', inputs: ['input', 'pads'], outputs: ['p'], name: 'pad0' },
      { op: 'MaxPool', inputs: ['p'], outputs: ['out'], attrs: { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } } },
    ],
    output: 'out',
  });
  const model = importOnnx(bytes);
  assert.deepEqual(model.layers.map((l) => l.kind), ['pad', 'maxpool2d']);
  assert.deepEqual(Array.from(runPlaintext(model, new Float32Array(16).fill(-1))), [0, 0, 0, 0, -1, 0, 0, 0, 0]);
});

test('Pad + AveragePool becomes one average pooling that counts the padded zeros', () => {
  const bytes = buildModel({
    sampleShape: [1, 3, 3],
    initializers: [intTensor('pads', [8], [0, 0, 1, 1, 0, 0, 1, 1])],
    nodes: [
      { op: 'Pad', inputs: ['input', 'pads'], outputs: ['p'] },
      { op: 'AveragePool', inputs: ['p'], outputs: ['out'], attrs: { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } } },
    ],
    output: 'out',
  });
  const model = importOnnx(bytes);
  assert.equal(model.layers.length, 1);
  const pool = model.layers[0] as AvgPool2d;
  assert.deepEqual(pool.pads, [1, 1, 1, 1]);
  assert.equal(pool.countIncludePad, true);
  // 1..9 on a 3×3 grid, padded to 5×5 with zeros, averaged over 2×2 windows.
  const out = runPlaintext(model, Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]));
  assert.deepEqual(Array.from(out), [1 / 4, (2 + 3) / 4, (4 + 7) / 4, (5 + 6 + 8 + 9) / 4]);
});

test('Gemm folds alpha, beta and transB into one dense layer', () => {
  const B = [1, 2, 3, 4, 5, 6]; // [2, 3] without transB: 2 inputs, 3 outputs
  const bytes = buildModel({
    sampleShape: [2],
    initializers: [floatTensor('B', [2, 3], B), floatTensor('C', [1], [10])],
    nodes: [{ op: 'Gemm', inputs: ['input', 'B', 'C'], outputs: ['out'], attrs: { alpha: { f: 2 }, beta: { f: 0.5 } } }],
    output: 'out',
  });
  const dense = importOnnx(bytes).layers[0] as Dense;
  assert.deepEqual(Array.from(dense.weights), [2, 8, 4, 10, 6, 12]);
  assert.deepEqual(Array.from(dense.bias), [5, 5, 5]);
});

test('MatMul followed by Add becomes one dense layer with a bias', () => {
  const bytes = buildModel({
    sampleShape: [2],
    initializers: [floatTensor('B', [2, 2], [1, 2, 3, 4]), floatTensor('b', [2], [0.5, -0.5])],
    nodes: [
      { op: 'MatMul', inputs: ['input', 'B'], outputs: ['m'] },
      { op: 'Add', inputs: ['m', 'b'], outputs: ['out'] },
    ],
    output: 'out',
  });
  const model = importOnnx(bytes);
  assert.equal(model.layers.length, 1);
  assert.deepEqual(Array.from(runPlaintext(model, Float32Array.from([1, 1]))), [4.5, 5.5]);
});

test('a constant Add that is not a bias becomes an affine map', () => {
  const bytes = buildModel({
    sampleShape: [2],
    initializers: [floatTensor('b', [2], [1, 2])],
    nodes: [
      { op: 'Relu', inputs: ['input'], outputs: ['r'] },
      { op: 'Add', inputs: ['r', 'b'], outputs: ['out'], name: 'shift' },
    ],
    output: 'out',
  });
  const model = importOnnx(bytes);
  assert.deepEqual(model.layers.map((l) => l.kind), ['relu', 'affine']);
  assert.deepEqual(Array.from(runPlaintext(model, Float32Array.of(-1, 3))), [1, 5]);
});

test('shapes that do not fit are a ShapeError naming the node', () => {
  const bytes = buildModel({
    sampleShape: [5],
    initializers: [floatTensor('B', [4, 3], randoms(12, 3))],
    nodes: [{ op: 'Gemm', inputs: ['input', 'B'], outputs: ['out'], name: 'fc' }],
    output: 'out',
  });
  assert.throws(() => importOnnx(bytes), (err: unknown) => err instanceof ShapeError && /fc/.test(err.message));
});

test('Identity of a weight (shared weights) is followed to the initializer', () => {
  const bytes = buildModel({
    sampleShape: [2],
    initializers: [floatTensor('B', [2, 2], [1, 2, 3, 4])],
    nodes: [
      { op: 'Identity', inputs: ['B'], outputs: ['B2'] },
      { op: 'MatMul', inputs: ['input', 'B2'], outputs: ['out'] },
    ],
    output: 'out',
  });
  assert.deepEqual(Array.from(runPlaintext(importOnnx(bytes), Float32Array.of(1, 1))), [4, 6]);
});

test('raw_data and float_data initializers give the same layer', () => {
  const data = randoms(18, 5);
  const layer = (storage: 'raw' | 'float_data') =>
    importOnnx(singleOp({ op: 'Conv', inputs: ['input', 'w'] }, { initializers: [floatTensor('w', [2, 1, 3, 3], data, storage)] }))
      .layers[0] as Conv2d;
  assert.deepEqual(layer('raw').weights, layer('float_data').weights);
  assert.deepEqual(layer('raw').weights, data);
});

const reference = readFileSync('models/fashion-small.onnx');
const junk: Array<[string, Uint8Array]> = [
  ['empty', new Uint8Array(0)],
  ['text', new TextEncoder().encode('{"not": "onnx"}\n')],
  ['an IDX file', readFileSync('data/fashion-mnist/t10k-1000-labels-idx1-ubyte.gz')],
  ['a gzipped model', gzipSync(reference)],
  ['a truncated model', reference.subarray(0, Math.floor(reference.length / 2))],
  ['random bytes', Uint8Array.from(randoms(4096, 42), (v) => Math.floor((v + 1) * 128))],
  ['a model without nodes', buildModel({ sampleShape: [2], nodes: [], output: 'input' })],
  [
    'a tensor whose data is shorter than its dims',
    singleOp({ op: 'Conv', inputs: ['input', 'w'] }, { initializers: [floatTensor('w', [2, 1, 3, 3], randoms(17, 5))] }),
  ],
  ['an output that is not the end of the chain', buildModel({ sampleShape: [2], nodes: [{ op: 'Relu', inputs: ['input'], outputs: ['r'] }], output: 'other' })],
];
for (const [name, bytes] of junk) {
  test(`junk .onnx bytes are a FormatError: ${name}`, () => {
    assert.throws(() => importOnnx(bytes), (err: unknown) => {
      assert.ok(err instanceof FormatError, `expected FormatError, got ${String(err)}`);
      assert.ok(!err.message.includes('\n'), 'one-line message');
      return true;
    });
  });
}
