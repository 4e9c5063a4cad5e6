// The service against hostile or careless clients: owner-key checks before bodies, per-address
// backoff, body caps, decoder errors, upload checks, browser policy, secrets kept out of logs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { bigIntToBase64Url } from '../../src/math/bigint.js';
import { decodeMessage, encodeMessage, message } from '../../src/protocol/paillier-inference/index.js';
import { decodeCkksMessage } from '../../src/protocol/ckks-inference/wire.js';
import { FormatError } from '../../src/errors.js';
import { startServer, type BlindmlServer, type ServerOptions } from '../../src/server/app.js';
import { redactUrl } from '../../src/server/logging.js';
import { paillierBodyLimit, websocketErrorHandler } from '../../src/server/limits.js';
import { MAX_MAGNITUDE } from '../../src/server/model-checks.js';
import { OwnerAuth } from '../../src/server/auth.js';
import { hashApiKey } from '../../src/server/registry.js';
import { registerModel, removeModel, ServiceRequestError } from '../../src/client/index.js';
import { modelIdOf } from '../../src/cli/inference-job.js';
import { smallKeys } from '../helpers/keys.js';
import { buildModel, floatTensor, randoms } from '../nn/onnx-helpers.js';

const onnx = readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url));
const modelId = modelIdOf(onnx);
const API_KEY = 'hardening-owner-key';
const dir = mkdtempSync(join(tmpdir(), 'blindml-hardening-'));
const base: ServerOptions = { apiKey: API_KEY, port: 0, workers: 0, allowInsecureKeys: true, logger: false };
const servers: BlindmlServer[] = [];
let server: BlindmlServer;

async function start(options: Partial<ServerOptions> & { db: string }): Promise<BlindmlServer> {
  const s = await startServer({ ...base, ...options });
  servers.push(s);
  return s;
}

