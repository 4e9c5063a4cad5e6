import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeyMismatchError } from '../../src/errors.js';
import { powProducts } from '../../src/math/straus.js';
import { modPow } from '../../src/math/modular.js';
import { generateKeyPair } from '../../src/schemes/paillier/index.js';
import {
  ComputeServer,
  CryptoServer,
  CryptoServerUnavailableError,
  InProcessTransport,
  LocalTwoServerCompute,
  MeteredTransport,
  TwoServerProtocolError,
  decodeTwoServerMessage,
  encodeTwoServerMessage,
  type EncMatrix,
  type TwoServerTransport,
} from '../../src/protocol/two-server/index.js';
import { smallKeys } from '../helpers/keys.js';

const { publicKey, privateKey } = smallKeys();
const compute = new LocalTwoServerCompute();

function setup(transportWrap: (t: TwoServerTransport) => TwoServerTransport = (t) => t) {
  const s2 = new CryptoServer(privateKey, { insecure: true });
  const transport = new MeteredTransport(transportWrap(new InProcessTransport(s2)), { timeoutMs: 2000 });
  const s1 = new ComputeServer(publicKey, transport, compute);
  return { s1, s2, transport };
}

const enc = (vs: readonly bigint[]): bigint[] => vs.map((v) => publicKey.encryptRaw(v));
const dec = (cts: readonly bigint[]): bigint[] => cts.map((c) => privateKey.decryptSigned(publicKey.ciphertext(c)));
const matrix = (rows: number, cols: number, vs: bigint[], bits: number): EncMatrix => ({ rows, cols, bits, cts: enc(vs) });

test('powProducts equals the product of separate exponentiations', () => {
  const m = publicKey.nSquared;
  const bases = [3n, 5n, 7n, publicKey.encryptRaw(9n)];
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.bigInt({ min: 0n, max: (1n << 130n) - 1n })), { minLength: 1, maxLength: 6 }), (terms) => {
      const [got] = powProducts(bases, [{ index: terms.map((t) => t[0]), exps: terms.map((t) => t[1]) }], m);
      const want = terms.reduce((acc, [i, e]) => (acc * modPow(bases[i]!, e, m)) % m, 1n);
      assert.equal(got, want);
    }),
    { numRuns: 40 },
  );
  assert.throws(() => powProducts(bases, [{ index: [0], exps: [-1n] }], m), RangeError);
  assert.throws(() => powProducts(bases, [{ index: [9], exps: [1n] }], m), RangeError);
});

test('matMul of two encrypted matrices, and with rows of a stored matrix, plain or transposed', async () => {
  const { s1, transport } = setup();
  const a = [1n, -2n, 3n, 4n, 0n, -6n]; // 2×3
  const b = [7n, -1n, 2n, 5n, -3n, 8n]; // 3×2
  const c = await s1.matMul({ kind: 'enc', m: matrix(2, 3, a, 4) }, { kind: 'enc', m: matrix(3, 2, b, 4) });
  assert.deepEqual([c.rows, c.cols], [2, 2]);
  assert.deepEqual(dec(c.cts), [1n * 7n - 2n * 2n - 3n * 3n, -1n - 10n + 24n, 28n + 0n + 18n, -4n + 0n - 48n]);
  assert.equal(transport.traffic.rounds, 1);
  const x = [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n]; // 3×3, stored
  const stored = await s1.store(matrix(3, 3, x, 5));
  const w = [1n, 0n, -1n]; // 3×1
  const rowsOf = await s1.matMul({ kind: 'stored', m: stored, rows: [2, 0] }, { kind: 'enc', m: matrix(3, 1, w, 2) });
  assert.deepEqual(dec(rowsOf.cts), [7n - 9n, 1n - 3n]);
  const t = await s1.matMul({ kind: 'enc', m: matrix(1, 2, [1n, -1n], 2) }, { kind: 'stored', m: stored, rows: [0, 1], transpose: false });
  assert.deepEqual(dec(t.cts), [1n - 4n, 2n - 5n, 3n - 6n]);
  const tt = await s1.matMul({ kind: 'stored', m: stored, rows: [0, 1], transpose: true }, { kind: 'enc', m: matrix(2, 1, [1n, 1n], 2) });
  assert.deepEqual(dec(tt.cts), [5n, 7n, 9n]);
});

