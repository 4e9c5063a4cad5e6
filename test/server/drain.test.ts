// Graceful drain (what `serve` does on SIGTERM): new sessions are refused with a retryable 503,
// readiness fails, the sessions already running finish, then the server closes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { argmaxRows, importOnnx, runPlaintext } from '../../src/nn/index.js';
import { bigIntToBase64Url } from '../../src/math/bigint.js';
import { decodeMessage, encodeMessage, message } from '../../src/protocol/paillier-inference/index.js';
import { startServer } from '../../src/server/app.js';
import { BlindmlClient, connect, HttpTransport, registerModel, ROUTE_HEADER, SessionLostError, type PredictPhase } from '../../src/client/index.js';
import { smallKeys } from '../helpers/keys.js';

const onnx = readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url));
const image = loadFashionMnistSample({ limit: 1 }).images;
const plainLabel = argmaxRows(runPlaintext(importOnnx(onnx), image), 10)[0];

test('draining: new sessions get a retryable 503, the running one finishes, then the server closes without aborting it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-drain-'));
  const server = await startServer({ db: join(dir, 'r.db'), apiKey: 'k', port: 0, workers: 0, allowInsecureKeys: true, logger: false, replicaName: 'r1' });
  try {
    const modelId = (await registerModel(server.url, 'k', onnx)).model.id;
    const open = (route?: string) =>
      fetch(`${server.url}/v1/paillier`, {
        method: 'POST',
        body: encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(smallKeys().publicKey.n), mode: 'latency' }), 64) as Uint8Array<ArrayBuffer>,
        headers: { 'content-type': 'application/octet-stream', ...(route ? { [ROUTE_HEADER]: route } : {}) },
      });
    // A client whose session waits, once open, until the test lets it send its input.
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let sent = 0;
    const transport = new HttpTransport(server.url);
    const gated = {
      send: async (bytes: Uint8Array) => {
        if (sent++ === 1) await gate; // the input, right after the open
        return transport.send(bytes);
      },
      failover: () => transport.failover(),
    };
    const client = new BlindmlClient(server.url, gated, smallKeys());
    let closing: Promise<void> | undefined;
    // The drain starts while the session is open.
    const drainNow = (p: { phase: PredictPhase }) => void (p.phase === 'encrypting' && (closing ??= server.close(60_000)));
    const running = client.predict(modelId, image, { onProgress: drainNow });

    // Meanwhile: readiness fails and new sessions are refused, retryably for routed clients.
    while (!closing) await new Promise((r) => setTimeout(r, 5));
    assert.equal((await fetch(`${server.url}/healthz`)).status, 503);
    const routed = await open('drain-route-0001');
    assert.equal(routed.status, 503);
    assert.equal(routed.headers.get('retry-after'), '2');
    assert.deepEqual(await routed.json(), { error: 'ERR_SHUTTING_DOWN', message: 'the service is shutting down; retry later', retryable: true });
    const old = await open();
    assert.equal(old.status, 200, 'an unrouted client reads the protocol error as before');
    const frame = decodeMessage(new Uint8Array(await old.arrayBuffer()));
    assert.equal(frame.type === 'error' && frame.code, 'ERR_SHUTTING_DOWN');
    const ckks = await fetch(`${server.url}/v1/ckks/${modelId}/keys`, { method: 'POST', body: new Uint8Array(16), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(ckks.status, 503);
    assert.equal(((await ckks.json()) as { retryable?: boolean }).retryable, true);

    release();
    const { label } = await running;
    assert.equal(label, plainLabel, 'the running session finished');
    await closing;
    const ended = await server.metrics.sessionsEnded.get();
    const count = (outcome: string) => ended.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    assert.equal(count('completed'), 1);
    assert.equal(count('aborted'), 0, 'nothing was cut at shutdown');
    client.close();
  } finally {
    await server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a client refused by a draining replica moves once and reports the second refusal as SessionLostError; a second close() aborts at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-drain-'));
  const server = await startServer({ db: join(dir, 'r.db'), apiKey: 'k', port: 0, workers: 0, allowInsecureKeys: true, logger: false });
  try {
    const modelId = (await registerModel(server.url, 'k', onnx)).model.id;
    const idle = await fetch(`${server.url}/v1/paillier`, {
      method: 'POST',
      body: encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(smallKeys().publicKey.n), mode: 'latency' }), 64) as Uint8Array<ArrayBuffer>,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(decodeMessage(new Uint8Array(await idle.arrayBuffer())).type, 'opened');
    const client = await connect(server.url, { transport: 'http', keys: smallKeys() });
    // The session left open above keeps the drain going (it would expire in 60 s, the drain lasts 10 min).
    const closing = server.close(600_000);
    // A single replica: the move lands on the same draining one.
    await assert.rejects(client.predict(modelId, image), (e: unknown) => e instanceof SessionLostError && (e.cause as { code?: string }).code === 'ERR_SHUTTING_DOWN');
    assert.equal(client.failovers, 1);
    // What serve's second signal does: the open session is aborted now, not left to expire.
    await server.close(0);
    await closing;
    const ended = await server.metrics.sessionsEnded.get();
    assert.deepEqual(ended.values.map((v) => [v.labels.outcome, v.value]), [['aborted', 1]]);
    client.close();
  } finally {
    await server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('metrics carry the replica label', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'blindml-drain-'));
  const server = await startServer({ db: join(dir, 'r.db'), apiKey: 'k', port: 0, workers: 0, logger: false, replicaName: 'eu-1' });
  try {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /^blindml_models\{replica="eu-1"\} 0$/m);
    assert.match(text, /^blindml_sessions_active\{scheme="paillier",replica="eu-1"\} 0$/m);
  } finally {
    await server.close(0);
    rmSync(dir, { recursive: true, force: true });
  }
});
