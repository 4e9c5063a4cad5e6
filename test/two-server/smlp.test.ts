import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError, ShapeError } from '../../src/errors.js';
import { breastCancerSplit, parseBreastCancerCsv, stratifiedSplit, loadBreastCancer } from '../../src/data/breast-cancer.js';
import { CryptoServerUnavailableError } from '../../src/protocol/two-server/index.js';
import { PaillierPrivateKey, PaillierPublicKey } from '../../src/schemes/paillier/index.js';
import { DEFAULT_SMLP } from '../../src/train/smlp/config.js';
import { epochOrder, fixedFeatures, fixedTargets, initialWeights } from '../../src/train/smlp/model.js';
import { runSmlpTraining, type CheckpointSink, type SmlpCheckpoint, type SmlpData } from '../../src/train/smlp/run.js';
import { roundShift, SmlpTwin } from '../../src/train/smlp/twin.js';
import { epochBatches } from '../../src/train/smlp/config.js';

const { train, test: testSet } = breastCancerSplit();
const head = (d: SmlpData, n: number): SmlpData => ({ count: n, features: d.features, x: d.x.subarray(0, n * d.features), y: d.y.subarray(0, n) });
// A secret weight seed (the user's, never seen by the servers) keeps these runs reproducible.
const small = { train: head(train, 48), test: head(testSet, 24), keyBits: 512, insecure: true, config: { hidden: 2, weightSeed: 7 } } as const;

function memoryCheckpoint(): CheckpointSink & { saved: SmlpCheckpoint[]; resume: boolean } {
  const sink = {
    saved: [] as SmlpCheckpoint[],
    resume: false,
    load: () => (sink.resume ? sink.saved.at(-1) : undefined),
    save: (c: SmlpCheckpoint) => void sink.saved.push(c),
  };
  return sink;
}

test('the data: 569 records, stratified 80/20 split, fixed seed, bad records refused', () => {
  const all = loadBreastCancer();
  assert.equal(all.count, 569);
  assert.equal(train.count + testSet.count, 569);
  const malignantShare = (y: Uint8Array) => y.filter((v) => v === 0).length / y.length;
  assert.ok(Math.abs(malignantShare(train.y) - malignantShare(testSet.y)) < 0.02);
  assert.deepEqual(stratifiedSplit(all, 0.2, 1).test.y, stratifiedSplit(all, 0.2, 1).test.y);
  assert.throws(() => parseBreastCancerCsv('2,30,a,b\n' + '1,'.repeat(30) + '0\n' + '1,'.repeat(29) + '0\n'), (e: unknown) => e instanceof FormatError && /line 3: 30 fields, expected 31/.test(e.message));
  assert.throws(() => parseBreastCancerCsv('1,30,a,b\n' + 'x,'.repeat(30) + '0\n'), FormatError);
  assert.throws(() => parseBreastCancerCsv('1,30,a,b\n' + '1,'.repeat(30) + '2\n'), FormatError);
  assert.throws(() => parseBreastCancerCsv('3,30,a,b\n' + '1,'.repeat(30) + '0\n'), FormatError);
});

test('roundShift rounds to nearest', () => {
  assert.deepEqual([5n, 6n, -5n, -6n, 7n].map((v) => roundShift(v, 2)), [1n, 2n, -1n, -1n, 2n]);
});

test('encrypted training follows its plaintext twin: weights within a few units after an epoch, same predictions', async () => {
  const sink = memoryCheckpoint();
  const r = await runSmlpTraining({ ...small, epochs: 1, checkpoint: sink });
  const cp = sink.saved[0]!;
  const pk = new PaillierPublicKey(cp.cryptoKey.n, { insecure: true });
  const sk = new PaillierPrivateKey(pk, cp.cryptoKey.p, cp.cryptoKey.q);
  const decrypted = cp.w1.map((c) => sk.decryptSigned(pk.ciphertext(c)));
  const diffs = decrypted.map((w, i) => Number(w - cp.twin.w1[i]!));
  assert.ok(diffs.every((d) => Math.abs(d) <= 8), `weight differences ${diffs}`);
  assert.ok(diffs.some((d, i) => cp.twin.w1[i] !== initialWeights({ ...DEFAULT_SMLP, hidden: 2, weightSeed: 7 }, 30).w1[i]), 'training moved the weights');
  assert.ok(r.agreement >= 0.9, `agreement ${r.agreement}`);
  assert.ok(Math.abs(r.accuracy - r.plaintextAccuracy) <= 0.1);
  assert.equal(r.perEpoch[0]!.rounds, 7 * 3);
  assert.ok(r.bytes > r.uploadBytes && r.perEpoch[0]!.bytes > 0);
  assert.equal(r.keyBits, 512);
});

