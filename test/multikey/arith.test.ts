import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateKeyPair } from '../../src/schemes/paillier/index.js';
import { LocalPaillierCompute } from '../../src/protocol/multikey/compute.js';
import { CryptoServer } from '../../src/protocol/multikey/crypto-server.js';
import { CROSS_SLOT_BITS, crossSlots, packSlots, planMatmul, planMul, unpackSlots } from '../../src/protocol/multikey/cross.js';
import { PlainEngine } from '../../src/protocol/multikey/engine.js';
import { localProduct, type RingMatrix } from '../../src/protocol/multikey/program.js';
import { decodeFixed, encodeFixed, randomRingArray, reduce, RING, toSigned, truncatePlain, truncateShare1, truncateShare2 } from '../../src/protocol/multikey/ring.js';
import { ServiceEngine } from '../../src/protocol/multikey/service-engine.js';
import { LocalChannel, PeerError, PeerUnavailableError } from '../../src/protocol/multikey/transport.js';
import { encodeWeights, initialWeights, MSCRYPTONET_MLP, sgdStep } from '../../src/train/multikey/mlp.js';
import { FormatError, InvalidCiphertextError } from '../../src/errors.js';

const keys = generateKeyPair({ bits: 1024, insecure: true });
const compute = new LocalPaillierCompute();

function servers(options: { failAfter?: number; tamper?: (m: unknown) => unknown } = {}) {
  const crypto = new CryptoServer(keys.privateKey, { compute });
  const counter = { bytes: 0, rounds: 0 };
  const handler = async (m: unknown) => {
    const reply = await crypto.handle(m);
    return options.tamper ? options.tamper(reply) : reply;
  };
  const channel = new LocalChannel(handler, { peer: 'crypto server', counter, ...(options.failAfter !== undefined ? { failAfter: options.failAfter } : {}) });
  const service = new ServiceEngine(channel, keys.publicKey, compute);
  return { crypto, service, counter };
}

function share(s: ReturnType<typeof servers>, id: string, m: RingMatrix): void {
  const r = randomRingArray(m.data.length);
  s.service.store.set(id, { rows: m.rows, cols: m.cols, data: m.data.map((v, i) => reduce(v - r[i]!)) });
  s.crypto.store.set(id, { rows: m.rows, cols: m.cols, data: r });
}

function open(s: ReturnType<typeof servers>, id: string): bigint[] {
  const a = s.service.store.get(id)!.data;
  const b = s.crypto.store.get(id)!.data;
  return a.map((v, i) => reduce(v + b[i]!));
}

const randomMatrix = (rows: number, cols: number): RingMatrix => ({ rows, cols, data: randomRingArray(rows * cols) });

test('ring: pinned fixed-point encodings and signed views', () => {
  assert.equal(encodeFixed(1.5, 13), 12288n);
  assert.equal(encodeFixed(-1, 13), RING - 8192n);
  assert.equal(decodeFixed(RING - 4096n, 13), -0.5);
  assert.equal(toSigned(RING - 1n), -1n);
  assert.equal(truncatePlain(RING - 3n, 1), RING - 2n); // ⌊−3/2⌋ = −2
  // SecureML's two halves (party 2: −⌊(−s2 mod 2^64)/2^f⌋), pinned. Local truncation is only
  // correct with high probability for uniformly random shares (the property below); the training
  // program never truncates a tensor whose shares are (public value, 0).
  assert.equal(truncateShare2(0n, 4), 0n);
  assert.equal(truncateShare2(RING - 32n, 4), RING - 2n);
  assert.equal(truncateShare1(12345n, 4), 771n);
  assert.throws(() => encodeFixed(Number.NaN, 13), RangeError);
  assert.throws(() => encodeFixed(2 ** 30, 13), RangeError);
});

test('ring: local truncation of shares gives ⌊v/2^f⌋ or one more (property)', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(1n << 40n), max: 1n << 40n }), fc.integer({ min: 1, max: 20 }), (v, f) => {
      const [r] = randomRingArray(1);
      const s1 = reduce(v - r!);
      const got = toSigned(reduce(truncateShare1(s1, f) + truncateShare2(r!, f)));
      const want = v >> BigInt(f);
      return got === want || got === want + 1n;
    }),
    { numRuns: 300 },
  );
});

test('cross layouts: every output position is covered once per term; slots round-trip; junk above the last slot is refused', () => {
  for (const [m, k, n, slots] of [[8, 10, 8, 5], [1, 8, 8, 5], [8, 1, 8, 11], [8, 16, 10, 2]] as const) {
    const plan = planMatmul(m, k, n, slots);
    const counts = new Array<number>(m * n).fill(0);
    for (const f of plan.finals) {
      assert.ok(f.length <= slots);
      for (const p of f) counts[p]!++;
    }
    assert.ok(counts.every((c) => c === 2), `${m}×${k}·${k}×${n}`);
  }
  const mul = planMul(13, 5);
  assert.deepEqual(mul.finals.map((f) => f.length), [5, 5, 3]);
  assert.equal(crossSlots(2048), 11);
  const values = [0n, 1n, (1n << BigInt(CROSS_SLOT_BITS)) - 1n, 12345678901234567890n];
  assert.deepEqual(unpackSlots(packSlots(values), 4), values);
  assert.throws(() => unpackSlots(packSlots(values), 3), FormatError);
});

