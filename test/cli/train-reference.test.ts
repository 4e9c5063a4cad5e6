import { test } from 'node:test';
import assert from 'node:assert/strict';
import { epochChosenReference, referenceSplit } from '../../src/train/reference.js';
import { breastCancerSplit } from '../../src/data/breast-cancer.js';
import { loadDiabetes, splitDiabetes } from '../../src/data/diabetes.js';
import { DEFAULT_SMLP } from '../../src/train/smlp/config.js';
import { smlpReference } from '../../src/train/smlp/reference.js';
import { DEFAULT_MULTIKEY_MLP } from '../../src/train/multikey/mlp.js';
import { plaintextReference } from '../../src/train/multikey/reference.js';

test('the reference picks the epoch count on held-back records, then trains a fresh run on all records for that many', async () => {
  const validation = [0.5, 0.7, 0.9, 0.9, 0.6];
  let heldBackEpochs = 0;
  let fullEpochs = 0;
  const r = await epochChosenReference(
    5,
    { epoch: () => void heldBackEpochs++, score: () => validation[heldBackEpochs - 1]! },
    () => ({ epoch: () => void fullEpochs++, score: () => 100 + fullEpochs }),
  );
  assert.equal(heldBackEpochs, 5);
  assert.deepEqual(r, { score: 103, epoch: 3, maxEpochs: 5 }, 'the first best validation epoch, and the full run trained exactly that long');
  assert.deepEqual(referenceSplit(454), { fit: 363, validation: 91 });
});

test('smlp and multikey references: well-trained plaintext scores on the real splits', async () => {
  const { train, test: held } = breastCancerSplit();
  const smlp = await smlpReference(train, held, DEFAULT_SMLP);
  assert.ok(smlp.score > 0.93 && smlp.score <= 1, `smlp reference accuracy ${smlp.score}`);
  assert.ok(smlp.epoch >= 1 && smlp.epoch <= smlp.maxEpochs);
  const split = splitDiabetes(loadDiabetes());
  const multikey = plaintextReference(split, DEFAULT_MULTIKEY_MLP, 1);
  // Least squares on this split reaches 0.351; the network, regularized, a little more.
  assert.ok(multikey.r2 > 0.34 && multikey.r2 < 0.6, `multikey reference R² ${multikey.r2}`);
});
