import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bigIntToBase64Url } from '../../src/math/bigint.js';
import { randomBits } from '../../src/math/random.js';
import { decodeMessage, encodeMessage, message } from '../../src/protocol/paillier-inference/index.js';
import { MemoryBudget, ckksKeyBytes, djnTableBytes, type BudgetEntry } from '../../src/server/budget.js';
import { checkModulus, openModulus } from '../../src/server/paillier-keys.js';
import { startServer, type BlindmlServer, type ServerOptions } from '../../src/server/app.js';
import { registerModel } from '../../src/client/index.js';
import { modelIdOf } from '../../src/cli/inference-job.js';
import { PaillierWorkerPool } from '../../src/workers/paillier-pool.js';
import { smallKeys } from '../helpers/keys.js';

const onnx = readFileSync(new URL('../../models/fashion-small.onnx', import.meta.url));
const modelId = modelIdOf(onnx);
const API_KEY = 'test-owner-key';
const dir = mkdtempSync(join(tmpdir(), 'blindml-budget-'));
const base: ServerOptions = { apiKey: API_KEY, port: 0, workers: 0, allowInsecureKeys: true, logger: false, idleTimeoutMs: 400 };
const servers: BlindmlServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close(0)));
  rmSync(dir, { recursive: true, force: true });
});