before(async () => {
  server = await start({ db: join(dir, 'main.db') });
  await registerModel(server.url, API_KEY, onnx);
});
after(async () => {
  await Promise.all(servers.map((s) => s.close(0)));
  rmSync(dir, { recursive: true, force: true });
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
async function status(url: string, init: RequestInit = {}): Promise<{ status: number; body: { error?: string; message?: string }; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? (JSON.parse(text) as { error?: string }) : {}, headers: res.headers };
}

test('auth errors say whether the key is missing or not accepted; GET /v1/models/:id counts wrong keys too', async () => {
  const s = await start({ db: join(dir, 'auth.db'), authBackoff: { freeFailures: 2, baseDelayMs: 60_000 } });
  const missing = await status(`${s.url}/v1/models`, { method: 'POST', body: 'x', headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(missing.status, 401);
  assert.equal(missing.body.error, 'ERR_UNAUTHORIZED');
  assert.match(missing.body.message!, /an owner API key is required/);
  const wrong = await status(`${s.url}/v1/models/${modelId}`, { headers: bearer('guess-1') });
  assert.equal(wrong.status, 401, 'a wrong key on the public record is refused, not answered with the public record');
  assert.equal(wrong.body.error, 'ERR_API_KEY_REJECTED');
  assert.match(wrong.body.message!, /the API key was not accepted/);
  assert.equal((await status(`${s.url}/v1/models`, { headers: { 'x-api-key': 'guess-2' } })).status, 401);
  // Third wrong key: over the free allowance, the address is locked (checked before the key).
  assert.equal((await status(`${s.url}/v1/models/x`, { headers: bearer('guess-3') })).status, 401);
  const locked = await status(`${s.url}/v1/models/${modelId}`, { headers: bearer(API_KEY) });
  assert.equal(locked.status, 429, 'a locked address learns nothing about the key it sends');
  assert.ok(Number(locked.headers.get('retry-after')) > 0);
  assert.equal((await status(`${s.url}/v1/models`)).status, 200, 'anonymous reads stay open');
});

test('backoff is per real client address (--trust-proxy): strangers cannot lock out the owner', async () => {
  const s = await start({ db: join(dir, 'proxy.db'), trustProxy: 1, authBackoff: { freeFailures: 1, baseDelayMs: 60_000 } });
  const from = (ip: string, key: string) => ({ ...bearer(key), 'x-forwarded-for': ip });
  for (let i = 0; i < 3; i++) await fetch(`${s.url}/v1/models`, { headers: from('203.0.113.7', `guess-${i}`) });
  assert.equal((await status(`${s.url}/v1/models`, { headers: from('203.0.113.7', API_KEY) })).status, 429);
  assert.equal((await status(`${s.url}/v1/models`, { headers: from('198.51.100.2', API_KEY) })).status, 200, 'the owner elsewhere is unaffected');
  assert.equal((await status(`${s.url}/v1/models`, { headers: bearer(API_KEY) })).status, 200, 'the proxy itself is not locked');

  // Without --trust-proxy the header is ignored: a guesser cannot pick a fresh address per request.
  const plain = await start({ db: join(dir, 'noproxy.db'), authBackoff: { freeFailures: 1, baseDelayMs: 60_000 } });
  for (let i = 0; i < 2; i++) await fetch(`${plain.url}/v1/models`, { headers: from(`203.0.113.${i}`, 'guess') });
  assert.equal((await status(`${plain.url}/v1/models`, { headers: from('203.0.113.99', 'guess') })).status, 429);
});

test('backoff doubles per wrong key, ends, is reset by the right key and forgotten after a quiet hour', () => {
  let now = 0;
  const auth = new OwnerAuth(hashApiKey(API_KEY), { freeFailures: 2, baseDelayMs: 1_000, maxDelayMs: 4_000, forgetAfterMs: 3_600_000 }, undefined, () => now);
  const kind = (key?: string) => {
    const o = auth.check('10.0.0.1', key);
    return o.kind === 'refused' ? o.status : o.kind;
  };
  assert.deepEqual([kind('a'), kind('b')], [401, 401], 'free failures');
  assert.equal(kind('c'), 401);
  assert.equal(kind(API_KEY), 429, 'locked for 1 s');
  assert.equal(kind(), 'anonymous', 'keyless requests are not slowed down');
  now += 1_000;
  assert.equal(kind('d'), 401);
  now += 1_999;
  assert.equal(kind(API_KEY), 429, 'then for 2 s');
  now += 1;
  assert.equal(kind('e'), 401);
  now += 3_999;
  assert.equal(kind('f'), 429, 'then 4 s');
  now += 1;
  assert.equal(kind('f'), 401);
  now += 4_000;
  assert.equal(kind('g'), 401, 'capped at 4 s');
  now += 4_000;
  assert.equal(kind(API_KEY), 'owner');
  assert.equal(auth.trackedAddresses, 0, 'the right key clears the record');
  for (const k of ['h', 'i', 'j']) kind(k);
  now += 3_600_001;
  assert.deepEqual([kind('k'), kind('l')], [401, 401], 'a quiet hour forgets the address');
  assert.equal(auth.check('10.0.0.2', API_KEY).kind, 'owner', 'other addresses never wait');
});

/** POSTs `total` bytes in 1 MiB chunks with a declared length; resolves when the answer comes. */
function bigUpload(url: string, total: number, headers: Record<string, string> = {}): Promise<{ status: number; sent: number }> {
  return new Promise((resolve) => {
    const chunk = Buffer.alloc(2 ** 20, 7);
    let sent = 0;
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(total), ...headers } });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, sent });
      req.destroy();
    });
    // A connection reset before any answer: no status (the assertions then say so).
    req.on('error', () => resolve({ status: -1, sent }));
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

