import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShapeError } from '../../src/errors.js';
import {
  Add,
  Affine,
  AvgPool2d,
  Clip,
  Concat,
  Conv2d,
  Dense,
  Flatten,
  Gelu,
  GlobalAvgPool2d,
  HardSwish,
  LeakyRelu,
  LogSoftmax,
  MaxPool2d,
  Pad,
  Relu,
  Silu,
  Transpose,
  type Layer,
} from '../../src/nn/layers.js';
import { linearMapOf, type LinearLayer } from '../../src/nn/linear-maps.js';
import { Model, type ModelNode } from '../../src/nn/model.js';
import { erf, runPlaintext } from '../../src/nn/plaintext.js';
import type { Shape } from '../../src/nn/shape.js';
import { applyMap } from '../../src/tensor/sparse-linear.js';
import { maxAbsDiff, randoms } from './onnx-helpers.js';

const node = (name: string, layer: Layer, inputs: string[], output = name): ModelNode => ({ name, layer, inputs, output });

/** A residual block with a concatenation, nodes listed out of order. */
function residualGraph(): Model {
  const conv = new Conv2d({ weights: randoms(2 * 2 * 9, 1), bias: randoms(2, 2), outChannels: 2, inChannels: 2, kernel: [3, 3], pads: [1, 1, 1, 1] });
  const dense = new Dense({ weights: randoms(3 * 4, 3), bias: randoms(3, 4), inFeatures: 4, outFeatures: 3 });
  return Model.fromGraph({
    inputName: 'x',
    inputShape: [2, 4, 4],
    outputName: 'logits',
    name: 'residual',
    nodes: [
      node('sum', new Add(), ['r', 'x']),
      node('conv', conv, ['x'], 'c'),
      node('relu', new Relu(), ['c'], 'r'),
      node('cat', new Concat(), ['sum', 'x']),
      node('unused', new Relu(), ['x']),
      node('pool', new GlobalAvgPool2d(), ['cat']),
      node('flat', new Flatten(), ['pool']),
      node('fc', dense, ['flat'], 'logits'),
    ],
  });
}

test('a graph model sorts its nodes, drops dead ones and knows every tensor shape', () => {
  const model = residualGraph();
  assert.deepEqual(model.nodes.map((n) => n.name), ['conv', 'relu', 'sum', 'cat', 'pool', 'flat', 'fc']);
  assert.deepEqual(model.layers.map((l) => l.kind), ['conv2d', 'relu', 'add', 'concat', 'globalavgpool2d', 'flatten', 'dense']);
  assert.equal(model.isChain, false);
  assert.deepEqual(model.shapeOf('cat'), [4, 4, 4]);
  assert.deepEqual(model.outputShape, [3]);
  assert.equal(model.parameterCount, 2 * 2 * 9 + 2 + 12 + 3);
  assert.throws(() => model.shapes, ShapeError);
  assert.throws(() => model.shapeOf('nope'), RangeError);
  assert.match(model.summary(), /concat\s+→ \[4×4×4\]\s+cat ← sum, x/);
});

test('a chain built from layers gets nodes and stays a chain', () => {
  const model = new Model([4], [new Relu(), new LeakyRelu(0.1)]);
  assert.equal(model.isChain, true);
  assert.deepEqual(model.nodes.map((n) => n.inputs), [['input'], ['layer0']]);
  assert.equal(model.outputName, 'layer1');
  assert.deepEqual(model.shapes, [[4], [4], [4]]);
  assert.throws(() => new Model([4], [new Add()]), ShapeError);
  assert.equal(new Model([3], []).isChain, true);
});

