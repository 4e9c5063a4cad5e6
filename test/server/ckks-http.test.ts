import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { importOnnx, runPlaintext } from '../../src/nn/index.js';
import { FormatError } from '../../src/errors.js';
import { CkksInferenceClient, CkksInferenceService } from '../../src/protocol/ckks-inference/index.js';
import { CkksServiceKeys } from '../../src/schemes/ckks/index.js';
import { decodeCkksMessage, encodeCkksMessage } from '../../src/protocol/ckks-inference/wire.js';
import { ServiceError } from '../../src/protocol/paillier-inference/index.js';
import { startServer, type BlindmlServer } from '../../src/server/app.js';
import { HttpCkksTransport } from '../../src/client/ckks-http-transport.js';
import { registerModel } from '../../src/client/index.js';
import { modelIdOf, loadModel } from '../../src/cli/inference-job.js';
import { runCkksInferenceJob } from '../../src/cli/ckks-job.js';

const modelPath = new URL('../../models/fashion-small.onnx', import.meta.url);
const onnx = readFileSync(modelPath);
const modelId = modelIdOf(onnx);
const small = importOnnx(onnx);
const sample = loadFashionMnistSample({ limit: 3 });
const plain = runPlaintext(small, sample.images);
const API_KEY = 'test-owner-key';
const dir = mkdtempSync(join(tmpdir(), 'blindml-ckks-server-'));
let server: BlindmlServer;

before(async () => {
  server = await startServer({ db: join(dir, 'registry.db'), apiKey: API_KEY, port: 0, workers: 0, logger: false });
  await registerModel(server.url, API_KEY, onnx);
});
after(async () => {
  await server.close(0);
  rmSync(dir, { recursive: true, force: true });
});

test('CKKS frames: any message of JSON values, bytes and int32 tables comes back equal', () => {
  const leaf = fc.oneof(
    fc.integer(), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null),
    fc.uint8Array({ maxLength: 40 }), fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 20 }).map((a) => Int32Array.from(a)),
  );
  const value = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(fc.constantFrom('a', 'b', 'sources', 'x'), tie('node'), { maxKeys: 3 }).map((d) => ({ ...d }))),
  })).node;
  fc.assert(fc.property(value, (v) => assert.deepEqual(decodeCkksMessage(encodeCkksMessage(v)), v)));
});

test('CKKS frames: junk, truncation, a blob referenced twice or out of range are FormatErrors', () => {
  const good = encodeCkksMessage({ version: 1, inputs: [[Uint8Array.of(1, 2, 3)]], t: Int32Array.of(-1, 7) });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
    assert.throws(() => decodeCkksMessage(junk), FormatError);
  }));
  for (let cut = 0; cut < good.length; cut += 3) assert.throws(() => decodeCkksMessage(good.subarray(0, cut)), FormatError, `cut at ${cut}`);
  assert.throws(() => decodeCkksMessage(Uint8Array.from([...good, 0])), FormatError, 'trailing byte');
  const twice = encodeCkksMessage({ a: Uint8Array.of(1), b: 'x' });
  const text = new TextDecoder().decode(twice);
  const forged = new TextEncoder().encode(text.replace('"b":"x"', '"b":{"$blob":0}'));
  // The header grew: fix its length field, the blob section is unchanged.
  const headerLength = new DataView(twice.buffer).getUint32(4) + (forged.length - twice.length);
  new DataView(forged.buffer).setUint32(4, headerLength);
  assert.throws(() => decodeCkksMessage(forged), /referenced twice/);
  assert.throws(() => encodeCkksMessage({ f: Float64Array.of(1) }), TypeError);
});