test('mul is exact for random signed values (property)', async () => {
  const { s1 } = setup();
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.bigInt({ min: -(1n << 20n), max: 1n << 20n }), fc.bigInt({ min: -(1n << 20n), max: 1n << 20n })), { minLength: 1, maxLength: 5 }), async (pairs) => {
      const got = await s1.mul({ bits: 21, cts: enc(pairs.map((p) => p[0])) }, { bits: 21, cts: enc(pairs.map((p) => p[1])) });
      assert.deepEqual(dec(got.cts), pairs.map(([x, y]) => x * y));
    }),
    { numRuns: 8 },
  );
});

test('trunc gives floor(v / 2^f) or one more, and both happen', async () => {
  const { s1 } = setup();
  const vs = [896n, -1000n, 123456n, -7n, 0n, 4095n, 4096n]; // 896 = 3.5·256: a carry half the time
  const seen = new Set<bigint>();
  for (let rep = 0; rep < 24; rep++) {
    const got = dec((await s1.trunc({ bits: 20, cts: enc(vs) }, 8)).cts);
    got.forEach((g, i) => {
      const floor = vs[i]! >> 8n;
      assert.ok(g === floor || g === floor + 1n, `${vs[i]} >> 8 gave ${g}`);
      if (vs[i] === 896n) seen.add(g - floor);
      if (vs[i] === 0n || vs[i] === 4096n) assert.equal(g, floor); // no fraction: never a carry
    });
  }
  assert.deepEqual([...seen].sort(), [0n, 1n]);
});

test('relu, its derivative and derivative·u, in the original order', async () => {
  const { s1 } = setup();
  const z = [5000n, -5000n, 0n, 256n, -1n, 77777n];
  const u = [3n, 4n, -5n, 6n, 7n, -8n];
  const r = await s1.relu({ bits: 20, cts: enc(z) }, 8, [{ bits: 5, cts: enc(u) }]);
  const relu = dec(r.relu.cts);
  z.forEach((v, i) => {
    if (v <= 0n) assert.equal(relu[i], 0n);
    else assert.ok(relu[i] === v >> 8n || relu[i] === (v >> 8n) + 1n);
  });
  assert.deepEqual(dec(r.derivative.cts), z.map((v) => (v > 0n ? 1n : 0n)));
  assert.deepEqual(dec(r.products[0]!.cts), z.map((v, i) => (v > 0n ? u[i]! : 0n)));
});

test('switchKey moves values to another key without S1 or S2 decrypting them', async () => {
  const { s1 } = setup();
  const user = generateKeyPair({ bits: 512, insecure: true });
  const out = await s1.switchKey({ bits: 30, cts: enc([42n, -17n]) }, user.publicKey);
  assert.deepEqual(out.map((c) => user.privateKey.decryptSigned(c)), [42n, -17n]);
  // A crypto server told which result keys it serves refuses any other target.
  const pinned = new ComputeServer(publicKey, new InProcessTransport(new CryptoServer(privateKey, { insecure: true, switchTargets: [user.publicKey] })), compute);
  const attacker = generateKeyPair({ bits: 512, insecure: true });
  await assert.rejects(pinned.switchKey({ bits: 30, cts: enc([42n]) }, attacker.publicKey), KeyMismatchError);
  assert.equal(user.privateKey.decryptSigned((await pinned.switchKey({ bits: 30, cts: enc([5n]) }, user.publicKey))[0]!), 5n);
});

