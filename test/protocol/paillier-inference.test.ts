import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { BlindmlError, OverflowError } from '../../src/errors.js';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { Conv2d, Dense, Flatten, MaxPool2d, Model, Relu, Softmax, Tanh, importOnnx, runPlaintext, argmaxRows } from '../../src/nn/index.js';
import {
  PaillierInferenceClient,
  PaillierInferenceService,
  ServiceError,
  UnsupportedModelError,
  compileModel,
  decodeMessage,
  encodeMessage,
  message,
  planModel,
} from '../../src/protocol/paillier-inference/index.js';
import { HttpTransport } from '../../src/client/http-transport.js';
import { startHttpInferenceServer } from '../../src/server/http-inference.js';
import { generateKeyPair } from '../../src/schemes/paillier/index.js';
import { smallKeys } from '../helpers/keys.js';
import { PAILLIER_LOGIT_TOLERANCE } from '../helpers/tolerance.js';

const small = importOnnx(readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url)));
const sample = loadFashionMnistSample({ limit: 120 });
const calibration = sample.images.subarray(0, 100 * 784);
const evalImages = sample.images.subarray(100 * 784);
const compiled = compileModel(small, calibration);

function serviceWith(model = compiled, id = 'small'): PaillierInferenceService {
  const service = new PaillierInferenceService({ allowInsecureKeys: true });
  service.register(id, model);
  return service;
}

function inProcess(service: PaillierInferenceService) {
  return { send: (b: Uint8Array) => service.handle(b) };
}

test('the small model plans into three stages with two ReLU rounds', () => {
  const plan = planModel(small);
  assert.equal(plan.stages.length, 3);
  assert.deepEqual(plan.stages.map((s) => s.activation?.fns ?? null), [['relu'], ['relu'], null]);
  assert.equal(plan.stages[0]!.linears.length, 1, 'conv and average pooling compose into one map');
  assert.equal(plan.stages[0]!.linears[0]!.rows, 216);
});

test('encrypted predictions equal the plaintext executor (latency mode)', async () => {
  const service = serviceWith();
  const client = new PaillierInferenceClient(inProcess(service), { keys: smallKeys() });
  const plain = runPlaintext(small, evalImages.subarray(0, 4 * 784));
  for (let i = 0; i < 4; i++) {
    const { labels, logits, stats } = await client.predict('small', evalImages.subarray(i * 784, (i + 1) * 784));
    assert.equal(labels[0], argmaxRows(plain.subarray(i * 10, (i + 1) * 10), 10)[0]);
    logits[0]!.forEach((v, j) => assert.ok(Math.abs(v - plain[i * 10 + j]!) < PAILLIER_LOGIT_TOLERANCE, `logit ${j}: ${v} vs ${plain[i * 10 + j]}`));
    assert.equal(stats.rounds, 2);
  }
  assert.equal(service.sessionCount, 0, 'finished sessions are freed');
});

test('batch mode packs several images per ciphertext and agrees with plaintext', async () => {
  const service = serviceWith();
  const client = new PaillierInferenceClient(inProcess(service), { keys: smallKeys(), mode: 'batch', batch: 5 });
  const images = evalImages.subarray(0, 5 * 784);
  const { labels } = await client.predict('small', images);
  assert.deepEqual(labels, Array.from(argmaxRows(runPlaintext(small, images), 10)));
  // Fewer samples than slots work too.
  const two = await client.predict('small', images.subarray(0, 2 * 784));
  assert.deepEqual(two.labels, labels.slice(0, 2));
});

