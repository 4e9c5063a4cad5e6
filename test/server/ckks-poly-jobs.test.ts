// ckks-poly through the server: a polynomial network registered like any model, a client with
// only the server's address uploads its keys once and a batch as one job, polls the id and
// decrypts what it gets; every limit is enforced before a body is read.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { importOnnx, runPlaintext } from '../../src/nn/index.js';
import { startServer, type BlindmlServer } from '../../src/server/app.js';
import { connect, connectCkksPoly, HttpPolyTransport, registerModel } from '../../src/client/index.js';
import { CkksPolyClient, ProtocolError, decodePolyMessage } from '../../src/protocol/ckks-poly/index.js';
import { ServiceError } from '../../src/protocol/paillier-inference/index.js';
import { polyBodyCaps } from '../../src/server/ckks-poly-routes.js';
import { runCkksPolyJob } from '../../src/cli/ckks-poly-job.js';
import { loadModel } from '../../src/cli/inference-job.js';
import { tinyPolyOnnx } from '../helpers/poly-model.js';

const onnx = tinyPolyOnnx();
const model = importOnnx(onnx);
const sample = loadFashionMnistSample({ limit: 5 });
const plain = runPlaintext(model, sample.images);
const API_KEY = 'poly-owner-key';
const dir = mkdtempSync(join(tmpdir(), 'blindml-poly-server-'));
let server: BlindmlServer;
let modelId: string;

before(async () => {
  server = await startServer({
    db: join(dir, 'r.db'), apiKey: API_KEY, port: 0, workers: 0, logger: false, allowInsecureKeys: true,
    ckksPoly: { jobsPerClient: 1, sessionsPerClient: 4, resultTtlMs: 2_000 },
  });
  modelId = (await registerModel(server.url, API_KEY, onnx, { name: 'tiny-poly' })).model.id;
});
after(async () => {
  await server.close(0);
  rmSync(dir, { recursive: true, force: true });
});

/** A raw POST whose content-length header says `length`, with no body sent: answered before any body is read. */
function declare(path: string, headers: Record<string, string>): Promise<{ status: number; body: { error?: string } }> {
  const u = new URL(path, server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/octet-stream', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        req.destroy(); // the body was never sent: end the connection here
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { error?: string } });
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

/** The status of a junk job from this address (400 when admitted, 429 when its slot is taken). */
async function junkStatus(): Promise<number> {
  const res = await fetch(`${server.url}/v1/ckks-poly/${modelId}/jobs`, { method: 'POST', body: Uint8Array.of(1, 2, 3), headers: { 'content-type': 'application/octet-stream' } });
  await res.body?.cancel();
  return res.status;
}
/** Polls {@link junkStatus} until it is `status` (at most 10 s); returns the last one seen. */
async function eventually(status: number): Promise<number> {
  let got = await junkStatus();
  for (let i = 0; i < 100 && got !== status; i++) {
    await new Promise((r) => setTimeout(r, 100));
    got = await junkStatus();
  }
  return got;
}

test('a polynomial network is registered (ckks-poly only) and predicted through the server as the plaintext model does', async () => {
  const paillier = await connect(server.url, { transport: 'http', keyBits: 1024, insecure: true });
  await assert.rejects(paillier.predict(modelId, sample.images.subarray(0, 784)), (e: unknown) => e instanceof ServiceError && e.code === 'ERR_UNKNOWN_MODEL');
  paillier.close();

  const client = await connectCkksPoly(server.url, modelId);
  try {
    const { labels, logits, stats } = await client.predict(sample.images);
    assert.equal(labels.length, 5);
    logits.forEach((v, i) => assert.ok(Math.abs(v - plain[i]!) < 0.05, `logit ${i}: ${v} vs ${plain[i]}`));
    assert.equal(stats.batches, 1, 'five images are one job');
    assert.ok(stats.bytesSent > 784 * 1024, 'one ciphertext per pixel went up');
    assert.equal(server.registry.get(modelId)!.record.rounds, 0);
    // The session holding this client's keys is counted with every other scheme's.
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as { sessions: number; sessionsByScheme: Record<string, number> };
    assert.ok(health.sessionsByScheme['ckks-poly']! >= 1, JSON.stringify(health));
    assert.ok(health.sessions >= health.sessionsByScheme['ckks-poly']!);
    assert.match(await (await fetch(`${server.url}/metrics`)).text(), /blindml_sessions_active\{scheme="ckks-poly"\} [1-9]/);
  } finally {
    client.dispose();
  }
});

test('infer --scheme ckks-poly --server: the job agrees with plaintext', async () => {
  const path = join(dir, 'tiny-poly.onnx');
  writeFileSync(path, onnx);
  const r = await runCkksPolyJob({ loaded: loadModel(path), data: { ...sample, count: 3, images: sample.images.subarray(0, 3 * 784), labels: sample.labels.slice(0, 3) }, calibration: sample.images, server: server.url, workers: 1 });
  assert.equal(r.agreement, 1);
  assert.ok(r.maxLogitError < 0.05);
  assert.equal(r.ckksPoly.weightBits, undefined, 'the server compiled it, not the client');
});

