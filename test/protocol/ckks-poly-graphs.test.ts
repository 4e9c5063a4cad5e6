/**
 * ckks-poly on graph models: a residual block with a depthwise convolution and batch norm after
 * the Add (imported from ONNX), and three concatenated branches of different depths behind a
 * Transpose and a Pad. The service evaluates each whole graph on ciphertexts; its predictions
 * agree with the plaintext executor. A graph too deep for 128-bit parameters is refused naming
 * the activation where the bound runs out.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AvgPool2d, Add, Concat, Conv2d, Dense, Flatten, Pad, Polynomial, Transpose, type Layer } from '../../src/nn/layers.js';
import { Model, type ModelNode } from '../../src/nn/model.js';
import { importOnnx } from '../../src/nn/onnx.js';
import { argmaxRows } from '../../src/nn/plaintext.js';
import { CkksCiphertext } from '../../src/schemes/ckks/index.js';
import {
  CkksPolyClient, CkksPolyService, ParameterError, compilePolyNetwork, planPolyNetwork, polyLogits, runInteger, type CompiledPolyNetwork,
} from '../../src/protocol/ckks-poly/index.js';
import { buildModel, floatTensor, randoms, type NodeSpec } from '../nn/onnx-helpers.js';

const P = [0.25, 0.5, 0.125];

/** p(x) = 0.25 + 0.5x + 0.125x² the way PyTorch exports it (Horner's rule with scalar constants). */
function polyNodes(x: string, out: string): NodeSpec[] {
  return [
    { op: 'Mul', inputs: [x, 'k2'], outputs: [`${out}_a`] },
    { op: 'Add', inputs: [`${out}_a`, 'k1'], outputs: [`${out}_b`] },
    { op: 'Mul', inputs: [`${out}_b`, x], outputs: [`${out}_c`] },
    { op: 'Add', inputs: [`${out}_c`, 'k0'], outputs: [out], name: out },
  ];
}

/**
 * 1×6×6 → conv 3×3 (2 channels) → p → depthwise 3×3 → p → pointwise 1×1 → Add (shortcut from the
 * first p) → per-channel affine (a batch norm) → p → flatten → dense 3 → LogSoftmax.
 */
function residualOnnx(): Model {
  const pads = { ints: [1, 1, 1, 1] };
  return importOnnx(buildModel({
    sampleShape: [1, 6, 6],
    nodes: [
      { op: 'Conv', inputs: ['input', 'w1', 'b1'], outputs: ['c1'], attrs: { pads } },
      ...polyNodes('c1', 'h1'),
      { op: 'Conv', inputs: ['h1', 'wd', 'bd'], outputs: ['c2'], attrs: { pads, group: { i: 2 } } },
      ...polyNodes('c2', 'h2'),
      { op: 'Conv', inputs: ['h2', 'wp', 'bp'], outputs: ['c3'] },
      { op: 'Add', inputs: ['c3', 'h1'], outputs: ['r'], name: 'residual_add' },
      { op: 'Mul', inputs: ['r', 'bn_scale'], outputs: ['rs'] },
      { op: 'Add', inputs: ['rs', 'bn_bias'], outputs: ['rb'] },
      ...polyNodes('rb', 'h3'),
      { op: 'Flatten', inputs: ['h3'], outputs: ['f'] },
      { op: 'Gemm', inputs: ['f', 'd', 'e'], outputs: ['logits'], attrs: { transB: { i: 1 } } },
      { op: 'LogSoftmax', inputs: ['logits'], outputs: ['out'], attrs: { axis: { i: 1 } } },
    ],
    initializers: [
      floatTensor('w1', [2, 1, 3, 3], randoms(18, 1, 0.5)),
      floatTensor('b1', [2], [0.1, -0.1]),
      floatTensor('wd', [2, 1, 3, 3], randoms(18, 2, 0.4)),
      floatTensor('bd', [2], [0.05, 0.1]),
      floatTensor('wp', [2, 2, 1, 1], randoms(4, 3, 0.8)),
      floatTensor('bp', [2], [0, 0.1]),
      floatTensor('bn_scale', [2, 1, 1], [0.8, 1.3]),
      floatTensor('bn_bias', [2, 1, 1], [-0.2, 0.1]),
      floatTensor('k0', [], [P[0]!]),
      floatTensor('k1', [], [P[1]!]),
      floatTensor('k2', [], [P[2]!]),
      floatTensor('d', [3, 72], randoms(216, 4, 0.5)),
      floatTensor('e', [3], randoms(3, 5, 0.2)),
    ],
    output: 'out',
  }));
}