test('max-pool, tanh and a final softmax run through the protocol', async () => {
  const conv = new Conv2d({ outChannels: 2, inChannels: 1, kernel: [3, 3], weights: Float32Array.from({ length: 18 }, (_, i) => Math.sin(i + 1)), bias: Float32Array.of(0.1, -0.2) });
  const dense = new Dense({ inFeatures: 2 * 3 * 3, outFeatures: 4, weights: Float32Array.from({ length: 72 }, (_, i) => Math.cos(i)) });
  const model = new Model([1, 8, 8], [conv, new Relu(), new MaxPool2d({ kernel: [2, 2] }), new Tanh(), new Flatten(), dense, new Softmax()]);
  const plan = planModel(model);
  assert.equal(plan.outputActivation, 'softmax');
  assert.ok(plan.stages[0]!.activation!.windows, 'max-pool windows');
  assert.equal(plan.stages[0]!.activation!.homogeneous, false, 'tanh cannot be blinded');
  const inputs = Float32Array.from({ length: 64 * 3 }, (_, i) => ((i * 37) % 101) / 100);
  const model2 = compileModel(model, inputs);
  const service = serviceWith(model2, 'tiny');
  const client = new PaillierInferenceClient(inProcess(service), { keys: smallKeys() });
  const softmaxed = runPlaintext(model, inputs.subarray(0, 64));
  const { logits } = await client.predict('tiny', inputs.subarray(0, 64));
  const exp = logits[0]!.map((v) => Math.exp(v));
  const sum = exp.reduce((a, b) => a + b, 0);
  exp.forEach((e, j) => assert.ok(Math.abs(e / sum - softmaxed[j]!) < 1e-4));
});

test('layers the protocol cannot place are refused by name', () => {
  const dense = new Dense({ inFeatures: 4, outFeatures: 4, weights: new Float32Array(16) });
  const model = new Model([4], [dense, new Softmax(), dense]);
  assert.throws(() => planModel(model), UnsupportedModelError);
});

test('the HTTP transport carries a whole session', async () => {
  const service = serviceWith();
  const http = await startHttpInferenceServer(service, { maxBodyBytes: 4 * 2 ** 20 });
  after(() => http.close());
  const health = await fetch(`${http.url}/healthz`);
  assert.equal(await health.text(), 'ok');
  const client = new PaillierInferenceClient(new HttpTransport(http.url), { keys: smallKeys() });
  const { labels } = await client.predict('small', evalImages.subarray(0, 784));
  assert.equal(labels[0], argmaxRows(runPlaintext(small, evalImages.subarray(0, 784)), 10)[0]);
  const oversized = await fetch(`${http.url}/v1/paillier`, { method: 'POST', body: new Uint8Array(8 * 2 ** 20) });
  assert.equal(oversized.status, 413);
  const second = await client.predict('small', evalImages.subarray(784, 2 * 784));
  assert.equal(second.labels.length, 1, 'the server still serves after an oversized frame');
});

test('messages out of order, for unknown sessions or malformed are errors that end only that session', async () => {
  const service = serviceWith();
  const keys = smallKeys();
  const width = 2 * Math.ceil(keys.publicKey.bits / 8);
  const send = async (msg: Parameters<typeof encodeMessage>[0]) => decodeMessage(await service.handle(encodeMessage(msg, width)));
  const n = Buffer.from(keys.publicKey.n.toString(16).padStart(128, '0'), 'hex').toString('base64url');
  const opened = await send(message<'open'>({ type: 'open', modelId: 'small', n, mode: 'latency' }));
  assert.equal(opened.type, 'opened');
  const id = (opened as { sessionId: string }).sessionId;
  const early = await send(message<'activated'>({ type: 'activated', sessionId: id, round: 0 }));
  assert.equal(early.type, 'error');
  assert.match((early as { code: string }).code, /ERR_OUT_OF_ORDER/);
  const gone = await send(message<'input'>({ type: 'input', sessionId: id, samples: 1 }));
  assert.match((gone as { code: string }).code, /ERR_UNKNOWN_SESSION/, 'the failed session was dropped');
  const unknownModel = await send(message<'open'>({ type: 'open', modelId: 'nope', n, mode: 'latency' }));
  assert.match((unknownModel as { code: string }).code, /ERR_UNKNOWN_MODEL/);
  const junk = decodeMessage(await service.handle(new TextEncoder().encode('hello')));
  assert.equal(junk.type, 'error');
  // A ciphertext outside Z*_{n²}.
  const again = await send(message<'open'>({ type: 'open', modelId: 'small', n, mode: 'latency' }));
  const sid = (again as { sessionId: string }).sessionId;
  const bad = await send(message<'input'>({ type: 'input', sessionId: sid, samples: 1, ciphertexts: Array.from({ length: 784 }, () => keys.publicKey.nSquared + 1n) }));
  assert.match((bad as { code: string }).code, /ERR_INVALID_CIPHERTEXT|ERR_BAD_MESSAGE/);
  assert.equal(service.sessionCount, 0);
});

