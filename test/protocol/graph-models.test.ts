/**
 * Graph models (residual blocks, concatenated branches, depthwise convolutions, the newer
 * activations and output heads) planned into stages and run through both interactive protocols:
 * predictions agree with the plaintext executor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Add, Affine, Clip, Concat, Conv2d, Dense, Flatten, Gelu, GlobalAvgPool2d, HardSwish, LeakyRelu, LogSoftmax, MaxPool2d, Polynomial, Relu, Silu, Softmax,
  type Layer,
} from '../../src/nn/layers.js';
import { Model, type ModelNode } from '../../src/nn/model.js';
import { runPlaintext } from '../../src/nn/plaintext.js';
import {
  PaillierInferenceClient, PaillierInferenceService, UnsupportedModelError, compileModel, evaluatePlan, planCalibrated, planModel, splineTerms, type InferencePlan,
} from '../../src/protocol/paillier-inference/index.js';
import {
  CkksInferenceClient, CkksInferenceService, DEFAULT_CKKS_PROTOCOL, clientActivations, compileCkksModel, inProcessCkksTransport,
} from '../../src/protocol/ckks-inference/index.js';
import { planPolyNetwork } from '../../src/protocol/ckks-poly/plan.js';
import { randoms } from '../nn/onnx-helpers.js';
import { smallKeys } from '../helpers/keys.js';

const node = (name: string, layer: Layer, inputs: string[], output = name): ModelNode => ({ name, layer, inputs, output });

function conv(inC: number, outC: number, k: number, seed: number, extra: { pad?: number; stride?: number; group?: number } = {}): Conv2d {
  const group = extra.group ?? 1;
  const pad = extra.pad ?? 0;
  const stride = extra.stride ?? 1;
  return new Conv2d({
    inChannels: inC, outChannels: outC, kernel: [k, k], group, pads: [pad, pad, pad, pad], stride: [stride, stride],
    weights: randoms((outC * inC * k * k) / group, seed, 0.6), bias: randoms(outC, seed + 100, 0.2),
  });
}

function batchNorm(channels: number, seed: number): Affine {
  return new Affine({ scale: randoms(channels, seed, 0.5).map((v) => 1 + v), bias: randoms(channels, seed + 1, 0.2) });
}

/** conv → BN → ReLU → conv → BN → ReLU → conv, added to the first ReLU's output → ReLU + max-pool → global pool → dense → log-softmax. */
function residualModel(): Model {
  return Model.fromGraph({
    inputName: 'x', inputShape: [1, 6, 6], outputName: 'out', name: 'residual',
    nodes: [
      node('conv1', conv(1, 4, 3, 1, { pad: 1 }), ['x']),
      node('bn1', batchNorm(4, 2), ['conv1']),
      node('relu1', new Relu(), ['bn1']),
      node('conv2', conv(4, 4, 3, 3, { pad: 1 }), ['relu1']),
      node('bn2', batchNorm(4, 4), ['conv2']),
      node('relu2', new Relu(), ['bn2']),
      node('conv3', conv(4, 4, 3, 5, { pad: 1 }), ['relu2']),
      node('add', new Add(), ['relu1', 'conv3']),
      node('relu3', new Relu(), ['add']),
      node('pool', new MaxPool2d({ kernel: [2, 2] }), ['relu3']),
      node('gap', new GlobalAvgPool2d(), ['pool']),
      node('flat', new Flatten(), ['gap']),
      node('fc', new Dense({ inFeatures: 4, outFeatures: 3, weights: randoms(12, 6), bias: randoms(3, 7, 0.1) }), ['flat']),
      node('head', new LogSoftmax(), ['fc'], 'out'),
    ],
  });
}

/** Three branches on the input (1×1 conv + ReLU, 3×3 conv + LeakyReLU, max-pool), concatenated → strided conv → GELU → global pool → dense. */
function inceptionModel(): Model {
  return Model.fromGraph({
    inputName: 'x', inputShape: [1, 6, 6], outputName: 'out', name: 'inception',
    nodes: [
      node('a', conv(1, 2, 1, 11), ['x']),
      node('ra', new Relu(), ['a']),
      node('b', conv(1, 2, 3, 12, { pad: 1 }), ['x']),
      node('rb', new LeakyRelu(0.1), ['b']),
      node('c', new MaxPool2d({ kernel: [3, 3], stride: [1, 1], pads: [1, 1, 1, 1] }), ['x']),
      node('cat', new Concat(), ['ra', 'rb', 'c']),
      node('mix', conv(5, 3, 3, 13, { stride: 2 }), ['cat']),
      node('gelu', new Gelu(), ['mix']),
      node('gap', new GlobalAvgPool2d(), ['gelu']),
      node('flat', new Flatten(), ['gap']),
      node('fc', new Dense({ inFeatures: 3, outFeatures: 3, weights: randoms(9, 14), bias: randoms(3, 15, 0.1) }), ['flat'], 'out'),
    ],
  });
}

