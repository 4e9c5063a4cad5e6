// Sessions behind a balancer: the SDK sends a routing key, a replica that does not hold a routed
// session answers the typed, retryable ERR_SESSION_NOT_HERE, and the SDK moves the session once
// (then gives up with SessionLostError). Two real servers sit behind a forwarding switch that the
// test points at one or the other mid-session, as a balancer does when a replica dies.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { argmaxRows, importOnnx, runPlaintext } from '../../src/nn/index.js';
import { startServer, type BlindmlServer } from '../../src/server/app.js';
import { bigIntToBase64Url } from '../../src/math/bigint.js';
import { decodeMessage, encodeMessage, message } from '../../src/protocol/paillier-inference/index.js';
import { connect, connectCkks, connectCkksPoly, registerModel, SessionLostError, ROUTE_HEADER, type PredictPhase } from '../../src/client/index.js';
import { smallKeys } from '../helpers/keys.js';
import { tinyPolyOnnx } from '../helpers/poly-model.js';
import { PAILLIER_LOGIT_TOLERANCE } from '../helpers/tolerance.js';
import { loadModel, runInferenceJob } from '../../src/cli/inference-job.js';
import { runCkksInferenceJob } from '../../src/cli/ckks-job.js';
import { fileURLToPath } from 'node:url';

const onnx = readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url));
const poly = tinyPolyOnnx();
const sample = loadFashionMnistSample({ limit: 2 });
const image = sample.images.subarray(0, 784);
const plain = runPlaintext(importOnnx(onnx), image);
const plainPoly = runPlaintext(importOnnx(poly), sample.images);
const API_KEY = 'failover-owner-key';
const dir = mkdtempSync(join(tmpdir(), 'blindml-failover-'));
let a: BlindmlServer;
let b: BlindmlServer;
let modelId: string;
let polyId: string;

/** One forwarded request: which replica, what, and the answer. */
interface Hop {
  to: 'a' | 'b';
  path: string;
  status: number;
  route: string | undefined;
  replica: string | undefined;
}

/**
 * A forwarding switch: every request (and WebSocket) goes to the replica `to` names when it
 * arrives; `cut()` drops the WebSockets it carries, as a dying replica does.
 */