test('a second request while the session computes is refused without corrupting the first', async () => {
  const service = serviceWith();
  const keys = smallKeys();
  const width = 128;
  const n = Buffer.from(keys.publicKey.n.toString(16).padStart(128, '0'), 'hex').toString('base64url');
  const opened = decodeMessage(await service.handle(encodeMessage(message<'open'>({ type: 'open', modelId: 'small', n, mode: 'latency' }), width)));
  const sessionId = (opened as { sessionId: string }).sessionId;
  const input = encodeMessage(message<'input'>({ type: 'input', sessionId, samples: 1, ciphertexts: Array.from({ length: 784 }, () => keys.publicKey.encryptRaw(1n)) }), width);
  const [first, second] = await Promise.all([service.handle(input), service.handle(input)]);
  const replies = [decodeMessage(first), decodeMessage(second)].map((m) => m.type).sort();
  assert.deepEqual(replies, ['activate', 'error']);
});

test('weak keys are refused unless the service allows them', async () => {
  const strict = new PaillierInferenceService();
  strict.register('small', compiled);
  const client = new PaillierInferenceClient(inProcess(strict), { keys: smallKeys() });
  await assert.rejects(client.predict('small', evalImages.subarray(0, 784)), (err: Error) => err instanceof ServiceError && /2048/.test(err.message));
});

test('inputs of the wrong size are refused before anything is encrypted', async () => {
  const client = new PaillierInferenceClient(inProcess(serviceWith()), { keys: smallKeys() });
  await assert.rejects(client.predict('small', new Float32Array(100)), RangeError);
});

test('ciphertexts under another key never produce a prediction', async () => {
  const service = serviceWith();
  const other = generateKeyPair({ bits: 512, insecure: true });
  const transport = {
    // Re-encrypt the client's input under a key the client does not hold.
    async send(bytes: Uint8Array) {
      const msg = decodeMessage(bytes);
      if (msg.type === 'input') msg.ciphertexts = msg.ciphertexts.map(() => other.publicKey.encryptRaw(1n) % smallKeys().publicKey.nSquared);
      return service.handle(encodeMessage(msg, 128));
    },
  };
  const client = new PaillierInferenceClient(transport, { keys: smallKeys() });
  await assert.rejects(client.predict('small', evalImages.subarray(0, 784)), (err: Error) => err instanceof OverflowError || err instanceof BlindmlError);
  assert.equal(service.sessionCount, 0, 'the client closed its failed session');
});

test('the message codec rejects junk without crashing', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        decodeMessage(bytes);
      } catch (err) {
        assert.ok(err instanceof BlindmlError, String(err));
      }
    }),
    { numRuns: 300 },
  );
  const msg = message<'activated'>({ type: 'activated', sessionId: 'abcdefgh12345678', round: 3, ciphertexts: [1n, 2n ** 100n] });
  const bytes = encodeMessage(msg, 16);
  assert.deepEqual(decodeMessage(bytes), msg);
  assert.throws(() => decodeMessage(bytes.subarray(0, bytes.length - 1)), BlindmlError);
});