test('a keyless 200 MB model upload is refused from its headers, before the body is read', async () => {
  const rss = process.memoryUsage().rss;
  const { status: code, sent } = await bigUpload(`${server.url}/v1/models`, 200 * 2 ** 20);
  assert.equal(code, 401);
  assert.ok(sent < 100 * 2 ** 20, `the client got its answer after ${sent} bytes`);
  assert.ok(process.memoryUsage().rss - rss < 20 * 2 ** 20, 'the refused upload cost under 20 MB');
  // A wrong key the same way.
  assert.equal((await bigUpload(`${server.url}/v1/models`, 64 * 2 ** 20, bearer('wrong'))).status, 401);
});

test('CKKS bodies are capped by what the step needs, before they are read', async () => {
  // describe and open carry no ciphertexts; an unknown model or step takes no body at all.
  assert.equal((await bigUpload(`${server.url}/v1/ckks/${modelId}/describe`, 8 * 2 ** 20)).status, 413);
  assert.equal((await bigUpload(`${server.url}/v1/ckks/${modelId}/open`, 2 ** 20)).status, 413);
  assert.equal((await bigUpload(`${server.url}/v1/ckks/nope/keys`, 2 ** 20)).status, 413);
  assert.equal((await bigUpload(`${server.url}/v1/ckks/${modelId}/nope`, 2 ** 20)).status, 413);
  // keys: a public key and the model's Galois keys (fashion-small: a few MiB), far below 256 MiB.
  assert.equal((await bigUpload(`${server.url}/v1/ckks/${modelId}/keys`, 200 * 2 ** 20)).status, 413);
  const describe = await fetch(`${server.url}/v1/ckks/${modelId}/describe`, { method: 'POST', body: new Uint8Array(0), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(describe.status, 200, 'an empty describe still works');
});

test('Paillier bodies are capped by the largest message a client of the registered models sends', async () => {
  // The server accepts client keys up to 4,096 bits (the default --max-key-bits).
  const cap = paillierBodyLimit([server.registry.get(modelId)!.compiled!], 32 * 2 ** 20, 4096);
  assert.ok(cap < paillierBodyLimit([server.registry.get(modelId)!.compiled!], 32 * 2 ** 20), 'the key bound tightens the cap');
  assert.ok(cap < 32 * 2 ** 20, `fashion-small's cap (${cap} bytes) is below the frame limit`);
  assert.equal((await bigUpload(`${server.url}/v1/paillier`, cap + 1)).status, 413);
  const res = await fetch(`${server.url}/v1/paillier`, { method: 'POST', body: new Uint8Array(cap), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 200, 'a body at the cap is read (and answered with an error frame)');
});

test('a deeply nested CKKS header is a FormatError (400), not a stack overflow', async () => {
  const depth = 200_000;
  const header = new TextEncoder().encode('['.repeat(depth) + ']'.repeat(depth));
  const frame = new Uint8Array(8 + header.length + 4);
  frame.set([0x42, 0x4d, 0x4c, 0x43]);
  new DataView(frame.buffer).setUint32(4, header.length);
  frame.set(header, 8);
  assert.throws(() => decodeCkksMessage(frame), FormatError);
  const res = await status(`${server.url}/v1/ckks/${modelId}/keys`, { method: 'POST', body: frame, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 400);
  assert.equal(res.body.error, 'ERR_FORMAT');
});

test('a ciphertext that is not a unit (c = n) is ERR_INVALID_CIPHERTEXT, and ends only its session', async () => {
  const n = smallKeys().publicKey.n;
  const post = async (frame: Uint8Array) => decodeMessage(new Uint8Array(await (await fetch(`${server.url}/v1/paillier`, { method: 'POST', body: frame as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } })).arrayBuffer()));
  const opened = await post(encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(n), mode: 'latency' }), 1));
  assert.equal(opened.type, 'opened');
  const sessionId = (opened as { sessionId: string }).sessionId;
  const width = 2 * Math.ceil(smallKeys().publicKey.bits / 8);
  for (const bad of [n, 2n * n, n * n - n]) {
    const again = await post(encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(n), mode: 'latency' }), 1));
    const id = (again as { sessionId: string }).sessionId;
    const cts = Array.from({ length: 784 }, (_, i) => (i === 100 ? bad : 1n + BigInt(i)));
    const reply = await post(encodeMessage(message<'input'>({ type: 'input', sessionId: id, samples: 1, ciphertexts: cts }), width));
    assert.equal(reply.type === 'error' && reply.code, 'ERR_INVALID_CIPHERTEXT', `c = ${bad === n ? 'n' : 'a multiple of n'}`);
  }
  assert.ok(server.service.hasSession(sessionId), 'other sessions are untouched');
});

