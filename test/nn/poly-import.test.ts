import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnsupportedOpError } from '../../src/errors.js';
import { Dense, Polynomial, Relu } from '../../src/nn/layers.js';
import { Model } from '../../src/nn/model.js';
import { importOnnx } from '../../src/nn/onnx.js';
import { runPlaintext } from '../../src/nn/plaintext.js';
import { buildModel, floatTensor, maxAbsDiff, randoms, runOrt, type NodeSpec } from './onnx-helpers.js';

const W = floatTensor('w', [4, 3], randoms(12, 7));
const B = floatTensor('b', [3], randoms(3, 8));
const scalar = (name: string, v: number) => floatTensor(name, [], [v]);

/** input [4] → MatMul + Add (a dense layer) → the given arithmetic → output 'y'. */
function withActivation(nodes: NodeSpec[], constants: number[] = [], output = 'y') {
  return buildModel({
    sampleShape: [4],
    nodes: [
      { op: 'MatMul', inputs: ['input', 'w'], outputs: ['mm'] },
      { op: 'Add', inputs: ['mm', 'b'], outputs: ['x'] },
      ...nodes,
    ],
    initializers: [W, B, ...constants.map((v, i) => scalar(`c${i}`, v))],
    output,
  });
}

async function assertPolynomial(bytes: Uint8Array, coefficients: number[]): Promise<void> {
  const model = importOnnx(bytes);
  assert.deepEqual(model.layers.map((l) => l.kind), ['dense', 'polynomial']);
  const poly = model.layers[1] as Polynomial;
  assert.equal(poly.coefficients.length, coefficients.length);
  poly.coefficients.forEach((c, i) => assert.ok(Math.abs(c - coefficients[i]!) < 1e-6, `c${i} ${c} vs ${coefficients[i]}`));
  const inputs = randoms(4 * 16, 3, 2);
  const ours = runPlaintext(model, inputs);
  const theirs = await runOrt(bytes, inputs, [4]);
  assert.ok(maxAbsDiff(ours, theirs) < 1e-4, `executor vs onnxruntime: ${maxAbsDiff(ours, theirs)}`);
}

test('PyTorch-style c2*x*x + c1*x + c0 becomes one polynomial layer, agreeing with onnxruntime', async () => {
  await assertPolynomial(
    withActivation(
      [
        { op: 'Mul', inputs: ['c0', 'x'], outputs: ['a'] },
        { op: 'Mul', inputs: ['a', 'x'], outputs: ['sq'] },
        { op: 'Mul', inputs: ['x', 'c1'], outputs: ['lin'] },
        { op: 'Add', inputs: ['sq', 'lin'], outputs: ['s'] },
        { op: 'Add', inputs: ['s', 'c2'], outputs: ['y'] },
      ],
      [0.09375, 0.5, 0.46875],
    ),
    [0.46875, 0.5, 0.09375],
  );
});

test('Pow, Sub, Div and Horner forms are read as polynomials too', async () => {
  await assertPolynomial(withActivation([{ op: 'Pow', inputs: ['x', 'c0'], outputs: ['y'] }], [2]), [0, 0, 1]);
  // ((x / 4 − 1) · x + 0.5) · x  =  x³/4 − x² + x/2
  await assertPolynomial(
    withActivation(
      [
        { op: 'Div', inputs: ['x', 'c0'], outputs: ['d'] },
        { op: 'Sub', inputs: ['d', 'c1'], outputs: ['s'] },
        { op: 'Mul', inputs: ['s', 'x'], outputs: ['m'] },
        { op: 'Add', inputs: ['c2', 'm'], outputs: ['a'] },
        { op: 'Mul', inputs: ['a', 'x'], outputs: ['y'] },
      ],
      [4, 1, 0.5],
    ),
    [0, 0.5, -1, 0.25],
  );
});