class Switch {
  to: 'a' | 'b' = 'a';
  /** Called before each HTTP request is forwarded (the test may flip `to` there). */
  onRequest: ((path: string) => void) | undefined;
  readonly hops: Hop[] = [];
  private readonly tunnels = new Set<Socket>();
  readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      this.onRequest?.(req.url ?? '');
      const to = this.to;
      const { connection: _c, 'keep-alive': _k, ...forward } = req.headers;
      const up = request(this.target(to), { method: req.method, path: req.url, headers: forward }, (answer: IncomingMessage) => {
        this.hops.push({ to, path: req.url ?? '', status: answer.statusCode ?? 0, route: req.headers[ROUTE_HEADER] as string | undefined, replica: answer.headers['blindml-replica'] as string | undefined });
        // Hop-by-hop headers stay on their hop (a forwarded keep-alive timeout would outlive this server's).
        const { connection: _c, 'keep-alive': _k, ...headers } = answer.headers;
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
      });
      up.on('error', (err) => {
        this.hops.push({ to, path: req.url ?? '', status: 502, route: req.headers[ROUTE_HEADER] as string | undefined, replica: err.message });
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(up);
    });
    // Idle client connections outlive a test (a close racing the next request would look like a dead replica).
    this.server.keepAliveTimeout = 120_000;
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const u = new URL(this.target(this.to));
      const up = netConnect(Number(u.port), u.hostname, () => {
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        up.write(`${lines.join('\r\n')}\r\n\r\n`);
        up.write(head);
        up.pipe(socket).pipe(up);
      });
      for (const s of [socket, up]) {
        this.tunnels.add(s);
        s.on('close', () => this.tunnels.delete(s));
        s.on('error', () => s.destroy());
      }
    });
  }

  private target(to: 'a' | 'b'): string {
    return (to === 'a' ? a : b).url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  cut(): void {
    for (const s of this.tunnels) s.destroy();
  }

  close(): Promise<void> {
    this.cut();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const switches: Switch[] = [];
async function newSwitch(): Promise<Switch> {
  const s = new Switch();
  await s.listen();
  switches.push(s);
  return s;
}

before(async () => {
  const options = { apiKey: API_KEY, port: 0, workers: 0, allowInsecureKeys: true, logger: false } as const;
  a = await startServer({ ...options, db: join(dir, 'a.db'), replicaName: 'replica-a' });
  b = await startServer({ ...options, db: join(dir, 'b.db'), replicaName: 'replica-b' });
  for (const s of [a, b]) {
    modelId = (await registerModel(s.url, API_KEY, onnx)).model.id;
    polyId = (await registerModel(s.url, API_KEY, poly)).model.id;
  }
});
after(async () => {
  await Promise.all(switches.map((s) => s.close()));
  await Promise.all([a.close(0), b.close(0)]);
  rmSync(dir, { recursive: true, force: true });
});

/** The plaintext model's prediction, checked against an encrypted one. */
function assertPlain(label: number, logits: ArrayLike<number>): void {
  assert.equal(label, argmaxRows(plain, 10)[0]);
  Array.from(logits).forEach((v, j) => assert.ok(Math.abs(v - plain[j]!) < PAILLIER_LOGIT_TOLERANCE, `logit ${j}: ${v} vs ${plain[j]}`));
}

test('Paillier over HTTP: the replica gone mid-session answers ERR_SESSION_NOT_HERE elsewhere; the SDK reopens there once, with a new routing key', async () => {
  const sw = await newSwitch();
  const client = await connect(sw.url, { transport: 'http', keys: smallKeys() });
  try {
    // The balancer moves the client's key to replica b right after the session opened on a.
    const flip = (p: { phase: PredictPhase }) => void (p.phase === 'encrypting' && (sw.to = 'b'));
    const { label, logits } = await client.predict(modelId, image, { onProgress: flip });
    assertPlain(label, logits);
    const protocol = sw.hops.filter((h) => h.path === '/v1/paillier');
    assert.deepEqual(protocol.slice(0, 3).map((h) => [h.to, h.status]), [['a', 200], ['b', 409], ['b', 200]], 'open on a, refused on b, reopened on b');
    assert.ok(protocol.every((h) => h.route && /^[\w-]{22}$/.test(h.route)), 'every request carries a routing key');
    assert.equal(new Set(protocol.slice(0, 2).map((h) => h.route)).size, 1, 'one key for the session');
    assert.notEqual(protocol[2]!.route, protocol[0]!.route, 'a new key after the failover');
    assert.deepEqual(protocol.slice(0, 3).map((h) => h.replica), ['replica-a', 'replica-b', 'replica-b'], 'routed answers name their replica');
    assert.ok(protocol.slice(2).every((h) => h.to === 'b' && h.status === 200));
  } finally {
    client.close();
  }
});

test('Paillier over HTTP: a session that fails on two replicas is a SessionLostError', async () => {
  const sw = await newSwitch();
  // Every request lands on the other replica than the one before: no session ever holds.
  sw.onRequest = (path) => void (path === '/v1/paillier' && (sw.to = sw.to === 'a' ? 'b' : 'a'));
  const client = await connect(sw.url, { transport: 'http', keys: smallKeys() });
  try {
    await assert.rejects(client.predict(modelId, image), (e: unknown) => e instanceof SessionLostError && e.code === 'ERR_SESSION_LOST' && /does not hold this session/.test(e.message));
    assert.deepEqual(sw.hops.map((h) => h.status), [200, 200, 409, 200, 409], 'healthz, open, refused, reopen, refused: one failover only');
  } finally {
    client.close();
  }
});

test('without a routing key the answers are what they always were; a malformed key is refused before anything runs', async () => {
  const frame = (route?: string) =>
    fetch(`${a.url}/v1/paillier`, {
      method: 'POST',
      body: encodeMessage(message<'input'>({ type: 'input', sessionId: 'no-such-session', samples: 1, ciphertexts: [1n] }), 64) as Uint8Array<ArrayBuffer>,
      headers: { 'content-type': 'application/octet-stream', ...(route ? { [ROUTE_HEADER]: route } : {}) },
    });
  const old = await frame();
  assert.equal(old.status, 200);
  const reply = decodeMessage(new Uint8Array(await old.arrayBuffer()));
  assert.equal(reply.type === 'error' && reply.code, 'ERR_UNKNOWN_SESSION');
  const routed = await frame('route-key-1234');
  assert.equal(routed.status, 409);
  assert.equal(routed.headers.get(ROUTE_HEADER), 'route-key-1234');
  assert.deepEqual(await routed.json(), { error: 'ERR_SESSION_NOT_HERE', message: 'replica replica-a does not hold this session (unknown or expired session); reopen it', retryable: true });
  for (const bad of ['short', 'x'.repeat(65), 'spaces are bad 123', 'semi;colon12']) {
    const res = await frame(bad);
    assert.equal(res.status, 400, bad);
    assert.equal(((await res.json()) as { error: string }).error, 'ERR_BAD_ROUTE');
  }
  const ckks = await fetch(`${a.url}/v1/ckks/${modelId}/open`, { method: 'POST', body: new Uint8Array(8), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(ckks.status, 400, 'an unrouted CKKS request is answered as before');
  // An open (not a session message) under a routing key is served normally.
  const open = await fetch(`${a.url}/v1/paillier`, {
    method: 'POST',
    body: encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(smallKeys().publicKey.n), mode: 'latency' }), 64) as Uint8Array<ArrayBuffer>,
    headers: { 'content-type': 'application/octet-stream', [ROUTE_HEADER]: 'route-key-1234' },
  });
  assert.equal(open.status, 200);
  assert.equal(decodeMessage(new Uint8Array(await open.arrayBuffer())).type, 'opened');
});

test('Paillier over WebSocket: a connection dropped mid-session (its replica died) is reopened once, on a new connection', async () => {
  const sw = await newSwitch();
  const client = await connect(sw.url, { transport: 'websocket', keys: smallKeys() });
  try {
    let cut = false;
    const drop = (p: { phase: PredictPhase }) => {
      if (p.phase !== 'round' || cut) return;
      cut = true;
      sw.to = 'b';
      sw.cut();
    };
    const openedOnB = b.metrics.sessionsOpened.get();
    const { label, logits } = await client.predict(modelId, image, { onProgress: drop });
    assert.ok(cut, 'the connection was dropped mid-session');
    assertPlain(label, logits);
    const onB = (await openedOnB).values.find((v) => v.labels.transport === 'ws')?.value ?? 0;
    const nowOnB = (await b.metrics.sessionsOpened.get()).values.find((v) => v.labels.transport === 'ws')?.value ?? 0;
    assert.equal(nowOnB - onB, 1, 'the session was opened again on replica b');
    // The client keeps working on its new connection.
    const again = await client.predict(modelId, image);
    assertPlain(again.label, again.logits);
  } finally {
    client.close();
  }
});

test('ckks-poly: a job sent after the replica holding the keys is gone uploads the keys again and runs on the other', async () => {
  const sw = await newSwitch();
  const client = await connectCkksPoly(sw.url, polyId);
  try {
    sw.to = 'b';
    const { logits } = await client.predict(sample.images);
    logits.forEach((v, i) => assert.ok(Math.abs(v - plainPoly[i]!) < 0.05, `logit ${i}: ${v} vs ${plainPoly[i]}`));
    const path = (h: Hop) => h.path.replace(polyId, 'M').replace(/jobs\/[\w-]+\?.*/, 'jobs/J');
    assert.deepEqual(
      sw.hops.map((h) => `${h.to} ${path(h)} ${h.status}`),
      ['a /v1/ckks-poly/M/info 200', 'a /v1/ckks-poly/M/keys 200', 'b /v1/ckks-poly/M/jobs 409', 'b /v1/ckks-poly/M/keys 200', 'b /v1/ckks-poly/M/jobs 202', 'b /v1/ckks-poly/jobs/J 200'],
    );
    // The next job goes straight to b under the session b holds.
    const next = await client.predict(sample.images.subarray(0, 784));
    assert.equal(next.labels[0], argmaxRows(plainPoly, 10)[0]);
    assert.equal(sw.hops.filter((h) => h.path.endsWith('/keys')).length, 2, `keys went up once per replica: ${JSON.stringify(sw.hops)}`);
  } finally {
    client.dispose();
  }
});

test('interactive CKKS over HTTP: the replica holding the keys is gone; the keys go up to the other and the prediction runs there', async () => {
  const sw = await newSwitch();
  const ckks = await connectCkks(sw.url, modelId, { transport: 'http' });
  try {
    sw.to = 'b';
    const { logits } = await ckks.predict(image);
    Array.from(logits).forEach((v, j) => assert.ok(Math.abs(v - plain[j]!) < 0.05, `logit ${j}: ${v} vs ${plain[j]}`));
    const steps = sw.hops.map((h) => `${h.to} ${h.path.replace(`/v1/ckks/${modelId}/`, '')} ${h.status}`);
    assert.deepEqual(steps.slice(0, 5), ['a describe 200', 'a keys 200', 'b open 409', 'b keys 200', 'b open 200']);
    assert.ok(steps.slice(5).every((s) => /^b round 200$/.test(s)), steps.join(', '));
  } finally {
    ckks.close();
  }
});

test('interactive CKKS over WebSocket: the connection to the replica holding the keys drops; a new one to the other gets the keys and the prediction', async () => {
  const sw = await newSwitch();
  const ckks = await connectCkks(sw.url, modelId);
  try {
    const opened = async (s: BlindmlServer) => (await s.metrics.sessionsOpened.get()).values.reduce((n, v) => n + v.value, 0);
    const before = await opened(b);
    sw.to = 'b';
    sw.cut();
    const { logits } = await ckks.predict(image);
    Array.from(logits).forEach((v, j) => assert.ok(Math.abs(v - plain[j]!) < 0.05, `logit ${j}: ${v} vs ${plain[j]}`));
    assert.equal((await opened(b)) - before, 1, 'the session ran on replica b');
  } finally {
    ckks.close();
  }
});

test('infer --server moves a session whose replica is gone, as the SDK does: Paillier over HTTP, interactive CKKS over HTTP', async () => {
  const loaded = loadModel(fileURLToPath(new URL('../../models/fashion-small.onnx', import.meta.url)));
  const data = { ...sample, count: 2 };
  const paillier = await newSwitch();
  // The balancer moves the job's routing key to replica b right after its first session opened on a.
  paillier.onRequest = (path) => void (path === '/v1/paillier' && paillier.hops.some((h) => h.path === '/v1/paillier') && (paillier.to = 'b'));
  const p = await runInferenceJob({ loaded, data, calibration: sample.images, keyBits: 512, insecure: true, batch: 1, server: paillier.url, modelId, workers: 0, transport: 'http' });
  assert.equal(p.agreement, 1);
  assert.ok(p.maxLogitError < PAILLIER_LOGIT_TOLERANCE, `largest logit error ${p.maxLogitError}`);
  const hops = paillier.hops.filter((h) => h.path === '/v1/paillier').map((h) => `${h.to} ${h.status}`);
  assert.deepEqual(hops.slice(0, 3), ['a 200', 'b 409', 'b 200'], 'opened on a, refused on b, reopened on b');

  const ckks = await newSwitch();
  ckks.onRequest = (path) => void (path.endsWith('/open') && (ckks.to = 'b'));
  const c = await runCkksInferenceJob({ loaded, data, calibration: sample.images, server: ckks.url, transport: 'http' });
  assert.equal(c.agreement, 1);
  const steps = ckks.hops.map((h) => `${h.to} ${h.path.replace(`/v1/ckks/${modelId}/`, '')} ${h.status}`);
  assert.deepEqual(steps.slice(0, 5), ['a describe 200', 'a keys 200', 'b open 409', 'b keys 200', 'b open 200']);
});