test('an oversized WebSocket frame closes with 1009 (not a reset), whatever its size', async () => {
  const s = await start({ db: join(dir, 'ws.db'), maxFrameBytes: 4096 });
  for (const size of [5_000, 4 * 2 ** 20, 40 * 2 ** 20]) {
    const ws = new WebSocket(`${s.url.replace('http', 'ws')}/v1/ws`);
    const errors: string[] = [];
    ws.on('error', (err) => errors.push(err.message));
    await new Promise((resolve) => ws.once('open', resolve));
    const code = await new Promise<number>((resolve) => {
      ws.once('close', (c: number) => resolve(c));
      ws.send(new Uint8Array(size));
    });
    assert.equal(code, 1009, `${size} bytes`);
    assert.deepEqual(errors, [], 'the connection ended with a close handshake, not a reset');
  }
});

/** A 784 → 16 → 10 MLP (optionally `relus` ReLUs in a row) with chosen weights. */
function mlp(options: { w1?: Float32Array; b2?: Float32Array; relus?: number } = {}): Uint8Array {
  const relus = options.relus ?? 1;
  const nodes = [
    { op: 'Gemm', inputs: ['input', 'w1', 'b1'], outputs: ['h0'], attrs: { transB: { i: 1 } } },
    ...Array.from({ length: relus }, (_, i) => ({ op: 'Relu', inputs: [`h${i}`], outputs: [`h${i + 1}`] })),
    { op: 'Gemm', inputs: [`h${relus}`, 'w2', 'b2'], outputs: ['out'], attrs: { transB: { i: 1 } } },
  ];
  return buildModel({
    sampleShape: [784],
    nodes,
    initializers: [
      floatTensor('w1', [16, 784], options.w1 ?? randoms(16 * 784, 1, 0.05)),
      floatTensor('b1', [16], randoms(16, 2, 0.1)),
      floatTensor('w2', [10, 16], randoms(160, 3, 0.3)),
      floatTensor('b2', [10], options.b2 ?? randoms(10, 4, 0.1)),
    ],
    output: 'out',
  });
}

test('uploads the service cannot serve correctly are refused with the reason', async () => {
  const refused = async (bytes: Uint8Array, pattern: RegExp) => {
    await assert.rejects(registerModel(server.url, API_KEY, bytes), (e: unknown) => {
      assert.ok(e instanceof ServiceRequestError && e.status === 400, String(e));
      assert.match(e.message, pattern);
      return true;
    });
  };
  assert.equal((await registerModel(server.url, API_KEY, mlp())).created, true, 'the same shape with sane weights is accepted');
  const nan = randoms(16 * 784, 1, 0.05);
  nan[17] = Number.NaN;
  await refused(mlp({ w1: nan }), /weight in stage 1 is NaN/);
  const inf = randoms(16 * 784, 1, 0.05);
  inf[3] = Number.POSITIVE_INFINITY;
  await refused(mlp({ w1: inf }), /weight in stage 1 is Infinity/);
  const big = randoms(10, 4, 0.1);
  big[9] = 1e38;
  await refused(mlp({ b2: big }), /bias in stage 2 is 1\.000e\+38, beyond ±2\^32/);
  big[9] = MAX_MAGNITUDE / 2; // within range itself, but calibration shows no value beyond it either
  assert.equal((await registerModel(server.url, API_KEY, mlp({ b2: big }))).created, true);
  await refused(mlp({ relus: 2_000 }), /clients would refuse activation round 1 .*fns/);
  const { models } = (await (await fetch(`${server.url}/v1/models`)).json()) as { models: unknown[] };
  assert.equal(models.length, 3, 'nothing refused was stored');
});