test('two servers: shared matrix and element-wise products reconstruct exactly (mod 2^64)', async () => {
  const s = servers();
  const A = randomMatrix(3, 7);
  const B = randomMatrix(7, 6);
  const C = randomMatrix(3, 6);
  share(s, 'A', A);
  share(s, 'B', B);
  share(s, 'C', C);
  await s.service.interact([
    { op: 'matmul', out: 'AB', a: 'A', b: 'B' },
    { op: 'mul', out: 'AC', a: 'C', b: 'C' },
  ]);
  await s.service.interact([{ op: 'mul', out: 'ABC', a: 'AB', b: 'C' }]);
  assert.deepEqual(open(s, 'AB'), localProduct(A, B, 'matmul').data);
  assert.deepEqual(open(s, 'AC'), localProduct(C, C, 'mul').data);
  assert.deepEqual(open(s, 'ABC'), localProduct(localProduct(A, B, 'matmul'), C, 'mul').data);
  assert.equal(s.counter.rounds, 4);
  // Neither share alone is the product.
  assert.notDeepEqual(s.service.store.get('AB')!.data, localProduct(A, B, 'matmul').data);
});

test('two servers: one SGD step agrees with the plaintext twin within a few units of 2^-13', async () => {
  const s = servers();
  const twin = new PlainEngine();
  const config = MSCRYPTONET_MLP;
  const put = (id: string, m: RingMatrix) => {
    twin.set(id, m);
    share(s, id, m);
  };
  for (const [id, m] of Object.entries(encodeWeights(initialWeights(config, 3), config))) put(id, m);
  put('X0', { rows: 10, cols: 8, data: Array.from({ length: 80 }, (_, i) => encodeFixed(Math.sin(i) * 2, 13)) });
  put('y0', { rows: 1, cols: 8, data: Array.from({ length: 8 }, (_, i) => encodeFixed(Math.cos(i), 13)) });
  await sgdStep(s.service, config, 0, 8);
  await sgdStep(twin, config, 0, 8);
  await s.service.sync();
  for (const id of ['W1', 'b1', 'W2', 'b2']) {
    const got = open(s, id);
    const want = twin.store.get(id)!.data;
    got.forEach((v, i) => assert.ok(Math.abs(Number(toSigned(reduce(v - want[i]!)))) <= 4, `${id}[${i}]`));
  }
  assert.equal(s.crypto.store.size, s.service.store.size, 'both stores hold the same tensors');
});

test('two servers: a crypto server that stops answering, a junk reply, a forged round', async () => {
  const dead = servers({ failAfter: 0 });
  share(dead, 'A', randomMatrix(2, 2));
  await assert.rejects(dead.service.interact([{ op: 'mul', out: 'B', a: 'A', b: 'A' }]), PeerUnavailableError);

  const junk = servers({ tamper: (r) => ({ ...(r as object), cts: [['AAAA']] }) });
  share(junk, 'A', randomMatrix(2, 2));
  await assert.rejects(junk.service.interact([{ op: 'mul', out: 'B', a: 'A', b: 'A' }]), InvalidCiphertextError);
  const doubled = servers({ tamper: (r) => ((r as { type: string }).type === 'opened' ? { ...(r as object), cts: (r as { cts: string[][] }).cts.map((c) => [...c, ...c]) } : r) });
  share(doubled, 'A', randomMatrix(2, 2));
  await assert.rejects(doubled.service.interact([{ op: 'mul', out: 'B', a: 'A', b: 'A' }]), FormatError);

  const s = servers();
  share(s, 'A', randomMatrix(2, 2));
  const reply = await s.crypto.handle({ v: 1, type: 'cross', seq: 9, open: 8, results: [] });
  assert.equal((reply as { type: string }).type, 'error');
  const bad = await s.crypto.handle({ v: 2, type: 'sync', seq: 1, local: [] });
  assert.match((bad as { message: string }).message, /malformed/);
  const unknown = await s.crypto.handle({ v: 1, type: 'reveal', seq: 1, ids: ['A'] });
  assert.match((unknown as { message: string }).message, /does not reveal/);
  // A reply error surfaces as a typed error on the service side.
  const ch = new LocalChannel(async (m) => s.crypto.handle(m), { peer: 'crypto server', counter: { bytes: 0, rounds: 0 } });
  await assert.rejects(ch.request({ v: 1, type: 'zeros', seq: 1, tensors: [{ id: 'Z', rows: 0, cols: 1 }] }), PeerError);
});