test('malformed graphs are refused', () => {
  const relu = new Relu();
  const graph = (nodes: ModelNode[], outputName = 'b') => () => Model.fromGraph({ inputName: 'x', inputShape: [2], nodes, outputName });
  assert.throws(graph([node('a', relu, ['x']), node('b', relu, ['a']), node('b2', relu, ['x'], 'b')]), /written twice/);
  assert.throws(graph([node('b', relu, ['missing'])]), /nothing writes/);
  assert.throws(graph([node('a', relu, ['b']), node('b', relu, ['a'])]), /cycle/);
  assert.throws(graph([node('a', relu, ['x'])]), /no node writes the output/);
  assert.throws(graph([node('b', new Add(), ['x', 'y2']), node('y2', new Pad([1, 0]), ['x'])]), ShapeError);
  assert.throws(graph([node('b', relu, ['x', 'x'])]), /takes one input/);
});

test('the executor runs a graph: residual add and concatenation', () => {
  const model = residualGraph();
  const n = 3;
  const x = randoms(n * 32, 5);
  const conv = model.nodes[0]!.layer as Conv2d;
  const relu = runPlaintext(new Model([2, 4, 4], [conv, new Relu()]), x);
  const cat = new Float64Array(n * 64);
  for (let s = 0; s < n; s++) {
    for (let i = 0; i < 32; i++) {
      cat[s * 64 + i] = relu[s * 32 + i]! + x[s * 32 + i]!;
      cat[s * 64 + 32 + i] = x[s * 32 + i]!;
    }
  }
  const dense = model.nodes[6]!.layer as Dense;
  const expected = runPlaintext(new Model([4, 4, 4], [new GlobalAvgPool2d(), new Flatten(), dense]), cat);
  const seen: string[] = [];
  const got = runPlaintext(model, x, { chunkSize: 2, onLayer: (e) => seen.push(e.node.name) });
  assert.ok(maxAbsDiff(got, expected) < 1e-12);
  assert.deepEqual(seen.slice(0, 7), model.nodes.map((m) => m.name));
});

/** linearMapOf(layer) applied to each sample must equal the executor on that layer. */
function checkMap(layer: LinearLayer, shapes: readonly Shape[], seed: number): void {
  const nodes: ModelNode[] = shapes.map((_, k) =>
    // Each input k is an affine image of the model input, so the inputs differ.
    node(`in${k}`, new Affine({ scale: Float32Array.of(k + 1), bias: Float32Array.of(k / 3) }), ['x']),
  );
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const inputShape = shapes[0]!;
  const model = Model.fromGraph({
    inputName: 'x',
    inputShape,
    outputName: 'y',
    nodes: [...nodes, node('y', layer, nodes.map((m) => m.output))],
  });
  const map = linearMapOf(layer, shapes);
  const single = shapes.length === 1 ? linearMapOf(layer, inputShape) : undefined;
  const x = randoms(2 * sizes[0]!, seed);
  const got = runPlaintext(model, x);
  const outSize = model.outputSize;
  for (let s = 0; s < 2; s++) {
    const sample = x.subarray(s * sizes[0]!, (s + 1) * sizes[0]!);
    const cols = shapes.flatMap((_, k) => Array.from(sample, (v) => (k + 1) * v + k / 3));
    const want = applyMap(map, cols);
    assert.ok(maxAbsDiff(got.subarray(s * outSize, (s + 1) * outSize), want) < 1e-6, `${layer.kind}: ${maxAbsDiff(got.subarray(s * outSize, (s + 1) * outSize), want)}`);
    if (single) assert.deepEqual(applyMap(single, cols), want);
  }
}

