// Services sharing one PostgreSQL registry: one owner key for all, a model uploaded through one
// served by the other without restart (encrypted predictions equal to plaintext), a removal seen
// by both; and `/readyz` (readiness) apart from `/healthz` (liveness).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { argmaxRows, importOnnx, runPlaintext } from '../../src/nn/index.js';
import { bigIntToBase64Url } from '../../src/math/bigint.js';
import { decodeMessage, encodeMessage, message } from '../../src/protocol/paillier-inference/index.js';
import { startServer, type BlindmlServer, type ServerOptions } from '../../src/server/app.js';
import { registerReadiness } from '../../src/server/readiness.js';
import { RegistryStoreError } from '../../src/server/registry.js';
import { connect, registerModel, removeModel, ServiceRequestError } from '../../src/client/index.js';
import { modelIdOf } from '../../src/cli/inference-job.js';
import { smallKeys } from '../helpers/keys.js';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tinyMlp } from '../helpers/tiny-mlp.js';

const onnx = tinyMlp(71);
const modelId = modelIdOf(onnx);
const sample = loadFashionMnistSample({ limit: 2 });
const plain = runPlaintext(importOnnx(onnx), sample.images);

const pgSkip = postgresUnavailable();
let pgServer: TestPostgres | undefined;
const servers: BlindmlServer[] = [];
before(async () => {
  if (!pgSkip) pgServer = await startPostgres();
});
after(async () => {
  await Promise.allSettled(servers.map((s) => s.close(0)));
  await pgServer?.stop();
});

const base: ServerOptions = { port: 0, workers: 0, allowInsecureKeys: true, logger: false };
const status = async (url: string, init?: RequestInit) => (await fetch(url, init)).status;
/** Polls until `check` holds (the test's own timeout bounds the wait). */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
}

describe('two services on one PostgreSQL registry', { skip: pgSkip, timeout: 180_000 }, () => {
  test('one owner key; an upload through A is predicted through B; a removal through B reaches A; /readyz follows the database', async () => {
    const db = pgServer!.url;
    // Started together on an empty database: the first to store its owner key wins.
    const [a, b] = await Promise.all([startServer({ ...base, db }), startServer({ ...base, db })]);
    servers.push(a, b);
    const keys = [a.generatedApiKey, b.generatedApiKey].filter((k) => k !== undefined);
    assert.equal(keys.length, 1, 'one key is shown, by the replica that stored it');
    const key = keys[0]!;
    for (const s of [a, b]) assert.equal(await status(`${s.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } }), 200);
    await Promise.all([a.ready, b.ready]);
    for (const s of [a, b]) assert.equal(await status(`${s.url}/readyz`), 200);

    assert.equal((await registerModel(a.url, key, onnx, { name: 'shared' })).created, true);
    await until(async () => (await status(`${b.url}/v1/models/${modelId}`)) === 200);
    const client = await connect(b.url, { keys: smallKeys() });
    try {
      for (let k = 0; k < 2; k++) {
        const { label } = await client.predict(modelId, sample.images.subarray(k * 784, (k + 1) * 784));
        assert.equal(label, argmaxRows(plain.subarray(k * 10, (k + 1) * 10), 10)[0]);
      }
    } finally {
      client.close();
    }

    assert.equal(await removeModel(b.url, key, modelId), true);
    await until(async () => (await status(`${a.url}/v1/models/${modelId}`)) === 404);
    const open = encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(smallKeys().publicKey.n), mode: 'latency' }), 1);
    const refused = decodeMessage(new Uint8Array(await (await fetch(`${a.url}/v1/paillier`, { method: 'POST', body: open as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } })).arrayBuffer()));
    assert.equal(refused.type === 'error' && refused.code, 'ERR_UNKNOWN_MODEL');

    // The database gone: not ready, yet alive.
    await pgServer!.stop();
    const res = await fetch(`${a.url}/readyz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'not-ready', reason: 'registry-unreachable' });
    assert.equal(await status(`${a.url}/healthz`), 200);
    // An upload that cannot be stored is the service's trouble (503), with no database details.
    await assert.rejects(registerModel(a.url, key, onnx), (e: unknown) => {
      assert.ok(e instanceof ServiceRequestError && e.status === 503, String(e));
      assert.ok(!e.message.includes('postgres'), e.message);
      return true;
    });
  });
});

describe('/readyz', () => {
  /** The route over a registry whose answers the test sets. */
  async function readiness(state: { draining: boolean; reachable: boolean; warming: number }) {
    const app = Fastify();
    registerReadiness(app, {
      registry: {
        ping: async () => {
          if (!state.reachable) throw new RegistryStoreError('the registry database postgres://u:***@db/x failed: connect ECONNREFUSED');
        },
        get warmingSinceOpen() {
          return state.warming;
        },
        list: () => [],
      },
      draining: () => state.draining,
    });
    await app.ready();
    return async () => {
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      return { status: res.statusCode, body: res.json() as Record<string, unknown> };
    };
  }

  test('503 with the reason while draining, while the store is unreachable, while stored models warm; else 200', async () => {
    const state = { draining: false, reachable: true, warming: 2 };
    const probe = await readiness(state);
    assert.deepEqual(await probe(), { status: 503, body: { status: 'not-ready', reason: 'warming', warming: 2 } });
    state.warming = 0;
    assert.deepEqual(await probe(), { status: 200, body: { status: 'ready', models: 0 } });
    state.reachable = false;
    const down = await probe();
    assert.deepEqual(down, { status: 503, body: { status: 'not-ready', reason: 'registry-unreachable' } });
    assert.ok(!JSON.stringify(down).includes('postgres'), 'the store address stays in the log');
    state.reachable = true;
    state.draining = true;
    assert.deepEqual(await probe(), { status: 503, body: { status: 'not-ready', reason: 'shutting-down' } });
  });

  test('a service draining for shutdown answers 503 while its sessions finish; /healthz says so too', async () => {
    const s = await startServer({ ...base, db: ':memory:', apiKey: 'k' });
    servers.push(s);
    await s.ready;
    assert.equal(await status(`${s.url}/readyz`), 200);
    await registerModel(s.url, 'k', onnx);
    // An open session keeps the service draining (not closed) for the grace period.
    const open = encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(smallKeys().publicKey.n), mode: 'latency' }), 1);
    await fetch(`${s.url}/v1/paillier`, { method: 'POST', body: open as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
    const closing = s.close(1_500);
    const res = await fetch(`${s.url}/readyz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'not-ready', reason: 'shutting-down' });
    assert.equal(await status(`${s.url}/healthz`), 503);
    await closing;
  });
});