test('a client with only the server\'s address and a model id gets the plaintext predictions over HTTP', async () => {
  const transport = new HttpCkksTransport(server.url, modelId);
  const client = await CkksInferenceClient.connect(transport);
  try {
    for (let i = 0; i < 2; i++) {
      const { logits } = await client.predict(sample.images.subarray(i * 784, (i + 1) * 784));
      logits.forEach((v, j) => assert.ok(Math.abs(v - plain[i * 10 + j]!) < 0.05, `image ${i} logit ${j}: ${v} vs ${plain[i * 10 + j]}`));
    }
    assert.ok(transport.traffic.sent > 0 && transport.traffic.received > 0);
  } finally {
    client.dispose();
  }
});

test('the CKKS front refuses an unknown model, a malformed round and a round out of order, and keeps serving', async () => {
  await assert.rejects(CkksInferenceClient.connect(new HttpCkksTransport(server.url, 'nope')), (e: unknown) => e instanceof ServiceError && e.code === 'ERR_UNKNOWN_MODEL');
  const transport = new HttpCkksTransport(server.url, modelId);
  const client = await CkksInferenceClient.connect(transport);
  try {
    const opened = (await transport.open({ version: 1, keyId: client.keyId })) as { sessionId: string };
    await assert.rejects(transport.round({ version: 1, sessionId: opened.sessionId, stage: 1, inputs: [[new Uint8Array(8)]] }), (e: unknown) => e instanceof ServiceError && e.code === 'ERR_OUT_OF_ORDER');
    await assert.rejects(transport.round({ version: 1, sessionId: opened.sessionId, stage: 0, inputs: [[new Uint8Array(8)]] }), (e: unknown) => e instanceof ServiceError && e.code === 'ERR_SESSION_NOT_HERE', 'the failed round closed the session (the transport routes by key: a replica without the session says so, retryably)');
    const raw = await fetch(`${server.url}/v1/ckks/${modelId}/round`, { method: 'POST', body: Uint8Array.of(1, 2, 3), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(raw.status, 400);
    assert.equal(((await raw.json()) as { error: string }).error, 'ERR_FORMAT');
    const { logits } = await client.predict(sample.images.subarray(0, 784));
    assert.equal(logits.length, 10, 'the service still answers');
  } finally {
    client.dispose();
  }
});

test('infer --scheme ckks --server: the job against a running server agrees with plaintext', async () => {
  const loaded = loadModel(modelPath.pathname);
  const result = await runCkksInferenceJob({ loaded, data: { ...sample, count: 2, images: sample.images.subarray(0, 2 * 784), labels: sample.labels.slice(0, 2) }, calibration: sample.images, server: server.url });
  assert.equal(result.agreement, 1);
  assert.equal(result.scheme, 'ckks');
  assert.ok(result.bytesPerSample > 0);
});

test('CKKS key loads, opens, rounds and prepared sessions run on the session threads: the event loop\'s SEAL never sees a client key', async () => {
  // Spies on this (the server's main) thread; the session threads load their own copies of these modules.
  const calls: string[] = [];
  const restore: (() => void)[] = [];
  const spy = (target: object, name: string) => {
    const t = target as Record<string, (...a: unknown[]) => unknown>;
    const original = t[name]!;
    t[name] = function (this: unknown, ...a: unknown[]) {
      calls.push(name);
      return original.apply(this, a);
    };
    restore.push(() => (t[name] = original));
  };
  spy(CkksServiceKeys, 'load');
  for (const m of ['registerKeys', 'open', 'round', 'prepare', 'precompute']) spy(CkksInferenceService.prototype, m);
  const client = await CkksInferenceClient.connect(new HttpCkksTransport(server.url, modelId));
  try {
    const { logits } = await client.predict(sample.images.subarray(784, 2 * 784));
    logits.forEach((v, j) => assert.ok(Math.abs(v - plain[10 + j]!) < 0.05, `logit ${j}: ${v} vs ${plain[10 + j]}`));
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as { sessionsByScheme: { ckks: number } };
    assert.equal(health.sessionsByScheme.ckks, 0, 'the completed session left the counts');
  } finally {
    client.dispose();
    for (const r of restore) r();
  }
  assert.deepEqual(calls, [], 'none of the CKKS service\'s work ran on the event loop');
});
