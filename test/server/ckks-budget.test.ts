import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFashionMnistSample } from '../../src/data/fashion-mnist.js';
import { importOnnx, runPlaintext } from '../../src/nn/index.js';
import { serialize } from 'node:v8';
import { CkksInferenceClient, compileCkksModel } from '../../src/protocol/ckks-inference/index.js';
import { CkksContext, CkksKeyring } from '../../src/schemes/ckks/index.js';
import { MemoryBudget } from '../../src/server/budget.js';
import { CkksAccounts } from '../../src/server/ckks-accounts.js';
import { decodeCkksMessage, encodeCkksMessage } from '../../src/protocol/ckks-inference/wire.js';
import { CkksSessionPool, CkksThreadLostError } from '../../src/workers/ckks-session-pool.js';
import { CkksProductPool } from '../../src/workers/ckks-products-pool.js';
import { BlindmlError } from '../../src/errors.js';
import { CkksStepTransport, type CkksStep } from '../../src/client/ckks-steps.js';
import { ServiceError } from '../../src/protocol/paillier-inference/index.js';
import { startServer, type BlindmlServer } from '../../src/server/app.js';
import { ckksKeyBytes } from '../../src/server/budget.js';
import { registerModel } from '../../src/client/index.js';
import { modelIdOf } from '../../src/cli/inference-job.js';

const onnx = readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url));
const modelId = modelIdOf(onnx);
const sample = loadFashionMnistSample({ limit: 1 });
const plain = runPlaintext(importOnnx(onnx), sample.images);
const API_KEY = 'test-owner-key';
const dir = mkdtempSync(join(tmpdir(), 'blindml-ckks-budget-'));
let server: BlindmlServer;

before(async () => {
  server = await startServer({ db: join(dir, 'registry.db'), apiKey: API_KEY, port: 0, workers: 0, logger: false, maxSessionsPerClient: 2, idleTimeoutMs: 1_500 });
  await registerModel(server.url, API_KEY, onnx);
});
after(async () => {
  await server.close(0);
  rmSync(dir, { recursive: true, force: true });
});

/** A CKKS transport that reaches the server as a client at `address` (Fastify's inject). */
class AddressTransport extends CkksStepTransport {
  constructor(private readonly address: string) {
    super();
  }
  protected async send(step: CkksStep, body: Uint8Array): Promise<unknown> {
    const res = await server.app.inject({ method: 'POST', url: `/v1/ckks/${modelId}/${step}`, payload: Buffer.from(body), headers: { 'content-type': 'application/octet-stream' }, remoteAddress: this.address });
    if (res.statusCode !== 200) {
      const { error, message } = res.json() as { error: string; message: string };
      throw new ServiceError(error, message);
    }
    return decodeCkksMessage(new Uint8Array(res.rawPayload));
  }
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const health = async () => (await (await fetch(`${server.url}/healthz`)).json()) as { sessions: number; sessionsByScheme: { paillier: number; ckks: number; 'ckks-poly': number } };

test('CKKS sessions are limited per address, counted in /healthz and /metrics, never evicted by another address, and expire when abandoned', async () => {
  const attacker = new AddressTransport('10.0.0.1');
  const victim = new AddressTransport('10.0.0.2');
  const bad = await CkksInferenceClient.connect(attacker);
  const good = await CkksInferenceClient.connect(victim);
  try {
    // The victim opens first; the attacker then opens (and abandons) all it may.
    const victimSession = (await victim.open({ version: 1, keyId: good.keyId })) as { sessionId: string };
    for (let i = 0; i < 2; i++) await attacker.open({ version: 1, keyId: bad.keyId });
    await assert.rejects(attacker.open({ version: 1, keyId: bad.keyId }), (e: unknown) => e instanceof ServiceError && e.code === 'ERR_TOO_MANY_SESSIONS');
    const h = await health();
    assert.deepEqual(h.sessionsByScheme, { paillier: 0, ckks: 3, 'ckks-poly': 0 });
    assert.equal(h.sessions, 3);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /blindml_sessions_active\{scheme="ckks"\} 3/);
    assert.match(metrics, /blindml_memory_budget_entries\{kind="ckks-keys"\} 2/);
    // The victim's session opened before the attacker's is still open, and the victim completes a prediction.
    assert.equal(server.budget.entries('ckks-session'), 3);
    await assert.rejects(victim.round({ version: 1, sessionId: victimSession.sessionId, stage: 5, inputs: [[new Uint8Array(8)]] }), (e: unknown) => e instanceof ServiceError && e.code === 'ERR_OUT_OF_ORDER');
    const { logits } = await good.predict(sample.images);
    logits.forEach((v, j) => assert.ok(Math.abs(v - plain[j]!) < 0.05, `logit ${j}: ${v} vs ${plain[j]}`));
    // The abandoned sessions expire and leave the counts.
    await until(() => server.budget.entries('ckks-session') === 0);
    assert.equal((await health()).sessionsByScheme.ckks, 0);
  } finally {
    bad.dispose();
    good.dispose();
  }
});