test('the twin on the whole training set learns the task', () => {
  const c = { ...DEFAULT_SMLP, weightSeed: 7 };
  const twin = new SmlpTwin(c, initialWeights(c, 30), 31);
  const x = fixedFeatures(train.x, train.count, 30, c.fracBits);
  const t = fixedTargets(train.y, c.fracBits);
  for (let e = 0; e < 2; e++) for (const b of epochBatches(train.count, 16, epochOrder(c, train.count, e))) twin.step(x, t, b);
  const p = twin.predict(fixedFeatures(testSet.x, testSet.count, 30, c.fracBits), testSet.count);
  const acc = p.filter((v, i) => v === testSet.y[i]).length / testSet.count;
  assert.ok(acc > 0.9, `twin accuracy ${acc}`);
});

test('records of the wrong width are refused before anything is encrypted', async () => {
  const narrow: SmlpData = { count: 2, features: 29, x: new Float64Array(58), y: new Uint8Array(2) };
  await assert.rejects(runSmlpTraining({ ...small, test: narrow, epochs: 1 }), ShapeError);
  const lying: SmlpData = { count: 3, features: 30, x: new Float64Array(60), y: new Uint8Array(3) };
  await assert.rejects(runSmlpTraining({ ...small, train: lying, epochs: 1 }), ShapeError);
});

test('a crypto server that stops answering mid-epoch: typed error, checkpoint of the last completed epoch, resume finishes', async () => {
  const sink = memoryCheckpoint();
  let calls = 0;
  const stall = (inner: { call(b: Uint8Array): Promise<Uint8Array> }) => ({ call: (b: Uint8Array) => (++calls > 1 + 21 + 10 ? new Promise<Uint8Array>(() => {}) : inner.call(b)) });
  await assert.rejects(runSmlpTraining({ ...small, epochs: 2, checkpoint: sink, wrapTransport: stall, timeoutMs: 1500 }), CryptoServerUnavailableError);
  assert.equal(sink.saved.length, 1);
  assert.equal(sink.saved[0]!.epochsDone, 1);
  sink.resume = true;
  const r = await runSmlpTraining({ ...small, epochs: 2, checkpoint: sink });
  assert.equal(r.resumedFromEpoch, 1);
  assert.equal(r.perEpoch.length, 2);
  assert.equal(sink.saved.at(-1)!.epochsDone, 2);
  assert.ok(r.agreement >= 0.85);
});

test('a checkpoint made for other data is refused', async () => {
  const sink = memoryCheckpoint();
  await runSmlpTraining({ ...small, epochs: 1, checkpoint: sink });
  sink.resume = true;
  await assert.rejects(runSmlpTraining({ ...small, train: head(train, 32), epochs: 2, checkpoint: sink }), ShapeError);
});

test('classify: new encrypted samples give scores only the user key decrypts, matching the twin forward pass', async () => {
  const { ComputeServer, CryptoServer, InProcessTransport, LocalTwoServerCompute } = await import('../../src/protocol/two-server/index.js');
  const { SecureMlpTrainer } = await import('../../src/train/smlp/trainer.js');
  const { twinForward } = await import('../../src/train/smlp/twin.js');
  const { generateKeyPair } = await import('../../src/schemes/paillier/index.js');
  const s2keys = generateKeyPair({ bits: 512, insecure: true });
  const userKeys = generateKeyPair({ bits: 512, insecure: true });
  const pk = s2keys.publicKey;
  const c = { ...DEFAULT_SMLP, hidden: 3 };
  const w = initialWeights(c, 30);
  const s1 = new ComputeServer(pk, new InProcessTransport(new CryptoServer(s2keys.privateKey, { insecure: true, switchTargets: [userKeys.publicKey] })), new LocalTwoServerCompute());
  const enc = (vs: bigint[]) => vs.map((v) => pk.encryptRaw(v));
  const trainer = new SecureMlpTrainer(s1, c, { w1: { rows: 3, cols: 31, bits: 16, cts: enc(w.w1) }, w2: { rows: 1, cols: 4, bits: 16, cts: enc(w.w2) } }, pk.encryptRaw(1n << 12n));
  const x = fixedFeatures(testSet.x.subarray(0, 4 * 30), 4, 30, 12);
  const scores = await trainer.classify({ rows: 4, cols: 31, bits: 16, cts: enc(x) }, userKeys.publicKey);
  assert.ok(scores.every((s) => s.publicKey.equals(userKeys.publicKey)));
  scores.forEach((s, i) => {
    const z2 = userKeys.privateKey.decryptSigned(s);
    const { yHat } = twinForward(c, w, x.slice(i * 31, (i + 1) * 31), 31);
    assert.ok(Math.abs(Number(roundShift(z2, 12) - yHat)) <= 8, `sample ${i}: ${roundShift(z2, 12)} vs ${yHat}`);
  });
  await assert.rejects(trainer.classify({ rows: 1, cols: 30, bits: 16, cts: enc(x.slice(0, 30)) }, userKeys.publicKey), RangeError);
});
