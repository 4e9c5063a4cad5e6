/**
 * The plaintext reference of `train --scheme smlp` (see `../reference.ts`): the twin's fixed-point
 * training, the number of epochs (up to {@link SMLP_REFERENCE_EPOCHS}) chosen on held-back training
 * records. Milliseconds.
 *
 * @module
 */
import { epochChosenReference, referenceSplit, type TrainingReference } from '../reference.js';
import { epochBatches, type SmlpConfig } from './config.js';
import { epochOrder, fixedFeatures, fixedTargets, initialWeights } from './model.js';
import type { SmlpData } from './run.js';
import { SmlpTwin } from './twin.js';

/** Epochs the reference may train. */
export const SMLP_REFERENCE_EPOCHS = 30;

/**
 * The reference's initial weights come from this fixed seed unless the user gave one: it trains on
 * plaintext, so nothing about its start is secret, and a fixed start makes the printed reference
 * the same on every run (CSPRNG starts moved it between 84% and 98%).
 */
export const SMLP_REFERENCE_WEIGHT_SEED = 1;

function accuracy(twin: SmlpTwin, x: readonly bigint[], y: Uint8Array): number {
  const predicted = twin.predict(x, y.length);
  return y.length === 0 ? 0 : predicted.reduce((n, p, i) => n + +(p === y[i]), 0) / y.length;
}

/** Trains and scores the reference. */
export function smlpReference(train: SmlpData, test: SmlpData, c: SmlpConfig): Promise<TrainingReference> {
  const f = c.fracBits;
  const cols = train.features + 1;
  const { fit, validation } = referenceSplit(train.count);
  const x = fixedFeatures(train.x, train.count, train.features, f);
  const t = fixedTargets(train.y, f);
  const xTest = fixedFeatures(test.x, test.count, test.features, f);
  const run = (count: number, scoreOn: { x: readonly bigint[]; y: Uint8Array }) => {
    const twin = new SmlpTwin(c, initialWeights({ ...c, weightSeed: c.weightSeed ?? SMLP_REFERENCE_WEIGHT_SEED }, train.features), cols);
    return {
      epoch: (e: number) => {
        for (const batch of epochBatches(count, 2 ** c.batchLog2, epochOrder(c, count, e - 1))) twin.step(x, t, batch);
      },
      score: () => accuracy(twin, scoreOn.x, scoreOn.y),
    };
  };
  const heldBack = run(fit, { x: x.slice(fit * cols), y: train.y.subarray(fit, fit + validation) });
  return epochChosenReference(SMLP_REFERENCE_EPOCHS, heldBack, () => run(train.count, { x: xTest, y: test.y }));
}
