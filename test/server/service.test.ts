import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { encodeIdx } from '../../src/data/idx.js';
import { argmaxRows, importOnnx, runPlaintext } from '../../src/nn/index.js';
import { bigIntToBase64Url } from '../../src/math/bigint.js';
import { encodeMessage, message, decodeMessage, ServiceError } from '../../src/protocol/paillier-inference/index.js';
import { startServer, type BlindmlServer, type ServerOptions } from '../../src/server/app.js';
import { connect, getModel, type BlindmlClient, listModels, registerModel, removeModel, ServiceRequestError, type PredictPhase } from '../../src/client/index.js';
import { modelIdOf } from '../../src/cli/inference-job.js';
import { smallKeys } from '../helpers/keys.js';
import { PAILLIER_LOGIT_TOLERANCE } from '../helpers/tolerance.js';

const onnx = readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url));
const modelId = modelIdOf(onnx);
const small = importOnnx(onnx);
const sample = loadFashionMnistSample({ limit: 4 });
const image = (k: number) => sample.images.subarray(k * 784, (k + 1) * 784);
const plain = runPlaintext(small, sample.images);
const API_KEY = 'test-owner-key';

const dir = mkdtempSync(join(tmpdir(), 'blindml-server-'));
const db = join(dir, 'registry.db');
const base: ServerOptions = { db, apiKey: API_KEY, port: 0, workers: 0, allowInsecureKeys: true, logger: false, idleTimeoutMs: 1_000 };
let server: BlindmlServer;
/** Everything a test opened, closed in after() even when the test failed half-way (no hanging process). */
const servers: BlindmlServer[] = [];
const sockets: WebSocket[] = [];
const clients: { close(): void }[] = [];

async function start(options: ServerOptions): Promise<BlindmlServer> {
  const s = await startServer(options);
  servers.push(s);
  return s;
}
async function connectTracked(url: string, options: Parameters<typeof connect>[1]): Promise<BlindmlClient> {
  const c = await connect(url, options);
  clients.push(c);
  return c;
}

before(async () => {
  server = await start(base);
});
after(async () => {
  for (const c of clients) c.close();
  for (const ws of sockets) ws.terminate();
  await Promise.all(servers.map((s) => s.close(0)));
  rmSync(dir, { recursive: true, force: true });
});