test('CKKS keys larger than the model\'s parameters allow are refused before SEAL parses them', async () => {
  const transport = new AddressTransport('10.0.0.3');
  const d = (await transport.describe()) as { params: { polyModulusDegree: number; coeffModulusBits: number[] }; galoisSteps: number[] };
  const tooBig = (steps: number) => new Uint8Array(ckksKeyBytes(d.params, steps, 0) + 128 * 1024);
  const refused = (e: unknown) => e instanceof ServiceError && e.code === 'ERR_KEY_SIZE';
  await assert.rejects(transport.registerKeys({ version: 1, publicKey: tooBig(0), galoisKeys: new Uint8Array(0) }), refused);
  await assert.rejects(transport.registerKeys({ version: 1, publicKey: new Uint8Array(16), galoisKeys: tooBig(d.galoisSteps.length) }), refused);
  // Within the bounds, SEAL's own checks answer (these bytes are no key).
  await assert.rejects(transport.registerKeys({ version: 1, publicKey: new Uint8Array(16), galoisKeys: new Uint8Array(0) }), (e: unknown) => e instanceof ServiceError && e.code === 'ERR_FORMAT');
});

test('what the budget lets go of leaves the session thread: prepared sessions, and keys no session uses', async () => {
  const compiled = serialize(compileCkksModel(importOnnx(onnx), sample.images));
  // Its prepared session is encoded on a product thread, through the session thread's relay.
  const products = new CkksProductPool({ threads: 1 });
  const pool = new CkksSessionPool({ threads: 1, products });
  const d = await pool.addModel('m', compiled);
  const context = await CkksContext.create({ ...d.params, coeffModulusBits: [...d.params.coeffModulusBits] });
  const keyring = CkksKeyring.generate(context);
  try {
    const budget = new MemoryBudget({ maxBytes: 2 ** 40, idleMs: 60_000 });
    const accounts = new CkksAccounts(budget, pool, { perClientSessions: 2, keysIdleMs: 60_000 });
    await accounts.prepare('m', 0, 1, () => true);
    assert.equal((await pool.stats(0, 'm')).prepared, 1);
    assert.equal(budget.entries('ckks-prepared'), 1);
    budget.clear();
    assert.equal((await pool.stats(0, 'm')).prepared, 0, 'the prepared session was dropped with its entry');

    const bundle = keyring.exportPublic({ galoisSteps: d.galoisSteps });
    const keysRequest = () => encodeCkksMessage({ version: 1, publicKey: bundle.publicKey, galoisKeys: bundle.galoisKeys ?? new Uint8Array(0) });
    const { keyId } = await pool.keys(0, 'm', keysRequest());
    assert.deepEqual(accounts.keysLoaded('m', d, 0, keyId, '10.0.0.9'), { thread: 0 });
    const admitted = accounts.admitOpen('m', keyId, '10.0.0.9');
    assert.ok('entry' in admitted);
    const { sessionId } = await pool.open(admitted.thread, 'm', encodeCkksMessage({ version: 1, keyId }), admitted.prepared);
    accounts.opened(admitted.entry, sessionId);
    assert.equal(budget.delete(`ckks-keys:m:${keyId}`), true);
    assert.deepEqual(await pool.stats(0, 'm'), { keys: 1, sessions: 1, prepared: 0 }, 'keys an open session uses stay loaded');
    accounts.ended('m', sessionId);
    assert.deepEqual(await pool.stats(0, 'm'), { keys: 0, sessions: 0, prepared: 0 }, 'the session closed, and its keys went after it');
    // Loaded again and let go with no session: unloaded.
    await pool.keys(0, 'm', keysRequest());
    assert.deepEqual(accounts.keysLoaded('m', d, 0, keyId, '10.0.0.9'), { thread: 0 });
    budget.clear();
    await assert.rejects(pool.open(0, 'm', encodeCkksMessage({ version: 1, keyId }), false), (e: unknown) => e instanceof BlindmlError && e.code === 'ERR_UNKNOWN_KEYS');
  } finally {
    keyring.dispose();
    context.dispose();
    await pool.destroy();
    await products.destroy();
  }
});