/** conv → ReLU6 → depthwise conv → BN → HardSwish → pointwise conv → SiLU → global pool → dense → softmax. */
function mobileModel(): Model {
  return Model.fromGraph({
    inputName: 'x', inputShape: [1, 6, 6], outputName: 'out', name: 'mobile',
    nodes: [
      node('stem', conv(1, 4, 3, 21, { pad: 1 }), ['x']),
      node('relu6', new Clip(0, 6), ['stem']),
      node('dw', conv(4, 4, 3, 22, { pad: 1, group: 4 }), ['relu6']),
      node('bn', batchNorm(4, 23), ['dw']),
      node('hswish', new HardSwish(), ['bn']),
      node('pw', conv(4, 4, 1, 24), ['hswish']),
      node('silu', new Silu(), ['pw']),
      node('gap', new GlobalAvgPool2d(), ['silu']),
      node('flat', new Flatten(), ['gap']),
      node('fc', new Dense({ inFeatures: 4, outFeatures: 3, weights: randoms(12, 25), bias: randoms(3, 26, 0.1) }), ['flat']),
      node('head', new Softmax(), ['fc'], 'out'),
    ],
  });
}

const MODELS = [residualModel(), inceptionModel(), mobileModel()];

function images(count: number, seed: number): Float32Array {
  return randoms(count * 36, seed).map((v) => Math.round((v + 1) * 127.5) / 255);
}

/** The plan's output head applied to logits, as the executor's last node computes it. */
function head(plan: InferencePlan, logits: ArrayLike<number>): Float64Array {
  const x = Float64Array.from(logits);
  if (plan.outputActivation !== 'softmax' && plan.outputActivation !== 'logsoftmax') return x;
  const m = Math.max(...x);
  const logSum = m + Math.log(x.reduce((a, v) => a + Math.exp(v - m), 0));
  return x.map((v) => (plan.outputActivation === 'softmax' ? Math.exp(v - logSum) : v - logSum));
}

test('graph models plan into stages reading several rounds', () => {
  const [residual, inception, mobile] = MODELS.map((m) => planModel(m));
  assert.deepEqual(residual!.stages.map((s) => s.sources), [[-1], [0], [0, 1], [2]]);
  assert.deepEqual(residual!.stages.map((s) => s.activation?.pool ?? null), [null, null, 'max', null], 'ReLU and max-pool share a round');
  assert.equal(residual!.outputActivation, 'logsoftmax');
  assert.deepEqual(inception!.stages.map((s) => s.sources), [[-1], [-1], [-1], [0, 1, 2], [3]]);
  assert.deepEqual(inception!.stages.map((s) => s.activation?.homogeneous ?? null), [true, true, true, false, null], 'LeakyReLU is blinded, GELU is not');
  // ReLU6 = ReLU(x) − ReLU(x − 6): one blinded round on twice the values.
  assert.deepEqual(mobile!.stages.map((s) => s.activation?.fns ?? null), [['relu'], ['hardswish'], ['silu'], null]);
  assert.equal(mobile!.stages[0]!.activation!.inputSize, 2 * 4 * 36);
  assert.equal(mobile!.outputActivation, 'softmax');
});

