// Interactive CKKS over one WebSocket: the same steps, checks and answers as over HTTP, with
// messages larger than a frame cut into chunks; malformed or oversized frames close the connection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { importOnnx, runPlaintext } from '../../src/nn/index.js';
import { CkksInferenceClient } from '../../src/protocol/ckks-inference/index.js';
import { ServiceError } from '../../src/protocol/paillier-inference/index.js';
import fc from 'fast-check';
import { ChunkAssembly, decodeChunk, encodeChunks } from '../../src/protocol/chunks.js';
import { FormatError } from '../../src/errors.js';
import { startServer, type BlindmlServer } from '../../src/server/app.js';
import { connectCkks, registerModel, WebSocketCkksTransport } from '../../src/client/index.js';
import { loadModel } from '../../src/cli/inference-job.js';
import { runCkksInferenceJob } from '../../src/cli/ckks-job.js';

const modelPath = fileURLToPath(new URL('../../models/fashion-small.onnx', import.meta.url));
const onnx = readFileSync(modelPath);
const sample = loadFashionMnistSample({ limit: 2 });
const plain = runPlaintext(importOnnx(onnx), sample.images);
const API_KEY = 'ckks-ws-key';
const dir = mkdtempSync(join(tmpdir(), 'blindml-ckks-ws-'));
const MAX_BODY = 64 * 2 ** 20;
let server: BlindmlServer;
let modelId: string;

before(async () => {
  server = await startServer({ db: join(dir, 'r.db'), apiKey: API_KEY, port: 0, workers: 0, logger: false, maxCkksBodyBytes: MAX_BODY });
  modelId = (await registerModel(server.url, API_KEY, onnx)).model.id;
});
after(async () => {
  await server.close(0);
  rmSync(dir, { recursive: true, force: true });
});

/** Sends frames on a raw socket and resolves with the close code. */
function closeCodeFor(frames: Uint8Array[]): Promise<number> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/ckks/ws`);
  return new Promise((resolve, reject) => {
    ws.on('open', () => frames.forEach((f) => ws.send(f)));
    ws.on('close', (code) => resolve(code));
    ws.on('error', reject);
  });
}

test('chunk frames: any message cut at any size comes back whole; junk and truncated headers are FormatErrors', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 1, max: 700 }), (message, size) => {
    const frames = encodeChunks({ id: 7, step: 'round', model: 'm' }, message, size);
    assert.equal(frames.length, Math.max(1, Math.ceil(message.length / size)));
    const first = decodeChunk(frames[0]!);
    const assembly = new ChunkAssembly(first.head);
    let whole: Uint8Array | undefined;
    for (const f of frames) {
      const { head, chunk } = decodeChunk(f);
      whole = assembly.add(head, chunk);
    }
    assert.deepEqual(whole, message);
  }));
  fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (junk) => assert.throws(() => decodeChunk(junk), FormatError)));
  const frame = encodeChunks({ id: 1 }, new Uint8Array(10), 10)[0]!;
  for (let cut = 0; cut < 8 + new DataView(frame.buffer).getUint32(4); cut++) assert.throws(() => decodeChunk(frame.subarray(0, cut)), FormatError, `cut at ${cut}`);
});

test('a client on one WebSocket gets the plaintext predictions; its keys and rounds travel in chunks', async () => {
  const transport = await WebSocketCkksTransport.connect(server.url, modelId, { chunkBytes: 256 * 1024 });
  const client = await CkksInferenceClient.connect(transport);
  try {
    assert.ok(transport.traffic.sent > 4 * 256 * 1024, 'the keys went up in several chunks');
    for (let i = 0; i < 2; i++) {
      const { logits } = await client.predict(sample.images.subarray(i * 784, (i + 1) * 784));
      logits.forEach((v, j) => assert.ok(Math.abs(v - plain[i * 10 + j]!) < 0.05, `image ${i} logit ${j}: ${v} vs ${plain[i * 10 + j]}`));
    }
    // A refusal comes back typed, and the connection keeps serving.
    await assert.rejects(transport.round({ version: 1, sessionId: 'nope', stage: 0, inputs: [[new Uint8Array(8)]] }), (e: unknown) => e instanceof ServiceError && e.code === 'ERR_UNKNOWN_SESSION');
    const { logits } = await client.predict(sample.images.subarray(0, 784));
    assert.equal(logits.length, 10);
  } finally {
    client.dispose();
    transport.close();
  }
});

test('an unknown model is refused typed; junk, a chunk out of order and an oversized message close the socket (1008, 1009)', async () => {
  const other = await WebSocketCkksTransport.connect(server.url, 'nope');
  await assert.rejects(other.describe(), (e: unknown) => e instanceof ServiceError && e.code === 'ERR_UNKNOWN_MODEL');
  other.close();
  assert.equal(await closeCodeFor([Uint8Array.of(1, 2, 3)]), 1008);
  const [first] = encodeChunks({ id: 1, step: 'keys', model: modelId }, new Uint8Array(100), 40);
  const [, second] = encodeChunks({ id: 1, step: 'keys', model: modelId }, new Uint8Array(100), 40);
  assert.equal(await closeCodeFor([second!]), 1008, 'a message must start at offset 0');
  assert.equal(await closeCodeFor([first!, first!]), 1008, 'chunks come in order');
  // A first frame that declares one byte more than the limit (only its header is sent).
  const head = new TextEncoder().encode(JSON.stringify({ id: 1, step: 'round', model: modelId, total: MAX_BODY + 1, offset: 0 }));
  const huge = new Uint8Array(8 + head.length);
  huge.set([0x42, 0x4d, 0x43, 0x48]);
  new DataView(huge.buffer).setUint32(4, head.length);
  huge.set(head, 8);
  assert.equal(await closeCodeFor([huge]), 1009, 'the declared size is checked on the first frame');
});

test('connectCkks: the SDK call over WebSocket and over HTTP gives the plaintext prediction', async () => {
  for (const transport of ['websocket', 'http'] as const) {
    const ckks = await connectCkks(server.url, modelId, { transport });
    try {
      const { logits } = await ckks.predict(sample.images.subarray(784, 2 * 784));
      logits.forEach((v, j) => assert.ok(Math.abs(v - plain[10 + j]!) < 0.05, `${transport} logit ${j}`));
    } finally {
      ckks.close();
    }
  }
});

test('infer --scheme ckks --server --transport websocket agrees with plaintext', async () => {
  const data = { ...sample, count: 1, images: sample.images.subarray(0, 784), labels: sample.labels.slice(0, 1) };
  const r = await runCkksInferenceJob({ loaded: loadModel(modelPath), data, calibration: sample.images, server: server.url, transport: 'websocket' });
  assert.equal(r.agreement, 1);
  assert.ok(r.maxLogitError < 0.05);
});
