// Paillier batch mode through a real server: several images packed into each ciphertext, over the
// SDK's WebSocket and HTTP transports and through `infer --server --batch`, agreeing with the
// plaintext model.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { argmaxRows, importOnnx, runPlaintext } from '../../src/nn/index.js';
import { startServer, type BlindmlServer } from '../../src/server/app.js';
import { connect, registerModel } from '../../src/client/index.js';
import { loadModel, runInferenceJob } from '../../src/cli/inference-job.js';
import { smallKeys } from '../helpers/keys.js';
import { PAILLIER_LOGIT_TOLERANCE } from '../helpers/tolerance.js';

const modelPath = fileURLToPath(new URL('../../models/fashion-small.onnx', import.meta.url));
const onnx = readFileSync(modelPath);
const sample = loadFashionMnistSample({ limit: 5 });
const plain = runPlaintext(importOnnx(onnx), sample.images);
const API_KEY = 'batch-owner-key';
const dir = mkdtempSync(join(tmpdir(), 'blindml-batch-'));
let server: BlindmlServer;
let modelId: string;

before(async () => {
  server = await startServer({ db: join(dir, 'r.db'), apiKey: API_KEY, port: 0, workers: 0, allowInsecureKeys: true, logger: false });
  modelId = (await registerModel(server.url, API_KEY, onnx)).model.id;
});
after(async () => {
  await server.close(0);
  rmSync(dir, { recursive: true, force: true });
});

for (const transport of ['websocket', 'http'] as const) {
  test(`SDK predictBatch over ${transport}: three images per ciphertext, five images in two sessions, the plaintext predictions`, async () => {
    const client = await connect(server.url, { transport, keys: smallKeys() });
    try {
      const phases = new Set<string>();
      const { labels, logits, stats } = await client.predictBatch(modelId, sample.images, { batch: 3, onProgress: (p) => phases.add(p.phase) });
      assert.equal(stats.batch, 3, 'the service granted three images per ciphertext');
      assert.equal(stats.rounds, 2);
      assert.deepEqual(labels, Array.from(argmaxRows(plain, 10)));
      logits.forEach((row, k) => row.forEach((v, j) => assert.ok(Math.abs(v - plain[k * 10 + j]!) < PAILLIER_LOGIT_TOLERANCE, `image ${k} logit ${j}: ${v} vs ${plain[k * 10 + j]}`)));
      assert.ok(phases.has('round') && phases.has('done'));
      await assert.rejects(client.predictBatch(modelId, sample.images.subarray(0, 100)), RangeError);
      assert.equal(server.trackedSessions(), 0, 'every session ended');
    } finally {
      client.close();
    }
  });
}

test('infer --server --batch: the job packs images per ciphertext through the server and agrees with plaintext', async () => {
  const data = { ...sample, count: 4, images: sample.images.subarray(0, 4 * 784), labels: sample.labels.slice(0, 4) };
  const r = await runInferenceJob({ loaded: loadModel(modelPath), data, calibration: sample.images, keyBits: 512, insecure: true, batch: 4, server: server.url, modelId, workers: 0 });
  assert.equal(r.mode, 'batch');
  assert.equal(r.batch, 4);
  assert.equal(r.agreement, 1);
  assert.ok(r.maxLogitError < PAILLIER_LOGIT_TOLERANCE);
});