test('a stored row whose file is missing can be deleted', async () => {
  const path = join(dir, 'stale.db');
  const first = await start({ db: path });
  await registerModel(first.url, API_KEY, onnx);
  await first.close(0);
  rmSync(join(`${path}.models`, `${modelId}.onnx`));
  const second = await start({ db: path });
  assert.deepEqual(second.skippedModels.map((m) => m.id), [modelId]);
  assert.equal(await removeModel(second.url, API_KEY, modelId), true);
  assert.equal(await removeModel(second.url, API_KEY, modelId), false);
});

test('security headers, explicit CORS and WebSocket origins', async () => {
  const s = await start({ db: join(dir, 'web.db'), allowedOrigins: ['https://app.example.com'] });
  const health = await fetch(`${s.url}/healthz`, { headers: { origin: 'https://app.example.com' } });
  const csp = health.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, new RegExp(`connect-src 'self' ${s.url.replace('http', 'ws').replace(/[.]/g, '\\.')}`));
  assert.match(csp, /frame-ancestors 'none'|frame-ancestors 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline[^;]*script|script-src[^;]*unsafe-inline/);
  assert.equal(health.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(health.headers.get('access-control-allow-origin'), 'https://app.example.com');
  const foreign = await fetch(`${s.url}/healthz`, { headers: { origin: 'https://evil.example' } });
  assert.equal(foreign.headers.get('access-control-allow-origin'), null);
  assert.equal((await fetch(`${server.url}/healthz`, { headers: { origin: 'https://app.example.com' } })).headers.get('access-control-allow-origin'), null, 'no CORS unless origins are listed');

  const handshake = (origin?: string) =>
    new Promise<number>((resolve) => {
      const ws = new WebSocket(`${s.url.replace('http', 'ws')}/v1/ws`, origin ? { origin } : {});
      ws.on('open', () => (ws.close(), resolve(101)));
      ws.on('unexpected-response', (_req, res) => (res.resume(), resolve(res.statusCode ?? 0)));
      ws.on('error', () => undefined);
    });
  assert.equal(await handshake(), 101, 'no Origin: not a browser');
  assert.equal(await handshake(s.url), 101, "the service's own pages");
  assert.equal(await handshake('https://app.example.com'), 101, 'a listed origin');
  assert.equal(await handshake('https://evil.example'), 403);
});

test('query-string values other than name and limit never reach the logs', async () => {
  assert.equal(redactUrl('/v1/models?api_key=s3cret&name=a'), '/v1/models?api_key=[redacted]&name=a');
  assert.equal(redactUrl('/v1/samples?limit=3'), '/v1/samples?limit=3');
  const lines: string[] = [];
  const s = await start({ db: join(dir, 'logs.db'), logger: { level: 'info', stream: { write: (l: string) => void lines.push(l) } } });
  await fetch(`${s.url}/v1/models?key=${API_KEY}&token=tok-123&limit=2`);
  await fetch(`${s.url}/v1/models?apiKey=${API_KEY}`, { headers: bearer('wrong-key-xyz') });
  await s.close(0);
  const text = lines.join('');
  assert.match(text, /\[redacted\]/);
  assert.ok(!text.includes(API_KEY) && !text.includes('tok-123') && !text.includes('wrong-key-xyz'), text);
});

test('a WebSocket protocol error leaves ws its close handshake; a broken socket is dropped at once', async () => {
  const socket = () => ({ terminated: 0, readyState: 2, CLOSED: 3, terminate() { this.terminated++; } });
  const oversized = socket();
  websocketErrorHandler(Object.assign(new RangeError('Max payload size exceeded'), { code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' }), oversized);
  assert.equal(oversized.terminated, 0, 'the 1009 close frame is not cut off');
  const broken = socket();
  websocketErrorHandler(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), broken);
  assert.equal(broken.terminated, 1);
});