/** Opens a raw WebSocket and returns helpers to exchange frames. */
async function rawSocket(url: string) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/ws`);
  sockets.push(ws);
  ws.binaryType = 'nodebuffer';
  const replies: Buffer[] = [];
  const waiters: ((b: Buffer) => void)[] = [];
  ws.on('message', (b: Buffer) => (waiters.length ? waiters.shift()!(b) : replies.push(b)));
  const closed = new Promise<number>((resolve) => ws.on('close', (code: number) => resolve(code)));
  ws.on('error', () => undefined);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    closed,
    exchange(bytes: Uint8Array): Promise<Buffer> {
      ws.send(bytes);
      return new Promise((resolve) => (replies.length ? resolve(replies.shift()!) : waiters.push(resolve)));
    },
  };
}

const openFrame = (id = modelId) => encodeMessage(message<'open'>({ type: 'open', modelId: id, n: bigIntToBase64Url(smallKeys().publicKey.n), mode: 'latency' }), 1);

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('health, and owner routes need the API key', async () => {
  const health = (await (await fetch(`${server.url}/healthz`)).json()) as { status: string };
  assert.equal(health.status, 'ok');
  await assert.rejects(registerModel(server.url, 'wrong', onnx), (e: unknown) => e instanceof ServiceRequestError && e.status === 401);
  await assert.rejects(removeModel(server.url, 'wrong', modelId), (e: unknown) => e instanceof ServiceRequestError && e.status === 401);
  await assert.rejects(registerModel(server.url, API_KEY, new Uint8Array([1, 2, 3])), (e: unknown) => e instanceof ServiceRequestError && e.status === 400);
});

test('a model owner registers a model once (content id) and lists it', async () => {
  const first = await registerModel(server.url, API_KEY, onnx, { name: 'fashion-small' });
  assert.equal(first.created, true);
  assert.equal(first.model.id, modelId);
  assert.equal((await registerModel(server.url, API_KEY, onnx)).created, false);
  const pub = await listModels(server.url);
  assert.deepEqual(pub.map((m) => m.id), [modelId]);
  assert.equal(pub[0]!.bytes, undefined, 'the public list hides owner fields');
  const full = await listModels(server.url, API_KEY);
  assert.equal(full[0]!.bytes, onnx.length);
  assert.equal(full[0]!.calibration, 'sample');
  assert.deepEqual((await getModel(server.url, modelId))!.inputShape, [1, 28, 28]);
  assert.equal(await getModel(server.url, 'nope'), undefined);
});

test('SDK predictions over WebSocket and HTTP equal the plaintext executor, with progress', async () => {
  for (const transport of ['websocket', 'http'] as const) {
    const client = await connectTracked(server.url, { keys: smallKeys(), transport });
    const phases: PredictPhase[] = [];
    for (let k = 0; k < 2; k++) {
      const { label, logits, stats } = await client.predict(modelId, image(k), { onProgress: (p) => phases.push(p.phase) });
      assert.equal(label, argmaxRows(plain.subarray(k * 10, (k + 1) * 10), 10)[0]);
      logits.forEach((v, j) => assert.ok(Math.abs(v - plain[k * 10 + j]!) < PAILLIER_LOGIT_TOLERANCE, `${transport} logit ${j}`));
      assert.equal(stats.rounds, 2);
    }
    for (const p of ['opening', 'encrypting', 'evaluating', 'round', 'decrypting', 'done'] as const) assert.ok(phases.includes(p), `${transport}: phase ${p}`);
    client.close();
  }
  await until(() => server.trackedSessions() === 0);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /blindml_sessions_opened_total\{transport="ws"\} 2/);
  assert.match(metrics, /blindml_sessions_ended_total\{outcome="completed"\} 4/);
  assert.match(metrics, /blindml_rounds_total 8/);
  assert.match(metrics, /blindml_message_duration_seconds_bucket/);
});

test('a malformed frame ends only that session; an oversized frame closes only that connection', async () => {
  const bystander = await rawSocket(server.url);
  const opened = decodeMessage(await bystander.exchange(openFrame()));
  assert.equal(opened.type, 'opened');

  const bad = await rawSocket(server.url);
  assert.equal(decodeMessage(await bad.exchange(openFrame())).type, 'opened');
  const junk = decodeMessage(await bad.exchange(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])));
  assert.equal(junk.type, 'error');
  // The connection survives and can start again.
  assert.equal(decodeMessage(await bad.exchange(openFrame())).type, 'opened');
  bad.ws.close();

  const small = await start({ ...base, db: join(dir, 'other.db'), maxFrameBytes: 4096 });
  try {
    const huge = await rawSocket(small.url);
    huge.ws.send(new Uint8Array(10_000));
    assert.equal(await huge.closed, 1009, 'the oversized frame closes that connection with 1009');
    const health = await fetch(`${small.url}/healthz`);
    assert.equal(health.status, 200);
    const res = await fetch(`${small.url}/v1/paillier`, { method: 'POST', body: new Uint8Array(10_000), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(res.status, 413);
  } finally {
    await small.close(0);
  }
  // The bystander's session is untouched.
  assert.ok(server.service.hasSession((opened as { sessionId: string }).sessionId));
  bystander.ws.close();
  await until(() => server.trackedSessions() === 0);
});

test('sessions per client are limited; a vanished client is freed', async () => {
  const limited = await start({ ...base, db, port: 0, maxSessionsPerClient: 2, idleTimeoutMs: 300 });
  try {
    const a = await rawSocket(limited.url);
    assert.equal(decodeMessage(await a.exchange(openFrame())).type, 'opened');
    assert.equal(decodeMessage(await a.exchange(openFrame())).type, 'opened');
    const third = decodeMessage(await a.exchange(openFrame()));
    assert.equal(third.type === 'error' && third.code, 'ERR_TOO_MANY_SESSIONS');
    a.ws.terminate();
    await until(() => limited.trackedSessions() === 0);
    // HTTP sessions left behind expire with the idle timeout.
    const res = await fetch(`${limited.url}/v1/paillier`, { method: 'POST', body: openFrame() as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(decodeMessage(new Uint8Array(await res.arrayBuffer())).type, 'opened');
    assert.equal(limited.trackedSessions(), 1);
    await until(() => limited.trackedSessions() === 0);
  } finally {
    await limited.close(0);
  }
});

test('graceful shutdown refuses new sessions and aborts the stragglers', async () => {
  const s = await start({ ...base, db: join(dir, 'shutdown.db') });
  await registerModel(s.url, API_KEY, onnx);
  const a = await rawSocket(s.url);
  assert.equal(decodeMessage(await a.exchange(openFrame())).type, 'opened');
  const closing = s.close(300);
  const refused = decodeMessage(await a.exchange(openFrame()));
  assert.equal(refused.type === 'error' && refused.code, 'ERR_SHUTTING_DOWN');
  await closing;
  assert.equal(await a.closed, 1001);
  assert.equal(s.trackedSessions(), 0);
});

test('the logs carry no ciphertext, modulus or key', async () => {
  const lines: string[] = [];
  const stream = { write: (line: string) => void lines.push(line) };
  const s = await start({ ...base, db: join(dir, 'logs.db'), logger: { level: 'debug', stream } });
  await registerModel(s.url, API_KEY, onnx);
  const c = await connectTracked(s.url, { keys: smallKeys() });
  await c.predict(modelId, image(0));
  await fetch(`${s.url}/v1/paillier`, { method: 'POST', body: new Uint8Array([1, 2, 3]), headers: { 'content-type': 'application/octet-stream' } });
  c.close();
  await s.close(0);
  const text = lines.join('');
  assert.match(text, /session opened/);
  assert.match(text, /session ended/);
  assert.match(text, /message refused/);
  const n = bigIntToBase64Url(smallKeys().publicKey.n);
  assert.ok(!text.includes(n.slice(0, 24)), 'no public modulus');
  assert.ok(!text.includes(API_KEY), 'no API key');
  assert.ok(lines.every((l) => l.length < 1000), 'no long blobs');
});

test('a restart keeps every model; removal withdraws it; a generated key is shown once', async () => {
  const path = join(dir, 'restart.db');
  const first = await start({ ...base, db: path, apiKey: undefined });
  const key = first.generatedApiKey;
  assert.ok(key && key.length > 30);
  const calibration = encodeIdx([20, 28, 28], new Uint8Array(20 * 784).map((_, i) => Math.round(sample.images[i % (4 * 784)]! * 255)));
  const { model } = await registerModel(first.url, key, onnx, { name: 'mine', calibration });
  assert.equal(model.calibration, 'upload');
  assert.equal(model.calibrationSamples, 20);
  await first.close(0);

  const second = await start({ ...base, db: path, apiKey: undefined });
  try {
    assert.equal(second.generatedApiKey, undefined, 'the key is generated only at first start');
    assert.deepEqual((await listModels(second.url, key)).map((m) => [m.id, m.name]), [[modelId, 'mine']]);
    const client = await connectTracked(second.url, { keys: smallKeys() });
    const { label } = await client.predict(modelId, image(0));
    assert.equal(label, argmaxRows(plain.subarray(0, 10), 10)[0]);
    assert.equal(await removeModel(second.url, key, modelId), true);
    assert.equal(await removeModel(second.url, key, modelId), false);
    await assert.rejects(client.predict(modelId, image(0)), (e: unknown) => e instanceof ServiceError && e.code === 'ERR_UNKNOWN_MODEL');
    client.close();
  } finally {
    await second.close(0);
  }
});
