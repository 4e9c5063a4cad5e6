import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError } from '../../src/errors.js';
import { foldBatchNorm } from '../../src/nn/fold.js';
import {
  AvgPool2d,
  Conv2d,
  Dense,
  Flatten,
  GlobalAvgPool2d,
  MaxPool2d,
  Relu,
  Reshape,
  Softmax,
} from '../../src/nn/layers.js';
import { Model } from '../../src/nn/model.js';
import { accuracy, argmaxRows, predictPlaintext, runPlaintext } from '../../src/nn/plaintext.js';
import { maxAbsDiff, randoms } from './onnx-helpers.js';

test('computeOutputShape follows the sliding-window arithmetic', () => {
  const conv = new Conv2d({ weights: new Float32Array(20 * 9), outChannels: 20, inChannels: 1, kernel: [3, 3] });
  assert.deepEqual(conv.computeOutputShape([1, 28, 28]), [20, 26, 26]);
  assert.deepEqual(new AvgPool2d({ kernel: [2, 2], stride: [1, 1] }).computeOutputShape([20, 26, 26]), [20, 25, 25]);
  assert.deepEqual(new AvgPool2d({ kernel: [2, 2] }).computeOutputShape([50, 23, 23]), [50, 11, 11]);
  assert.deepEqual(new MaxPool2d({ kernel: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1] }).computeOutputShape([4, 7, 7]), [4, 4, 4]);
  assert.deepEqual(new GlobalAvgPool2d().computeOutputShape([64, 4, 4]), [64, 1, 1]);
  assert.deepEqual(new Flatten().computeOutputShape([50, 11, 11]), [6050]);
  assert.deepEqual(new Reshape([2, 5]).computeOutputShape([10]), [2, 5]);
  assert.deepEqual(new Dense({ weights: new Float32Array(20), inFeatures: 10, outFeatures: 2 }).computeOutputShape([10]), [2]);
});

test('a layer refuses an input shape it cannot take with a ShapeError', () => {
  const conv = new Conv2d({ weights: new Float32Array(2 * 3 * 9), outChannels: 2, inChannels: 3, kernel: [3, 3] });
  assert.throws(() => conv.computeOutputShape([1, 28, 28]), ShapeError);
  assert.throws(() => conv.computeOutputShape([3, 2, 2]), ShapeError);
  assert.throws(() => conv.computeOutputShape([784]), ShapeError);
  assert.throws(() => new Dense({ weights: new Float32Array(4), inFeatures: 2, outFeatures: 2 }).computeOutputShape([3]), ShapeError);
  assert.throws(() => new Reshape([3, 3]).computeOutputShape([10]), ShapeError);
  assert.throws(
    () => new Model([1, 28, 28], [new Dense({ weights: new Float32Array(784), inFeatures: 784, outFeatures: 1 })]),
    ShapeError,
  );
});

test('a layer refuses an inconsistent configuration with a RangeError', () => {
  assert.throws(() => new Conv2d({ weights: new Float32Array(10), outChannels: 2, inChannels: 1, kernel: [3, 3] }), RangeError);
  assert.throws(() => new Dense({ weights: new Float32Array(4), bias: new Float32Array(3), inFeatures: 2, outFeatures: 2 }), RangeError);
  assert.throws(() => new AvgPool2d({ kernel: [0, 2] }), RangeError);
  assert.throws(() => new MaxPool2d({ kernel: [2, 2], pads: [2, 0, 0, 0] }), RangeError);
});

test('conv, pooling and dense compute what they should on a hand-checked example', () => {
  // 1×3×3 input 1..9; 2×2 kernel of ones plus bias 1: sums of each 2×2 window.
  const conv = new Conv2d({ weights: new Float32Array(4).fill(1), bias: Float32Array.of(1), outChannels: 1, inChannels: 1, kernel: [2, 2] });
  const input = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(Array.from(runPlaintext(new Model([1, 3, 3], [conv]), input)), [13, 17, 25, 29]);
  // count_include_pad off: border windows divide by the cells they actually cover.
  const avg = new AvgPool2d({ kernel: [2, 2], stride: [2, 2], pads: [1, 1, 0, 0] });
  assert.deepEqual(Array.from(runPlaintext(new Model([1, 3, 3], [avg]), input)), [1, 2.5, 5.5, 7]);
  const max = new MaxPool2d({ kernel: [2, 2], stride: [1, 1] });
  assert.deepEqual(Array.from(runPlaintext(new Model([1, 3, 3], [max]), input)), [5, 6, 8, 9]);
  const dense = new Dense({ weights: Float32Array.of(1, -1, 2, 0.5), bias: Float32Array.of(0, 1), inFeatures: 2, outFeatures: 2 });
  assert.deepEqual(Array.from(runPlaintext(new Model([2], [dense, new Relu()]), Float32Array.of(1, 3, 2, 2))), [0, 4.5, 0, 6]);
  const soft = runPlaintext(new Model([2, 2], [new Softmax()]), Float64Array.of(0, 0, 1000, 1000 + Math.log(3)));
  assert.deepEqual(Array.from(soft, (v) => Number(v.toFixed(12))), [0.5, 0.5, 0.25, 0.75]);
});