/** Weights of at least 0.2 in size: a near-zero filter would make its channel a near-constant that the integer weights round away. */
const awayFromZero = (w: Float32Array) => w.map((v) => v + (v < 0 ? -0.2 : 0.2));
const node = (name: string, layer: Layer, inputs: string[], output = name): ModelNode => ({ name, layer, inputs, output });
const conv = (inC: number, outC: number, k: number, seed: number, pad = 0, stride = 1): Conv2d =>
  new Conv2d({ inChannels: inC, outChannels: outC, kernel: [k, k], pads: [pad, pad, pad, pad], stride: [stride, stride], weights: awayFromZero(randoms(outC * inC * k * k, seed, 0.4)), bias: randoms(outC, seed + 50, 0.1) });

/**
 * Three branches on a 1×6×6 input, concatenated: a 1×1 conv → p (one square), 3×3 conv → p →
 * 3×3 conv → p (two), and a 3×3 average pool of the input itself (none) → transpose H and W →
 * pad one row and column → conv 3×3 stride 2 → p → flatten → dense 4.
 */
function concatGraph(): Model {
  return Model.fromGraph({
    inputName: 'x', inputShape: [1, 6, 6], outputName: 'out', name: 'concat',
    nodes: [
      node('a', conv(1, 2, 1, 10), ['x']),
      node('pa', new Polynomial(P), ['a']),
      node('b', conv(1, 2, 3, 11, 1), ['x']),
      node('pb', new Polynomial(P), ['b']),
      node('b2', conv(2, 2, 3, 12, 1), ['pb']),
      node('pb2', new Polynomial(P), ['b2']),
      node('c', new AvgPool2d({ kernel: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1] }), ['x']),
      node('cat', new Concat(), ['pa', 'pb2', 'c']),
      node('t', new Transpose([0, 2, 1]), ['cat']),
      node('pad', new Pad([0, 1, 1, 0, 0, 0]), ['t']),
      node('mix', conv(5, 3, 3, 13, 0, 2), ['pad']),
      node('pm', new Polynomial(P), ['mix']),
      node('flat', new Flatten(), ['pm']),
      node('fc', new Dense({ inFeatures: 27, outFeatures: 4, weights: randoms(108, 14, 0.5), bias: randoms(4, 15, 0.1) }), ['flat'], 'out'),
    ],
  });
}