test('a session thread that dies takes its keys and sessions with it: work in flight fails with ERR_THREAD_LOST, the accounts let go, a fresh thread serves', async () => {
  const compiled = serialize(compileCkksModel(importOnnx(onnx), sample.images));
  const budget = new MemoryBudget({ maxBytes: 2 ** 40, idleMs: 60_000 });
  let accounts: CkksAccounts | undefined;
  const lost: number[] = [];
  const pool = new CkksSessionPool({ threads: 2, onLost: (t) => (lost.push(t), accounts!.threadLost(t)) });
  accounts = new CkksAccounts(budget, pool, { perClientSessions: 2, keysIdleMs: 60_000 });
  const d = await pool.addModel('m', compiled);
  const context = await CkksContext.create({ ...d.params, coeffModulusBits: [...d.params.coeffModulusBits] });
  const keyring = CkksKeyring.generate(context);
  try {
    const bundle = keyring.exportPublic({ galoisSteps: d.galoisSteps });
    const keysRequest = () => encodeCkksMessage({ version: 1, publicKey: bundle.publicKey, galoisKeys: bundle.galoisKeys ?? new Uint8Array(0) });
    const thread = accounts.threadForKeys();
    const { keyId } = await pool.keys(thread, 'm', keysRequest());
    assert.deepEqual(accounts.keysLoaded('m', d, thread, keyId, '10.0.0.7'), { thread });
    const admitted = accounts.admitOpen('m', keyId, '10.0.0.7');
    assert.ok('entry' in admitted);
    const { sessionId } = await pool.open(thread, 'm', encodeCkksMessage({ version: 1, keyId }), false);
    accounts.opened(admitted.entry, sessionId);
    assert.equal(budget.entries(), 2);

    // Work sent to the thread, then the thread dies under it.
    const inFlight = pool.prepare(thread, 'm');
    await pool.terminate(thread);
    await assert.rejects(inFlight, CkksThreadLostError);
    await until(() => lost.length === 1);
    assert.deepEqual(lost, [thread]);
    assert.equal(budget.entries(), 0, 'the dead thread\'s keys and session left the budget');
    assert.equal(accounts.sessionThread('m', sessionId), undefined, 'its client\'s next round is answered: no such session');
    assert.ok(!('entry' in accounts.admitOpen('m', keyId, '10.0.0.7')), 'its keys must be uploaded again');
    // The fresh thread loads the model again when asked, and serves.
    const again = await pool.keys(thread, 'm', keysRequest());
    assert.equal(again.keyId, keyId);
    assert.deepEqual(await pool.stats(thread, 'm'), { keys: 1, sessions: 0, prepared: 0 });
  } finally {
    keyring.dispose();
    context.dispose();
    await pool.destroy();
  }
});