test('several steps in one round', async () => {
  const { s1, transport } = setup();
  const before = transport.traffic.rounds;
  const [p, t] = await s1.round(await s1.mulStep({ bits: 8, cts: enc([3n]) }, { bits: 8, cts: enc([-4n]) }), await s1.truncStep({ bits: 12, cts: enc([1024n]) }, 10));
  assert.deepEqual(dec(p.cts), [-12n]);
  assert.ok(dec(t.cts)[0] === 1n);
  assert.equal(transport.traffic.rounds - before, 1);
  assert.ok(transport.traffic.bytes > 0 && transport.traffic.bytes === transport.traffic.bytesSent + transport.traffic.bytesReceived);
});

test('a ciphertext under an unknown key, or a request for another key, is refused', async () => {
  const { s1 } = setup();
  const other = generateKeyPair({ bits: 512, insecure: true });
  assert.throws(() => s1.accept([other.publicKey.encrypt(1n)]), KeyMismatchError);
  const s2 = new CryptoServer(other.privateKey, { insecure: true });
  const wrong = new ComputeServer(publicKey, new InProcessTransport(s2), compute);
  await assert.rejects(wrong.mul({ bits: 4, cts: enc([1n]) }, { bits: 4, cts: enc([1n]) }), KeyMismatchError);
});

test('a crypto server that stops answering gives CryptoServerUnavailableError', async () => {
  let calls = 0;
  const { s1 } = setup((inner) => ({ call: (b) => (++calls > 1 ? new Promise<Uint8Array>(() => {}) : inner.call(b)) }));
  await s1.trunc({ bits: 8, cts: enc([5n]) }, 1);
  await assert.rejects(s1.trunc({ bits: 8, cts: enc([5n]) }, 1), CryptoServerUnavailableError);
  const broken = setup(() => ({ call: () => Promise.reject(new Error('ECONNRESET')) }));
  await assert.rejects(broken.s1.trunc({ bits: 8, cts: enc([5n]) }, 1), (e: unknown) => e instanceof CryptoServerUnavailableError && /ECONNRESET/.test(e.message));
});

test('junk bytes and malformed requests get an error message, never a crash', async () => {
  const s2 = new CryptoServer(privateKey, { insecure: true });
  const junk = [new Uint8Array(0), new Uint8Array([1, 2, 3]), new TextEncoder().encode('B2SV\0\0\0\x05hello'), encodeTwoServerMessage({ v: 1, type: 'response', seq: 1, outputs: [], ciphertexts: [] }, 8)];
  for (const bytes of junk) {
    const reply = decodeTwoServerMessage(await s2.handle(bytes));
    assert.equal(reply.type, 'error');
  }
  // A truncated message and one whose counts do not add up.
  const good = encodeTwoServerMessage({ v: 1, type: 'request', key: s2.keyId, seq: 1, ops: [{ op: 'trunc', shift: 1, values: 1, slotBits: 64 }], inputs: [1], ciphertexts: [publicKey.encryptRaw(3n)] }, 128);
  assert.throws(() => decodeTwoServerMessage(good.subarray(0, good.length - 1)), TwoServerProtocolError);
  const lying = encodeTwoServerMessage({ v: 1, type: 'request', key: s2.keyId, seq: 1, ops: [{ op: 'trunc', shift: 1, values: 1, slotBits: 64 }], inputs: [2], ciphertexts: [publicKey.encryptRaw(3n)] }, 128);
  assert.equal(decodeTwoServerMessage(await s2.handle(lying)).type, 'error');
  // Unknown stored matrix.
  const unknown = encodeTwoServerMessage({ v: 1, type: 'request', key: s2.keyId, seq: 2, ops: [{ op: 'matmul', left: { kind: 'stored', id: 'nope', rows: [0], transpose: false }, right: { kind: 'sent', rows: 1, cols: 1 }, values: 1, slotBits: 64 }], inputs: [1], ciphertexts: [publicKey.encryptRaw(3n)] }, 128);
  const reply = decodeTwoServerMessage(await s2.handle(unknown));
  assert.ok(reply.type === 'error' && reply.code === 'ERR_UNKNOWN_MATRIX');
});
