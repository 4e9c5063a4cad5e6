import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignProviders, DIABETES_FEATURES, DIABETES_RECORDS, loadDiabetes, splitDiabetes } from '../../src/data/diabetes.js';
import type { CheckpointStore } from '../../src/protocol/multikey/crypto-server.js';
import { deserializeStore } from '../../src/protocol/multikey/state.js';
import { PeerUnavailableError } from '../../src/protocol/multikey/transport.js';
import { runMultikeyTraining } from '../../src/train/multikey/run.js';
import { FormatError } from '../../src/errors.js';

const full = splitDiabetes(loadDiabetes());
const split = { ...full, train: { features: full.train.features.slice(0, 48), targets: full.train.targets.slice(0, 48) } };

class MemoryCheckpoints implements CheckpointStore {
  readonly files = new Map<string, string>();
  async save(party: string, epoch: number, state: string): Promise<void> {
    this.files.set(`${party}-${epoch}`, state);
  }
  async load(party: string, epoch: number): Promise<string | undefined> {
    return this.files.get(`${party}-${epoch}`);
  }
}

test('diabetes: 442 records of 10 features, a fixed split standardized on the training part, providers of near-equal size', () => {
  const raw = loadDiabetes();
  assert.equal(raw.targets.length, DIABETES_RECORDS);
  assert.equal(raw.features[0]!.length, DIABETES_FEATURES);
  assert.deepEqual(Array.from(raw.features[0]!), [59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]);
  assert.equal(raw.targets[0], 151);
  assert.equal(full.train.targets.length + full.test.targets.length, 442);
  assert.equal(full.test.targets.length, 88);
  const again = splitDiabetes(raw);
  assert.deepEqual(Array.from(again.test.targets), Array.from(full.test.targets));
  const mean = full.train.targets.reduce((a, b) => a + b, 0) / full.train.targets.length;
  assert.ok(Math.abs(mean) < 1e-9);
  const parts = assignProviders(354, 50);
  assert.equal(parts.length, 50);
  assert.deepEqual(parts.flat(), Array.from({ length: 354 }, (_, i) => i));
  assert.ok(parts.every((p) => p.length === 7 || p.length === 8));
  assert.throws(() => assignProviders(3, 4), RangeError);
  assert.throws(() => loadDiabetes('/nonexistent'), /cannot read/);
});

test('multikey training: providers with Paillier and CKKS keys, R² matches the twin; a silent crypto server mid-epoch 2 leaves epoch 1 checkpointed; resume completes', async () => {
  const checkpoints = new MemoryCheckpoints();
  const base = { split, providers: 4, ckksEvery: 2, epochs: 2, keyBits: 1024, insecure: true, seed: 3, checkpoints } as const;
  // 3 setup requests, 6 steps × 12 + sync + checkpoint in epoch 1, then silence early in epoch 2.
  await assert.rejects(runMultikeyTraining({ ...base, cryptoFailAfter: 90 }), (err: unknown) => {
    assert.ok(err instanceof PeerUnavailableError);
    assert.match(err.message, /during epoch 2; epoch 1 is checkpointed/);
    return true;
  });
  assert.deepEqual([...checkpoints.files.keys()].sort(), ['crypto-server-1', 'service-1']);
  const svc = deserializeStore(checkpoints.files.get('service-1')!, 1);
  const crypto = deserializeStore(checkpoints.files.get('crypto-server-1')!, 1);
  assert.deepEqual([...svc.keys()].sort(), [...crypto.keys()].sort());
  assert.throws(() => deserializeStore(checkpoints.files.get('service-1')!, 2), FormatError);
  assert.throws(() => deserializeStore(checkpoints.files.get('service-1')!.slice(0, 100), 1), FormatError);

  const resumed = await runMultikeyTraining({ ...base, resume: true });
  assert.equal(resumed.resumedFromEpoch, 1);
  assert.equal(resumed.perEpoch.length, 1);
  assert.ok(Math.abs(resumed.r2 - resumed.plaintextR2) < 0.02, `r2 ${resumed.r2} vs twin ${resumed.plaintextR2}`);
  assert.ok(checkpoints.files.has('service-2') && checkpoints.files.has('crypto-server-2'));
});

test('multikey training: a fresh run reports traffic, rounds and both providers kinds', async () => {
  const r = await runMultikeyTraining({ split, providers: 3, ckksEvery: 3, epochs: 1, keyBits: 1024, insecure: true, seed: 5 });
  assert.equal(r.paillierProviders, 2);
  assert.equal(r.ckksProviders, 1);
  assert.equal(r.trainRecords, 48);
  assert.ok(r.keySwitch.rounds === 6, `key switch rounds ${r.keySwitch.rounds}`); // 3 uploads + 3 switches
  assert.equal(r.perEpoch[0]!.rounds, 6 * 12 + 1);
  assert.ok(r.bytes > r.keySwitch.bytes && r.rounds > r.perEpoch[0]!.rounds);
  assert.ok(Math.abs(r.r2 - r.plaintextR2) < 0.02);
  await assert.rejects(runMultikeyTraining({ split, providers: 2, epochs: 1, keyBits: 1024 }), /insecure/);
});