test('a job holds its address\'s slot until the result is fetched or expires; a result goes out once', async () => {
  // Capture a real infer message from a prediction, then replay it as raw jobs.
  let infer: Uint8Array | undefined;
  const http = new HttpPolyTransport(server.url, modelId);
  const client = await CkksPolyClient.connect({ send: (b) => ((infer ??= decodePolyMessage(b).type === 'infer' ? b.slice() : undefined), http.send(b)) }, modelId);
  try {
    await client.predict(sample.images.subarray(0, 784));
    assert.ok(infer);
    const post = () => fetch(`${server.url}/v1/ckks-poly/${modelId}/jobs`, { method: 'POST', body: infer as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
    const first = await post();
    assert.equal(first.status, 202);
    const { job, poll } = (await first.json()) as { job: string; poll: string };
    const busy = await post();
    assert.deepEqual([busy.status, ((await busy.json()) as { error: string }).error], [429, 'ERR_TOO_MANY_JOBS']);
    const done = await fetch(`${server.url}${poll}?wait=20000`);
    assert.equal(done.status, 200);
    assert.equal(decodePolyMessage(new Uint8Array(await done.arrayBuffer())).type, 'result');
    assert.equal((await fetch(`${server.url}/v1/ckks-poly/jobs/${job}`)).status, 404, 'fetched once, then gone');

    const again = await post();
    assert.equal(again.status, 202, 'the slot was freed by the fetch');
    const { job: unfetched } = (await again.json()) as { job: string };
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal((await fetch(`${server.url}/v1/ckks-poly/jobs/${unfetched}`)).status, 404, 'the result expired');
    // A junk job passes the address's limit (the slot is free again) and is refused as malformed.
    assert.equal(await junkStatus(), 400, 'and its slot with it');

    // An upload still arriving holds the slot too, and frees it when the connection ends.
    const u = new URL(`/v1/ckks-poly/${modelId}/jobs`, server.url);
    const hanging = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': '100000' } });
    hanging.on('error', () => undefined);
    hanging.write(new Uint8Array(10));
    assert.equal(await eventually(429), 429, 'a second upload while the first is arriving');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await junkStatus(), 429, 'still held while the first upload is open');
    hanging.destroy();
    assert.equal(await eventually(400), 400, 'released when the first upload was dropped');
  } finally {
    client.dispose();
  }
});

test('size, length and limits are checked before the body is read; typed 4xx for each', async () => {
  const client = await connectCkksPoly(server.url, modelId);
  try {
    const caps = polyBodyCaps(client.info);
    const tooBig = await declare(`/v1/ckks-poly/${modelId}/jobs`, { 'content-length': String(caps.jobs + 1) });
    assert.deepEqual([tooBig.status, tooBig.body.error], [413, 'ERR_TOO_LARGE']);
    const keysTooBig = await declare(`/v1/ckks-poly/${modelId}/keys`, { 'content-length': String(caps.keys + 1) });
    assert.equal(keysTooBig.status, 413);
    const chunked = await declare(`/v1/ckks-poly/${modelId}/jobs`, { 'transfer-encoding': 'chunked' });
    assert.deepEqual([chunked.status, chunked.body.error], [411, 'ERR_LENGTH_REQUIRED']);
    const unknown = await declare('/v1/ckks-poly/nope/jobs', { 'content-length': '10' });
    assert.deepEqual([unknown.status, unknown.body.error], [404, 'ERR_UNKNOWN_MODEL']);

    const junk = await fetch(`${server.url}/v1/ckks-poly/${modelId}/jobs`, { method: 'POST', body: Uint8Array.of(1, 2, 3), headers: { 'content-type': 'application/octet-stream' } });
    assert.deepEqual([junk.status, ((await junk.json()) as { error: string }).error], [400, 'ERR_BAD_MESSAGE']);
    const relu = (await registerModel(server.url, API_KEY, readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url)))).model.id;
    const notPoly = await fetch(`${server.url}/v1/ckks-poly/${relu}/info`, { method: 'POST' });
    assert.deepEqual([notPoly.status, ((await notPoly.json()) as { error: string }).error], [400, 'ERR_UNSUPPORTED_MODEL']);
    const noJob = await fetch(`${server.url}/v1/ckks-poly/jobs/00000000-0000-0000-0000-000000000000`);
    assert.deepEqual([noJob.status, ((await noJob.json()) as { error: string }).error], [404, 'ERR_UNKNOWN_JOB']);

    // Sessions per address are capped at four (whatever earlier tests left open): a fifth is refused.
    const more = [];
    let refused: unknown;
    for (let i = 0; i < 4 && refused === undefined; i++) more.push(await connectCkksPoly(server.url, modelId).catch((e: unknown) => void (refused = e)));
    for (const c of more) c?.dispose();
    assert.ok(refused instanceof ProtocolError && refused.code === 'ERR_TOO_MANY_SESSIONS', String(refused));
  } finally {
    client.dispose();
  }
});