async function until(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An entry that records how it was released. */
function entry(owner: string, bytes: number, log: string[], name: string, pinned = false): BudgetEntry {
  return { kind: 'ckks-session', owner, bytes, pinned: () => pinned, release: (why) => log.push(`${name}:${why}`) };
}

/** An odd modulus of exactly `bits` bits (no key: the front must refuse before any arithmetic). */
function modulus(bits: number): bigint {
  return randomBits(bits) | (1n << BigInt(bits - 1)) | 1n;
}
const openWith = (n: bigint) => encodeMessage(message<'open'>({ type: 'open', modelId, n: bigIntToBase64Url(n), mode: 'latency' }), 1);

test('the budget evicts the least recently used unpinned entries, never pinned ones, and releases each once', () => {
  const log: string[] = [];
  const b = new MemoryBudget({ maxBytes: 100, idleMs: 60_000, perOwnerBytes: 100 });
  assert.equal(b.admit('a', entry('x', 40, log, 'a', true)), null);
  assert.equal(b.admit('b', entry('y', 40, log, 'b')), null);
  assert.equal(b.admit('c', entry('z', 40, log, 'c')), null);
  assert.deepEqual(log, ['b:evict']);
  assert.equal(b.bytes(), 80);
  // a is pinned and c is the only unpinned one: 70 bytes cannot be found, and nothing is evicted.
  assert.equal(b.admit('d', entry('w', 70, log, 'd')), 'full');
  assert.deepEqual(log, ['b:evict']);
  assert.equal(b.entries(), 2);
  assert.ok(b.delete('a'));
  assert.ok(!b.delete('a'));
  b.clear();
  assert.deepEqual(log, ['b:evict', 'a:delete', 'c:delete']);
  assert.equal(b.bytes(), 0);
  assert.equal(b.ownerBytes('x'), 0);
});

test('one address cannot take more than its share, whatever is free: its new entries push out its own idle ones', () => {
  const log: string[] = [];
  const b = new MemoryBudget({ maxBytes: 300, idleMs: 60_000 });
  assert.equal(b.perOwnerBytes, 100);
  assert.equal(b.admit('v1', entry('victim', 60, log, 'v1')), null);
  assert.equal(b.admit('a1', entry('attacker', 60, log, 'a1', true)), null);
  assert.equal(b.admit('a2', entry('attacker', 60, log, 'a2')), 'owner');
  assert.equal(b.admit('a3', entry('attacker', 30, log, 'a3')), null);
  assert.equal(b.admit('a4', entry('attacker', 10, log, 'a4')), null);
  assert.deepEqual(log, []);
  assert.equal(b.admit('a5', entry('attacker', 20, log, 'a5')), null);
  assert.deepEqual(log, ['a3:evict'], "the attacker's own idle entry went, not the victim's");
  assert.equal(b.ownerBytes('attacker'), 90);
  assert.ok(b.has('v1'));
});

test('an entry may have its own idle time', async () => {
  const log: string[] = [];
  const b = new MemoryBudget({ maxBytes: 100, idleMs: 60 });
  b.admit('short', entry('x', 10, log, 'short'));
  b.admit('long', { ...entry('x', 10, log, 'long'), idleMs: 60_000 });
  await until(() => log.length === 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(log, ['short:expire']);
  b.clear();
});

test('idle entries expire on their own, pinned or not', async () => {
  const log: string[] = [];
  const b = new MemoryBudget({ maxBytes: 100, idleMs: 60 });
  b.admit('a', entry('x', 10, log, 'a', true));
  b.admit('b', entry('x', 10, log, 'b'));
  await until(() => log.length === 2);
  assert.deepEqual(log.sort(), ['a:expire', 'b:expire']);
  assert.equal(b.entries(), 0);
});

test('size estimates follow the parameters', () => {
  // 128 windows of 255 entries of a 4096-bit value: about 17 MB per thread for a 2048-bit key.
  assert.equal(djnTableBytes(2048), 128 * 255 * (512 + 32));
  assert.ok(djnTableBytes(4096) > 3 * djnTableBytes(2048));
  const p = { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 60] };
  assert.equal(ckksKeyBytes(p, 0, 0), 2 * 8192 * 8 * 3);
  assert.ok(ckksKeyBytes(p, 10, 0) > 10 * ckksKeyBytes(p, 0, 0));
});

test('a worker thread drops a key and its DJN table when told, when idle, and keeps at most maxKeys', async () => {
  const key = smallKeys().publicKey;
  const fake = () => ({ ...key, n: modulus(256), bits: 256 }) as typeof key;
  const pool = new PaillierWorkerPool({ threads: 1, keyCache: { maxKeys: 2, idleMs: 60_000 } });
  const idle = new PaillierWorkerPool({ threads: 1, keyCache: { maxKeys: 2, idleMs: 200 } });
  try {
    await pool.encryptMany(key, [1n, 2n]);
    assert.equal(await pool.cachedKeys(), 1);
    pool.forgetKey(key.n);
    await until(async () => (await pool.cachedKeys()) === 0);
    // Three moduli through a cache of two: the oldest goes (noise builds each key's table).
    for (let i = 0; i < 3; i++) await pool.noise(fake(), 1);
    assert.equal(await pool.cachedKeys(), 2);
    await idle.noise(fake(), 1);
    assert.equal(await idle.cachedKeys(), 1);
    await until(async () => (await idle.cachedKeys()) === 0);
  } finally {
    await Promise.all([pool.destroy(), idle.destroy()]);
  }
});

test('client moduli outside the bounds are refused before the service sees them', async () => {
  assert.equal(openModulus(openWith(modulus(3000)))?.bits, 3000);
  assert.equal(openModulus(new Uint8Array([1, 2, 3])), undefined);
  assert.equal(checkModulus(2048, { minBits: 2048, maxBits: 4096 }), null);
  assert.equal(checkModulus(4097, { minBits: 2048, maxBits: 4096 })?.code, 'ERR_KEY_SIZE');

  const s = await startServer({ ...base, db: join(dir, 'bounds.db'), keyBits: { min: 512, max: 1024 } });
  servers.push(s);
  await registerModel(s.url, API_KEY, onnx);
  const post = async (bytes: Uint8Array) => decodeMessage(new Uint8Array(await (await fetch(`${s.url}/v1/paillier`, { method: 'POST', body: bytes as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } })).arrayBuffer()));
  for (const bits of [384, 1100, 24_576]) {
    const reply = await post(openWith(modulus(bits)));
    assert.equal(reply.type === 'error' && reply.code, 'ERR_KEY_SIZE', `${bits} bits`);
  }
  assert.equal(s.trackedSessions(), 0);
  assert.equal(s.budget.entries('paillier-key'), 0);
  assert.equal((await post(openWith(modulus(768)))).type, 'opened');
});

test('every fresh client key is an entry of the budget, freed when idle', async () => {
  const s = await startServer({ ...base, db: join(dir, 'fresh.db') });
  servers.push(s);
  await registerModel(s.url, API_KEY, onnx);
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${s.url}/v1/paillier`, { method: 'POST', body: openWith(modulus(512)) as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(decodeMessage(new Uint8Array(await res.arrayBuffer())).type, 'opened');
  }
  assert.equal(s.budget.entries('paillier-key'), 3);
  assert.ok(s.budget.bytes('paillier-key') >= 3 * djnTableBytes(512, 5));
  const health = (await (await fetch(`${s.url}/healthz`)).json()) as { sessions: number };
  assert.equal(health.sessions, 3);
  await until(() => s.budget.entries('paillier-key') === 0 && s.trackedSessions() === 0);
});
