import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FeEngine, KeyRequestRefusedError } from '../../src/schemes/fe/index.js';
import { KeyAuthority } from '../../src/protocol/fe-training/authority.js';
import { signKeyRequest, type KeyRequest } from '../../src/protocol/fe-training/messages.js';
import { KeyRequestPolicy } from '../../src/protocol/fe-training/policy.js';

const engine = new FeEngine({ maxDlogTable: 1 << 10 });
const ramp = (l: number, shift = 0) => Int32Array.from({ length: l }, (_, i) => ((i * 7 + shift) % 19) - 9 || 1);

function fresh() {
  const authority = new KeyAuthority(engine);
  const session = authority.registerServer('server');
  const mpk = authority.setup(32, 'rows', 100);
  let seq = 0;
  const ask = (vectors: Int32Array[], setupId = mpk.setupId) => authority.handle(signKeyRequest(session, seq++, setupId, 'rows', vectors));
  return { authority, session, mpk, ask, nextSeq: () => seq++ };
}

test('the authority answers well-formed requests with working keys and logs them', () => {
  const { authority, mpk, ask } = fresh();
  const y = ramp(32);
  const [answer] = ask([y]);
  assert.ok(answer && 'key' in answer);
  const x = Array.from({ length: 32 }, (_, i) => i);
  const [ct] = engine.encrypt(mpk, [x]);
  assert.equal(engine.decrypt(ct!, [answer.key], 100000)[0], x.reduce((s, v, i) => s + v * y[i]!, 0));
  assert.equal(authority.log.length, 1);
  assert.equal(authority.log[0]!.outcome, 'answered');
  assert.equal(authority.log[0]!.issued, 1);
});

test('unit vectors and near-unit vectors are refused; the refusal is logged', () => {
  const { authority, ask } = fresh();
  const unit = new Int32Array(32);
  unit[5] = 1;
  const sparse = new Int32Array(32);
  sparse.set([3, 0, 4, 0, 5], 0);
  const answers = ask([unit, sparse, ramp(32)]);
  assert.ok('refused' in answers[0]! && /unit vector/.test(answers[0].refused));
  assert.ok('refused' in answers[1]!);
  assert.ok('key' in answers[2]!);
  assert.equal(authority.log[0]!.refused.length, 2);
});

test('near-duplicates (and negated near-duplicates) of earlier requests are refused, exact repeats are not', () => {
  const { ask } = fresh();
  const y = ramp(32);
  assert.ok('key' in ask([y])[0]!);
  const nudged = y.slice();
  nudged[3] = (nudged[3] ?? 0) + 1; // differs in one coordinate: y' − y = e_3
  assert.ok('refused' in ask([nudged])[0]!);
  const negated = y.map((v) => -v);
  negated[10] = 0;
  assert.ok('refused' in ask([negated])[0]!);
  assert.ok('key' in ask([y])[0]!, 'an exact repeat reveals nothing new');
  assert.ok('key' in ask([ramp(32, 5)])[0]!, 'a genuinely different vector is fine');
});

test('the rank rule refuses the vector that would span the whole space', () => {
  const policy = new KeyRequestPolicy({ minSupport: 1, minDifferenceSupport: 1 });
  const l = 6;
  const results = [];
  for (let k = 0; k < l; k++) {
    const v = Int32Array.from({ length: l }, (_, i) => (i <= k ? 1 : 0) + (i === k ? 1 : 0));
    results.push(policy.consider('s', v).ok);
  }
  assert.deepEqual(results, [true, true, true, true, true, false]);
  assert.equal(policy.rank('s'), 5);
  const off = new KeyRequestPolicy({ minSupport: 1, minDifferenceSupport: 1, rankLimit: 'off' });
  for (let k = 0; k < l; k++) assert.ok(off.consider('s', Int32Array.from({ length: l }, (_, i) => (i === k ? 1 : 0))).ok);
});

test('malformed, tampered and replayed requests are rejected whole and logged', () => {
  const { authority, session, mpk, ask, nextSeq } = fresh();
  const reject = (request: KeyRequest, pattern: RegExp) => {
    assert.throws(() => authority.handle(request), (err: unknown) => err instanceof KeyRequestRefusedError && pattern.test(err.message));
  };
  // tampered after signing: a vector changed in transit
  const signed = signKeyRequest(session, nextSeq(), mpk.setupId, 'rows', [ramp(32)]);
  const tampered = { ...signed, vectors: [Int32Array.from(signed.vectors[0]!, (v, i) => (i === 0 ? v + 1 : v))] };
  reject(tampered, /MAC/);
  reject({ ...signed, seq: signed.seq + 1000 }, /MAC/);
  // wrong length, out-of-range entry, unknown setup, wrong purpose, empty, replay, unknown server
  reject(signKeyRequest(session, nextSeq(), mpk.setupId, 'rows', [ramp(31)]), /length 31/);
  const big = ramp(32);
  big[0] = 101;
  reject(signKeyRequest(session, nextSeq(), mpk.setupId, 'rows', [big]), /outside ±100/);
  reject(signKeyRequest(session, nextSeq(), 'ab'.repeat(16), 'rows', [ramp(32)]), /unknown setup/);
  reject(signKeyRequest(session, nextSeq(), mpk.setupId, 'columns', [ramp(32)]), /is for rows/);
  reject(signKeyRequest(session, nextSeq(), mpk.setupId, 'rows', []), /no vectors/);
  const ok = signKeyRequest(session, nextSeq(), mpk.setupId, 'rows', [ramp(32, 3)]);
  authority.handle(ok);
  reject(ok, /not fresh/);
  reject(signKeyRequest({ serverId: 'mallory', macKey: new Uint8Array(32) }, 0, mpk.setupId, 'rows', [ramp(32)]), /unknown server/);
  reject({ ...ok, vectors: [[1, 2]] } as unknown as KeyRequest, /Int32Array/);
  const rejected = authority.log.filter((e) => e.outcome === 'rejected');
  assert.equal(rejected.length, 10);
  void ask;
});