test('the executor refuses inputs that are not whole samples', () => {
  const model = new Model([4], [new Relu()]);
  assert.throws(() => runPlaintext(model, new Float32Array(6)), ShapeError);
  assert.throws(() => runPlaintext(model, new Float32Array(8), { chunkSize: 0 }), RangeError);
});

test('chunking does not change results, and onLayer sees every layer of every chunk', () => {
  const conv = new Conv2d({ weights: randoms(5 * 2 * 9, 1), bias: randoms(5, 2), outChannels: 5, inChannels: 2, kernel: [3, 3], stride: [2, 1], pads: [1, 0, 0, 1] });
  const model = new Model([2, 7, 6], [conv, new Relu(), new Flatten(), new Dense({ weights: randoms(3 * 75, 3), inFeatures: 75, outFeatures: 3 })]);
  const inputs = randoms(10 * 84, 4);
  const seen: string[] = [];
  const chunked = runPlaintext(model, inputs, {
    chunkSize: 3,
    onLayer: ({ index, first, count, output }) => {
      seen.push(`${index}@${first}`);
      assert.equal(output.length, count * (model.shapes[index + 1] as number[]).reduce((a, b) => a * b, 1));
    },
  });
  assert.deepEqual(chunked, runPlaintext(model, inputs));
  assert.equal(seen.length, 4 * 4);
  assert.ok(seen.includes('3@9'));
});

test('argmaxRows, predictPlaintext and accuracy', () => {
  assert.deepEqual(Array.from(argmaxRows([0, 2, 1, 5, 5, 4], 3)), [1, 0]);
  const model = new Model([3], [new Softmax()]);
  assert.deepEqual(Array.from(predictPlaintext(model, Float32Array.of(0, 2, 1, 3, 1, 2))), [1, 0]);
  assert.equal(accuracy([1, 0, 2, 2], [1, 1, 2, 0]), 0.5);
  assert.throws(() => accuracy([1], [1, 2]), RangeError);
});

test('folding batch norm into a conv equals conv followed by batch norm', () => {
  const conv = new Conv2d({ weights: randoms(3 * 2 * 4, 11), bias: randoms(3, 12), outChannels: 3, inChannels: 2, kernel: [2, 2], pads: [1, 1, 1, 1] });
  const bn = {
    scale: randoms(3, 13).map((v) => v + 1.5),
    bias: randoms(3, 14),
    mean: randoms(3, 15),
    variance: randoms(3, 16).map((v) => v + 1.1),
    epsilon: 1e-5,
  };
  const inputs = randoms(4 * 2 * 5 * 5, 17);
  const plain = runPlaintext(new Model([2, 5, 5], [conv]), inputs);
  const perChannel = 6 * 6;
  const expected = plain.map((v, i) => {
    const c = Math.floor(i / perChannel) % 3;
    return ((bn.scale[c] as number) * (v - (bn.mean[c] as number))) / Math.sqrt((bn.variance[c] as number) + bn.epsilon) + (bn.bias[c] as number);
  });
  const folded = runPlaintext(new Model([2, 5, 5], [foldBatchNorm(conv, bn)]), inputs);
  assert.ok(maxAbsDiff(folded, expected) < 1e-5, `difference ${maxAbsDiff(folded, expected)}`);
});

test('folding batch norm into a dense layer equals dense followed by batch norm', () => {
  const dense = new Dense({ weights: randoms(4 * 6, 21), bias: randoms(4, 22), inFeatures: 6, outFeatures: 4 });
  const bn = { scale: randoms(4, 23), bias: randoms(4, 24), mean: randoms(4, 25), variance: randoms(4, 26).map((v) => v + 1.1), epsilon: 1e-3 };
  const inputs = randoms(5 * 6, 27);
  const plain = runPlaintext(new Model([6], [dense]), inputs);
  const expected = plain.map((v, i) => {
    const c = i % 4;
    return ((bn.scale[c] as number) * (v - (bn.mean[c] as number))) / Math.sqrt((bn.variance[c] as number) + bn.epsilon) + (bn.bias[c] as number);
  });
  const folded = runPlaintext(new Model([6], [foldBatchNorm(dense, bn)]), inputs);
  assert.ok(maxAbsDiff(folded, expected) < 1e-5);
  assert.throws(() => foldBatchNorm(dense, { ...bn, mean: new Float32Array(3) }), RangeError);
});