test('a polynomial between two layers ends when the next layer starts', () => {
  const w2 = floatTensor('w2', [3, 2], randoms(6, 9));
  const bytes = buildModel({
    sampleShape: [4],
    nodes: [
      { op: 'MatMul', inputs: ['input', 'w'], outputs: ['mm'] },
      { op: 'Add', inputs: ['mm', 'b'], outputs: ['x'] },
      { op: 'Mul', inputs: ['x', 'x'], outputs: ['sq'] },
      { op: 'MatMul', inputs: ['sq', 'w2'], outputs: ['mm2'] },
      { op: 'Add', inputs: ['mm2', 'c0'], outputs: ['y'] },
    ],
    initializers: [W, B, w2, scalar('c0', 0.25)],
    output: 'y',
  });
  const model = importOnnx(bytes);
  assert.deepEqual(model.layers.map((l) => l.kind), ['dense', 'polynomial', 'dense']);
  // The Add after the second MatMul is its bias, not a polynomial.
  assert.ok(Math.abs((model.layers[2] as Dense).bias[0]! - 0.25) < 1e-7);
});

function assertRefused(bytes: Uint8Array, node: string, detail: RegExp): void {
  assert.throws(() => importOnnx(bytes), (err: unknown) => {
    assert.ok(err instanceof UnsupportedOpError, String(err));
    assert.equal(err.node, node);
    assert.match(err.message, detail);
    return true;
  });
}

test('a per-channel constant factor becomes an affine map, folded into the dense layer before it', () => {
  const perChannel = buildModel({
    sampleShape: [4],
    nodes: [
      { op: 'MatMul', inputs: ['input', 'w'], outputs: ['x'] },
      { op: 'Mul', name: 'scale', inputs: ['x', 'v'], outputs: ['y'] },
    ],
    initializers: [W, floatTensor('v', [3], [1, 2, 3])],
    output: 'y',
  });
  const model = importOnnx(perChannel);
  assert.deepEqual(model.layers.map((l) => l.kind), ['dense']);
  const x = randoms(4, 31);
  const unscaled = importOnnx(buildModel({ sampleShape: [4], nodes: [{ op: 'MatMul', inputs: ['input', 'w'], outputs: ['y'] }], initializers: [W], output: 'y' }));
  const expected = runPlaintext(unscaled, x).map((v, i) => v * (i + 1));
  assert.ok(maxAbsDiff(runPlaintext(model, x), expected) < 1e-6);
});

test('arithmetic that is not a polynomial of one tensor is refused by node name', () => {
  assertRefused(withActivation([{ op: 'Pow', name: 'p', inputs: ['x', 'c0'], outputs: ['y'] }], [2.5]), 'p', /exponent 2.5/);
  assertRefused(withActivation([{ op: 'Pow', name: 'p', inputs: ['x', 'c0'], outputs: ['y'] }], [9]), 'p', /exponent 9/);
  assertRefused(
    withActivation([
      { op: 'Pow', name: 'p', inputs: ['x', 'c0'], outputs: ['x4'] },
      { op: 'Mul', name: 'q', inputs: ['x4', 'x4'], outputs: ['x8'] },
      { op: 'Mul', name: 'r', inputs: ['x8', 'x'], outputs: ['y'] },
    ], [4]),
    'r',
    /degree 9/,
  );
  assertRefused(withActivation([{ op: 'Div', name: 'd', inputs: ['c0', 'x'], outputs: ['y'] }], [1]), 'd', /division by a tensor/);
  assertRefused(withActivation([{ op: 'Div', name: 'd', inputs: ['x', 'c0'], outputs: ['y'] }], [0]), 'd', /division by zero/);
  // x · (the dense layer's input): a second variable, not a polynomial of x.
  assertRefused(
    withActivation([{ op: 'Mul', name: 'skip', inputs: ['x', 'mm'], outputs: ['y'] }]),
    'skip',
    /product of two different tensors/,
  );
  assertRefused(
    withActivation([{ op: 'Sub', name: 'zero', inputs: ['x', 'x'], outputs: ['y'] }]),
    'zero',
    /constant tensor/,
  );
});

test('Polynomial layers validate their coefficients; the executor evaluates them', () => {
  assert.throws(() => new Polynomial([1]), RangeError);
  assert.throws(() => new Polynomial([1, 0, 0]), RangeError);
  assert.throws(() => new Polynomial([0, Number.NaN]), RangeError);
  assert.throws(() => new Polynomial(new Array(10).fill(1)), RangeError);
  assert.equal(new Polynomial([1, 2, 3, 0]).degree, 2);
  const model = new Model([3], [new Polynomial([1, -2, 0.5]), new Relu()]);
  assert.deepEqual(Array.from(runPlaintext(model, Float64Array.of(0, 2, 4))), [1, 0, 1]);
});