test('linearMapOf agrees with the executor on every linear layer', () => {
  const depthwise = new Conv2d({ weights: randoms(6 * 9, 7), bias: randoms(6, 8), outChannels: 6, inChannels: 3, kernel: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1], group: 3 });
  const grouped = new Conv2d({ weights: randoms(4 * 2 * 4, 9), outChannels: 4, inChannels: 4, kernel: [2, 2], group: 2 });
  checkMap(depthwise, [[3, 5, 5]], 10);
  checkMap(grouped, [[4, 3, 3]], 11);
  checkMap(new Affine({ scale: randoms(3, 12), bias: Float32Array.of(0.5) }), [[3, 2, 2]], 12);
  checkMap(new Affine({ scale: randoms(12, 13), bias: randoms(12, 14) }), [[3, 2, 2]], 13);
  checkMap(new Transpose([2, 0, 1]), [[2, 3, 4]], 14);
  checkMap(new Pad([0, 1, 0, 0, 2, 1]), [[2, 3, 3]], 15);
  checkMap(new AvgPool2d({ kernel: [3, 3], stride: [2, 2], pads: [1, 1, 1, 1], countIncludePad: true, ceilMode: true }), [[2, 6, 6]], 16);
  checkMap(new AvgPool2d({ kernel: [2, 2], stride: [2, 2], ceilMode: true }), [[1, 5, 5]], 17);
  checkMap(new Add(), [[2, 3], [2, 3], [2, 3]], 18);
  checkMap(new Concat(), [[2, 2, 2], [2, 2, 2]], 19);
});

test('ceil mode adds a last partial window only if it starts inside the input', () => {
  assert.deepEqual(new MaxPool2d({ kernel: [3, 3], stride: [2, 2], ceilMode: true }).computeOutputShape([1, 8, 8]), [1, 4, 4]);
  assert.deepEqual(new MaxPool2d({ kernel: [3, 3], stride: [2, 2] }).computeOutputShape([1, 8, 8]), [1, 3, 3]);
  // span 4 + 1 padding: ceil gives 4 windows, but the 4th would start in the trailing padding.
  assert.deepEqual(new MaxPool2d({ kernel: [2, 2], stride: [2, 2], pads: [1, 1, 1, 1], ceilMode: true }).computeOutputShape([1, 5, 5]), [1, 3, 3]);
  const out = runPlaintext(new Model([1, 3, 3], [new MaxPool2d({ kernel: [2, 2], stride: [2, 2], ceilMode: true })]), Float64Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9));
  assert.deepEqual(Array.from(out), [5, 6, 8, 9]);
});

test('the new activations compute their functions', () => {
  const x = Float64Array.of(-4, -1, 0, 1, 4);
  const run = (layer: Layer) => Array.from(runPlaintext(new Model([5], [layer]), x));
  const close = (a: number[], b: number[]) => assert.ok(maxAbsDiff(a, b) < 1e-12, `${a} vs ${b}`);
  close(run(new LeakyRelu(0.1)), [-0.4, -0.1, 0, 1, 4]);
  close(run(new Gelu()), [-4 * 0.5 * (1 + erf(-4 / Math.SQRT2)), -0.15865525393145707, 0, 0.8413447460685429, 3.9998733150326676]);
  close(run(new Silu()), [-4 / (1 + Math.exp(4)), -0.2689414213699951, 0, 0.7310585786300049, 4 / (1 + Math.exp(-4))]);
  close(run(new HardSwish()), [0, -1 / 3, 0, 2 / 3, 4]);
  close(run(new Clip(0, 6)), [0, 0, 0, 1, 4]);
  const logits = run(new LogSoftmax());
  close([logits.reduce((a, v) => a + Math.exp(v), 0)], [1]);
  // Far below the maximum, log-probabilities stay finite (log of softmax would be −∞).
  const far = Array.from(runPlaintext(new Model([2], [new LogSoftmax()]), Float64Array.of(0, 1000)));
  close(far, [-1000, 0]);
  assert.throws(() => new Clip(1, 0), RangeError);
  assert.throws(() => new Conv2d({ weights: new Float32Array(8), outChannels: 4, inChannels: 3, kernel: [1, 1], group: 2 }), RangeError);
  assert.throws(() => new Transpose([0, 0]), RangeError);
  assert.throws(() => new Affine({ scale: Float32Array.of(1, 2) }).computeOutputShape([3, 2, 2]), ShapeError);
});
