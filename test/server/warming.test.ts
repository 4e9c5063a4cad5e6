import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bigIntToBase64Url } from '../../src/math/bigint.js';
import { decodeMessage, encodeMessage, message } from '../../src/protocol/paillier-inference/index.js';
import { startServer, type BlindmlServer, type ServerOptions } from '../../src/server/app.js';
import { registerModel } from '../../src/client/index.js';
import { modelIdOf } from '../../src/cli/inference-job.js';
import { smallKeys } from '../helpers/keys.js';

const onnx = readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url));
const modelId = modelIdOf(onnx);
const API_KEY = 'test-owner-key';
const dir = mkdtempSync(join(tmpdir(), 'blindml-warming-'));
const base: ServerOptions = { db: join(dir, 'registry.db'), apiKey: API_KEY, port: 0, workers: 0, allowInsecureKeys: true, logger: false };
const servers: BlindmlServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close(0)));
  rmSync(dir, { recursive: true, force: true });
});

type Health = { status: string; models: number; warming: { paillier: number; ckks: number } };
const health = async (s: BlindmlServer) => (await (await fetch(`${s.url}/healthz`)).json()) as Health;
const open = async (s: BlindmlServer) => {
  const frame = encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(smallKeys().publicKey.n), mode: 'latency' }), 1);
  const res = await fetch(`${s.url}/v1/paillier`, { method: 'POST', body: frame as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
  return decodeMessage(new Uint8Array(await res.arrayBuffer()));
};

test('the server listens before its stored models are compiled, and reports them as warming', async () => {
  const first = await startServer(base);
  await registerModel(first.url, API_KEY, onnx);
  await first.close(0);

  const s = await startServer(base);
  servers.push(s);
  // Listening already, while the compile thread still works on the stored model.
  const h = await health(s);
  assert.equal(h.status, 'ok');
  assert.equal(h.models, 1);
  assert.equal(h.warming.paillier, 1);
  // A client that comes meanwhile waits for the model instead of being refused.
  let warm = false;
  void s.ready.then(() => (warm = true));
  const early = await open(s);
  assert.equal(early.type, 'opened');
  assert.ok(warm);
  assert.equal((await health(s)).warming.paillier, 0);
});

test('compiling a model for CKKS leaves the event loop free: /healthz answers meanwhile and says so', async () => {
  const s = await startServer({ ...base, db: join(dir, 'ckks.db') });
  servers.push(s);
  await registerModel(s.url, API_KEY, onnx);
  let described = false;
  const describe = fetch(`${s.url}/v1/ckks/${modelId}/describe`, { method: 'POST', body: new Uint8Array(0), headers: { 'content-type': 'application/octet-stream' } }).then((r) => {
    described = true;
    return r;
  });
  // Wait until the compile has begun, then ask for health while it runs.
  let h = await health(s);
  while (h.warming.ckks === 0 && !described) h = await health(s);
  assert.equal(described, false, 'the describe request was still compiling');
  assert.equal(h.warming.ckks, 1);
  assert.equal((await describe).status, 200);
  assert.equal((await health(s)).warming.ckks, 0);
});