test('a GELU before a max-pool gets its own round (max does not commute with it); a polynomial or inner softmax is refused by node name', () => {
  const model = Model.fromGraph({
    inputName: 'x', inputShape: [1, 4, 4], outputName: 'out',
    nodes: [node('c', conv(1, 2, 1, 31), ['x']), node('g', new Gelu(), ['c']), node('p', new MaxPool2d({ kernel: [2, 2] }), ['g']), node('f', new Flatten(), ['p']), node('d', new Dense({ inFeatures: 8, outFeatures: 2, weights: randoms(16, 32) }), ['f'], 'out')],
  });
  const plan = planModel(model);
  assert.deepEqual(plan.stages.map((s) => [s.sources, s.activation?.pool ?? null]), [[[-1], null], [[0], 'max'], [[1], null]]);
  const poly = new Model([1, 4, 4], [conv(1, 2, 1, 34), new Polynomial([0, 1, 0.5]), new Flatten(), new Dense({ inFeatures: 32, outFeatures: 2, weights: randoms(64, 35) })]);
  assert.throws(() => planModel(poly), (e: unknown) => e instanceof UnsupportedModelError && /node 'layer1' \(polynomial\).*ckks-poly/.test(e.message));
  const inner = new Model([4], [new Dense({ inFeatures: 4, outFeatures: 4, weights: randoms(16, 36) }), new Softmax(), new Dense({ inFeatures: 4, outFeatures: 2, weights: randoms(8, 37) })]);
  assert.throws(() => planModel(inner), /node 'layer1' \(softmax\) is only supported as the model's output/);
  assert.throws(() => planPolyNetwork(MODELS[0]!), /node 'relu1' \(relu\) cannot be evaluated on CKKS ciphertexts without the client/);
});

test('splines: every round is a blinded ReLU round, and the plan stays within the fit error of the executor', () => {
  const calibration = images(60, 40);
  for (const model of MODELS) {
    const plan = planCalibrated(model, calibration, { nonHomogeneous: 'spline' });
    assert.ok(plan.stages.every((s) => s.activation === null || s.activation.homogeneous), `${model.name}: only blinded rounds`);
    const x = images(4, 61);
    const plain = runPlaintext(model, x);
    for (let i = 0; i < 4; i++) {
      const got = head(plan, evaluatePlan(plan, x.subarray(36 * i, 36 * (i + 1))));
      got.forEach((v, j) => assert.ok(Math.abs(v - plain[3 * i + j]!) < 0.02, `${model.name} image ${i} output ${j}: ${v} vs ${plain[3 * i + j]}`));
    }
  }
  const fit = splineTerms(Math.tanh, [-2, 2], 8);
  const at = (v: number) => fit.constant + fit.coefs.reduce((a, c, i) => a + c * Math.max(0, fit.slopes[i]! * v - fit.shifts[i]!), 0);
  for (const v of [-2, -1.5, 0, 0.5, 2]) assert.ok(Math.abs(at(v) - Math.tanh(v)) < 1e-12, 'the interpolant meets f at the knots');
  assert.throws(() => planModel(MODELS[1]!, { nonHomogeneous: 'spline' }), /node 'gelu' \(gelu\): a spline needs the calibrated range/);
});

test('Paillier: residual, concatenated and depthwise graph models agree with the plaintext executor', async () => {
  const service = new PaillierInferenceService({ allowInsecureKeys: true });
  const client = new PaillierInferenceClient({ send: (b) => service.handle(b) }, { keys: smallKeys() });
  const x = images(3, 41);
  for (const model of MODELS) {
    const compiled = compileModel(model, images(60, 40));
    service.register(model.name, compiled);
    const plain = runPlaintext(model, x);
    for (let i = 0; i < 3; i++) {
      const { logits } = await client.predict(model.name, x.subarray(36 * i, 36 * (i + 1)));
      const got = head(compiled.plan, logits[0]!);
      got.forEach((v, j) => assert.ok(Math.abs(v - plain[3 * i + j]!) < 2e-3, `${model.name} image ${i} output ${j}: ${v} vs ${plain[3 * i + j]}`));
    }
  }
  assert.equal(service.sessionCount, 0);
});

test('CKKS: residual, concatenated and depthwise graph models agree with the plaintext executor (the MobileNet-style one also with splines)', async () => {
  const x = images(2, 51);
  const runs = [...MODELS.map((m) => [m, 'client'] as const), [MODELS[2]!, 'spline'] as const];
  for (const [model, nonHomogeneous] of runs) {
    const compiled = compileCkksModel(model, images(60, 40), { ...DEFAULT_CKKS_PROTOCOL, nonHomogeneous });
    const tol = nonHomogeneous === 'spline' ? 0.02 : 1e-3;
    const service = await CkksInferenceService.create(compiled);
    try {
      const client = await CkksInferenceClient.connect(inProcessCkksTransport(service));
      try {
        assert.deepEqual(clientActivations(compiled).length, compiled.stages.length - 1);
        const plain = runPlaintext(model, x);
        for (let i = 0; i < 2; i++) {
          const { logits } = await client.predict(x.subarray(36 * i, 36 * (i + 1)));
          const got = head(compiled.plan, logits);
          got.forEach((v, j) => assert.ok(Math.abs(v - plain[3 * i + j]!) < tol, `${model.name} (${nonHomogeneous}) image ${i} output ${j}: ${v} vs ${plain[3 * i + j]}`));
        }
      } finally {
        client.dispose();
      }
    } finally {
      service.dispose();
    }
  }
});