const images = (n: number, seed: number, scale = 1) => Float32Array.from({ length: n * 36 }, (_, i) => (scale * (Math.sin(i * 3.7 + seed) + 1)) / 2);
const maxAbs = (v: ArrayLike<number>) => Array.from(v).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('ckks-poly on graph models', () => {
  // The concatenation's inputs span 0–8: the input, read two levels down, is then brought down by 1/8.
  const cases: [string, () => Model, number][] = [['residual block (ONNX)', residualOnnx, 1], ['concatenated branches', concatGraph, 8]];
  for (const [name, build, range] of cases) {
    describe(name, async () => {
      const model = build();
      const net: CompiledPolyNetwork = compilePolyNetwork(model, images(64, 1, range));
      const service = new CkksPolyService();
      service.register('g', net, model.inputShape);
      const client = await CkksPolyClient.connect({ send: (bytes) => service.handle(bytes) }, 'g');
      after(async () => {
        client.dispose();
        await service.dispose();
      });

      test('encrypted predictions agree with the plaintext executor (argmax on every input, logits within 2% of the largest)', async () => {
        const x = images(12, 7, range);
        const live = CkksCiphertext.liveCount;
        const result = await client.predict(x);
        assert.equal(CkksCiphertext.liveCount, live, 'the evaluation freed every ciphertext it made');
        const plain = polyLogits(model, x);
        const out = model.outputSize;
        assert.deepEqual(Array.from(result.labels), Array.from(argmaxRows(plain, out)));
        const scale = maxAbs(plain);
        assert.ok(maxDiff(result.logits, plain) < 0.02 * scale, `logit error ${maxDiff(result.logits, plain)} vs logits up to ${scale}`);
        // The CKKS part alone (against the same integer pipeline in the clear) is smaller: about
        // 1e-3 of the logits after three squares.
        const integer = runInteger(net, x);
        assert.ok(maxDiff(result.logits, integer) < 5e-3 * scale, `CKKS error ${maxDiff(result.logits, integer)} vs logits up to ${scale}`);
      });
    });
  }

  test('plan: the shortcut and the shallower branches are read at the deeper level, brought down by a power of two', () => {
    const residual = compilePolyNetwork(residualOnnx(), images(32, 2));
    assert.deepEqual(residual.stages.map((s) => [s.sources, s.level]), [[[-1], 0], [[0], 1], [[0, 1], 2], [[2], 3]]);
    assert.equal(residual.depth, 3);
    assert.equal(residual.plan.outputActivation, 'logsoftmax');
    const lift = residual.stages[2]!.lift;
    assert.equal(lift[1], null);
    assert.ok(Number.isInteger(Math.log2(lift[0]!)), `lift ${lift[0]}`);
    assert.equal(residual.lifts, 72, 'the 72 values of the shortcut');
    const concat = compilePolyNetwork(concatGraph(), images(32, 2, 8));
    const mix = concat.stages[concat.stages.length - 2]!;
    assert.deepEqual([mix.sources, mix.level], [[-1, 0, 2], 2]);
    assert.deepEqual(mix.lift.map((c) => c === null), [false, false, true], 'the input (level 0) and the one-square branch (level 1) are lifted');
    assert.ok(mix.lift[0]! <= 1 / 4, `the input, up to 8, is brought down to the level's magnitudes (× ${mix.lift[0]})`);
  });

  test('a graph too deep for N = 32768 at 128-bit security, or diverging, is refused naming the activation', () => {
    const nodes: ModelNode[] = [];
    let x = 'x';
    for (let i = 0; i < 24; i++) {
      nodes.push(node(`d${i}`, new Dense({ inFeatures: 4, outFeatures: 4, weights: randoms(16, 20 + i, 0.5), bias: randoms(4, 60 + i, 0.1) }), [x]));
      nodes.push(node(`p${i}`, new Polynomial(P), [`d${i}`]));
      x = `p${i}`;
    }
    nodes.push(node('skip', new Add(), [x, 'p0']));
    nodes.push(node('fc', new Dense({ inFeatures: 4, outFeatures: 2, weights: randoms(8, 99) }), ['skip'], 'out'));
    const deep = Model.fromGraph({ inputName: 'x', inputShape: [4], outputName: 'out', nodes });
    assert.equal(planPolyNetwork(deep).stages.length, 25);
    assert.throws(() => compilePolyNetwork(deep, Float32Array.from(randoms(40, 3))), (e: unknown) =>
      e instanceof ParameterError && /too deep — node 'p\d+' is square \d+ of 24 on the longest path/.test(e.message) && /--scheme ckks/.test(e.message));
    // Larger weights: the polynomials feed each other ever larger values until they overflow.
    const layers: Layer[] = [];
    for (let i = 0; i < 16; i++) {
      layers.push(new Dense({ inFeatures: 8, outFeatures: 8, weights: awayFromZero(randoms(64, i + 1, 0.5)), bias: randoms(8, 50 + i, 0.1) }), new Polynomial(P));
    }
    layers.push(new Dense({ inFeatures: 8, outFeatures: 2, weights: randoms(16, 99) }));
    assert.throws(() => compilePolyNetwork(new Model([8], layers), randoms(800, 3).map((v) => v + 0.5)), (e: unknown) =>
      e instanceof ParameterError && /node 'layer\d+': its values overflow double precision on the calibration inputs/.test(e.message));
  });
});
